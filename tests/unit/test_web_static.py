"""The web client's files: served from the package with strong ETags, gzip, long caching for
build-prefixed URLs, a strict Content-Security-Policy, and nothing that runs inline."""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import httpx
import pytest

from revenge.http import HttpApp, Router
from revenge.modules.web import CONTENT_SECURITY_POLICY, StaticSite, add_static_routes

STATIC = Path(str(resources.files("revenge.modules.web") / "static"))
SHELL_BUDGET = 150 * 1024
"""The issue's number: a first load of our own code, compressed, hls.js excluded."""


@pytest.fixture(scope="module")
def site() -> StaticSite:
    return StaticSite.from_package()


@pytest.fixture
async def client(site: StaticSite) -> AsyncIterator[httpx.AsyncClient]:
    router = Router()
    add_static_routes(router, site)
    transport = httpx.ASGITransport(app=HttpApp(router))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def test_the_shell_names_the_build_and_sends_a_strict_policy(
    client: httpx.AsyncClient, site: StaticSite
) -> None:
    reply = await client.get("/", headers={"accept-encoding": "identity"})
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "text/html; charset=utf-8"
    assert reply.headers["cache-control"] == "no-cache"
    assert reply.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    policy = dict(part.strip().split(" ", 1) for part in CONTENT_SECURITY_POLICY.split(";"))
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY and policy["object-src"] == "'none'"
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert reply.headers["x-frame-options"] == "DENY"
    assert f'src="/static/{site.build}/app.js"' in reply.text
    assert "__BUILD__" not in reply.text


