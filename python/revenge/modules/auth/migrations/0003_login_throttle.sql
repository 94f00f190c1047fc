-- auth 0003_login_throttle: login attempts counted in the database, shared by every worker and host.
--
-- One row per counter: scope 'i' (client network: an IPv4 address or an IPv6 /64),
-- 'p' (account + network) or 'a' (account). An attempt is reserved (counted as a
-- failure) before the password is checked and refunded when it succeeds, so
-- concurrent tries cannot all slip in before the first failure is written.
-- login_known_networks remembers where each account has logged in successfully:
-- the account-wide delay never holds those back.

CREATE TABLE login_throttle (
    scope      "char"      NOT NULL CHECK (scope IN ('i', 'p', 'a')),
    key        text        NOT NULL,
    failures   integer     NOT NULL DEFAULT 0 CHECK (failures >= 0),
    last_at    timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX login_throttle_expires_at_idx ON login_throttle (expires_at);

CREATE TABLE login_known_networks (
    account text        NOT NULL,
    network text        NOT NULL,
    seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, network)
);
CREATE INDEX login_known_networks_seen_at_idx ON login_known_networks (seen_at);

-- Seconds to wait before the next attempt after `failures` reserved failures:
-- none for the first `free`, then `base`, doubling per failure, at most `cap`.
CREATE FUNCTION login_delay(failures integer, free integer, base float8, cap float8)
RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN failures <= free THEN 0.0
                ELSE least(cap, base * power(2.0, least(failures - free - 1, 30))) END
$$;

-- Reserve one attempt from network `p_net` on account `p_acct`: 0 when reserved,
-- else the seconds to wait (and nothing is counted). Counters idle for `win`
-- seconds start again from zero. The account-wide counter does not hold back a
-- network the account has logged in from before. Rows are locked in one order
-- (i, p, a) so concurrent calls never deadlock.
CREATE FUNCTION login_reserve(
    p_net text, p_acct text, win float8,
    ip_free integer, ip_base float8, ip_cap float8,
    pair_free integer, pair_base float8, pair_cap float8,
    acct_free integer, acct_base float8, acct_cap float8
) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
    keys    text[]    := ARRAY[p_net, p_acct || ' ' || p_net, p_acct];
    scopes  "char"[]  := ARRAY['i', 'p', 'a']::"char"[];
    frees   integer[] := ARRAY[ip_free, pair_free, acct_free];
    bases   float8[]  := ARRAY[ip_base, pair_base, acct_base];
    caps    float8[]  := ARRAY[ip_cap, pair_cap, acct_cap];
    counted integer[] := ARRAY[0, 0, 0];
    known   boolean;
    wait    float8 := 0.0;
    pause   float8;
    n       integer;
    cur     login_throttle%ROWTYPE;
    stamp   timestamptz := clock_timestamp();
    idle    interval := make_interval(secs => win);
BEGIN
    SELECT EXISTS (SELECT 1 FROM login_known_networks k
                   WHERE k.account = p_acct AND k.network = p_net) INTO known;
    FOR n IN 1..3 LOOP
        CONTINUE WHEN n = 3 AND known;
        INSERT INTO login_throttle (scope, key, failures, last_at, expires_at)
        VALUES (scopes[n], keys[n], 0, stamp, stamp + idle)
        ON CONFLICT DO NOTHING;
        SELECT * INTO cur FROM login_throttle t
         WHERE t.scope = scopes[n] AND t.key = keys[n] FOR UPDATE;
        IF cur.last_at >= stamp - idle THEN
            counted[n] := cur.failures;
            pause := login_delay(cur.failures, frees[n], bases[n], caps[n]);
            IF pause > 0 THEN
                -- clock_timestamp(), not stamp: a concurrent reservation may have
                -- stamped the row after this call began (while it waited for the lock).
                wait := greatest(wait, pause - extract(epoch FROM clock_timestamp() - cur.last_at));
            END IF;
        END IF;
    END LOOP;
    IF wait > 0 THEN
        RETURN wait;
    END IF;
    FOR n IN 1..3 LOOP
        CONTINUE WHEN n = 3 AND known;
        UPDATE login_throttle t
           SET failures = counted[n] + 1, last_at = stamp, expires_at = stamp + idle
         WHERE t.scope = scopes[n] AND t.key = keys[n];
    END LOOP;
    RETURN 0.0;
END $$;

-- Give back an attempt reserved by login_reserve: it succeeded (`succeeded`: the
-- pair counter is cleared and the network becomes known) or was never checked.
CREATE FUNCTION login_refund(p_net text, p_acct text, succeeded boolean)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM login_known_networks k
                   WHERE k.account = p_acct AND k.network = p_net) THEN
        UPDATE login_throttle t SET failures = greatest(t.failures - 1, 0)
         WHERE t.scope = 'a' AND t.key = p_acct;
    END IF;
    UPDATE login_throttle t SET failures = greatest(t.failures - 1, 0)
     WHERE t.scope = 'i' AND t.key = p_net;
    IF succeeded THEN
        DELETE FROM login_throttle t WHERE t.scope = 'p' AND t.key = p_acct || ' ' || p_net;
        INSERT INTO login_known_networks AS k (account, network) VALUES (p_acct, p_net)
        ON CONFLICT ON CONSTRAINT login_known_networks_pkey DO UPDATE SET seen_at = now();
    ELSE
        UPDATE login_throttle t SET failures = greatest(t.failures - 1, 0)
         WHERE t.scope = 'p' AND t.key = p_acct || ' ' || p_net;
    END IF;
END $$;
