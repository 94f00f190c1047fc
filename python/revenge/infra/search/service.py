"""The search service: PostgreSQL always, Typesense in front of it when configured.

PostgreSQL's ``search_documents`` is written first on every change and is the
source of truth for the search index, so it can answer alone at any moment.
Typesense (optional, cold) is built through a ``Lazy`` on the first index or
search operation and sits behind a ``Degradable`` whose fallback is PostgreSQL.

Consistency rules:

* A process answers from Typesense only once it knows Typesense holds what
  PostgreSQL holds: when first built, document counts are compared and the
  collection is rebuilt from PostgreSQL if they differ; after an outage (writes
  were missed) it is always rebuilt. Meanwhile answers come from PostgreSQL.
* Writes go to PostgreSQL, then to Typesense unless degraded; a failed
  Typesense write degrades the service (and so triggers the rebuild above).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from revenge.config import ConfigError, Settings
from revenge.infra.db import Database
from revenge.runtime.degrade import Degradable, DegradeObserver
from revenge.runtime.errors import ServiceUnavailable
from revenge.runtime.health import Category, Check
from revenge.runtime.lazy import Lazy, LazyObserver

from .postgres import PostgresSearch
from .types import SearchBackend, SearchDocument, SearchHit, SearchResult

log = logging.getLogger(__name__)

Status = Literal["healthy", "degraded", "unhealthy"]
TypesenseFactory = Callable[[], Awaitable[SearchBackend]]


@dataclass(frozen=True, slots=True)
class SearchHealth:
    status: Status
    backend: str  # who answers searches right now
    typesense: Literal["not configured", "offloaded", "syncing", "ready", "down"]
    error: str | None = None


class _LazyTypesense:
    """The Degradable's primary: every call goes through the Lazy (built on first use)."""

    name = "typesense"

    def __init__(self, lazy: Lazy[SearchBackend]) -> None:
        self.lazy = lazy

    async def index(self, docs: Sequence[SearchDocument]) -> None:
        await (await self.lazy.get()).index(docs)

    async def delete(self, ids: Sequence[str]) -> None:
        await (await self.lazy.get()).delete(ids)

    async def search(
        self, query: str, *, kinds: Sequence[str] | None = None, limit: int = 20, offset: int = 0
    ) -> list[SearchHit]:
        backend = await self.lazy.get()
        return await backend.search(query, kinds=kinds, limit=limit, offset=offset)

    async def replace_all(self, batches: AsyncIterator[Sequence[SearchDocument]]) -> int:
        return await (await self.lazy.get()).replace_all(batches)

    async def ping(self) -> None:
        await (await self.lazy.get()).ping()

    async def close(self) -> None:
        await self.lazy.offload("close", force=True)


