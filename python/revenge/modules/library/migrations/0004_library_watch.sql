-- Folders the watcher saw change and no scan has taken yet (library/watch.py). NULL: none;
-- an empty array: too many to list, the next watch scan walks every root. A library_scan
-- job with {"watch": true} takes (and clears) them in one statement; any other scan of
-- the library clears them too, since it walks everything.
ALTER TABLE libraries ADD COLUMN watch_paths bytea[];
