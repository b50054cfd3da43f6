-- Rallypoint schema (SQLite). Keep in step with migrations/postgres/.
-- Only types both backends map alike: TEXT, INTEGER, BIGINT, DOUBLE, TIMESTAMP.

CREATE TABLE drivers (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    fleet TEXT NOT NULL,
    capacity INTEGER NOT NULL,
    status TEXT NOT NULL,
    lat DOUBLE,
    lng DOUBLE,
    speed DOUBLE,
    heading DOUBLE,
    location_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE orders (
    id TEXT NOT NULL PRIMARY KEY,
    status TEXT NOT NULL,
    driver_id TEXT REFERENCES drivers(id),
    fleet TEXT NOT NULL,
    priority TEXT NOT NULL,
    pickup_lat DOUBLE NOT NULL,
    pickup_lng DOUBLE NOT NULL,
    dropoff_lat DOUBLE NOT NULL,
    dropoff_lng DOUBLE NOT NULL,
    version BIGINT NOT NULL,
    accepted_at TIMESTAMP,
    eta TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX orders_driver_status ON orders (driver_id, status);
CREATE INDEX orders_status ON orders (status);

-- Drivers an order must not go back to: they reported on it or declined it.
CREATE TABLE order_exclusions (
    order_id TEXT NOT NULL,
    driver_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (order_id, driver_id)
);

CREATE TABLE incidents (
    id TEXT NOT NULL PRIMARY KEY,
    order_id TEXT NOT NULL,
    driver_id TEXT,
    reported_by TEXT NOT NULL,
    kind TEXT NOT NULL,
    comment TEXT,
    risk_score DOUBLE NOT NULL,
    risk_source TEXT NOT NULL,
    action_taken TEXT NOT NULL,
    old_driver_id TEXT,
    new_driver_id TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX incidents_created ON incidents (created_at);
CREATE INDEX incidents_driver_created ON incidents (driver_id, created_at);

CREATE TABLE audit (
    id TEXT NOT NULL PRIMARY KEY,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    order_id TEXT NOT NULL,
    from_driver_id TEXT,
    to_driver_id TEXT,
    reason TEXT NOT NULL,
    forced INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX audit_created ON audit (created_at);

-- The last seq allocated per room: allocation is an update of this row inside the writer's
-- transaction, so nodes sharing one database never hand out a seq twice.
CREATE TABLE room_seqs (
    room TEXT NOT NULL PRIMARY KEY,
    seq BIGINT NOT NULL
);

-- Every published room message, as sent: what resume and GET /api/v1/rooms/{room}/events serve.
CREATE TABLE room_events (
    room TEXT NOT NULL,
    seq BIGINT NOT NULL,
    id TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (room, seq)
);
CREATE INDEX room_events_created ON room_events (created_at);

-- Answers to state-changing requests carrying an idempotency key, per sub.
CREATE TABLE idempotency_keys (
    sub TEXT NOT NULL,
    key TEXT NOT NULL,
    response TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (sub, key)
);
