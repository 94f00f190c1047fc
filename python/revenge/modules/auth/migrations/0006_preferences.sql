-- auth 0006_preferences: what a user prefers.
--
-- user_preferences: one row per user who changed anything (no row: the defaults).
-- Languages are BCP 47 tags checked against ISO 639 by the service (languages.py),
-- stored canonical ("en", "pt-BR"). max_bitrate is bits per second; NULL: no cap.

CREATE TABLE user_preferences (
    user_id            bigint      PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    display_language   text        CHECK (char_length(display_language) BETWEEN 2 AND 35),
    audio_languages    text[]      NOT NULL DEFAULT '{}',
    subtitle_languages text[]      NOT NULL DEFAULT '{}',
    subtitle_mode      text        NOT NULL DEFAULT 'forced'
                                   CHECK (subtitle_mode IN ('off', 'forced', 'always')),
    max_bitrate        bigint      CHECK (max_bitrate > 0),
    resume             text        NOT NULL DEFAULT 'resume'
                                   CHECK (resume IN ('resume', 'start_over', 'ask')),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
