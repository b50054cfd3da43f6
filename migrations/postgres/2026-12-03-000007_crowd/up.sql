-- Crowd operations (SPEC 8): an event and its zones (each with a capacity, an alert threshold
-- and its bounds), each camera's latest count per zone, the overcrowding alerts (one open per
-- zone), the devices' latest pings with their expiry, operators' actions and reports.
CREATE TABLE crowd_events (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE crowd_zones (
    event_id TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    capacity BIGINT NOT NULL,
    threshold BIGINT NOT NULL,
    south DOUBLE PRECISION NOT NULL,
    west DOUBLE PRECISION NOT NULL,
    north DOUBLE PRECISION NOT NULL,
    east DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (event_id, id)
);
CREATE TABLE crowd_counts (
    event_id TEXT NOT NULL,
    zone_id TEXT NOT NULL,
    camera_id TEXT NOT NULL,
    count BIGINT NOT NULL,
    at TIMESTAMP NOT NULL,
    PRIMARY KEY (event_id, zone_id, camera_id)
);
CREATE TABLE crowd_alerts (
    id TEXT NOT NULL PRIMARY KEY,
    event_id TEXT NOT NULL,
    zone_id TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL,
    count BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    resolved_at TIMESTAMP,
    resolved_by TEXT
);
CREATE INDEX crowd_alerts_by_event ON crowd_alerts (event_id, status, created_at);
-- One open overcrowding alert per zone, whatever commits at once.
CREATE UNIQUE INDEX crowd_alerts_one_open ON crowd_alerts (event_id, zone_id) WHERE status = 'open';
CREATE TABLE crowd_pings (
    event_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    lat DOUBLE PRECISION NOT NULL,
    lng DOUBLE PRECISION NOT NULL,
    at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    PRIMARY KEY (event_id, device_id)
);
CREATE INDEX crowd_pings_expiry ON crowd_pings (expires_at);
CREATE TABLE crowd_actions (
    id TEXT NOT NULL PRIMARY KEY,
    event_id TEXT NOT NULL,
    command TEXT NOT NULL,
    zone_id TEXT,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX crowd_actions_by_event ON crowd_actions (event_id, created_at);
CREATE TABLE crowd_reports (
    id TEXT NOT NULL PRIMARY KEY,
    event_id TEXT NOT NULL,
    message TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX crowd_reports_by_event ON crowd_reports (event_id, created_at);
