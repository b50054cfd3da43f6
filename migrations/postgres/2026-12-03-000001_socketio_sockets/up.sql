-- Socket.IO connection state recovery (SPEC 11): one row per socket id, all a node needs to
-- restore a socket another node (or an earlier run) served. `generation` counts the socket's
-- connections and moves on with one compare-and-set per restore, so a pid is restored at most
-- once per disconnection; `disconnected_at` is when its last connection dropped (NULL while one
-- holds it).
CREATE TABLE socketio_sockets (
    sid TEXT PRIMARY KEY NOT NULL,
    sub TEXT NOT NULL,
    generation BIGINT NOT NULL DEFAULT 0,
    disconnected_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX socketio_sockets_disconnected ON socketio_sockets (disconnected_at);
