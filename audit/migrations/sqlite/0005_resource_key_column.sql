-- Migration 0004's index on the expression substr(resource, 1, 16) made
-- SQLite keep a statement journal for every multi-row INSERT (a function in
-- an index expression may fail midway, so each changed page was copied
-- aside first): about a seventh of the audit writer's time under load. The
-- writer now stores the 16-character prefix itself, in a plain column, and
-- the index is on that column; `audit verify` checks every row's key
-- against its resource. On a large log the backfill rewrites every row once.
ALTER TABLE audit_events ADD COLUMN resource_key TEXT;
UPDATE audit_events SET resource_key = substr(resource, 1, 16) WHERE resource IS NOT NULL;
DROP INDEX audit_events_resource;
CREATE INDEX audit_events_resource ON audit_events (resource_key, id);
