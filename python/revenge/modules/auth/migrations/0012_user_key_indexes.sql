-- auth/0012_user_key_indexes: deleting a user reaches device codes it approved and
-- invitations it made or used through these keys; an index under each keeps that one
-- probe per row instead of a scan of the table.
CREATE INDEX device_codes_approved_by_idx ON device_codes (approved_by) WHERE approved_by IS NOT NULL;
CREATE INDEX invitations_created_by_idx ON invitations (created_by);
CREATE INDEX invitations_used_by_idx ON invitations (used_by) WHERE used_by IS NOT NULL;
