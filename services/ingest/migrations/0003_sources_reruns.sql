-- Candidate sources (S3, Google Drive, databases) and re-runs.
-- batches.source_config_json: the source's secret-free description (SourceConfig.storable()); never the
-- credential, access token or connection string the request carried.
ALTER TABLE batches ADD COLUMN source_config_json text;

-- candidates.source_sha256: SHA-256 of the content as read from the source (file bytes, or the UTF-8 text
-- of a database row), known at submission. A re-run of the same job skips content already matched.
ALTER TABLE candidates ADD COLUMN source_sha256 text;
CREATE INDEX candidates_matched_source ON candidates (account_id, source_sha256)
    WHERE outcome = 'matched' AND source_sha256 IS NOT NULL;

-- already_matched: skipped on a re-run (not matched nor charged again); source_error: a remote source
-- failed part-way and this item could not be read.
ALTER TABLE candidates DROP CONSTRAINT candidates_outcome_check;
ALTER TABLE candidates ADD CONSTRAINT candidates_outcome_check CHECK (outcome IN (
    'pending', 'ingested', 'matched', 'match_failed', 'invalid_file_content', 'unsupported_type',
    'file_too_large', 'pdf_encrypted', 'no_extractable_text', 'limits_exceeded', 'parse_error',
    'already_matched', 'source_error'));
