-- email 0001_email_outbox: every message Revenge sends, by its idempotency key.
--
-- A message is written here before its email_send job is queued; the job sends it and
-- records sent_at. A job that runs again (a retry, a worker killed mid-batch) finds
-- sent_at set and sends nothing. The one window left is a crash between the SMTP server
-- accepting the message and sent_at being written: the message is then sent again
-- with the same Message-ID (derived from the key), which receivers can fold.

CREATE TABLE email_outbox (
    key         text        PRIMARY KEY CHECK (char_length(key) BETWEEN 1 AND 200),
    recipient   text        NOT NULL CHECK (char_length(recipient) BETWEEN 3 AND 320),
    subject     text        NOT NULL CHECK (char_length(subject) <= 300),
    body        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz,
    attempts    integer     NOT NULL DEFAULT 0,
    last_error  text
);
CREATE INDEX email_outbox_unsent_idx ON email_outbox (created_at) WHERE sent_at IS NULL;
