-- playback/0001_playback: playback sessions (so that every worker finds them), the key that
-- signs media URLs, and each file's probe and keyframe index (kept: the packet scan reads the
-- whole file).
--
-- Needs: auth (users), library (items, media_files).

-- One row: the HMAC key of signed media URLs when playback.url_secret is not configured. Made
-- by the first process that needs it (INSERT ... ON CONFLICT DO NOTHING), read by all.
CREATE TABLE playback_secret (
    id  integer PRIMARY KEY CHECK (id = 1),
    key bytea   NOT NULL CHECK (length(key) >= 32)
);

-- A playback session: what the client asked for (its capabilities and choices, from which any
-- worker makes the same decision and HLS plan again) and who may use it.
CREATE TABLE playback_sessions (
    id          text        PRIMARY KEY,
    user_id     bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    item_id     bigint      NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    file_id     bigint      NOT NULL REFERENCES media_files (id) ON DELETE CASCADE,
    method      text        NOT NULL CHECK (method IN ('direct', 'remux', 'transcode')),
    request     jsonb       NOT NULL CHECK (jsonb_typeof(request) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    -- "<host>:<pid>" of the process that runs the session's ffmpeg, when one runs
    owner       text,
    ended_at    timestamptz
);
CREATE INDEX playback_sessions_user_idx ON playback_sessions (user_id) WHERE ended_at IS NULL;
CREATE INDEX playback_sessions_expires_idx ON playback_sessions (expires_at);

-- ffprobe's answer and the keyframe index of a file, valid while (size, mtime_ns) match.
CREATE TABLE playback_media (
    file_id  bigint PRIMARY KEY REFERENCES media_files (id) ON DELETE CASCADE,
    size     bigint NOT NULL,
    mtime_ns bigint NOT NULL,
    media    jsonb  NOT NULL,
    packets  jsonb
);
