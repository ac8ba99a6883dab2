-- Billing 0002: concurrent-request leases, an O(1) per-minute count, and batches that close with captures
-- still to come.

-- Concurrent-request slots. A gateway takes one per request (in the same call that counts the request
-- against the rate limits) and releases it when the request ends; a slot that is never released (the
-- gateway crashed) frees itself at `expires_at`, and a gateway renews the slots of long requests.
-- Unlogged: after a database crash every slot is free again, which is the safe side for a slot.
CREATE UNLOGGED TABLE concurrency_leases (
    lease_id   uuid        PRIMARY KEY,
    key_id     uuid        NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL
);
CREATE INDEX concurrency_leases_key ON concurrency_leases (key_id, expires_at);

-- `minute_used` is the sum of the key's rows in rate_limit_log (an invariant kept under the state row's
-- lock), so a check no longer sums the whole window: at a few hundred requests per second a key's
-- window holds tens of thousands of rows. `last_at` is the last admission, for the sweep.
ALTER TABLE rate_limit_state
    ADD COLUMN minute_used integer NOT NULL DEFAULT 0 CHECK (minute_used >= 0),
    ADD COLUMN last_at     timestamptz;
UPDATE rate_limit_state s
   SET minute_used = coalesce((SELECT sum(l.cost) FROM rate_limit_log l WHERE l.key_id = s.key_id), 0),
       last_at = (SELECT max(l.at) FROM rate_limit_log l WHERE l.key_id = s.key_id);

-- A batch is closed when ingest reports its end; when it ended `completed`, ingest tells how many of its
-- candidates have a result, and exactly that many credits stay held for the captures still in flight
-- (the `matcher.candidate.matched` and `ingest.batch.completed` events travel on different streams, so
-- billing may see the end first). The batch is settled when nothing is held any more.
ALTER TABLE batches
    ADD COLUMN closed_at         timestamptz,
    ADD COLUMN expected_captures integer CHECK (expected_captures >= 0);
UPDATE batches SET closed_at = settled_at WHERE settled_at IS NOT NULL;

DROP FUNCTION check_rate_limit(uuid, integer);

-- Counts one request against a key's limits and, when `p_lease` is given, takes one of its concurrent
-- slots, in one round trip; first frees the slots in `p_release` (requests that ended since the gateway's
-- last call: a slot freed with the next check costs no call of its own). `refused_by` names the limit that
-- refused ('' when admitted). See cvmatch.billing.domain for what each limit means. Returns known = false
-- for an unknown key.
CREATE FUNCTION check_rate_limit(p_key uuid, p_cost integer, p_lease uuid, p_lease_seconds integer,
                                 p_release uuid[])
