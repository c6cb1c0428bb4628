-- Every submission names its own transaction as the resource, so this index
-- takes one insert at a random place per event, on the single writer. Its
-- entries held the whole value (64 hex digits once sealed); 16 characters
-- (64 bits of the keyed hash) find the same rows, and queries compare the
-- prefix through the index and then the whole value on the row.
DROP INDEX audit_events_resource;
CREATE INDEX audit_events_resource ON audit_events (substr(resource, 1, 16), id);
