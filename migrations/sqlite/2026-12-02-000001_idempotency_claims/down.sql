DROP INDEX idempotency_keys_created;
DELETE FROM idempotency_keys WHERE response IS NULL;
CREATE TABLE idempotency_answers (
    sub TEXT NOT NULL,
    key TEXT NOT NULL,
    response TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (sub, key)
);
INSERT INTO idempotency_answers (sub, key, response, created_at)
    SELECT sub, key, response, created_at FROM idempotency_keys;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_answers RENAME TO idempotency_keys;
