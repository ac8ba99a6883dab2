-- Batches: ingest is the source of truth of a submission's lifecycle.
CREATE TABLE batches (
    batch_id             uuid PRIMARY KEY,
    account_id           integer     NOT NULL,
    status               text        NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    input_type           text        NOT NULL,
    api_flavor           text        NOT NULL,
    job_id               text,
    job_description      text        NOT NULL,
    job_description_sha256 text      NOT NULL,
    requirements_json    text,
    webhook_url          text,
    metadata_json        text,
    total_candidates     integer     NOT NULL DEFAULT 0,
    processed_candidates integer     NOT NULL DEFAULT 0,
    failed_candidates    integer     NOT NULL DEFAULT 0,
    error_message        text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    completed_at         timestamptz
);
CREATE INDEX batches_account ON batches (account_id, created_at DESC);
CREATE INDEX batches_open ON batches (updated_at) WHERE status IN ('pending', 'processing');
