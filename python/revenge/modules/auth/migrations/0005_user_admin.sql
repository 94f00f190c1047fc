-- auth 0005_user_admin: what administering users needs.
--
-- version: bumped by every administrative change of the row; clients send it back
-- (If-Match: "<version>") so two administrators editing one user at once cannot
-- overwrite each other's change unseen (the later one gets 412).
-- must_change_password: set by an administrator's password reset; login refuses
-- a session until the user picks a new password (password_change_required).
--
-- Tables that keep personal data of a user (watch state, preferences of other
-- modules) reference users (id) ON DELETE CASCADE, as sessions and api_keys do:
-- deleting the user row removes them in the same transaction.

ALTER TABLE users
    ADD COLUMN version bigint NOT NULL DEFAULT 1,
    ADD COLUMN must_change_password boolean NOT NULL DEFAULT false;
