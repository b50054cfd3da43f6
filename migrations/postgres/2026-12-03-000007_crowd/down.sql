DROP TABLE crowd_reports;
DROP TABLE crowd_actions;
DROP TABLE crowd_pings;
DROP TABLE crowd_alerts;
DROP TABLE crowd_counts;
DROP TABLE crowd_zones;
DROP TABLE crowd_events;
