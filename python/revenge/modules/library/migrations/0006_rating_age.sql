-- library/0006_rating_age: each item's content rating as an age, for parental limits.
--
-- content_rating holds the NFO's value as written ("PG-13", "de:FSK 12"); auth's
-- content_rating_age (0008_parental.sql, the SQL twin of auth/ratings.py) reads it
-- into the youngest age it suits, NULL when unrated or unknown. Stored, so a limit
-- is one integer comparison per row (visibility.py); an episode, season or extra
-- without its own rating takes its series' (or parent's) there.
ALTER TABLE items
    ADD COLUMN rating_age smallint GENERATED ALWAYS AS (content_rating_age(content_rating)) STORED;
