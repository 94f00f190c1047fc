"""Everything ``revenge serve`` / ``revenge migrate`` do with the database before serving.

The serving parent calls :func:`prepare_database` once, before Granian starts
its workers: the URL is resolved (the embedded server is started when
``database.url`` is empty), the migrations are applied, and the URL is exported
as ``REVENGE_DATABASE__URL`` so every worker's settings point at the same
server without starting one of its own.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from revenge.infra.db.embedded import Stop, resolve_url_sync
from revenge.infra.db.migrate import Migration, migrate

if TYPE_CHECKING:
    from revenge.config import Settings

URL_ENV = "REVENGE_DATABASE__URL"


@dataclass(frozen=True, slots=True)
class PreparedDatabase:
    url: str
    stop: Stop | None  # stops the embedded server; None for a configured one
    applied: list[str]  # migrations applied by this call
    embedded: bool


def prepare_database(
    settings: Settings,
    migrations: Sequence[Migration] = (),
    *,
    environ: MutableMapping[str, str] | None = None,
) -> PreparedDatabase:
    """Resolve, apply ``migrations`` (the modules'), export. Blocking; call it where no loop runs.

    Raises :class:`~revenge.infra.db.errors.DatabaseUnreachable` (URL redacted,
    reason given), :class:`~revenge.infra.db.errors.MigrationError` or
    :class:`~revenge.infra.db.errors.EmbeddedDatabaseError`; the embedded server,
    if this call started it, is stopped again before the error propagates.
    """
    url, stop = resolve_url_sync(settings)
    try:
        applied = asyncio.run(migrate(url, migrations)) if migrations else []
    except BaseException:
        if stop is not None:
            stop()
        raise
    target = os.environ if environ is None else environ
    target[URL_ENV] = url
    return PreparedDatabase(url, stop, applied, embedded=stop is not None)
