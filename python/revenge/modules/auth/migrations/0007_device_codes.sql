-- auth 0007_device_codes: sign in on a TV (device authorization, after RFC 8628).
--
-- The TV gets a short user_code to show and a polling secret (only its SHA-256 is
-- kept); a signed-in user approves the code, and the TV's next poll turns it into a
-- session of the approver (claimed_at: single use). user_code is 8 characters from
-- a 31-letter alphabet (31^8 ~ 8.5e11 codes) and lives 10 minutes; approvals are
-- throttled by the login throttle's counters (login_reserve) under keys of their
-- own. network: the TV's (throttle key), to bound the codes one network holds.
CREATE TABLE device_codes (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_code   text        NOT NULL UNIQUE CHECK (user_code ~ '^[A-Z0-9]{8}$'),
    secret_hash text        NOT NULL UNIQUE CHECK (secret_hash ~ '^[0-9a-f]{64}$'),
    client      text        NOT NULL DEFAULT '' CHECK (char_length(client) <= 256),
    network     text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    polled_at   timestamptz,
    approved_by bigint      REFERENCES users (id) ON DELETE CASCADE,
    approved_at timestamptz,
    claimed_at  timestamptz
);
CREATE INDEX device_codes_expires_at_idx ON device_codes (expires_at);
CREATE INDEX device_codes_network_idx ON device_codes (network, expires_at);
