-- library/0005_next_up: each user's latest played episode per series, kept by a trigger.
--
-- Next up is "per series the user watched, the first unplayed episode after the one
-- played last". Computing "played last per series" from user_item_state reads every
-- played row of the user (10,000 for a binge watcher: ~10 ms idle, far more under load);
-- this table has one row per (user, series), so next up reads a handful of rows in
-- order of last_played_at and stops at its limit. Written by the trigger only: any writer
-- of user_item_state (browse's PUT state, playback's progress, a restore) keeps it right.

CREATE TABLE user_series_progress (
    user_id        bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    series_id      bigint      NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    -- the episode played last; its numbers are copied so the next one is one index probe
    episode_id     bigint      NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    season_number  integer,
    episode_number integer,
    last_played_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, series_id)
);
CREATE INDEX user_series_progress_recent_idx
    ON user_series_progress (user_id, last_played_at DESC, series_id);

-- The user's latest played episode of one series (NULL when none is played any more).
CREATE FUNCTION library_series_progress_refresh(p_user bigint, p_series bigint)
RETURNS void LANGUAGE plpgsql AS
$$
BEGIN
    DELETE FROM user_series_progress WHERE user_id = p_user AND series_id = p_series;
    INSERT INTO user_series_progress
        (user_id, series_id, episode_id, season_number, episode_number, last_played_at)
    SELECT p_user, p_series, e.id, e.season_number, e.episode_number,
           coalesce(s.last_played_at, s.updated_at)
      FROM items e
      JOIN user_item_state s ON s.item_id = e.id AND s.user_id = p_user AND s.played
     WHERE e.series_id = p_series AND e.kind = 'episode'
     ORDER BY coalesce(s.last_played_at, s.updated_at) DESC,
              e.season_number DESC NULLS LAST, e.episode_number DESC NULLS LAST, e.id DESC
     LIMIT 1;
END;
$$;

CREATE FUNCTION library_series_progress_track() RETURNS trigger LANGUAGE plpgsql AS
$$
DECLARE
    ep items%ROWTYPE;
    was_played boolean := TG_OP = 'UPDATE' AND OLD.played;
BEGIN
    IF NOT NEW.played AND NOT was_played THEN
        RETURN NULL;  -- a position or a favourite: next up does not change
    END IF;
    SELECT * INTO ep FROM items WHERE id = NEW.item_id;
    IF NOT FOUND OR ep.kind <> 'episode' OR ep.series_id IS NULL THEN
        RETURN NULL;
    END IF;
    IF NOT NEW.played THEN  -- unplayed: the series' latest played episode may be another
        PERFORM library_series_progress_refresh(NEW.user_id, ep.series_id);
        RETURN NULL;
    END IF;
    INSERT INTO user_series_progress AS g
        (user_id, series_id, episode_id, season_number, episode_number, last_played_at)
    VALUES (NEW.user_id, ep.series_id, ep.id, ep.season_number, ep.episode_number,
            coalesce(NEW.last_played_at, NEW.updated_at))
    ON CONFLICT (user_id, series_id) DO UPDATE SET
        episode_id = EXCLUDED.episode_id,
        season_number = EXCLUDED.season_number,
        episode_number = EXCLUDED.episode_number,
        last_played_at = EXCLUDED.last_played_at
     WHERE (EXCLUDED.last_played_at, coalesce(EXCLUDED.season_number, -1),
            coalesce(EXCLUDED.episode_number, -1), EXCLUDED.episode_id)
         >= (g.last_played_at, coalesce(g.season_number, -1),
             coalesce(g.episode_number, -1), g.episode_id);
    RETURN NULL;
END;
$$;

CREATE TRIGGER user_item_state_series_progress
    AFTER INSERT OR UPDATE OF played, last_played_at ON user_item_state
    FOR EACH ROW EXECUTE FUNCTION library_series_progress_track();

-- What was played before this migration.
INSERT INTO user_series_progress
    (user_id, series_id, episode_id, season_number, episode_number, last_played_at)
SELECT DISTINCT ON (s.user_id, e.series_id)
       s.user_id, e.series_id, e.id, e.season_number, e.episode_number,
       coalesce(s.last_played_at, s.updated_at)
  FROM user_item_state s JOIN items e ON e.id = s.item_id
 WHERE s.played AND e.kind = 'episode' AND e.series_id IS NOT NULL
 ORDER BY s.user_id, e.series_id, coalesce(s.last_played_at, s.updated_at) DESC,
          e.season_number DESC NULLS LAST, e.episode_number DESC NULLS LAST, e.id DESC;
