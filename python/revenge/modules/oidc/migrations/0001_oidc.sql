-- oidc 0001: single sign-on with OpenID providers.
--
-- oidc_identities links an account to the provider's (issuer, subject): the only key
-- an identity is found by. oidc_flows holds each started sign-in until its callback:
-- only the SHA-256 of the state (the key) and of the browser binding cookie are kept;
-- a row is deleted by the callback that uses it (single use), whichever worker gets it.
CREATE TABLE oidc_identities (
    issuer      text        NOT NULL CHECK (char_length(issuer) BETWEEN 1 AND 512),
    subject     text        NOT NULL CHECK (char_length(subject) BETWEEN 1 AND 255),
    user_id     bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider    text        NOT NULL,
    email       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX oidc_identities_user_id_idx ON oidc_identities (user_id);

CREATE TABLE oidc_flows (
    state_hash    text        PRIMARY KEY CHECK (state_hash ~ '^[0-9a-f]{64}$'),
    binding_hash  text        NOT NULL CHECK (binding_hash ~ '^[0-9a-f]{64}$'),
    provider      text        NOT NULL,
    nonce         text        NOT NULL,
    code_verifier text        NOT NULL,
    return_to     text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX oidc_flows_expires_at_idx ON oidc_flows (expires_at);
