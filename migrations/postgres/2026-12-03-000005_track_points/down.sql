DROP INDEX track_points_at;
DROP TABLE track_points;
