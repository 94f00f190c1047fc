"""The web client's files, served from memory: strong ETags, gzip, long caching, a strict CSP.

Every file under ``static/`` (shipped inside the package, so the wheel carries it)
is read once when the module installs. The shell ``index.html`` is served at ``/``;
every other file at ``/static/<build>/<path>``, where ``<build>`` is a digest of all
the files together. A changed file changes the build, so those URLs may be cached
for a year (``immutable``) while relative ES-module imports keep working unchanged:
they resolve under the same build prefix. ``index.html`` itself is revalidated
(``no-cache`` with its ETag), and names the current build.

Compressible files are gzipped once at load (level 9); a client that accepts gzip
gets those bytes with their own strong ETag (a different representation).
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable

from revenge.http import Problem, Request, Response
from revenge.http.files import entity_tags

BUILD_PLACEHOLDER = "__BUILD__"
"""Written in ``index.html`` where the build's URL prefix goes."""

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",  # no inline script, no eval
        "style-src 'self'",
        "img-src 'self' blob:",
        "media-src 'self' blob:",  # Media Source Extensions play from blob: URLs
        "connect-src 'self'",
        "worker-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}
_COMPRESSIBLE = (".html", ".js", ".mjs", ".css", ".svg", ".json", ".webmanifest", ".txt")
_IMMUTABLE = "public, max-age=31536000, immutable"
_REVALIDATE = "no-cache"
_SECURITY = (("referrer-policy", "same-origin"),)  # nosniff: the route adds it
_PAGE_SECURITY = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
)


@dataclass(frozen=True, slots=True)
class Asset:
    """One file: its bytes and gzip bytes, each with its strong ETag."""

    path: str
    """Relative to ``static/`` (``app.js``, ``vendor/hls.js/hls.min.js``)."""
    content_type: str
    body: bytes
    etag: str
    gzipped: bytes | None
    gzip_etag: str | None
    cache_control: str
    page: bool
    """An HTML page: sent with the Content-Security-Policy."""

    def respond(self, request: Request) -> Response:
        """200, or 304 when ``If-None-Match`` names the representation this client would get."""
        accepts_gzip = self.gzipped is not None and _accepts_gzip(
            request.headers.get("accept-encoding", "")
        )
        body, etag = (self.gzipped, self.gzip_etag) if accepts_gzip else (self.body, self.etag)
        assert body is not None and etag is not None
        headers = [
            ("etag", etag),
            ("cache-control", self.cache_control),
            *_SECURITY,
        ]
        if self.gzipped is not None:
            headers.append(("vary", "accept-encoding"))
        if self.page:
            headers.extend(_PAGE_SECURITY)
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(304, b"", headers)
        headers.append(("content-type", self.content_type))
        if accepts_gzip:
            headers.append(("content-encoding", "gzip"))
        headers.append(("content-length", str(len(body))))
        if request.method == "HEAD":
            return Response(200, b"", headers)
        return Response(200, body, headers)


def _accepts_gzip(header: str) -> bool:
    """Whether ``Accept-Encoding`` allows gzip (a ``q=0`` refuses it).

    >>> _accepts_gzip("gzip, deflate, br"), _accepts_gzip("br;q=1, gzip;q=0"), _accepts_gzip("")
    (True, False, False)
    """
    for part in header.lower().split(","):
        name, _, params = part.strip().partition(";")
        if name.strip() in ("gzip", "*"):
            quality = params.strip()
            return not (quality.startswith("q=") and float(quality[2:] or 0) == 0)
    return False


def _matches(header: str | None, etag: str) -> bool:
    if header is None:
        return False
    if header.strip() == "*":
        return True
    tags = entity_tags(header)
    return tags is not None and any(tag == etag for _weak, tag in tags)


def _walk(folder: Traversable, prefix: str = "") -> Iterator[tuple[str, bytes]]:
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            yield from _walk(entry, f"{prefix}{entry.name}/")
        elif entry.is_file():
            yield f"{prefix}{entry.name}", entry.read_bytes()


def _content_type(path: str) -> str:
    dot = path.rfind(".")
    if dot < 0:  # LICENSE, VERSION
        return "text/plain; charset=utf-8"
    return _TYPES.get(path[dot:], "application/octet-stream")


def _asset(path: str, body: bytes, cache_control: str) -> Asset:
    digest = hashlib.sha256(body).hexdigest()[:32]
    zipped: bytes | None = None
    if path.endswith(_COMPRESSIBLE) and len(body) > 256:
        # mtime=0: the same bytes give the same gzip bytes, so the ETag holds across workers
        candidate = gzip.compress(body, compresslevel=9, mtime=0)
        if len(candidate) < len(body):
            zipped = candidate
    return Asset(
        path,
        _content_type(path),
        body,
        f'"{digest}"',
        zipped,
        f'"{digest}-gz"' if zipped is not None else None,
        cache_control,
        path.endswith(".html"),
    )


class StaticSite:
    """The files of one build; ``routes()`` says which URL serves which asset."""

    def __init__(self, files: dict[str, bytes]) -> None:
        if "index.html" not in files:
            raise ValueError("the web client has no index.html")
        digest = hashlib.sha256()
        for path in sorted(files):
            digest.update(path.encode() + b"\0" + files[path] + b"\0")
        self.build = digest.hexdigest()[:16]
        self.prefix = f"/static/{self.build}/"
        self.assets: dict[str, Asset] = {}
        for path, body in files.items():
            if path == "index.html":
                continue
            if path.count("/") != (2 if path.startswith("vendor/") else 0):
                # the two routes: /static/<build>/<file>, /static/<build>/vendor/<package>/<file>
                raise ValueError(f"web client file {path!r} is neither top-level nor vendored")
            self.assets[self.prefix + path] = _asset(path, body, _IMMUTABLE)
        shell = files["index.html"].replace(BUILD_PLACEHOLDER.encode(), self.prefix.encode())
        self.index = _asset("index.html", shell, _REVALIDATE)
        self.assets["/"] = self.index

    @classmethod
    def from_package(cls, folder: Traversable | None = None) -> StaticSite:
        """The files shipped in ``revenge/modules/web/static`` (read once, at install)."""
        root = folder or resources.files(__package__ or "revenge.modules.web") / "static"
        return cls(dict(_walk(root)))

    def shell_bytes(self, *, compressed: bool) -> int:
        """What a first visit downloads of our own code: the shell and every file it may
        import, vendored code excepted (hls.js loads only when a video needs it)."""
        total = 0
        for asset in self.assets.values():
            if asset.path.startswith("vendor/"):
                continue
            total += len(asset.gzipped or asset.body) if compressed else len(asset.body)
        return total

    async def serve(self, request: Request, *, params: object = None) -> Response:
        """The asset at ``request.path``: a 404 problem for another build or no such file."""
        asset = self.assets.get(request.path)
        if asset is None:
            raise Problem(
                404,
                "file_not_found",
                "File not found",
                f"no file {request.path} in this build ({self.build}): reload the page",
            )
        return asset.respond(request)