async def test_strong_etag_and_304(client: httpx.AsyncClient, site: StaticSite) -> None:
    url = f"/static/{site.build}/app.js"
    plain = await client.get(url, headers={"accept-encoding": "identity"})
    etag = plain.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag), "a strong validator"
    assert etag == '"' + hashlib.sha256(plain.content).hexdigest()[:32] + '"'
    assert plain.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert plain.headers["content-type"] == "text/javascript; charset=utf-8"
    again = await client.get(url, headers={"accept-encoding": "identity", "if-none-match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    stale = await client.get(url, headers={"accept-encoding": "identity", "if-none-match": '"x"'})
    assert stale.status_code == 200 and stale.content == plain.content


async def test_gzip_is_its_own_representation(client: httpx.AsyncClient, site: StaticSite) -> None:
    url = f"/static/{site.build}/app.css"
    plain = await client.get(url, headers={"accept-encoding": "identity"})
    zipped = await client.get(url, headers={"accept-encoding": "gzip, br"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["vary"] == "accept-encoding"
    assert zipped.content == plain.content  # httpx decoded it
    assert int(zipped.headers["content-length"]) < len(plain.content) / 2
    assert zipped.headers["etag"] != plain.headers["etag"]
    assert "content-encoding" not in plain.headers
    refused = await client.get(url, headers={"accept-encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers
    # a conditional GET names the representation it holds
    assert (
        await client.get(
            url, headers={"accept-encoding": "gzip", "if-none-match": zipped.headers["etag"]}
        )
    ).status_code == 304
    assert (
        await client.get(
            url, headers={"accept-encoding": "identity", "if-none-match": zipped.headers["etag"]}
        )
    ).status_code == 200


async def test_another_build_or_a_missing_file_is_a_404_problem(
    client: httpx.AsyncClient, site: StaticSite
) -> None:
    for url in (
        "/static/0000000000000000/app.js",
        f"/static/{site.build}/nothing.js",
        f"/static/{site.build}/vendor/hls.js/nothing.js",
    ):
        reply = await client.get(url)
        assert reply.status_code == 404, url
        assert reply.headers["content-type"] == "application/problem+json"
        assert reply.json()["code"] == "file_not_found"
    head = await client.head(
        f"/static/{site.build}/app.js", headers={"accept-encoding": "identity"}
    )
    assert head.status_code == 200 and head.content == b""


def test_a_changed_file_changes_every_url() -> None:
    files = {"index.html": b'<script type="module" src="__BUILD__app.js"></script>', "app.js": b"1"}
    first = StaticSite(dict(files))
    second = StaticSite({**files, "app.js": b"2"})
    assert first.build != second.build
    assert f"/static/{first.build}/app.js" in first.assets
    assert f"/static/{second.build}/app.js".encode() in second.index.body
    with pytest.raises(ValueError, match="neither top-level nor vendored"):
        StaticSite({**files, "pages/x.js": b""})


class _Inline(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "script" and "src" not in names:
            self.found.append("inline <script>")
        if tag == "style":
            self.found.append("inline <style>")
        self.found.extend(f"{tag} {n}=" for n in names if n.startswith("on") or n == "style")


def test_the_shell_has_no_inline_script_or_style() -> None:
    parser = _Inline()
    parser.feed((STATIC / "index.html").read_text())
    assert parser.found == []


def test_our_code_never_parses_strings_as_html() -> None:
    """Escaping by construction: text from the server only ever becomes Text nodes."""
    sinks = re.compile(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function"
    )
    offenders = [
        f"{path.name}: {match.group(0)}"
        for path in STATIC.glob("*.js")
        for match in sinks.finditer(path.read_text())
    ]
    assert offenders == []


def test_the_app_shell_fits_its_budget(site: StaticSite) -> None:
    compressed = site.shell_bytes(compressed=True)
    assert 0 < compressed < SHELL_BUDGET, f"{compressed} bytes compressed"
    # measured over what is served: every non-vendored asset's gzip bytes
    served = sum(
        len(gzip.compress((STATIC / a.path).read_bytes(), 9, mtime=0))
        if a.gzipped is not None
        else len(a.body)
        for a in site.assets.values()
        if not a.path.startswith("vendor/") and a.path != "index.html"
    )
    assert served <= compressed


def test_the_vendored_hls_is_the_published_file_it_says() -> None:
    folder = STATIC / "vendor" / "hls.js"
    meta = dict(
        line.split(": ", 1) for line in (folder / "VERSION").read_text().splitlines() if line
    )
    assert meta["name"] == "hls.js" and re.fullmatch(r"\d+\.\d+\.\d+", meta["version"])
    assert meta["license"] == "Apache-2.0" and (folder / "LICENSE").stat().st_size > 100
    digest = hashlib.sha256((folder / "hls.min.js").read_bytes()).hexdigest()
    assert f"sha256 {digest}" in meta["file"], "the file differs from the one vendor.sh fetched"
    assert meta["integrity"].startswith("sha512-")
    script = (Path(__file__).parents[2] / "scripts" / "vendor.sh").read_text()
    assert f"hls.js {meta['version']}" in script, "vendor.sh pins the version kept here"


def test_the_wheel_carries_the_client() -> None:
    """maturin puts every file of ``python/revenge`` in the wheel but what git ignores, and
    ``pyproject.toml`` narrows nothing; a built wheel (``REVENGE_TEST_WHEEL``) is read too."""
    import os
    import subprocess
    import tomllib
    import zipfile

    root = Path(__file__).parents[2]
    files = sorted(p for p in STATIC.rglob("*") if p.is_file())
    assert any(p.name == "hls.min.js" for p in files)
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *map(str, files)],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert ignored.stdout == "", f"git (and so maturin) ignores: {ignored.stdout}"
    maturin = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["maturin"]
    assert maturin["python-source"] == "python"
    assert "include" not in maturin and "exclude" not in maturin
    wheel = os.environ.get("REVENGE_TEST_WHEEL")
    if wheel:
        names = set(zipfile.ZipFile(wheel).namelist())
        for path in files:
            assert f"revenge/modules/web/static/{path.relative_to(STATIC).as_posix()}" in names
