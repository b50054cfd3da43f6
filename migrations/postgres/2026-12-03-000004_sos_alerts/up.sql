-- SOS without an order (SPEC 10): one row per driver's alert, open while resolved_at is NULL;
-- resolved_by is the sub of the staff member who resolved it. Listed newest first, the open
-- ones on their own.
CREATE TABLE sos_alerts (
    alert_id TEXT NOT NULL PRIMARY KEY,
    driver_id TEXT NOT NULL,
    fleet TEXT NOT NULL,
    lat DOUBLE PRECISION NOT NULL,
    lng DOUBLE PRECISION NOT NULL,
    message TEXT,
    created_at TIMESTAMP NOT NULL,
    resolved_at TIMESTAMP,
    resolved_by TEXT
);
CREATE INDEX sos_alerts_created ON sos_alerts (created_at);
CREATE INDEX sos_alerts_open ON sos_alerts (resolved_at, created_at);
