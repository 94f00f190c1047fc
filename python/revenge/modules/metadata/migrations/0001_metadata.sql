-- metadata/0001: remote metadata look-ups (modules/metadata).
--
-- metadata_lookups: one row per item a remote provider was asked about, so the scheduled
-- metadata_due job queues each item once per metadata.refresh_after (an item without a
-- row was never asked). outcome: matched | no_match (asked, nothing found) | unusable
-- (the answer could not be used) | unavailable (provider down: asked again within the hour)
-- | complete (local sources left nothing empty: no provider was asked).
CREATE TABLE metadata_lookups (
    item_id      bigint      PRIMARY KEY REFERENCES items (id) ON DELETE CASCADE,
    looked_up_at timestamptz NOT NULL DEFAULT now(),
    outcome      text        NOT NULL CHECK (outcome IN ('matched', 'no_match', 'unusable', 'unavailable', 'complete')),
    provider     text,
    filled       text[]      NOT NULL DEFAULT '{}',
    reason       text
);
CREATE INDEX metadata_lookups_due_idx ON metadata_lookups (looked_up_at);

-- metadata_http_cache: a provider's HTTP answers, kept for their lifetime (Cache-Control
-- max-age, else the configured default). key: provider and request path with its query,
-- never the API key. Rows past expires_at are ignored and removed by the cleanup job.
CREATE TABLE metadata_http_cache (
    provider   text        NOT NULL,
    key        text        NOT NULL,
    status     integer     NOT NULL,
    body       jsonb       NOT NULL,
    fetched_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (provider, key)
);
CREATE INDEX metadata_http_cache_expires_idx ON metadata_http_cache (expires_at);
