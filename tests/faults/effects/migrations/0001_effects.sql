-- 0001_effects: what the fault tests' job kind records: each run, and its one effect.
CREATE TABLE faults_attempts (
    job_id bigint      NOT NULL,
    pid    int         NOT NULL,
    at     timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE faults_effects (
    job_id bigint      PRIMARY KEY,
    pid    int         NOT NULL,
    at     timestamptz NOT NULL DEFAULT now()
);
