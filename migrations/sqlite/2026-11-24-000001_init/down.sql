DROP TABLE idempotency_keys;
DROP TABLE room_events;
DROP TABLE room_seqs;
DROP TABLE audit;
DROP TABLE incidents;
DROP TABLE order_exclusions;
DROP TABLE orders;
DROP TABLE drivers;
