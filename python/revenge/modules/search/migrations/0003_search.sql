-- 0003_search: the built-in full-text search index (the PostgreSQL SearchBackend).
--
-- One row per searchable item (movie, series, episode, person...), written by
-- revenge.infra.search.PostgresSearch; content tables stay the source of truth
-- and a "search reindex" job rebuilds this table from them.
--
-- Matching: `document` (tsvector, weights A title/original title, B people,
-- C overview) for words, and pg_trgm over `search_title` for typos.
-- Both ignore case and, where the unaccent extension exists, accents.
--
-- Needs: pg_trgm (a trusted extension since PostgreSQL 13: the database owner
-- may create it); unaccent is used when it is available, else skipped.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'unaccent') THEN
        CREATE EXTENSION IF NOT EXISTS unaccent;
    END IF;
END;
$$;

-- revenge_search_norm(text): lower case, accents removed when unaccent exists.
-- IMMUTABLE (unaccent itself is only STABLE because its dictionary could change)
-- so it can feed a generated column and an index.
DO $$
DECLARE
    ext_schema text;
BEGIN
    SELECT n.nspname INTO ext_schema
      FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'unaccent';
    IF ext_schema IS NOT NULL THEN
        EXECUTE format(
            'CREATE OR REPLACE FUNCTION revenge_search_norm(value text) RETURNS text '
            'LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS '
            '$f$ SELECT lower(%1$I.unaccent(%2$L::regdictionary, value)) $f$',
            ext_schema, quote_ident(ext_schema) || '.unaccent');
    ELSE
        CREATE OR REPLACE FUNCTION revenge_search_norm(value text) RETURNS text
            LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT lower(value) $f$;
    END IF;
END;
$$;

-- revenge_search: the "simple" configuration (no stemming, no stop words: titles
-- are in every language) with accents folded when unaccent exists.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = 'revenge_search') THEN
        CREATE TEXT SEARCH CONFIGURATION revenge_search (COPY = pg_catalog.simple);
        IF EXISTS (SELECT 1 FROM pg_ts_dict WHERE dictname = 'unaccent') THEN
            ALTER TEXT SEARCH CONFIGURATION revenge_search
                ALTER MAPPING FOR hword, hword_part, word WITH unaccent, simple;
        END IF;
    END IF;
END;
$$;

CREATE TABLE search_documents (
    id             text        PRIMARY KEY,
    kind           text        NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]*$'),
    title          text        NOT NULL,
    original_title text,
    year           integer,
    overview       text,
    people         text        NOT NULL DEFAULT '',
    updated_at     timestamptz NOT NULL DEFAULT now(),
    search_title   text GENERATED ALWAYS AS (
        revenge_search_norm(title || coalesce(' ' || original_title, ''))
    ) STORED,
    document       tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('revenge_search', title), 'A')
        || setweight(to_tsvector('revenge_search', coalesce(original_title, '')), 'A')
        || setweight(to_tsvector('revenge_search', people), 'B')
        || setweight(to_tsvector('revenge_search', coalesce(overview, '')), 'C')
    ) STORED
);

COMMENT ON TABLE search_documents IS
    'Built-in search index (revenge 0003_search); rebuilt from content tables by the reindex job';

CREATE INDEX search_documents_document_idx ON search_documents USING gin (document);
-- GIN, for the thresholded typo match (query <% search_title): about 50x
-- faster than GiST here on 20k titles (GiST only pays off for KNN ordering).
CREATE INDEX search_documents_title_trgm_idx
    ON search_documents USING gin (search_title gin_trgm_ops);
CREATE INDEX search_documents_kind_idx ON search_documents (kind);

CREATE TRIGGER search_documents_updated_at BEFORE UPDATE ON search_documents
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
