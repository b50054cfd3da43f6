-- Socket.IO connection state recovery (SPEC 11, src/socketio/recovery.rs): one row per socket
-- id, all the server keeps between its connections. `generation` is the connection in force (0,
-- then one more per restore), moved on by one compare-and-set so an offset restores at most
-- once; `disconnected_at` is when its last connection dropped, NULL while one holds it. Rows
-- dropped longer ago than `socketio.recovery_s` are purged by the janitor.
CREATE TABLE socketio_sockets (
    sid TEXT NOT NULL PRIMARY KEY,
    sub TEXT NOT NULL,
    generation BIGINT NOT NULL DEFAULT 0,
    disconnected_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX socketio_sockets_disconnected ON socketio_sockets (disconnected_at);
