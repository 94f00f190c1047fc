-- auth 0010_invitations: an administrator invites someone, who picks their own name and password.
--
-- Only the SHA-256 of the invitation token is kept (the token is shown once). An
-- invitation is single use (used_at) and expires; deleting the inviting administrator
-- deletes their unused invitations.
CREATE TABLE invitations (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash  text        NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    role        text        NOT NULL DEFAULT 'user' CHECK (role IN ('admin', 'user')),
    created_by  bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    used_by     bigint      REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX invitations_expires_at_idx ON invitations (expires_at);
