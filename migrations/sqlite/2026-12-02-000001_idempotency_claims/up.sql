-- A key is claimed before its work runs (response NULL, `node` the claiming process), and the
-- answer is written in the same transaction as the work's effect (SPEC 4). The kept answers
-- are carried over.
CREATE TABLE idempotency_claims (
    sub TEXT NOT NULL,
    key TEXT NOT NULL,
    response TEXT,
    node TEXT,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (sub, key)
);
INSERT INTO idempotency_claims (sub, key, response, node, created_at)
    SELECT sub, key, response, NULL, created_at FROM idempotency_keys;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_claims RENAME TO idempotency_keys;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
