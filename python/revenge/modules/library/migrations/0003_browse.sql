-- library/0003_browse: keyset indexes across libraries, for the browse API.
--
-- 0001's items_browse_*_idx lead with library_id: a viewer who sees one library of a
-- kind walks them in order. One who sees several (an administrator with two movie
-- libraries) filters on library_id = ANY(...), which PostgreSQL 15 cannot turn into an
-- ordered walk of those; these let it walk one index in order and skip the libraries
-- the viewer does not see. (0002 is the image files migration.)

CREATE INDEX items_browse_any_title_idx   ON items (kind, sort_title, id);
CREATE INDEX items_browse_any_year_idx    ON items (kind, year, id);
CREATE INDEX items_browse_any_added_idx   ON items (kind, date_added, id);
CREATE INDEX items_browse_any_rating_idx  ON items (kind, rating, id);
CREATE INDEX items_browse_any_runtime_idx ON items (kind, runtime_seconds, id);
