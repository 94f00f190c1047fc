-- auth 0011_email_addresses: an optional e-mail address per user, password reset by
-- e-mail, and the address an invitation was sent to.
--
-- Addresses are stored normalised (trimmed, NFC, domain in lower case) and are unique
-- regardless of case: a reset asked for ANN@example.org reaches ann@example.org.
-- A reset token is kept only as its SHA-256, is single use (used_at) and expires;
-- deleting the user deletes their tokens.

ALTER TABLE users
    ADD COLUMN email text CHECK (email IS NULL OR char_length(email) BETWEEN 3 AND 254);
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email)) WHERE email IS NOT NULL;

CREATE TABLE password_resets (
    token_hash  text        PRIMARY KEY CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    user_id     bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX password_resets_user_idx ON password_resets (user_id);
CREATE INDEX password_resets_expires_at_idx ON password_resets (expires_at);

ALTER TABLE invitations
    ADD COLUMN email text CHECK (email IS NULL OR char_length(email) BETWEEN 3 AND 254);
