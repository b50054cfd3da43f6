DROP INDEX sos_alerts_open;
DROP INDEX sos_alerts_created;
DROP TABLE sos_alerts;
