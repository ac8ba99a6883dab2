-- Candidates: one row per file / CSV row of a batch, in submission order, with its per-file outcome.
-- outcome: pending (spooled, awaiting extraction), ingested (text stored, awaiting the matcher),
-- matched / match_failed (the matcher's verdict), or an extraction outcome (never sent for matching).
CREATE TABLE candidates (
    candidate_id          uuid PRIMARY KEY,
    batch_id              uuid        NOT NULL REFERENCES batches ON DELETE CASCADE,
    account_id            integer     NOT NULL,
    position              integer     NOT NULL,
    original_filename     text        NOT NULL,
    external_id           text,
    content_type          text,
    outcome               text        NOT NULL CHECK (outcome IN (
                              'pending', 'ingested', 'matched', 'match_failed', 'invalid_file_content',
                              'unsupported_type', 'file_too_large', 'pdf_encrypted', 'no_extractable_text',
                              'limits_exceeded', 'parse_error')),
    outcome_message       text,
    -- Refused at submission (wrong type, too large, bad bytes): returned as skipped and never charged.
    refused_at_submission boolean     NOT NULL DEFAULT false,
    content_sha256        text,
    text                  text,
    attempts              integer     NOT NULL DEFAULT 0,
    lease_until           timestamptz,
    created_at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (batch_id, position)
);
CREATE INDEX candidates_pending ON candidates (created_at, position) WHERE outcome = 'pending';
CREATE INDEX candidates_ingested ON candidates (updated_at) WHERE outcome = 'ingested';

-- The durable upload: bytes (or CSV text) of each candidate awaiting extraction; deleted once extracted.
CREATE TABLE spool (
    candidate_id uuid  PRIMARY KEY REFERENCES candidates ON DELETE CASCADE,
    kind         text  NOT NULL CHECK (kind IN ('file', 'text')),
    data         bytea NOT NULL
);
-- PDFs, DOCX and ZIP members are compressed already: store out of line without a second compression.
ALTER TABLE spool ALTER COLUMN data SET STORAGE EXTERNAL;

-- Submissions being admitted or admitted: the idempotency record (24 h per account) and the marker that
-- lets the reconciler release credits reserved by a process that crashed before its batch was written.
CREATE TABLE submissions (
    batch_id        uuid        PRIMARY KEY,
    account_id      integer     NOT NULL,
    idempotency_key text,
    request_sha256  text        NOT NULL,
    state           text        NOT NULL DEFAULT 'admitting' CHECK (state IN ('admitting', 'accepted')),
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE UNIQUE INDEX submissions_key ON submissions (account_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX submissions_admitting ON submissions (created_at) WHERE state = 'admitting';
CREATE INDEX submissions_age ON submissions (created_at);
