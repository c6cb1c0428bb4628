-- The audit log: events (Merkle leaves, id = leaf index), signed tree heads,
-- the writer's tree state and legal holds.
CREATE TABLE audit_events (
    id           BIGINT PRIMARY KEY,
    time_us      BIGINT NOT NULL,
    actor_type   TEXT NOT NULL,
    actor_id     TEXT NOT NULL,
    organization TEXT,
    action       TEXT NOT NULL,
    resource     TEXT,
    outcome      TEXT NOT NULL,
    rule_id      TEXT,
    request_id   TEXT,
    trace_id     TEXT,
    source_ip    TEXT,
    details      TEXT NOT NULL,
    leaf_hash    BYTEA NOT NULL
);
CREATE INDEX audit_events_time ON audit_events (time_us, id);
CREATE INDEX audit_events_actor ON audit_events (actor_id, id);
CREATE INDEX audit_events_action ON audit_events (action, id);
CREATE INDEX audit_events_outcome ON audit_events (outcome, id);
CREATE INDEX audit_events_resource ON audit_events (resource, id);

CREATE TABLE audit_tree_heads (
    tree_size    BIGINT PRIMARY KEY,
    root         BYTEA NOT NULL,
    signed_at_ms BIGINT NOT NULL,
    key_id       TEXT NOT NULL,
    signature    BYTEA NOT NULL
);

-- One row. frontier: the right edge of the tree at tree_size; checkpoint:
-- the right edge at pruned_to, from which a pruned log stays verifiable;
-- last_time_us: event times never decrease in log order, which lets time
-- bounds become id bounds in queries.
CREATE TABLE audit_state (
    id         INTEGER PRIMARY KEY,
    tree_size  BIGINT NOT NULL,
    frontier   BYTEA NOT NULL,
    pruned_to  BIGINT NOT NULL,
    checkpoint BYTEA NOT NULL,
    last_time_us BIGINT NOT NULL
);
INSERT INTO audit_state (id, tree_size, frontier, pruned_to, checkpoint, last_time_us)
VALUES (1, 0, ''::bytea, 0, ''::bytea, 0);

CREATE TABLE audit_holds (
    id          BIGSERIAL PRIMARY KEY,
    from_us     BIGINT NOT NULL,
    to_us       BIGINT NOT NULL,
    reason      TEXT NOT NULL,
    placed_by   TEXT NOT NULL,
    placed_us   BIGINT NOT NULL,
    released_us BIGINT
);
