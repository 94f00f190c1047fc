"""The web client Revenge serves itself, and the operator's runtime view.

``MODULE`` installs:

* ``GET /`` and ``GET /static/<build>/...``: the browser app (``static/``, shipped in
  the package; see :mod:`revenge.modules.web.static`), public like a login page: it
  holds no data, only the code that asks the API for it;
* ``GET /api/v1/admin/runtime`` (administrators): every service with its tier and
  state, the database pool, the caches against their budgets, memory pressure and
  use per category, the job queue and running jobs, and what other modules report
  (``runtime.add_report``: active playback sessions). The runtime page polls it.

The runtime answer describes the worker process that served it (``pid``): with
several Granian workers each has its own cold services, caches and pool.
"""

from __future__ import annotations

from typing import Annotated

from revenge.contract import Module, ModuleContext
from revenge.http import Input, Router, text
from revenge.modules.web.runtime_view import add_runtime_route
from revenge.modules.web.static import CONTENT_SECURITY_POLICY, StaticSite

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "MODULE",
    "StaticSite",
    "add_static_routes",
    "install",
]

_NAME = r"^[A-Za-z0-9._-]+$"
_TAGS = ("web",)


class FilePath(Input):
    build: Annotated[str, text(max_length=64, pattern=_NAME)]
    file: Annotated[str, text(max_length=200, pattern=_NAME)]


class VendorFilePath(FilePath):
    package: Annotated[str, text(max_length=200, pattern=_NAME)]


def add_static_routes(router: Router, site: StaticSite) -> None:
    """``/`` and the two file routes (``static.py`` keeps the tree to these two shapes)."""
    router.add("GET", "/", site.serve, public=True, tags=_TAGS, summary="The web client")
    router.add(
        "GET", "/static/{build}/{file}", site.serve, public=True, tags=_TAGS,
        params=FilePath, summary="A file of the web client", problems=(404,),
    )  # fmt: skip
    router.add(
        "GET", "/static/{build}/vendor/{package}/{file}", site.serve, public=True, tags=_TAGS,
        params=VendorFilePath, summary="A vendored third-party file of the web client",
        problems=(404,),
    )  # fmt: skip


def install(ctx: ModuleContext) -> None:
    if ctx.role != "serve":
        return  # a job worker serves no pages
    add_static_routes(ctx.router, StaticSite.from_package())
    add_runtime_route(ctx)


MODULE = Module("web", install)
