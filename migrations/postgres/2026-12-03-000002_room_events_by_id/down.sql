DROP INDEX room_events_by_id;
