-- Signing secrets, deliveries and their attempts.

-- One batch has at most one one-off endpoint (its submission's webhook_url), whichever event creates it.
CREATE UNIQUE INDEX endpoints_batch ON endpoints (batch_id) WHERE batch_id IS NOT NULL;
CREATE INDEX endpoints_account_enabled ON endpoints (account_id) WHERE enabled;

-- Signing secrets, AES-GCM encrypted under the operator's NOTIFIER_SECRETS_KEY (HMAC signing needs the
-- secret itself, so it cannot be hashed like an API key). The current secret has expires_at NULL; a
-- rotated-out one keeps signing until its expires_at.
CREATE TABLE endpoint_secrets (
    secret_id   bigserial PRIMARY KEY,
    endpoint_id uuid        NOT NULL REFERENCES endpoints (endpoint_id) ON DELETE CASCADE,
    ciphertext  bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at  timestamptz
);
CREATE INDEX endpoint_secrets_endpoint ON endpoint_secrets (endpoint_id);

-- One event for one endpoint. message_id is the webhook-id of every attempt; body is the exact bytes
-- signed and sent (so retries and replays send the same payload).
CREATE TABLE deliveries (
    delivery_id      uuid PRIMARY KEY,
    endpoint_id      uuid        NOT NULL REFERENCES endpoints (endpoint_id) ON DELETE CASCADE,
    account_id       integer     NOT NULL,
    event_id         text        NOT NULL,
    event_type       text        NOT NULL,
    message_id       text        NOT NULL,
    body             bytea       NOT NULL,
    status           text        NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'succeeded', 'failed')),
    -- attempts counts every attempt ever (numbers the log); round_attempts those since the last
    -- replay (what the retry schedule counts).
    attempts         integer     NOT NULL DEFAULT 0,
    round_attempts   integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    lease_owner      text,
    lease_until      timestamptz,
    last_status_code integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    completed_at     timestamptz,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, created_at DESC);

CREATE TABLE delivery_attempts (
    delivery_id  uuid        NOT NULL REFERENCES deliveries (delivery_id) ON DELETE CASCADE,
    attempt      integer     NOT NULL,
    status_code  integer,
    latency_ms   integer     NOT NULL,
    error        text,
    error_code   text,
    attempted_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (delivery_id, attempt)
);
