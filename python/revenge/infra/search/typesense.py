"""The optional Typesense backend (the design's choice), over the async ``typesense`` client.

Cold: built on first use by :class:`~revenge.infra.search.service.SearchService`
through a ``Lazy``; the service puts PostgreSQL behind it as the fallback.
The client package is imported by this module only, and this module only when
``search.typesense_url`` is set: a setup without Typesense needs no client.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
import typesense
from typesense.exceptions import ObjectNotFound, TypesenseClientError

from revenge.runtime.errors import ServiceUnavailable

from .types import SearchDocument, SearchHit

COLLECTION = "revenge_media"

_SCHEMA: dict[str, Any] = {
    "fields": [
        {"name": "kind", "type": "string", "facet": True},
        {"name": "title", "type": "string"},
        {"name": "original_title", "type": "string", "optional": True},
        {"name": "year", "type": "int32", "optional": True},
        {"name": "overview", "type": "string", "optional": True},
        {"name": "people", "type": "string[]", "optional": True},
    ],
}


def is_outage(exc: BaseException) -> bool:
    """Anything that means "Typesense cannot answer": transport, server, auth, missing collection."""
    return isinstance(
        exc, TypesenseClientError | httpx.HTTPError | ServiceUnavailable | OSError | TimeoutError
    )


def node_from_url(url: str) -> dict[str, str]:
    """``http://host:8108`` -> the client's node dictionary.

    >>> node_from_url("https://search.example:443")
    {'host': 'search.example', 'port': '443', 'protocol': 'https'}
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("search.typesense_url must look like http://host:8108")
    port = parts.port or (443 if parts.scheme == "https" else 8108)
    return {"host": parts.hostname, "port": str(port), "protocol": parts.scheme}


def _doc(doc: SearchDocument) -> dict[str, Any]:
    body: dict[str, Any] = {"id": doc.id, "kind": doc.kind, "title": doc.title}
    if doc.original_title:
        body["original_title"] = doc.original_title
    if doc.year is not None:
        body["year"] = doc.year
    if doc.overview:
        body["overview"] = doc.overview
    if doc.people:
        body["people"] = list(doc.people)
    return body


def _quote(value: str) -> str:
    return "`" + value.replace("`", "") + "`"


class TypesenseSearch:
    """:class:`~revenge.infra.search.types.SearchBackend` on one Typesense collection."""

    name = "typesense"

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        collection: str = COLLECTION,
        timeout: float = 2.0,
    ) -> None:
        self.collection = collection
        # Typed loosely on purpose: the client's TypedDict signatures reject the
        # plain dictionaries this module builds, and nothing here is a hot path.
        config: Any = {
            "api_key": api_key,
            "nodes": [node_from_url(url)],
            "connection_timeout_seconds": timeout,
            "num_retries": 1,
            "retry_interval_seconds": 0.1,
        }
        with warnings.catch_warnings():
            # The client warns about its own deprecated analytics attribute on construction.
            warnings.simplefilter("ignore", DeprecationWarning)
            self._client: Any = typesense.AsyncClient(config)

    async def start(self) -> None:
        """Check the server and create the collection when it is missing."""
        await self.ping()
        try:
            await self._client.collections[self.collection].retrieve()
        except ObjectNotFound:
            await self._client.collections.create({"name": self.collection, **_SCHEMA})

    async def count(self) -> int:
        info = await self._client.collections[self.collection].retrieve()
        return int(info.get("num_documents", 0))

    async def index(self, docs: Sequence[SearchDocument]) -> None:
        if not docs:
            return
        documents = self._client.collections[self.collection].documents
        results = await documents.import_([_doc(d) for d in docs], {"action": "upsert"})
        failed = [r for r in results if not r.get("success")]
        if failed:
            raise ValueError(f"typesense rejected {len(failed)} documents: {failed[0]}")

    async def delete(self, ids: Sequence[str]) -> None:
        if ids:
            documents = self._client.collections[self.collection].documents
            await documents.delete({"filter_by": f"id:[{','.join(_quote(i) for i in ids)}]"})

    async def search(
        self,
        query: str,
        *,
        kinds: Sequence[str] | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> list[SearchHit]:
        query = query.strip()
        if not query or limit <= 0:
            return []
        params: dict[str, Any] = {
            "q": query,
            "query_by": "title,original_title,people,overview",
            "query_by_weights": "4,4,2,1",
            "num_typos": 2,
            "limit": limit,
            "offset": max(0, offset),
            "include_fields": "id,kind,title,year",
        }
        if kinds:
            params["filter_by"] = f"kind:[{','.join(_quote(k) for k in kinds)}]"
        documents = self._client.collections[self.collection].documents
        answer = await documents.search(params)
        hits = []
        for hit in answer.get("hits", []):
            doc = hit["document"]
            hits.append(
                SearchHit(
                    str(doc["id"]),
                    str(doc["kind"]),
                    str(doc["title"]),
                    int(doc["year"]) if "year" in doc else None,
                    float(hit.get("text_match", 0)),
                )
            )
        return hits

    async def replace_all(self, batches: AsyncIterator[Sequence[SearchDocument]]) -> int:
        """Recreate the collection and import every batch (searches miss rows meanwhile;
        the service answers from PostgreSQL until this returns)."""
        with contextlib.suppress(ObjectNotFound):
            await self._client.collections[self.collection].delete()
        await self._client.collections.create({"name": self.collection, **_SCHEMA})
        count = 0
        async for batch in batches:
            await self.index(batch)
            count += len(batch)
        return count

    async def ping(self) -> None:
        if not await self._client.operations.is_healthy():
            raise ConnectionError("typesense /health did not answer ok")

    async def close(self) -> None:
        await self._client.api_call.aclose()