class SearchService:
    """Index and query media; see the module docstring for the consistency rules."""

    def __init__(
        self,
        postgres: PostgresSearch,
        typesense: Lazy[SearchBackend] | TypesenseFactory | None = None,
        *,
        is_outage: Callable[[BaseException], bool] | None = None,
        idle_ttl: float | None = None,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        observer: DegradeObserver | None = None,
        lazy_observer: LazyObserver | None = None,
    ) -> None:
        self.postgres = postgres
        self._observer = observer
        self._synced = False
        self._sync_task: asyncio.Task[None] | None = None
        self.lazy: Lazy[SearchBackend] | None = None
        self._link: Degradable[SearchBackend] | None = None
        self._owns_lazy = not isinstance(typesense, Lazy)
        if isinstance(typesense, Lazy):
            self.lazy = typesense  # owned (and offloaded when idle) by the runtime
        elif typesense is not None:
            self.lazy = Lazy(
                "search.typesense",
                typesense,
                close=_close_backend,
                idle_ttl=idle_ttl,
                observer=lazy_observer,
            )
        if self.lazy is not None:
            self._link = Degradable(
                "search",
                _LazyTypesense(self.lazy),
                postgres,
                is_outage or _default_outage,
                probe=_ping,
                backoff_initial=backoff_initial,
                backoff_max=backoff_max,
                observer=self,
            )

    @classmethod
    def from_settings(
        cls,
        db: Database,
        settings: Settings,
        *,
        typesense: Lazy[SearchBackend] | None = None,
        **options: Any,
    ) -> SearchService:
        """PostgreSQL search, plus Typesense when ``search.typesense_url`` is set.

        Pass ``typesense=runtime.lazy(key)`` when the runtime owns the cold
        service (registered with :func:`typesense_factory`); otherwise the
        service keeps its own ``Lazy`` with ``offload.idle_ttl``.
        """
        postgres = PostgresSearch(db)
        factory = typesense_factory(settings)
        if factory is None:
            return cls(postgres, **options)
        try:
            from .typesense import is_outage
        except ImportError as exc:
            raise ConfigError(
                "search.typesense_url is set but the Typesense client is not installed "
                f"({exc.name}); install the 'typesense' package or clear the setting"
            ) from exc

        options.setdefault("idle_ttl", settings.offload.idle_ttl)
        return cls(postgres, typesense or factory, is_outage=is_outage, **options)

    @property
    def configured(self) -> bool:
        """Whether Typesense is configured (PostgreSQL search always is)."""
        return self._link is not None

    @property
    def degraded(self) -> bool:
        return self._link is not None and self._link.degraded

    @property
    def typesense_ready(self) -> bool:
        """Typesense answers searches: built, in sync with PostgreSQL, not degraded."""
        return self._link is not None and self._synced and not self._link.degraded

    async def start(self, *, eager: bool = False) -> None:
        """With ``eager`` (``lazy_init.search: false``), build Typesense now; else on first use."""
        if eager and self._link is not None:
            self._start_sync()
            assert self._sync_task is not None
            await asyncio.shield(self._sync_task)

    async def close(self) -> None:
        if self._sync_task is not None:
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync_task
        if self._link is not None:
            await self._link.close()
        if self.lazy is not None and self._owns_lazy:
            await self.lazy.offload("close", force=True)

    # -- writes ------------------------------------------------------------------------

    async def index(self, docs: Sequence[SearchDocument]) -> None:
        """Upsert ``docs``: PostgreSQL first (errors raise), then Typesense (errors degrade)."""
        await self.postgres.index(docs)
        await self._mirror(lambda b: b.index(docs))

    async def delete(self, ids: Sequence[str]) -> None:
        await self.postgres.delete(ids)
        await self._mirror(lambda b: b.delete(ids))

    async def _mirror(self, op: Callable[[SearchBackend], Awaitable[None]]) -> None:
        if self._link is None or self._link.degraded:
            return

        async def on_primary_only(backend: SearchBackend) -> None:
            if backend is not self.postgres:
                await op(backend)

        await self._link.call(on_primary_only)
        if not self._synced and not self._link.degraded:
            self._start_sync()

    # -- reads -------------------------------------------------------------------------

    async def search(
        self,
        query: str,
        *,
        kinds: Sequence[str] | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> SearchResult:
        """Best hits first. Answered by Typesense when it is ready, else by PostgreSQL."""
        link = self._link
        if link is not None and self._synced and not link.degraded:
            backend_used: list[str] = []

            async def run(backend: SearchBackend) -> list[SearchHit]:
                backend_used.append(backend.name)
                return await backend.search(query, kinds=kinds, limit=limit, offset=offset)

            hits = await link.call(run)
            return SearchResult(tuple(hits), backend_used[-1])
        if link is not None and not link.degraded:
            self._start_sync()  # cold start: build and check Typesense, answer from PostgreSQL
        hits = await self.postgres.search(query, kinds=kinds, limit=limit, offset=offset)
        return SearchResult(tuple(hits), self.postgres.name)

    # -- rebuilding ----------------------------------------------------------------------

    async def reindex_all(
        self, source: AsyncIterator[Sequence[SearchDocument]] | None = None
    ) -> int:
        """The "search reindex" job's body.

        With ``source`` (batches from the content tables), PostgreSQL's index is
        replaced by exactly those documents; then Typesense, when configured, is
        rebuilt from PostgreSQL. Returns the number of documents indexed.
        """
        count = await self.postgres.replace_all(source) if source is not None else -1
        if self._link is not None and not self._link.degraded:
            self._synced = False
            await self._resync(force=True)
        return count if count >= 0 else await self.postgres.count()

    def _start_sync(self) -> None:
        if self._sync_task is None or self._sync_task.done():
            self._sync_task = asyncio.get_running_loop().create_task(
                self._sync_quietly(force=False), name="search-typesense-sync"
            )

    async def _sync_quietly(self, *, force: bool) -> None:
        try:
            await self._resync(force=force)
        except Exception:
            log.exception("typesense sync failed")

    async def _resync(self, *, force: bool) -> None:
        """Make Typesense match PostgreSQL; any outage on the way degrades the link."""
        link = self._link
        assert link is not None and self.lazy is not None
        lazy = self.lazy

        async def sync(backend: SearchBackend) -> bool:
            if backend is self.postgres:
                return False
            typesense = await lazy.get()
            if not force:
                counted = getattr(typesense, "count", None)
                if counted is not None and await counted() == await self.postgres.count():
                    return True
            await typesense.replace_all(self.postgres.documents())
            return True

        self._synced = await link.call(sync)

    # -- DegradeObserver ---------------------------------------------------------------

    def degraded_changed(self, service: str, degraded: bool) -> None:
        self._synced = False
        if not degraded:
            # Writes made while Typesense was away are missing there: rebuild it,
            # answering from PostgreSQL until that is done.
            self._sync_task = asyncio.get_running_loop().create_task(
                self._sync_quietly(force=True), name="search-typesense-resync"
            )
        if self._observer is not None:
            self._observer.degraded_changed(service, degraded)

    def fallback_used(self, service: str) -> None:
        if self._observer is not None:
            self._observer.fallback_used(service)

    # -- health ------------------------------------------------------------------------

    async def health(self) -> SearchHealth:
        """Never builds Typesense; PINGs it only when it is built."""
        link, lazy = self._link, self.lazy
        if link is None or lazy is None:
            return SearchHealth("healthy", "postgres", "not configured")
        if link.degraded:
            return SearchHealth("degraded", "postgres", "down", _describe(link.last_error))
        built = lazy.peek()
        if built is None:
            error = lazy.last_error
            if error is not None:
                return SearchHealth("degraded", "postgres", "down", _describe(error))
            return SearchHealth("healthy", "postgres", "offloaded")
        try:
            await built.ping()
        except Exception as exc:
            if not link.degraded:
                await link.call(_fail_on_primary(exc))
            return SearchHealth("degraded", "postgres", "down", _describe(exc))
        if not self._synced:
            return SearchHealth("degraded", "postgres", "syncing", "rebuilding from PostgreSQL")
        return SearchHealth("healthy", "typesense", "ready")

    async def health_probe(self) -> None:
        report = await self.health()
        if report.status != "healthy":
            raise ConnectionError(
                f"search answers from {report.backend}: typesense {report.typesense}"
                + (f" ({report.error})" if report.error else "")
            )

    def health_check(self, *, timeout: float = 5.0) -> Check:
        """The ``search`` check (cold tier) for the runtime's HealthChecker."""
        return Check("search", Category.COLD, self.health_probe, timeout=timeout)


def typesense_factory(settings: Settings) -> TypesenseFactory | None:
    """The cold Typesense backend's factory, or ``None`` when ``search.typesense_url`` is empty."""
    url = settings.search.typesense_url
    if not url:
        return None
    api_key = settings.search.typesense_api_key.get_secret_value()

    async def build() -> SearchBackend:
        from .typesense import TypesenseSearch

        backend = TypesenseSearch(url, api_key)
        try:
            await backend.start()
        except BaseException:
            await backend.close()
            raise
        return backend

    return build


async def _ping(backend: SearchBackend) -> None:
    await backend.ping()


async def _close_backend(backend: SearchBackend) -> None:
    await backend.close()


def _fail_on_primary(exc: BaseException) -> Callable[[SearchBackend], Awaitable[None]]:
    async def op(backend: SearchBackend) -> None:
        if isinstance(backend, _LazyTypesense):
            raise exc

    return op


def _default_outage(exc: BaseException) -> bool:
    return isinstance(exc, OSError | TimeoutError | ServiceUnavailable)


def _describe(exc: BaseException | None) -> str | None:
    if exc is None:
        return None
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
