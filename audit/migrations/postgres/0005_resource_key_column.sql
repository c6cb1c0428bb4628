-- The same schema as SQLite's migration 0005, so that both databases run
-- the same queries: the 16-character resource prefix is stored by the
-- writer in a plain column and indexed there, in place of migration 0004's
-- expression index (which costs SQLite a statement journal per INSERT).
-- On a large log the backfill rewrites every row once.
ALTER TABLE audit_events ADD COLUMN resource_key TEXT;
UPDATE audit_events SET resource_key = substr(resource, 1, 16) WHERE resource IS NOT NULL;
DROP INDEX audit_events_resource;
CREATE INDEX audit_events_resource ON audit_events (resource_key, id);
