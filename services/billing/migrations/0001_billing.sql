-- Billing: accounts and plans, API keys (hashed), rate-limit state, and the credit ledger.

CREATE TABLE accounts (
    id                  serial      PRIMARY KEY,
    name                text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    plan                text        NOT NULL
                        CHECK (plan IN ('free', 'starter', 'api', 'pro', 'enterprise', 'custom')),
    -- The limits in force, copied from the plan (or the custom limits) when the plan is set, so the
    -- rate-limit function reads them without knowing the plan table.
    requests_per_minute integer     NOT NULL CHECK (requests_per_minute > 0),
    requests_per_day    integer     NOT NULL CHECK (requests_per_day > 0),
    burst               integer     NOT NULL CHECK (burst > 0),
    concurrent_requests integer     NOT NULL CHECK (concurrent_requests > 0),
    max_cvs_per_job     integer     NOT NULL CHECK (max_cvs_per_job > 0),
    created_at          timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX accounts_name ON accounts (name);

CREATE TABLE api_keys (
    id           uuid        PRIMARY KEY,
    account_id   integer     NOT NULL REFERENCES accounts (id),
    name         text        NOT NULL,
    -- `cvm_live_` and the first few random characters, to tell keys apart in lists: not the secret.
    prefix       text        NOT NULL,
    -- HMAC-SHA256(pepper, secret): the secret itself is never stored.
    key_hash     bytea       NOT NULL UNIQUE,
    scopes       text[]      NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    -- Updated at most once a minute per key, so authentication is not a write per request.
    last_used_at timestamptz
);
CREATE INDEX api_keys_account ON api_keys (account_id, created_at);

-- One row per key: its lock serialises the key's rate-limit checks across every billing replica, and it
-- holds the per-day counter.
CREATE TABLE rate_limit_state (
    key_id    uuid    PRIMARY KEY REFERENCES api_keys (id) ON DELETE CASCADE,
    day       date,
    day_count integer NOT NULL DEFAULT 0
);

-- The sliding-window log: one row per admitted request of the last minute.
CREATE TABLE rate_limit_log (
    key_id uuid        NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    at     timestamptz NOT NULL,
    cost   integer     NOT NULL CHECK (cost > 0)
);
CREATE INDEX rate_limit_log_key_at ON rate_limit_log (key_id, at);

-- The credit ledger: append-only. Every balance is a sum of these rows.
CREATE TABLE ledger_entries (
    id           bigserial   PRIMARY KEY,
    account_id   integer     NOT NULL REFERENCES accounts (id),
    kind         text        NOT NULL CHECK (kind IN ('grant', 'reserve', 'capture', 'release')),
    amount       integer     NOT NULL CHECK (amount > 0),
    batch_id     text        NOT NULL DEFAULT '',
    candidate_id text        NOT NULL DEFAULT '',
    grant_id     text,
    price_cents  integer     CHECK (price_cents >= 0),
    note         text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK ((kind = 'grant') = (grant_id IS NOT NULL)),
    CHECK (kind = 'grant' OR batch_id <> ''),
    CHECK (kind <> 'capture' OR (candidate_id <> '' AND amount = 1))
);
-- Retries and redelivered events cannot write a second reserve, capture or release of the same thing.
CREATE UNIQUE INDEX ledger_entries_once ON ledger_entries (account_id, batch_id, candidate_id, kind)
    WHERE kind <> 'grant';
CREATE UNIQUE INDEX ledger_entries_grant_once ON ledger_entries (account_id, grant_id) WHERE kind = 'grant';
CREATE INDEX ledger_entries_account ON ledger_entries (account_id, id);

CREATE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger_entries is append-only' USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only();

-- Cached sums of the ledger per account, updated in the same transaction as each entry; its row lock
-- serialises an account's credit operations. `recompute` in the repository checks it against the ledger.
CREATE TABLE balances (
    account_id integer PRIMARY KEY REFERENCES accounts (id),
    granted    bigint  NOT NULL DEFAULT 0,
    reserved   bigint  NOT NULL DEFAULT 0,
    captured   bigint  NOT NULL DEFAULT 0,
    released   bigint  NOT NULL DEFAULT 0,
    CHECK (granted - reserved + released >= 0),   -- available never negative
    CHECK (reserved - captured - released >= 0)   -- never charge or release more than was reserved
);

-- Cached sums of the ledger per batch.
CREATE TABLE batches (
    account_id integer     NOT NULL REFERENCES accounts (id),
    batch_id   text        NOT NULL,
    reserved   integer     NOT NULL CHECK (reserved > 0),
    captured   integer     NOT NULL DEFAULT 0,
    released   integer     NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    settled_at timestamptz,
    PRIMARY KEY (account_id, batch_id),
    CHECK (captured >= 0 AND released >= 0 AND captured + released <= reserved)
);

-- Counts one request against a key's limits in one round trip. See cvmatch.billing.domain for what each
-- limit means. Returns known = false for an unknown key.
CREATE FUNCTION check_rate_limit(p_key uuid, p_cost integer)
RETURNS TABLE (known boolean, allowed boolean, lim integer, remaining integer, reset_unix bigint,
               retry_after integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_rpm      integer;
    v_rpd      integer;
    v_burst    integer;
    v_day      date;
    v_count    integer;
    v_now      timestamptz;
    v_today    date;
    v_midnight timestamptz;
    v_used     integer;
    v_oldest   timestamptz;
    v_second   integer;
    v_free_at  timestamptz;
BEGIN
    SELECT a.requests_per_minute, a.requests_per_day, a.burst INTO v_rpm, v_rpd, v_burst
      FROM api_keys k JOIN accounts a ON a.id = k.account_id WHERE k.id = p_key;
    IF NOT FOUND THEN
        RETURN QUERY SELECT false, false, 0, 0, 0::bigint, 0;
        RETURN;
    END IF;
    -- Rate-limit state is not money: losing the last few counts in a crash is acceptable, a disk flush on
    -- every request is not. Local to this transaction, so it never applies to the ledger.
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO rate_limit_state (key_id) VALUES (p_key) ON CONFLICT (key_id) DO NOTHING;
    -- The lock makes the count below exact however many gateways and billing replicas ask at once.
    SELECT s.day, s.day_count INTO v_day, v_count FROM rate_limit_state s WHERE s.key_id = p_key FOR UPDATE;
    -- Read the clock after the lock: timestamps of one key are then in admission order.
    v_now := clock_timestamp();
    v_today := (v_now AT TIME ZONE 'UTC')::date;
    v_midnight := (v_today + 1)::timestamp AT TIME ZONE 'UTC';
    IF v_day IS DISTINCT FROM v_today THEN
        v_count := 0;
    END IF;

    DELETE FROM rate_limit_log l WHERE l.key_id = p_key AND l.at <= v_now - interval '1 minute';
    SELECT coalesce(sum(l.cost), 0), min(l.at),
           coalesce(sum(l.cost) FILTER (WHERE l.at > v_now - interval '1 second'), 0)
      INTO v_used, v_oldest, v_second
      FROM rate_limit_log l WHERE l.key_id = p_key;

    IF v_count + p_cost > v_rpd THEN
        RETURN QUERY SELECT true, false, v_rpd, greatest(v_rpd - v_count, 0),
            ceil(extract(epoch FROM v_midnight))::bigint,
            greatest(1, ceil(extract(epoch FROM v_midnight - v_now)))::integer;
        RETURN;
    END IF;

    IF v_used + p_cost > v_rpm THEN
        -- The earliest time enough admitted cost has left the window for this request to fit.
        SELECT w.at + interval '1 minute' INTO v_free_at FROM (
            SELECT l.at, sum(l.cost) OVER (ORDER BY l.at ROWS UNBOUNDED PRECEDING) AS cum
              FROM rate_limit_log l WHERE l.key_id = p_key) w
         WHERE w.cum >= v_used + p_cost - v_rpm ORDER BY w.at LIMIT 1;
        v_free_at := coalesce(v_free_at, v_now + interval '1 minute');
        RETURN QUERY SELECT true, false, v_rpm, greatest(v_rpm - v_used, 0),
            ceil(extract(epoch FROM v_oldest + interval '1 minute'))::bigint,
            greatest(1, ceil(extract(epoch FROM v_free_at - v_now)))::integer;
        RETURN;
    END IF;

    IF v_second + p_cost > v_burst THEN
        RETURN QUERY SELECT true, false, v_rpm, greatest(v_rpm - v_used, 0),
            ceil(extract(epoch FROM coalesce(v_oldest, v_now) + interval '1 minute'))::bigint, 1;
        RETURN;
    END IF;

    INSERT INTO rate_limit_log (key_id, at, cost) VALUES (p_key, v_now, p_cost);
    UPDATE rate_limit_state SET day = v_today, day_count = v_count + p_cost WHERE key_id = p_key;
    RETURN QUERY SELECT true, true, v_rpm, v_rpm - v_used - p_cost,
        ceil(extract(epoch FROM coalesce(v_oldest, v_now) + interval '1 minute'))::bigint, 0;
END $$;
