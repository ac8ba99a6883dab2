-- Parsed job descriptions, cached by content hash and engine version.
CREATE TABLE job_profiles (
    sha256         text        NOT NULL,
    engine_version text        NOT NULL,
    job_title      text        NOT NULL,
    job_summary    text        NOT NULL,
    profile        jsonb       NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sha256, engine_version)
);

-- One result per candidate: a redelivered event cannot create a second one.
CREATE TABLE match_results (
    candidate_id  uuid PRIMARY KEY,
    batch_id      uuid        NOT NULL,
    account_id    integer     NOT NULL,
    overall_score double precision NOT NULL,
    result        bytea       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX match_results_batch_score ON match_results (batch_id, overall_score DESC, candidate_id);
