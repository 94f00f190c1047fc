-- library/0001_library: libraries, their roots, items (movies, series, seasons,
-- episodes, extras), media files with their streams and chapters, images, per-user
-- state and library grants. Written by the scanner (modules/library), read by browse.
--
-- Paths are bytea: os.fsencode() of the absolute path, so a name that is not valid
-- UTF-8 round-trips exactly (Python keeps it as a surrogateescape str, which text
-- cannot hold). Each path also has a `*_text` column for display only (undecodable
-- bytes shown as U+FFFD); nothing opens a file from the display text.
--
-- Needs: auth (users), core (set_updated_at()).

CREATE TABLE libraries (
    id                 bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name               text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    kind               text        NOT NULL CHECK (kind IN ('movies', 'tv')),
    -- free-form per-library options (scan interval, watch on/off, language...);
    -- validated by the service, never by SQL
    settings           jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    last_scan_started  timestamptz,
    last_scan_finished timestamptz,
    last_scan_stats    jsonb,
    -- the latest library_scan job asked for (a second request gets this id back and is
    -- told a scan is already queued or running); scan_cancel asks it to stop between batches
    scan_job_id        bigint,
    scan_cancel        boolean     NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX libraries_name_lower_key ON libraries (lower(name));
CREATE TRIGGER libraries_updated_at BEFORE UPDATE ON libraries
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE library_roots (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    library_id bigint NOT NULL REFERENCES libraries (id) ON DELETE CASCADE,
    path       bytea  NOT NULL UNIQUE CHECK (get_byte(path, 0) = 47), -- absolute: starts with '/'
    path_text  text   NOT NULL
);
CREATE INDEX library_roots_library_idx ON library_roots (library_id);

CREATE TABLE library_grants (
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    library_id bigint      NOT NULL REFERENCES libraries (id) ON DELETE CASCADE,
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, library_id)
);
CREATE INDEX library_grants_library_idx ON library_grants (library_id);

-- One row per movie, series, season, episode or extra.
--   season.parent_id = series; episode.parent_id = season; extra.parent_id = the
--   movie/series/season it belongs to (NULL for a loose extra). series_id is the series
--   of a season or an episode (flat next-up and per-series queries).
--   `key` is the scanner's natural key inside the library (e.g. movie folder, series
--   folder + season number): UNIQUE, so a retried or concurrent batch never doubles an item.
CREATE TABLE items (
    id                 bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    library_id         bigint      NOT NULL REFERENCES libraries (id) ON DELETE CASCADE,
    kind               text        NOT NULL
                       CHECK (kind IN ('movie', 'series', 'season', 'episode', 'extra')),
    parent_id          bigint      REFERENCES items (id) ON DELETE CASCADE,
    series_id          bigint      REFERENCES items (id) ON DELETE CASCADE,
    key                text        NOT NULL,
    title              text        NOT NULL,
    -- lower case, leading article dropped, numbers padded; compared bytewise
    sort_title         text        COLLATE "C" NOT NULL,
    original_title     text,
    year               integer     CHECK (year BETWEEN 1800 AND 2200),
    premiered          date,       -- release date; an episode's air date
    season_number      integer     CHECK (season_number >= 0),
    episode_number     integer     CHECK (episode_number >= 0),
    episode_number_end integer     CHECK (episode_number_end >= episode_number), -- S01E01-E03: 1..3
    absolute_number    integer,
    extra_type         text,       -- trailer, featurette, behindthescenes, deleted, ...
    overview           text,
    tagline            text,
    runtime_seconds    integer     CHECK (runtime_seconds >= 0),
    rating             real        CHECK (rating BETWEEN 0 AND 10), -- community rating
    content_rating     text,       -- MPAA / certification: "PG-13", "FSK 12"...
    genres             text[]      NOT NULL DEFAULT '{}',
    studios            text[]      NOT NULL DEFAULT '{}',
    people             jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(people) = 'array'),
    provider_ids       jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(provider_ids) = 'object'),
    -- fields the user set by hand: no scan or provider changes them
    locked_fields      text[]      NOT NULL DEFAULT '{}',
    -- which source gave each field ({"title": "nfo", "year": "filename"}): a source
    -- only replaces a value that came from a lower one (user > nfo > embedded > filename)
    field_sources      jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(field_sources) = 'object'),
    nfo_status         text,       -- NULL (no NFO), 'ok', or why it was refused
    video_height       integer,    -- the best file's, for the resolution filter
    missing_since      timestamptz, -- every file of it vanished; cleanup removes after grace
    date_added         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind IN ('season', 'episode')) = (series_id IS NOT NULL)),
    CHECK (kind NOT IN ('movie', 'series') OR parent_id IS NULL),
    UNIQUE (library_id, key)
);
CREATE TRIGGER items_updated_at BEFORE UPDATE ON items
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Keyset browse per library and kind: ORDER BY <col>, id with WHERE (<col>, id) > (...).
-- A descending sort walks the same index backwards. NULL years/ratings/runtimes sort last
-- in ascending order (btree default), first when walked backwards: browse adds
-- `<col> IS NOT NULL` or coalesces in the cursor as it prefers.
CREATE INDEX items_browse_title_idx    ON items (library_id, kind, sort_title, id);
CREATE INDEX items_browse_year_idx     ON items (library_id, kind, year, id);
CREATE INDEX items_browse_added_idx    ON items (library_id, kind, date_added, id);
CREATE INDEX items_browse_rating_idx   ON items (library_id, kind, rating, id);
CREATE INDEX items_browse_runtime_idx  ON items (library_id, kind, runtime_seconds, id);
CREATE INDEX items_genres_idx          ON items USING gin (genres);
CREATE INDEX items_parent_idx          ON items (parent_id) WHERE parent_id IS NOT NULL;
-- episodes of a series in viewing order (next up)
CREATE INDEX items_series_order_idx    ON items (series_id, season_number, episode_number, id)
    WHERE series_id IS NOT NULL;
