-- The proving queue, created by the first process to connect (under an
-- advisory lock). Witnesses and error texts are sealed; the *_key columns
-- name the data-key version each is sealed under.
CREATE TABLE IF NOT EXISTS prover_chains (
    chain_id BIGINT PRIMARY KEY,
    last_cut_batch BIGINT NOT NULL,
    last_cut_block BIGINT NOT NULL,
    exported_through BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS prover_jobs (
    chain_id BIGINT NOT NULL,
    batch_number BIGINT NOT NULL,
    first_block BIGINT NOT NULL,
    last_block BIGINT NOT NULL,
    outputs BYTEA NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'proving', 'proven')),
    worker TEXT,
    not_before_ms BIGINT NOT NULL DEFAULT 0,
    lease_until_ms BIGINT NOT NULL DEFAULT 0,
    proving_ms BIGINT,
    cycles BIGINT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error BYTEA,
    error_key INTEGER,
    created_ms BIGINT NOT NULL,
    witness BYTEA,
    witness_key INTEGER,
    proof BYTEA,
    PRIMARY KEY (chain_id, batch_number)
);
CREATE INDEX IF NOT EXISTS prover_jobs_open
    ON prover_jobs (chain_id, batch_number) WHERE state <> 'proven';
