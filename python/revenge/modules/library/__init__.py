"""Libraries: movie and TV libraries, their roots, the scanner and its tables.

``MODULE`` installs it (see ``README.md`` beside this file for the schema, the
conventions every reader of these tables follows, and what each part owns):

* ``migrations/``: libraries, roots, grants, items, media files, streams, chapters,
  images, per-user state;
* the scanner's pure parts: :mod:`.walk` (the folder walk), :mod:`.naming` (what a
  file name says), :mod:`.nfo` (Kodi NFO files).

The browse API (lists, detail, next up, state) is a separate part built on these tables.
"""

from __future__ import annotations

from importlib import resources

from revenge.contract import Module, ModuleContext

__all__ = ["MODULE", "install"]


def install(ctx: ModuleContext) -> None:
    ctx.migrations(resources.files(__name__) / "migrations")


MODULE = Module("library", install)
