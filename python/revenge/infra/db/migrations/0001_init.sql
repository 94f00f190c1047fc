-- 0001_init: what every later migration may rely on.
--
-- set_updated_at(): a BEFORE UPDATE trigger function for tables with an
-- updated_at column, so no code path can forget to bump it:
--   CREATE TRIGGER users_updated_at BEFORE UPDATE ON users
--       FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION set_updated_at() IS
    'BEFORE UPDATE trigger: sets NEW.updated_at to now() (revenge 0001_init)';
