-- The account's signing secret for its submissions' one-off webhook_url endpoints. A per-batch endpoint
-- is created by an event, so nobody would ever see a secret made for it alone; instead every batch
-- endpoint of an account signs with this one, which the account reads by rotating it
-- (`POST /v1/webhooks/submissions/rotate-secret`). Encrypted like endpoint_secrets; the current secret
-- has expires_at NULL, a rotated-out one keeps signing until its expires_at.
CREATE TABLE submission_secrets (
    secret_id   bigserial PRIMARY KEY,
    account_id  integer     NOT NULL,
    ciphertext  bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at  timestamptz
);
CREATE UNIQUE INDEX submission_secrets_current ON submission_secrets (account_id) WHERE expires_at IS NULL;
CREATE INDEX submission_secrets_account ON submission_secrets (account_id);
