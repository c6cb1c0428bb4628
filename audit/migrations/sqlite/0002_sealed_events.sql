-- Identifying fields sealed at rest: `sealed` holds them (AES-256-GCM under
-- the appliance's data key `key_version`); actor_id and resource then hold
-- keyed hashes for lookups and the other identifying columns are empty.
ALTER TABLE audit_events ADD COLUMN sealed BLOB;
ALTER TABLE audit_events ADD COLUMN key_version BIGINT;