CREATE INDEX items_missing_idx         ON items (missing_since) WHERE missing_since IS NOT NULL;

-- Cheap totals: one row per (library, kind), kept by statement-level triggers on items
-- (one UPDATE per statement, not per row). Created with the library; no INSERT here, so a
-- library deleted while its items cascade cannot be re-created by the trigger.
CREATE TABLE item_counts (
    library_id bigint NOT NULL REFERENCES libraries (id) ON DELETE CASCADE,
    kind       text   NOT NULL,
    n          bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (library_id, kind)
);

CREATE FUNCTION library_counts_init() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
    INSERT INTO item_counts (library_id, kind)
    SELECT NEW.id, k FROM unnest(ARRAY['movie', 'series', 'season', 'episode', 'extra']) AS k;
    RETURN NULL;
END;
$$;
CREATE TRIGGER libraries_counts_init AFTER INSERT ON libraries
    FOR EACH ROW EXECUTE FUNCTION library_counts_init();

CREATE FUNCTION items_count_added() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
    UPDATE item_counts c SET n = c.n + d.n
      FROM (SELECT library_id, kind, count(*) AS n FROM added GROUP BY 1, 2) d
     WHERE c.library_id = d.library_id AND c.kind = d.kind;
    RETURN NULL;
END;
$$;
CREATE FUNCTION items_count_removed() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
    UPDATE item_counts c SET n = c.n - d.n
      FROM (SELECT library_id, kind, count(*) AS n FROM removed GROUP BY 1, 2) d
     WHERE c.library_id = d.library_id AND c.kind = d.kind;
    RETURN NULL;
END;
$$;
CREATE TRIGGER items_count_insert AFTER INSERT ON items
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION items_count_added();
CREATE TRIGGER items_count_delete AFTER DELETE ON items
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION items_count_removed();

