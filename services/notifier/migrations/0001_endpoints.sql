-- Webhook endpoints per account (or per batch for a submission's one-off webhook_url).
CREATE TABLE endpoints (
    endpoint_id     uuid PRIMARY KEY,
    account_id      integer     NOT NULL,
    url             text        NOT NULL,
    events          text[]      NOT NULL DEFAULT '{}',
    description     text        NOT NULL DEFAULT '',
    enabled         boolean     NOT NULL DEFAULT true,
    disabled_reason text,
    batch_id        uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX endpoints_account ON endpoints (account_id);
