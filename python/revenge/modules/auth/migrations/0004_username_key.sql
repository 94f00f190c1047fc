-- auth 0004_username_key: one account per name however it is typed.
--
-- username_key is the name NFKC-normalised and case-folded (revenge.modules.auth
-- .usernames.comparable): "ADMIN", "Admin" and fullwidth "ａｄｍｉｎ" are one key.
-- Python computes it (PostgreSQL's lower() is not Unicode case folding, and
-- depends on the cluster's locale), so rows written before this file get theirs
-- when the auth module starts: the oldest row of a set of look-alikes keeps the
-- key, the later ones get "<key> #<id>" (a space never occurs in a username, so
-- that key can never be typed: the look-alike can no longer log in by name).
-- The old lower(username) index stays: nothing it refuses is allowed by this key.

ALTER TABLE users ADD COLUMN username_key text CHECK (char_length(username_key) >= 1);
CREATE UNIQUE INDEX users_username_key_key ON users (username_key);
