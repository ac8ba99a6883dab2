-- Transactional outbox: events are written in the same transaction as the state they describe and
-- published to JetStream by the relay.
CREATE TABLE IF NOT EXISTS outbox (
    id           uuid PRIMARY KEY,
    subject      text        NOT NULL,
    ce_type      text        NOT NULL,
    payload      bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    published_at timestamptz
);
CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (created_at) WHERE published_at IS NULL;

-- Event ids a consumer has applied, so a redelivery has no second effect.
CREATE TABLE IF NOT EXISTS processed_events (
    consumer     text        NOT NULL,
    event_id     text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (consumer, event_id)
);
