"""The ordered module list, and the application built from it for each entry point.

A new feature adds one line to :data:`MODULES`. Operators add third-party modules
without editing this file: ``modules.extra`` (``REVENGE_MODULES__EXTRA='["pkg.mod"]'``)
names packages whose ``__init__`` defines ``MODULE``; they install after the built-in
ones, in the order given.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from revenge.config import Settings
from revenge.contract import Assembly, Module, Role, assemble
from revenge.infra.db import Migration

MODULES: tuple[str, ...] = (
    "revenge.modules.auth",
    "revenge.modules.search",
    "revenge.modules.jobs",
    "revenge.modules.library",
    "revenge.modules.metadata",
    "revenge.modules.playback",
    "revenge.modules.backup",
    "revenge.modules.email",
    "revenge.modules.oidc",
    "revenge.modules.web",
)
"""Install order: a module comes after the modules whose services or tables it uses."""


def load_module(path: str) -> Module:
    """``MODULE`` of the package at ``path``; a clear error when it has none."""
    module = getattr(importlib.import_module(path), "MODULE", None)
    if not isinstance(module, Module):
        raise TypeError(f"{path} has no MODULE = Module(name, install)")
    return module


def modules(settings: Settings) -> list[Module]:
    """The built-in list, then ``modules.extra``."""
    return [load_module(path) for path in (*MODULES, *settings.modules.extra)]


def build(
    settings: Settings, *, role: Role = "serve", worker: dict[str, Any] | None = None
) -> Assembly:
    """The application for ``settings``, built from the module list (see ``assemble``)."""
    return assemble(settings, modules(settings), role=role, worker=worker)


def migrations(settings: Settings) -> Sequence[Migration]:
    """Every migration of the platform and the listed modules, in the order they apply."""
    return build(settings, role="migrate").migrations


async def migrate(url: str, settings: Settings | None = None) -> list[str]:
    """Apply the module list's pending migrations to ``url``; the idents applied.

    For tools and tests; ``revenge migrate`` and ``serve`` do the same through
    ``prepare_database``.
    """
    from revenge.config import load_settings
    from revenge.infra.db import migrate as apply
    from revenge.infra.jobs import install_schema

    applied = await apply(url, migrations(settings or load_settings()))
    await install_schema(url)
    return applied
