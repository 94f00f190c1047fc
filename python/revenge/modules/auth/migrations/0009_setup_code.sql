-- auth 0009_setup_code: the one-time code that lets a fresh server's first visitor
-- create the first administrator from another machine.
--
-- One row at most. Only the SHA-256 of the code is kept; the code itself is printed
-- once to the log by the process that created the row. The row goes when the first
-- administrator is created (and is replaced at each `revenge serve` start).

CREATE TABLE setup_code (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    code_hash text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
