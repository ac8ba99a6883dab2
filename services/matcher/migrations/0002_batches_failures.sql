-- The job description each batch is scored against (by content hash) and its requirements, written by
-- the first candidate of the batch so later ones skip the round trip to ingest.
CREATE TABLE batches (
    batch_id          uuid PRIMARY KEY,
    account_id        integer     NOT NULL,
    job_sha256        text        NOT NULL,
    job_id            text        NOT NULL DEFAULT '',
    requirements_json text        NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now()
);

-- Candidates without a score: files ingest could not use (stage 'ingest') and CVs the engine refused
-- (stage 'match'). They count as errors in the batch's statistics; one row per candidate.
CREATE TABLE match_failures (
    candidate_id      uuid PRIMARY KEY,
    batch_id          uuid        NOT NULL,
    account_id        integer     NOT NULL,
    stage             text        NOT NULL CHECK (stage IN ('ingest', 'match')),
    reason            text        NOT NULL,
    message           text        NOT NULL,
    original_filename text        NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX match_failures_batch ON match_failures (batch_id);