-- One row per video file on disk. Several per item: versions ("- 1080p", "- 4K") and
-- stacked parts (cd1, part2). The scanner's change test is (size, mtime_ns, inode);
-- a rename or move is found by (device, inode, size) or the content fingerprint.
-- inode/device are stored as signed bigint (a uint64 above 2^63 wraps to negative).
CREATE TABLE media_files (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item_id       bigint      NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    library_id    bigint      NOT NULL REFERENCES libraries (id) ON DELETE CASCADE,
    root_id       bigint      NOT NULL REFERENCES library_roots (id) ON DELETE CASCADE,
    path          bytea       NOT NULL UNIQUE,
    path_text     text        NOT NULL,
    size          bigint      NOT NULL CHECK (size >= 0),
    mtime_ns      bigint      NOT NULL,
    inode         bigint      NOT NULL,
    device        bigint      NOT NULL,
    fingerprint   bytea,      -- hash of size + first and last 64 KiB
    version_label text,       -- "1080p", "4K", "Director's Cut"
    part          integer     CHECK (part >= 1),
    stereo        text,       -- 3D: sbs | tab | mvc
    missing_since timestamptz,
    probe_status  text        NOT NULL DEFAULT 'pending'
                  CHECK (probe_status IN ('pending', 'ok', 'failed')),
    probe_reason  text,       -- why a failed file is not playable
    probed_at     timestamptz,
    container     text,
    duration      double precision, -- seconds
    bitrate       bigint,           -- bits per second
    width         integer,
    height        integer,
    video_codec   text,
    hdr           text,             -- NULL (SDR) | hdr10 | hlg | dolby_vision | hdr10plus
    date_added    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER media_files_updated_at BEFORE UPDATE ON media_files
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE INDEX media_files_item_idx    ON media_files (item_id);
CREATE INDEX media_files_library_idx ON media_files (library_id);
CREATE INDEX media_files_root_idx    ON media_files (root_id);
CREATE INDEX media_files_inode_idx   ON media_files (device, inode);
CREATE INDEX media_files_fingerprint_idx ON media_files (fingerprint) WHERE fingerprint IS NOT NULL;
CREATE INDEX media_files_pending_idx ON media_files (library_id) WHERE probe_status = 'pending';
CREATE INDEX media_files_missing_idx ON media_files (missing_since) WHERE missing_since IS NOT NULL;

-- The probe's streams; external subtitles (sidecar .srt) have external_path set.
CREATE TABLE media_streams (
    file_id        bigint  NOT NULL REFERENCES media_files (id) ON DELETE CASCADE,
    index          integer NOT NULL,
    kind           text    NOT NULL CHECK (kind IN ('video', 'audio', 'subtitle', 'attachment', 'data')),
    codec          text,
    profile        text,
    level          integer,
    width          integer,
    height         integer,
    bit_depth      integer,
    hdr            text,
    frame_rate     double precision,
    channels       integer,
    channel_layout text,
    sample_rate    integer,
    bitrate        bigint,
    language       text,
    title          text,
    is_default     boolean NOT NULL DEFAULT false,
    is_forced      boolean NOT NULL DEFAULT false,
    is_hearing_impaired boolean NOT NULL DEFAULT false,
    external_path  bytea,
    PRIMARY KEY (file_id, index)
);

CREATE TABLE media_chapters (
    file_id bigint           NOT NULL REFERENCES media_files (id) ON DELETE CASCADE,
    index   integer          NOT NULL,
    start   double precision NOT NULL, -- seconds
    "end"   double precision,
    title   text,
    PRIMARY KEY (file_id, index)
);

-- Artwork of an item: a sidecar file (source_path) or a file's embedded cover
-- (file_id + stream_index). `content_hash` (sha256 of the source bytes) is the ETag root.
CREATE TABLE images (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item_id       bigint      NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    kind          text        NOT NULL CHECK (kind IN ('poster', 'fanart', 'banner', 'thumb',
                              'logo', 'clearart', 'landscape', 'disc', 'primary')),
    source        text        NOT NULL CHECK (source IN ('sidecar', 'embedded', 'remote')),
    source_path   bytea,
    file_id       bigint      REFERENCES media_files (id) ON DELETE CASCADE,
    stream_index  integer,
    source_size   bigint,
    source_mtime_ns bigint,
    width         integer,
    height        integer,
    blurhash      text,
    content_hash  bytea,
    status        text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'ok', 'failed')),
    reason        text,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (source <> 'sidecar' OR source_path IS NOT NULL),
    CHECK (source <> 'embedded' OR file_id IS NOT NULL)
);
CREATE TRIGGER images_updated_at BEFORE UPDATE ON images
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
-- one image per (item, kind, source): a rescan updates it in place
CREATE UNIQUE INDEX images_item_kind_source_key
    ON images (item_id, kind, source, coalesce(source_path, ''::bytea), coalesce(file_id, 0));
CREATE INDEX images_pending_idx ON images (id) WHERE status = 'pending';

-- Resized variants made by images.process; served by GET /api/v1/images/{id}?w=.
CREATE TABLE image_variants (
    image_id     bigint  NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    width        integer NOT NULL CHECK (width > 0),
    content_type text    NOT NULL,
    etag         text    NOT NULL,
    data         bytea   NOT NULL,
    PRIMARY KEY (image_id, width)
);

-- What each user did with each item. Kept while an item is missing (grace period);
-- a renamed/moved file keeps its item, so this row follows it.
CREATE TABLE user_item_state (
    user_id        bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    item_id        bigint      NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    position_ms    bigint      NOT NULL DEFAULT 0 CHECK (position_ms >= 0),
    played         boolean     NOT NULL DEFAULT false,
    play_count     integer     NOT NULL DEFAULT 0 CHECK (play_count >= 0),
    last_played_at timestamptz,
    favourite      boolean     NOT NULL DEFAULT false,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, item_id)
);
CREATE TRIGGER user_item_state_updated_at BEFORE UPDATE ON user_item_state
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE INDEX user_item_state_item_idx ON user_item_state (item_id);
-- continue watching: started, not finished, most recent first
CREATE INDEX user_item_state_resume_idx ON user_item_state (user_id, last_played_at DESC)
    WHERE position_ms > 0 AND NOT played;
-- next up: the user's recently played items
CREATE INDEX user_item_state_played_idx ON user_item_state (user_id, last_played_at DESC)
    WHERE played;
