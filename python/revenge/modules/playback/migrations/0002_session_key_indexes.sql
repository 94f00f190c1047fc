-- playback/0002_session_key_indexes: an index under each key a delete reaches
-- playback_sessions through. Deleting an item or a media file (a library's delete, the
-- cleanup of missing files) or a user cascades into this table row by row; without an
-- index each deleted row scanned every session ever recorded (the user index covered only
-- live sessions).
CREATE INDEX playback_sessions_item_idx ON playback_sessions (item_id);
CREATE INDEX playback_sessions_file_idx ON playback_sessions (file_id);
CREATE INDEX playback_sessions_all_user_idx ON playback_sessions (user_id);
