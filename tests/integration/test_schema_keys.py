"""Every module's schema on the real PostgreSQL, migrated from scratch: keys a delete reaches."""

from __future__ import annotations

import psycopg
import pytest

pytestmark = pytest.mark.integration


def test_every_foreign_key_has_an_index_a_delete_can_use(migrated_url: str) -> None:
    """A delete of the referenced row (a library, an item, a user) checks each referencing
    table through its key, row by row: a key without an index under it costs a scan of that
    table per deleted row (a 10,000-video library's delete ran past 4 minutes so). A partial
    index serves only when its predicate is the key's ``IS NOT NULL``."""
    with psycopg.connect(migrated_url) as conn:
        rows = conn.execute(
            "SELECT c.conrelid::regclass::text, a.attname FROM pg_constraint c"
            " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]"
            " WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace"
            " AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.conrelid"
            "   AND i.indkey[0] = c.conkey[1]"
            "   AND (i.indpred IS NULL OR pg_get_expr(i.indpred, i.indrelid)"
            "        = format('(%I IS NOT NULL)', a.attname)))"
            " ORDER BY 1, 2"
        ).fetchall()
    assert rows == []