RETURNS TABLE (known boolean, allowed boolean, lim integer, remaining integer, reset_unix bigint,
               retry_after integer, refused_by text, concurrent_limit integer, concurrent_active integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_rpm      integer;
    v_rpd      integer;
    v_burst    integer;
    v_conc     integer;
    v_day      date;
    v_count    integer;
    v_used     integer;
    v_gone     integer;
    v_now      timestamptz;
    v_today    date;
    v_midnight timestamptz;
    v_oldest   timestamptz;
    v_second   integer;
    v_free_at  timestamptz;
    v_active   integer := 0;
    v_reset    bigint;
    v_lim      integer;
    v_left     integer;
    v_retry    integer := 0;
    v_refused  text := '';
BEGIN
    -- Rate-limit state is not money: losing the last few counts in a crash is acceptable, a disk flush on
    -- every request is not. Local to this transaction, so it never applies to the ledger.
    PERFORM set_config('synchronous_commit', 'off', true);
    IF cardinality(p_release) > 0 THEN
        DELETE FROM concurrency_leases c WHERE c.lease_id = ANY (p_release);
    END IF;
    -- The state row's lock makes the counts below exact however many gateways and billing replicas ask
    -- at once.
    SELECT a.requests_per_minute, a.requests_per_day, a.burst, a.concurrent_requests,
           s.day, s.day_count, s.minute_used
      INTO v_rpm, v_rpd, v_burst, v_conc, v_day, v_count, v_used
      FROM api_keys k JOIN accounts a ON a.id = k.account_id JOIN rate_limit_state s ON s.key_id = k.id
     WHERE k.id = p_key
       FOR UPDATE OF s;
    IF NOT FOUND THEN
        -- An unknown key, or the key's first check.
        PERFORM 1 FROM api_keys k WHERE k.id = p_key;
        IF NOT FOUND THEN
            RETURN QUERY SELECT false, false, 0, 0, 0::bigint, 0, ''::text, 0, 0;
            RETURN;
        END IF;
        INSERT INTO rate_limit_state (key_id) VALUES (p_key) ON CONFLICT (key_id) DO NOTHING;
        SELECT a.requests_per_minute, a.requests_per_day, a.burst, a.concurrent_requests,
               s.day, s.day_count, s.minute_used
          INTO v_rpm, v_rpd, v_burst, v_conc, v_day, v_count, v_used
          FROM api_keys k JOIN accounts a ON a.id = k.account_id JOIN rate_limit_state s ON s.key_id = k.id
         WHERE k.id = p_key
           FOR UPDATE OF s;
    END IF;
    -- Read the clock after the lock: timestamps of one key are then in admission order.
    v_now := clock_timestamp();
    v_today := (v_now AT TIME ZONE 'UTC')::date;
    v_midnight := (v_today + 1)::timestamp AT TIME ZONE 'UTC';
    IF v_day IS DISTINCT FROM v_today THEN
        v_count := 0;
    END IF;

    -- Only the rows that left the window are touched, so the cost does not grow with the limit.
    WITH gone AS (DELETE FROM rate_limit_log l WHERE l.key_id = p_key AND l.at <= v_now - interval '1 minute'
                  RETURNING l.cost)
    SELECT coalesce(sum(gone.cost), 0) INTO v_gone FROM gone;
    v_used := v_used - v_gone;
    SELECT l.at INTO v_oldest FROM rate_limit_log l WHERE l.key_id = p_key ORDER BY l.at LIMIT 1;
    v_reset := ceil(extract(epoch FROM coalesce(v_oldest, v_now) + interval '1 minute'))::bigint;
    v_lim := v_rpm;
    v_left := greatest(v_rpm - v_used, 0);

    -- Refusals are not counted: a client that backs off recovers exactly when its oldest request leaves.
    IF v_count + p_cost > v_rpd THEN
        v_refused := 'day';
        v_lim := v_rpd;
        v_left := greatest(v_rpd - v_count, 0);
        v_reset := ceil(extract(epoch FROM v_midnight))::bigint;
        v_retry := greatest(1, ceil(extract(epoch FROM v_midnight - v_now)))::integer;
    ELSIF v_used + p_cost > v_rpm THEN
        -- The earliest time enough admitted cost has left the window for this request to fit (the scan
        -- stops at the first row that reaches it: with a cost of 1 that is the oldest row).
        SELECT w.at + interval '1 minute' INTO v_free_at FROM (
            SELECT l.at, sum(l.cost) OVER (ORDER BY l.at ROWS UNBOUNDED PRECEDING) AS cum
              FROM rate_limit_log l WHERE l.key_id = p_key ORDER BY l.at) w
         WHERE w.cum >= v_used + p_cost - v_rpm ORDER BY w.at LIMIT 1;
        v_free_at := coalesce(v_free_at, v_now + interval '1 minute');
        v_refused := 'minute';
        v_retry := greatest(1, ceil(extract(epoch FROM v_free_at - v_now)))::integer;
    ELSIF v_burst < v_rpm THEN
        -- With burst >= the per-minute limit (every listed plan) the minute check already bounds any one
        -- second, so the one-second sum is only read when it can bind.
        SELECT coalesce(sum(l.cost), 0) INTO v_second
          FROM rate_limit_log l WHERE l.key_id = p_key AND l.at > v_now - interval '1 second';
        IF v_second + p_cost > v_burst THEN
            v_refused := 'burst';
            v_retry := 1;
        END IF;
    END IF;

    IF v_refused = '' AND p_lease IS NOT NULL THEN
        -- Expired slots are only skipped here; the sweep deletes them.
        SELECT count(*) INTO v_active FROM concurrency_leases c WHERE c.key_id = p_key AND c.expires_at > v_now;
        IF v_active >= v_conc THEN
            v_refused := 'concurrency';
            v_retry := 1;
        ELSE
            INSERT INTO concurrency_leases (lease_id, key_id, expires_at)
                 VALUES (p_lease, p_key, v_now + make_interval(secs => greatest(p_lease_seconds, 1)))
            ON CONFLICT (lease_id) DO NOTHING;
            v_active := v_active + 1;
        END IF;
    END IF;

    IF v_refused <> '' THEN
        IF v_gone > 0 THEN
            UPDATE rate_limit_state SET minute_used = v_used WHERE key_id = p_key;
        END IF;
        RETURN QUERY SELECT true, false, v_lim, v_left, v_reset, v_retry, v_refused, v_conc, v_active;
        RETURN;
    END IF;

    INSERT INTO rate_limit_log (key_id, at, cost) VALUES (p_key, v_now, p_cost);
    UPDATE rate_limit_state
       SET day = v_today, day_count = v_count + p_cost, minute_used = v_used + p_cost, last_at = v_now
     WHERE key_id = p_key;
    RETURN QUERY SELECT true, true, v_rpm, v_rpm - v_used - p_cost, v_reset, 0, ''::text, v_conc, v_active;
END $$;

-- Forgets the log of keys with no admission in the last minute (active keys prune their own rows on each
-- check). Takes each key's state lock, skipping keys being checked right now, so `minute_used` stays
-- equal to the key's rows. Also drops expired slots (checks skip them). Returns the rows removed.
CREATE FUNCTION sweep_rate_limits() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_key     uuid;
    v_removed integer := 0;
    v_n       integer;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    FOR v_key IN
        SELECT s.key_id FROM rate_limit_state s
         WHERE s.minute_used > 0 AND s.last_at < clock_timestamp() - interval '1 minute'
         FOR UPDATE SKIP LOCKED
    LOOP
        DELETE FROM rate_limit_log l WHERE l.key_id = v_key;
        GET DIAGNOSTICS v_n = ROW_COUNT;
        v_removed := v_removed + v_n;
        UPDATE rate_limit_state SET minute_used = 0 WHERE key_id = v_key;
    END LOOP;
    DELETE FROM concurrency_leases c WHERE c.expires_at <= clock_timestamp();
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_removed + v_n;
END $$;
