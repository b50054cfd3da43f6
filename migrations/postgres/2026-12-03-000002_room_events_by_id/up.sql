-- Socket.IO recovery looks up every room's copy of a publication by its id (one copy per socket).
CREATE INDEX room_events_by_id ON room_events (id);
