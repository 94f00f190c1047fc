-- email 0003_job_failure_alerts: the administrators hear of a job kind failing again and
-- again, once per streak.
--
-- email_watch reads pgqueuer's log forward from log_id (one row, the cursor); per job
-- kind, streak counts final failures since the kind last succeeded, started_log_id is
-- the log row that began the streak (the alert's idempotency key), alerted says the
-- streak was reported. A success deletes the kind's row.

CREATE TABLE job_failure_cursor (
    id      boolean PRIMARY KEY DEFAULT true CHECK (id),
    log_id  bigint  NOT NULL
);

CREATE TABLE job_failure_streaks (
    kind            text        PRIMARY KEY,
    streak          integer     NOT NULL CHECK (streak > 0),
    started_log_id  bigint      NOT NULL,
    last_error      text,
    last_at         timestamptz NOT NULL DEFAULT now(),
    alerted         boolean     NOT NULL DEFAULT false
);
