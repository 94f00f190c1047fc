"""The provider registry: which remote providers exist, which are on, and the built set.

A provider is registered once (:meth:`ProviderRegistry.add`) with a test of its own
configuration and a builder. It is *on* when ``metadata.providers`` names it and its keys
are set; with none on, remote metadata is off (the default: TMDb needs an API key). The
set of built providers, :class:`Providers`, is the cold ``metadata_providers`` service:
built on the first metadata job, closed when offloaded.

>>> registry = ProviderRegistry()
>>> registry.add(ProviderSpec("demo", lambda s: True, lambda s, db: None))
>>> from revenge.config import Settings
>>> [s.name for s in registry.enabled(Settings(metadata={"providers": ["demo", "nope"]}))]
['demo']
>>> registry.unknown(Settings(metadata={"providers": ["demo", "nope"]}))
['nope']
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from revenge.config import Settings
from revenge.infra.db import Database
from revenge.modules.metadata.provider import MetadataProvider

__all__ = ["REGISTRY", "ProviderRegistry", "ProviderSpec", "Providers"]

log = logging.getLogger("revenge.metadata")


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """``configured(settings)``: its keys are set; ``build(settings, database)``: the provider
    (sync or async; an async builder may talk to the provider once, e.g. to read its
    configuration; ``database`` is for its cache)."""

    name: str
    configured: Callable[[Settings], bool]
    build: Callable[[Settings, Database], Any]


class ProviderRegistry:
    def __init__(self) -> None:
        self._specs: dict[str, ProviderSpec] = {}

    def add(self, spec: ProviderSpec) -> None:
        if spec.name in self._specs:
            raise ValueError(f"a metadata provider named {spec.name!r} is already registered")
        self._specs[spec.name] = spec

    def names(self) -> list[str]:
        return list(self._specs)

    def enabled(self, settings: Settings) -> list[ProviderSpec]:
        """The providers that are on, in ``metadata.providers`` order."""
        out = []
        for name in dict.fromkeys(settings.metadata.providers):
            spec = self._specs.get(name)
            if spec is not None and spec.configured(settings):
                out.append(spec)
        return out

    def unknown(self, settings: Settings) -> list[str]:
        """Names in ``metadata.providers`` that no provider is registered under."""
        return [n for n in settings.metadata.providers if n not in self._specs]

    async def build(self, settings: Settings, database: Database) -> Providers:
        """Build every provider that is on (the cold service's factory)."""
        built: list[MetadataProvider] = []
        try:
            for spec in self.enabled(settings):
                provider = spec.build(settings, database)
                if inspect.isawaitable(provider):
                    provider = await provider
                built.append(provider)
        except BaseException:
            await Providers(tuple(built)).aclose()
            raise
        return Providers(tuple(built))


class Providers:
    """The built providers, in order: the value of the cold ``metadata_providers`` service."""

    __slots__ = ("providers",)

    def __init__(self, providers: Sequence[MetadataProvider]) -> None:
        self.providers = tuple(providers)

    def for_kind(self, kind: str) -> list[MetadataProvider]:
        return [p for p in self.providers if kind in p.kinds()]

    async def check(self) -> None:
        """Raise when a provider cannot be reached (``/health`` shows the service degraded)."""
        results = await asyncio.gather(*(p.check() for p in self.providers), return_exceptions=True)
        failed = [
            f"{p.name}: {r}" for p, r in zip(self.providers, results, strict=True) if r is not None
        ]
        if failed:
            raise ConnectionError("; ".join(failed))

    async def aclose(self) -> None:
        for provider in self.providers:
            try:
                await provider.aclose()
            except Exception:
                log.exception("closing metadata provider %s failed", provider.name)


REGISTRY = ProviderRegistry()
"""The providers Revenge knows (TMDb); a third-party module may ``REGISTRY.add`` its own."""
