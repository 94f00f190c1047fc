-- email 0002_email_outbox_in_flight: the crash window made visible.
--
-- sending_at is written (and committed) just before a message goes to the SMTP server
-- and cleared when the attempt ends either way (sent_at, or a failure seen by the
-- sender). A run that finds sending_at still set knows the previous run died with the
-- message under way: the server may or may not have taken it. It sends again (at least
-- once: a reset link lost is worse than one received twice; the same Message-ID lets a
-- reader or a filter fold the two) and counts it in uncertain, so duplicates that may
-- have happened are counted, not guessed.

ALTER TABLE email_outbox
    ADD COLUMN sending_at timestamptz,
    ADD COLUMN uncertain  integer NOT NULL DEFAULT 0;
