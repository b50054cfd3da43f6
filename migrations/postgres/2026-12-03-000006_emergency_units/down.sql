DROP INDEX emergencies_one_per_unit;
DROP INDEX emergencies_reporter;
DROP INDEX emergencies_status;
DROP TABLE emergencies;
ALTER TABLE drivers DROP COLUMN unit_type;
