-- auth 0008_parental: what a user may see.
--
-- Parental control, set by an administrator: max_rating_age is the oldest age of
-- content the user may see (ratings.py maps MPAA, BBFC, FSK and TV ratings to
-- ages); NULL: no limit. blocks_unrated: items without a known rating are hidden
-- too. Administrators are never limited, whatever these say.
ALTER TABLE users
    ADD COLUMN max_rating_age smallint CHECK (max_rating_age BETWEEN 0 AND 21),
    ADD COLUMN max_rating text CHECK (char_length(max_rating) BETWEEN 1 AND 32),
    ADD COLUMN blocks_unrated boolean NOT NULL DEFAULT false;

-- The same mapping as revenge.modules.auth.ratings.rating_age (a test compares the
-- two on every label): the library keeps its result per item in a stored column.
CREATE FUNCTION content_rating_age(rating text) RETURNS smallint
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    s       text := upper(regexp_replace(coalesce(rating, ''), '^\s+|\s+$', '', 'g'));
    country text := '';
BEGIN
    IF rating IS NULL THEN
        RETURN NULL;
    END IF;
    s := regexp_replace(s, '^RATED\s+', '');
    IF position(':' IN s) > 0 THEN
        country := regexp_replace(split_part(s, ':', 1), '^\s+|\s+$', '', 'g');
        s := regexp_replace(substr(s, position(':' IN s) + 1), '^\s+|\s+$', '', 'g');
    END IF;
    s := regexp_replace(s, '\s+FOR\s.*$', '');
    s := regexp_replace(s, '[\s._-]+', '', 'g');
    IF s ~ '^[0-9]{1,2}$' THEN
        RETURN CASE WHEN s::integer <= 21 THEN s::smallint END;
    END IF;
    IF s = 'PG' AND country IN ('GB', 'UK', 'UNITED KINGDOM') THEN
        RETURN 8;
    END IF;
    RETURN CASE s
        WHEN 'G' THEN 0 WHEN 'PG' THEN 10 WHEN 'PG13' THEN 13 WHEN 'R' THEN 17
        WHEN 'NC17' THEN 18 WHEN 'X' THEN 18
        WHEN 'U' THEN 0 WHEN 'UC' THEN 0 WHEN '12A' THEN 12 WHEN 'R18' THEN 18
        WHEN 'FSK0' THEN 0 WHEN 'FSK6' THEN 6 WHEN 'FSK12' THEN 12 WHEN 'FSK16' THEN 16
        WHEN 'FSK18' THEN 18
        WHEN 'TVY' THEN 0 WHEN 'TVG' THEN 0 WHEN 'TVY7' THEN 7 WHEN 'TVY7FV' THEN 7
        WHEN 'TVPG' THEN 10 WHEN 'TV14' THEN 14 WHEN 'TVMA' THEN 17
    END;
END $$;

