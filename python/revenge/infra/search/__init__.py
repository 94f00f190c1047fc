"""Search: a ``SearchBackend`` protocol, PostgreSQL built in, Typesense optional (cold).

Wiring::

    search = SearchService.from_settings(db, settings)
    await search.start(eager=not settings.lazy_init.search)
    result = await search.search("matirx", kinds=["movie"], limit=20)
    await search.close()
"""

from .postgres import PostgresSearch
from .service import SearchHealth, SearchService, typesense_factory
from .types import SearchBackend, SearchDocument, SearchHit, SearchResult

__all__ = [
    "PostgresSearch",
    "SearchBackend",
    "SearchDocument",
    "SearchHealth",
    "SearchHit",
    "SearchResult",
    "SearchService",
    "typesense_factory",
]
