-- Emergency units (SPEC 9): a unit fleet's driver has a unit_type (ambulance, fire, police,
-- rescue; NULL for a delivery driver), and an emergency is a record of its own: PENDING, then
-- ASSIGNED to one unit, then COMPLETED, or CANCELLED. reported_by is the sub of its creator.
ALTER TABLE drivers ADD COLUMN unit_type TEXT;
CREATE TABLE emergencies (
    request_id TEXT NOT NULL PRIMARY KEY,
    kind TEXT NOT NULL,
    description TEXT NOT NULL,
    severity TEXT NOT NULL,
    lat DOUBLE PRECISION NOT NULL,
    lng DOUBLE PRECISION NOT NULL,
    status TEXT NOT NULL,
    unit_id TEXT,
    reported_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX emergencies_status ON emergencies (status, created_at);
CREATE INDEX emergencies_reporter ON emergencies (reported_by, created_at);
-- A unit is never on two emergencies at once, whatever commits at the same moment.
CREATE UNIQUE INDEX emergencies_one_per_unit ON emergencies (unit_id) WHERE status = 'ASSIGNED';
