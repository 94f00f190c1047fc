"""A local HTTP server that answers like TMDb's documented v3 API, for the metadata tests and
benchmark (this machine reaches no internet; the real TMDb is never called).

A plain asyncio HTTP/1.1 server (keep-alive, Content-Length) on a thread of its own, so
sync and async tests, and a ``revenge serve`` subprocess, can all use it. It answers
``/configuration``, ``/find/{external_id}``, ``/movie/{id}``, ``/tv/{id}``,
``/tv/{id}/season/{n}/episode/{m}``, ``/search/movie``, ``/search/tv`` from the data in
:class:`Catalogue`, checks ``api_key`` (401 with TMDb's error body otherwise), sends
``Cache-Control: public, max-age=...``, and serves images under ``/img/``. Faults are
switched on per test: ``rate_limited`` (429 + ``Retry-After``), ``delay`` (slow answers),
``malformed``/``huge``/``html`` (paths whose answer is broken JSON, a body larger than any
client should read, or the wrong content type), ``errors`` (5xx). Every request is kept
in ``requests`` (path, query, monotonic time).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

API_KEY = "test-tmdb-key-0123456789abcdef"


def png(width: int = 64, height: int = 96) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


@dataclass
class Request:
    path: str
    query: dict[str, str]
    at: float


@dataclass
class Catalogue:
    movies: dict[int, dict[str, Any]] = field(default_factory=dict)
    tv: dict[int, dict[str, Any]] = field(default_factory=dict)
    episodes: dict[tuple[int, int, int], dict[str, Any]] = field(default_factory=dict)
    images: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # path: (type, body)


def standard_catalogue() -> Catalogue:
    """Alien (by its imdb id), Heat (by search), The Wire (tv, by tmdb id) and an episode."""
    c = Catalogue()
    c.movies[348] = {
        "id": 348,
        "imdb_id": "tt0078748",
        "title": "Alien",
        "original_title": "Alien",
        "release_date": "1979-05-25",
        "overview": "TMDb's Alien.",
        "runtime": 117,
        "tagline": "In space no one can hear you scream.",
        "vote_average": 8.2,
        "genres": [{"id": 27, "name": "Horror"}, {"id": 878, "name": "Science Fiction"}],
        "production_companies": [{"id": 19747, "name": "Brandywine Productions"}],
        "poster_path": "/alien.png",
        "backdrop_path": "/alien-bg.png",
        "credits": {
            "cast": [{"name": "Sigourney Weaver", "character": "Ripley", "order": 0}],
            "crew": [
                {"name": "Ridley Scott", "job": "Director", "department": "Directing"},
                {"name": "Dan O'Bannon", "job": "Screenplay", "department": "Writing"},
            ],
        },
        "release_dates": {
            "results": [{"iso_3166_1": "US", "release_dates": [{"certification": "R"}]}]
        },
    }
    c.movies[949] = {
        "id": 949,
        "imdb_id": "tt0113277",
        "title": "Heat",
        "original_title": "Heat",
        "release_date": "1995-12-15",
        "overview": "TMDb's Heat.",
        "runtime": 170,
        "tagline": "A Los Angeles crime saga.",
        "vote_average": 7.9,
        "genres": [{"id": 80, "name": "Crime"}],
        "poster_path": "/heat.png",
        "backdrop_path": None,
        "credits": {"cast": [], "crew": []},
    }
    c.movies[1995] = {
        "id": 1995,
        "title": "Heat",
        "release_date": "1986-03-14",
        "overview": "The other Heat.",
        "genres": [],
    }
    c.tv[1438] = {
        "id": 1438,
        "name": "The Wire",
        "original_name": "The Wire",
        "first_air_date": "2002-06-02",
        "overview": "TMDb's Wire.",
        "episode_run_time": [60],
        "vote_average": 8.6,
        "genres": [{"id": 80, "name": "Crime"}],
        "networks": [{"id": 49, "name": "HBO"}],
        "poster_path": "/wire.png",
        "external_ids": {"imdb_id": "tt0306414", "tvdb_id": 79126},
        "content_ratings": {"results": [{"iso_3166_1": "US", "rating": "TV-MA"}]},
        "credits": {"cast": [{"name": "Dominic West", "character": "McNulty", "order": 0}]},
    }
    c.episodes[(1438, 1, 2)] = {
        "id": 63045, "name": "The Detail", "air_date": "2002-06-09", "overview": "Episode 2.",
        "runtime": 58, "vote_average": 7.8, "still_path": "/wire-102.png",
        "crew": [{"name": "Clark Johnson", "job": "Director", "department": "Directing"}],
        "guest_stars": [], "external_ids": {"imdb_id": "tt0749441", "tvdb_id": 354134},
    }  # fmt: skip
    picture = png()
    for name in ("alien.png", "alien-bg.png", "heat.png", "wire.png", "wire-102.png"):
        c.images[f"/{name}"] = ("image/png", picture)
    return c


class TmdbServer:
    """Start with ``with TmdbServer() as server``; ``server.url`` is the API base URL."""

    def __init__(self, catalogue: Catalogue | None = None, *, max_age: int | None = 3600) -> None:
        self.catalogue = catalogue or standard_catalogue()
        self.max_age = max_age
        self.requests: list[Request] = []
        self.rate_limited = 0  # the next N API requests get 429
        self.retry_after = "1"
        self.delay = 0.0  # seconds before each API answer
        self.malformed: set[str] = set()
        self.huge: set[str] = set()
        self.html: set[str] = set()
        self.errors = 0  # the next N API requests get 503
        self.image_type: str | None = None  # overrides every image's content type
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/3"

    @property
    def image_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/img/"

    def api_requests(self, path: str | None = None) -> list[Request]:
        return [r for r in self.requests if r.path.startswith("/3") and
                (path is None or r.path == "/3" + path)]  # fmt: skip

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> TmdbServer:
        self._thread = threading.Thread(target=self._run, name="tmdb-test-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the test TMDb server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._server = loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", 0, reuse_address=True)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            for task in asyncio.all_tasks(loop):
                task.cancel()
            with contextlib.suppress(Exception):
                loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    # -- HTTP -----------------------------------------------------------------------------

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, target, _ = line.decode("latin-1").split(" ", 2)
                length = 0
                while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = header.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                if length:
                    await reader.readexactly(length)
                if not await self._answer(method, target, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _send(
        self, writer: asyncio.StreamWriter, status: int, body: bytes, headers: dict[str, str]
    ) -> None:
        reason = {200: "OK", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests",
                  503: "Service Unavailable"}.get(status, "Status")  # fmt: skip
        head = [f"HTTP/1.1 {status} {reason}", f"content-length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()

    async def _answer(self, method: str, target: str, writer: asyncio.StreamWriter) -> bool:
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query))
        path = parts.path
        self.requests.append(Request(path, query, time.monotonic()))
        if path.startswith("/img/"):
            name = "/" + path.split("/", 3)[-1]
            found = self.catalogue.images.get(name)
            if found is None:
                await self._send(writer, 404, b"", {"content-type": "text/plain"})
                return True
            kind, data = found
            await self._send(writer, 200, data, {"content-type": self.image_type or kind})
            return True
        if not path.startswith("/3/"):
            await self._send(writer, 404, b"", {})
            return True
        api = path[2:]
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.rate_limited > 0:
            self.rate_limited -= 1
            body = {
                "status_code": 25,
                "status_message": "Your request count is over the allowed limit.",
            }
            await self._send(writer, 429, orjson.dumps(body),
                             {"content-type": "application/json", "retry-after": self.retry_after})  # fmt: skip
            return True
        if self.errors > 0:
            self.errors -= 1
            await self._send(writer, 503, b"busy", {"content-type": "text/plain"})
            return True
        if query.get("api_key") != API_KEY:
            body = {
                "status_code": 7,
                "status_message": "Invalid API key: You must be granted a valid key.",
                "success": False,
            }
            await self._send(writer, 401, orjson.dumps(body), {"content-type": "application/json"})
            return True
        if api in self.huge:
            # claims JSON and never ends: a client must stop reading by itself
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                         b"transfer-encoding: chunked\r\n\r\n")  # fmt: skip
            chunk = b"[" + b"0," * 32768
            for _ in range(2000):  # 128 MiB at most
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
            return False
        if api in self.html:
            page = b"<html><body>Service temporarily unavailable</body></html>"
            await self._send(writer, 200, page, {"content-type": "text/html; charset=utf-8"})
            return True
        if api in self.malformed:
            await self._send(
                writer,
                200,
                b'{"id": 348, "title": "Ali',
                {"content-type": "application/json;charset=utf-8"},
            )
            return True
        status, body = self._route(api, query)
        headers = {"content-type": "application/json;charset=utf-8"}
        if self.max_age is not None:
            headers["cache-control"] = f"public, max-age={self.max_age}"
        await self._send(writer, status, orjson.dumps(body), headers)
        return True

    def _route(self, api: str, query: dict[str, str]) -> tuple[int, Any]:
        c = self.catalogue
        missing = (
            404,
            {
                "status_code": 34,
                "status_message": "The resource you requested could not be found.",
                "success": False,
            },
        )
        seg = api.strip("/").split("/")
        if seg == ["configuration"]:
            return 200, {"images": {"base_url": self.image_base, "secure_base_url": self.image_base,
                                    "poster_sizes": ["w92", "w780", "original"],
                                    "backdrop_sizes": ["w300", "w1280", "original"],
                                    "still_sizes": ["w92", "w300", "original"]},
                         "change_keys": []}  # fmt: skip
        if seg[0] == "find" and len(seg) == 2:
            source = query.get("external_source", "")
            wanted = seg[1]

            def external(d: dict[str, Any]) -> dict[str, str]:
                ext = dict(d.get("external_ids") or {})
                if "imdb_id" in d:
                    ext["imdb_id"] = d["imdb_id"]
                return {k: str(v) for k, v in ext.items()}

            movies = [
                self._brief(m) for m in c.movies.values() if external(m).get(source) == wanted
            ]
            shows = [
                self._brief(t, tv=True) for t in c.tv.values() if external(t).get(source) == wanted
            ]
            return 200, {"movie_results": movies, "tv_results": shows, "person_results": [],
                         "tv_episode_results": [], "tv_season_results": []}  # fmt: skip
        if seg[0] == "search" and len(seg) == 2 and seg[1] in ("movie", "tv"):
            tv = seg[1] == "tv"
            text = query.get("query", "").lower()
            year = query.get("first_air_date_year" if tv else "year")
            pool = c.tv.values() if tv else c.movies.values()
            hits = [
                self._brief(d, tv=tv) for d in pool
                if text in str(d.get("name" if tv else "title", "")).lower()
                and (not year or str(d.get("first_air_date" if tv else "release_date", "")).startswith(year))
            ]  # fmt: skip
            return 200, {"page": 1, "results": hits, "total_pages": 1, "total_results": len(hits)}
        if seg[0] == "movie" and len(seg) == 2 and seg[1].isdigit():
            found = c.movies.get(int(seg[1]))
            return (200, found) if found else missing
        if seg[0] == "tv" and len(seg) == 2 and seg[1].isdigit():
            found = c.tv.get(int(seg[1]))
            return (200, found) if found else missing
        if seg[0] == "tv" and len(seg) == 6 and seg[2] == "season" and seg[4] == "episode":
            with contextlib.suppress(ValueError):
                found = c.episodes.get((int(seg[1]), int(seg[3]), int(seg[5])))
                return (200, found) if found else missing
        return missing

    @staticmethod
    def _brief(d: dict[str, Any], *, tv: bool = False) -> dict[str, Any]:
        keys = ("id", "name", "original_name", "first_air_date") if tv else (
            "id", "title", "original_title", "release_date")  # fmt: skip
        return {k: d[k] for k in keys if k in d}


@contextlib.contextmanager
def tmdb_server(**options: Any) -> Iterator[TmdbServer]:
    with TmdbServer(**options) as server:
        yield server


def main() -> None:
    """``python -m tests.integration._tmdb_server``: serve in a process of its own (a bench
    measures the client without the server's thread taking turns with it for the GIL);
    prints the port, then serves until stdin closes."""
    import sys

    with TmdbServer() as server:
        print(server.port, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
