-- Drivers' sampled positions for route replay (SPEC 10): at most one row per driver per
-- tracking.sample_s, written in batches, purged after tracking.retention_h. Read by driver and
-- time range; purged by time.
CREATE TABLE track_points (
    driver_id TEXT NOT NULL,
    at TIMESTAMP NOT NULL,
    lat DOUBLE NOT NULL,
    lng DOUBLE NOT NULL,
    speed DOUBLE,
    heading DOUBLE,
    PRIMARY KEY (driver_id, at)
);
CREATE INDEX track_points_at ON track_points (at);
