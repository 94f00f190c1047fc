-- library/0007_rating_counts: totals for a parental-limited user, kept like item_counts.
--
-- item_rating_counts: items per library, kind and rating_age (-1: unrated), kept by
-- statement-level triggers like item_counts, so a limited user's unfiltered total is a
-- sum over a few rows instead of a count over the library (movies and series carry their
-- own rating; a list of those is what browse totals). Deletes only update existing rows
-- (a library deleted while its items cascade is never re-created here).
CREATE TABLE item_rating_counts (
    library_id bigint   NOT NULL REFERENCES libraries (id) ON DELETE CASCADE,
    kind       text     NOT NULL,
    rating_age smallint NOT NULL,
    n          bigint   NOT NULL DEFAULT 0,
    PRIMARY KEY (library_id, kind, rating_age)
);
INSERT INTO item_rating_counts (library_id, kind, rating_age, n)
SELECT library_id, kind, coalesce(rating_age, -1), count(*) FROM items GROUP BY 1, 2, 3;

CREATE FUNCTION items_rating_count_added() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
    INSERT INTO item_rating_counts AS c (library_id, kind, rating_age, n)
    SELECT library_id, kind, coalesce(rating_age, -1), count(*) FROM added GROUP BY 1, 2, 3
    ON CONFLICT (library_id, kind, rating_age) DO UPDATE SET n = c.n + excluded.n;
    RETURN NULL;
END;
$$;
CREATE FUNCTION items_rating_count_removed() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
    UPDATE item_rating_counts c SET n = c.n - d.n
      FROM (SELECT library_id, kind, coalesce(rating_age, -1) AS age, count(*) AS n
              FROM removed GROUP BY 1, 2, 3) d
     WHERE c.library_id = d.library_id AND c.kind = d.kind AND c.rating_age = d.age;
    RETURN NULL;
END;
$$;
-- A rescan that changes a rating moves the item from one count to another; rows whose
-- library, kind and rating stay are not touched.
CREATE FUNCTION items_rating_count_changed() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
    INSERT INTO item_rating_counts AS c (library_id, kind, rating_age, n)
    SELECT m.library_id, m.kind, m.age, sum(m.n)
      FROM removed o JOIN added a ON a.id = o.id
     CROSS JOIN LATERAL (VALUES (o.library_id, o.kind, coalesce(o.rating_age, -1), -1),
                                (a.library_id, a.kind, coalesce(a.rating_age, -1), 1))
           AS m (library_id, kind, age, n)
     WHERE (o.library_id, o.kind, coalesce(o.rating_age, -1))
           IS DISTINCT FROM (a.library_id, a.kind, coalesce(a.rating_age, -1))
     GROUP BY 1, 2, 3
    ON CONFLICT (library_id, kind, rating_age) DO UPDATE SET n = c.n + excluded.n;
    RETURN NULL;
END;
$$;
CREATE TRIGGER items_rating_count_insert AFTER INSERT ON items
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION items_rating_count_added();
CREATE TRIGGER items_rating_count_delete AFTER DELETE ON items
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION items_rating_count_removed();
CREATE TRIGGER items_rating_count_update AFTER UPDATE ON items
    REFERENCING OLD TABLE AS removed NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION items_rating_count_changed();
