"""Remote metadata: providers that fill what local sources left empty (off by default).

The local chain (``modules/library``: locked fields > NFO > embedded tags > file name)
runs in the scan. This module adds the last, lowest link: remote providers asked in the
background, only for fields still empty and not locked (``items.locked_fields``).

``MODULE`` installs:

* ``metadata_providers`` (cold): the built providers that are on
  (:class:`.registry.Providers`), made on the first ``metadata_fetch`` job, offloaded after
  ``offload.idle_ttl`` (their HTTP connections closed). With no provider on (the default:
  TMDb needs ``metadata.tmdb_api_key``) nothing is registered but a ``/health`` entry that
  says it is disabled, and no job is queued;
* job kinds ``metadata_due`` (each minute: queue up to ``metadata.batch`` items never
  asked, or asked longer ago than ``metadata.refresh_after``) and ``metadata_fetch`` (one
  item: ask, fill, queue ``images_process`` for remote artwork, reindex for search);
* the cleanup step removing expired cached provider answers;
* ``migrations/``: ``metadata_lookups`` (who was asked when, and what came of it) and
  ``metadata_http_cache``.

A provider implements :class:`.provider.MetadataProvider` and is registered in
:data:`.registry.REGISTRY` (TMDb: :mod:`.tmdb`).
"""

from __future__ import annotations

import logging
from importlib import resources

from revenge.contract import (
    DATABASE,
    JOBS,
    JobContext,
    JobKind,
    Module,
    ModuleContext,
    Payload,
    RetryPolicy,
    ServiceKey,
    Tier,
)
from revenge.modules.library import IMAGES_PROCESS, reindex_item
from revenge.modules.metadata import repository as repo
from revenge.modules.metadata.fill import KINDS, FetchResult, fetch_item
from revenge.modules.metadata.provider import (
    Lookup,
    MetadataProvider,
    ProviderAnswerError,
    ProviderError,
    ProviderUnavailable,
    RemoteImage,
    RemoteMetadata,
)
from revenge.modules.metadata.registry import REGISTRY, ProviderRegistry, Providers, ProviderSpec
from revenge.modules.metadata.tmdb import SPEC as TMDB
from revenge.runtime.errors import ServiceUnavailable

__all__ = [
    "METADATA_DUE",
    "METADATA_FETCH",
    "METADATA_PROVIDERS",
    "MODULE",
    "REGISTRY",
    "FetchResult",
    "Lookup",
    "MetadataProvider",
    "ProviderAnswerError",
    "ProviderError",
    "ProviderRegistry",
    "ProviderSpec",
    "ProviderUnavailable",
    "Providers",
    "RemoteImage",
    "RemoteMetadata",
    "fetch_item",
    "install",
    "install_providers",
]

log = logging.getLogger("revenge.metadata")

REGISTRY.add(TMDB)

METADATA_PROVIDERS: ServiceKey[Providers] = ServiceKey("metadata_providers", Tier.COLD)
METADATA_FETCH = JobKind(
    "metadata_fetch",
    queue="metadata",
    priority=-5,  # after scans, probes and images: remote data only fills gaps
    unique=True,  # key: the item id
    max_running=4,  # calls in flight at once, cluster-wide (the rate limit is per second)
    # a provider that is down: 1, 2, 4, 8 min, then the item waits for the next due run
    retry=RetryPolicy(max_attempts=5, initial_delay=60.0, max_delay=3600.0),
    timeout=300.0,
)
METADATA_DUE = JobKind(
    "metadata_due",
    queue="metadata",
    unique=True,
    schedule="* * * * *",
    retry=RetryPolicy(max_attempts=1),
    timeout=60.0,
)
_SEARCHED = frozenset({"original_title", "year", "overview", "people"})
DISABLED = "no remote metadata provider is configured (metadata.providers, metadata.tmdb_api_key)"


def install(ctx: ModuleContext) -> None:
    install_providers(ctx, REGISTRY)


def install_providers(ctx: ModuleContext, registry: ProviderRegistry) -> None:
    """Install the module with ``registry``'s providers (tests pass a registry of their own)."""
    settings = ctx.settings
    ctx.migrations(resources.files(__name__) / "migrations")
    ctx.cleanup_step("http_cache", repo.remove_expired_cache)
    unknown = registry.unknown(settings)
    if unknown:
        log.warning("metadata.providers names unknown providers: %s", ", ".join(unknown))
    if not registry.enabled(settings):
        ctx.disabled(METADATA_PROVIDERS, DISABLED)
        return
    ctx.provide(
        METADATA_PROVIDERS,
        lambda: registry.build(settings, ctx.database),
        close=lambda p: p.aclose(),
        health=lambda p: p.check(),
    )
    language = settings.metadata.language

    async def fetch(ctx: JobContext, payload: Payload) -> None:
        """Ask the providers about one item (payload ``{"item": id}``) and fill its gaps."""
        db = ctx.services.get(DATABASE)
        item_id = int(payload["item"])
        try:
            # leased: the sweeper does not offload the providers in the middle of a call
            async with ctx.services.lazy(METADATA_PROVIDERS).use() as providers:
                result = await fetch_item(db, providers, item_id, language=language)
        except ServiceUnavailable as exc:
            # The providers could not be built (TMDb unreachable at spin-up): recorded like a
            # provider down mid-call, so the due job leaves the item alone for an hour while
            # the queue retries this job, instead of queuing it again every minute.
            async with db.connection() as conn:
                await repo.record_lookup(conn, item_id, "unavailable", reason=str(exc))
            raise
        if result.images:
            await ctx.services.get(JOBS).enqueue_many(
                IMAGES_PROCESS.name,
                [{"image": i} for i in result.images],
                keys=[str(i) for i in result.images],
            )
        if _SEARCHED.intersection(result.filled):
            await reindex_item(ctx, db, "WHERE i.id = %s", item_id, "the metadata fetch")

    async def due(ctx: JobContext, payload: Payload) -> None:
        """Queue ``metadata_fetch`` for the items that are due."""
        async with ctx.services.get(DATABASE).connection() as conn:
            ids = await repo.due_items(
                conn,
                KINDS,
                refresh_after=settings.metadata.refresh_after,
                limit=settings.metadata.batch,
            )
        if ids:
            await ctx.services.get(JOBS).enqueue_many(
                METADATA_FETCH.name, [{"item": i} for i in ids], keys=[str(i) for i in ids]
            )

    ctx.job(METADATA_FETCH, fetch)
    ctx.job(METADATA_DUE, due)


MODULE = Module("metadata", install)
