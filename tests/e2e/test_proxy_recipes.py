"""The reverse-proxy recipes, run for real: Debian's nginx and Caddy in front of Granian.

Each proxy gets a configuration that includes the recipe file unchanged
(deploy/nginx/revenge-proxy.conf, deploy/caddy/revenge-proxy.caddy). Through it:
Range answers (206 with the right Content-Range), a real HLS rendition byte for byte, a
32 MiB direct-play file, a stream whose first chunk must reach the client before the app
sends the rest (a buffering proxy fails this without any clock), and X-Forwarded-*
set by the proxy, never taken from the client. The first-byte times through the proxy
and direct are printed (``-s``), not asserted; ``python -m benches.proxy_first_byte``
reports them on their own.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Server, free_port, granian_argv, run_server
from tests.e2e.proxy_support import compare_first_byte, make_hls, run_caddy, run_nginx

pytestmark = pytest.mark.e2e

BIG = 32 << 20

ProxyRunner = Callable[[Path, int], AbstractContextManager[str]]
PROXIES: dict[str, tuple[str, ProxyRunner]] = {
    "nginx": ("/usr/sbin/nginx", run_nginx),
    "caddy": ("/usr/bin/caddy", run_caddy),
}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (scripts/test.sh installs Debian's)")
    folder = tmp_path_factory.mktemp("proxied-media")
    segments = make_hls(folder)
    (folder / "movie.mp4").write_bytes(os.urandom(BIG))
    port = free_port()
    env = {"REVENGE_TEST_MEDIA_DIR": str(folder)}
    argv = granian_argv(port, target="tests.e2e.proxy_app:app")
    with run_server(argv, port, folder, env) as server:
        server.folder = folder  # type: ignore[attr-defined]
        server.segments = segments  # type: ignore[attr-defined]
        yield server


@dataclass(frozen=True)
class Proxy:
    name: str
    url: str
    folder: Path  # its configuration, logs and temporary files


@pytest.fixture(scope="module", params=sorted(PROXIES))
def proxy(
    request: pytest.FixtureRequest, app: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxy]:
    binary, runner = PROXIES[request.param]
    if shutil.which(Path(binary).name) is None and not Path(binary).exists():
        pytest.skip(f"{request.param} is not installed (scripts/test.sh installs Debian's)")
    port = int(app.base_url.rsplit(":", 1)[1])
    folder = tmp_path_factory.mktemp(request.param)
    with runner(folder, port) as url:
        yield Proxy(request.param, url, folder)


def test_range_requests_pass_through(proxy: Proxy, app: Server) -> None:
    data = (app.folder / "movie.mp4").read_bytes()  # type: ignore[attr-defined]
    end = BIG - 1
    cases = [
        ("bytes=0-99", f"bytes 0-99/{BIG}", slice(0, 100)),
        ("bytes=1000000-1999999", f"bytes 1000000-1999999/{BIG}", slice(1000000, 2000000)),
        ("bytes=-500", f"bytes {BIG - 500}-{end}/{BIG}", slice(BIG - 500, BIG)),
        (f"bytes={BIG - 10}-", f"bytes {BIG - 10}-{end}/{BIG}", slice(BIG - 10, BIG)),
    ]
    for header, content_range, part in cases:
        reply = httpx.get(f"{proxy.url}/files/movie.mp4", headers={"Range": header}, timeout=30)
        assert reply.status_code == 206, (header, reply.status_code, reply.text[:200])
        assert reply.headers["content-range"] == content_range
        assert reply.content == data[part]
    unsatisfiable = httpx.get(
        f"{proxy.url}/files/movie.mp4", headers={"Range": f"bytes={BIG}-"}, timeout=30
    )
    assert unsatisfiable.status_code == 416
    assert unsatisfiable.headers["content-range"] == f"bytes */{BIG}"


def test_if_range_with_a_stale_validator_gets_the_whole_file(proxy: Proxy, app: Server) -> None:
    reply = httpx.get(
        f"{proxy.url}/files/seg000.ts",
        headers={"Range": "bytes=0-9", "If-Range": '"not-the-etag"'},
        timeout=30,
    )
    assert reply.status_code == 200
    assert reply.content == (app.folder / "seg000.ts").read_bytes()  # type: ignore[attr-defined]


def test_a_direct_play_file_streams_whole(proxy: Proxy, app: Server) -> None:
    digest = hashlib.sha256()
    with httpx.stream("GET", f"{proxy.url}/files/movie.mp4", timeout=60) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-length"] == str(BIG)
        for chunk in reply.iter_bytes():
            digest.update(chunk)
    expected = hashlib.sha256((app.folder / "movie.mp4").read_bytes())  # type: ignore[attr-defined]
    assert digest.hexdigest() == expected.hexdigest()


@pytest.mark.parametrize("proxy", ["nginx"], indirect=True)  # Caddy never spools responses
def test_a_slow_client_is_not_spooled_to_disk(proxy: Proxy, app: Server) -> None:
    """A buffering nginx reads the whole file ahead into its temp folder (up to 1 GiB)."""
    digest = hashlib.sha256()
    with httpx.stream("GET", f"{proxy.url}/files/movie.mp4", timeout=60) as reply:
        chunks = reply.iter_raw()
        digest.update(next(chunks))
        time.sleep(1)  # a paused player: a buffering proxy reads ahead meanwhile
        for chunk in chunks:
            digest.update(chunk)
    expected = hashlib.sha256((app.folder / "movie.mp4").read_bytes())  # type: ignore[attr-defined]
    assert digest.hexdigest() == expected.hexdigest()
    log = (proxy.folder / "error.log").read_text()
    assert "buffered to a temporary file" not in log, log[-2000:]


def test_hls_playlist_and_segments_through_the_proxy(proxy: Proxy, app: Server) -> None:
    folder: Path = app.folder  # type: ignore[attr-defined]
    playlist = httpx.get(f"{proxy.url}/files/index.m3u8", timeout=30)
    assert playlist.status_code == 200
    assert playlist.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert playlist.content == (folder / "index.m3u8").read_bytes()
    segments: list[str] = app.segments  # type: ignore[attr-defined]
    assert len(segments) >= 3
    for name in segments:
        reply = httpx.get(f"{proxy.url}/files/{name}", timeout=30)
        assert reply.status_code == 200, name
        assert reply.headers["content-type"] == "video/mp2t"
        assert reply.content == (folder / name).read_bytes(), name
    report = compare_first_byte(
        app.base_url, proxy.url, [f"/files/{n}" for n in segments], rounds=5
    )
    print(
        f"\nfirst byte of an HLS segment: direct {report['direct_ms']:.2f} ms, "
        f"through {proxy.name} {report['proxied_ms']:.2f} ms (x{report['ratio']:.2f}; reported only)"
    )


def test_a_stream_is_not_held_back(proxy: Proxy, app: Server) -> None:
    token = uuid.uuid4().hex
    gate = app.folder / f"{token}.gate"  # type: ignore[attr-defined]
    received = b""
    with httpx.stream("GET", f"{proxy.url}/gated/{token}", timeout=60) as reply:
        assert reply.status_code == 200
        chunks = reply.iter_raw()
        while b";" not in received:
            received += next(chunks)
        # Only now may the app send the rest: a buffering proxy never got us here in time.
        gate.touch()
        received += b"".join(chunks)
    assert received == b"first chunk;released"


def test_forwarded_headers_come_from_the_proxy_only(proxy: Proxy) -> None:
    spoofed = {
        "X-Forwarded-For": "203.0.113.66",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "evil.example",
        "X-Real-IP": "203.0.113.66",
        "Forwarded": "for=203.0.113.66;proto=https",
    }
    seen = httpx.get(f"{proxy.url}/headers", headers=spoofed, timeout=30).json()
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-real-ip"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    # nginx's $host drops the port, Caddy keeps it: either way the name the proxy was asked by.
    assert seen["x-forwarded-host"] in ("127.0.0.1", proxy.url.removeprefix("http://"))
    assert seen["forwarded"] is None
    assert seen["client"] == "127.0.0.1"
