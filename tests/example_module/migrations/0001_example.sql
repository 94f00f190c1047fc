-- 0001_example: the example module's notes, written by its job body.
CREATE TABLE example_notes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    text       text        NOT NULL,
    written_by text        NOT NULL,  -- the cold service's answer, to prove the body reached it
    created_at timestamptz NOT NULL DEFAULT now()
);
