"""The web client in a real browser: Debian's chromium, headless, driven by Playwright.

One ``revenge serve`` (one worker, so the runtime page describes the process that does the
work) over a fresh database and clips made here with ffmpeg. The tests run in order, as a
person would: first-run setup, the runtime page with the transcoder cold, a library added
and scanned, the grid, a movie, playback, the transcoder ready then offloaded, an expired
session, escaping, narrow and television widths. Every page is screenshotted into
``<basetemp>/web-screenshots`` (or ``$REVENGE_TEST_SCREENSHOTS``). Steps that need an API
not on this server yet skip, naming it. The browser console must stay free of errors
except where a step provokes an HTTP error on purpose.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from revenge.wiring import migrate
from tests.conftest import _drop_database, _fresh_database
from tests.e2e.browser_support import CHROMIUM, browser_tab, http_errors_expected, no_console_errors
from tests.e2e.conftest import Server, free_port, run_server

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"
XSS = "<img src=x onerror=alert(1)>"
SERIES = "Night Shift"
EPISODES = [(1, 1, "Arrival"), (1, 2, "Departure"), (2, 1, "Return")]
IDLE_TTL = 12.0
"""The transcoder's idle time before it is offloaded (short, so the test sees it)."""

if not os.path.exists(CHROMIUM):
    pytest.skip("chromium is not installed (scripts/test.sh installs it)", allow_module_level=True)
if shutil.which("ffmpeg") is None:
    pytest.skip("ffmpeg is not installed (scripts/test.sh installs it)", allow_module_level=True)


def make_clip(path: Path, seconds: int, hue: str) -> None:
    """An H.264 + AAC MP4 (Chromium plays it directly and through MSE) and its poster."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
         "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "50",
         "-b:v", "3M", "-minrate", "3M", "-maxrate", "3M", "-bufsize", "3M",
         "-c:a", "aac", "-b:a", "96k", "-movflags", "+faststart", str(path)],
        check=True,
    )  # fmt: skip
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", f"gradients=s=400x600:c0=0x101828:c1={hue}:x0=0:y0=0:x1=400:y1=600:d=1",
         "-frames:v", "1", str(path.parent / "poster.jpg")],
        check=True,
    )  # fmt: skip


@dataclass
class Site:
    server: Server
    base_url: str
    media: Path
    shots: Path
    paths: set[str]
    console: list[str] = field(default_factory=list)
    expected_errors: int = 0

    def has(self, page: Any, path: str) -> bool:
        """Whether the server has the route (its OpenAPI document, read signed in)."""
        if not self.paths:
            reply = api(self, page, "GET", "/api/v1/openapi.json")
            assert reply.status == 200, reply.text()
            self.paths = set(reply.json()["paths"])
        return path in self.paths


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("web")
    media = tmp / "media"
    make_clip(media / "Big Buck (2001)" / "Big Buck (2001).mp4", 20, "0xe5484d")
    make_clip(media / "Night Train (1999)" / "Night Train (1999).mp4", 8, "0x3dd68c")
    make_clip(media / f"{XSS} (2020)" / f"{XSS} (2020).mp4", 6, "0x5eb1ef")
    make_clip(tmp / "extra" / "Short Film (2010)" / "Short Film (2010).mp4", 4, "0xf5a524")
    for season, episode, title in EPISODES:  # a tiny TV tree: a series of two seasons
        folder = tmp / "tv" / SERIES / f"Season {season}"
        make_clip(folder / f"{SERIES} - S0{season}E0{episode} - {title}.mp4", 3, "0x8e4ec6")
    shots = Path(
        os.environ.get("REVENGE_TEST_SCREENSHOTS")
        or tmp_path_factory.getbasetemp() / "web-screenshots"
    )
    shots.mkdir(parents=True, exist_ok=True)
    name, url = _fresh_database("revenge_web")
    asyncio.run(migrate(url))
    port = free_port()
    env = {
        "REVENGE_DATABASE__URL": url,
        "REVENGE_SERVER__DATA_DIR": str(tmp / "data"),
        "REVENGE_OFFLOAD__IDLE_TTL": f"{IDLE_TTL}s",
        "REVENGE_OFFLOAD__SWEEP_INTERVAL": "0.5s",
        "REVENGE_AUTH__ARGON2_TIME_COST": "1",
        "REVENGE_AUTH__ARGON2_MEMORY_KIB": "1024",
    }
    argv = [sys.executable, "-m", "revenge.cli", "serve", "--host", "127.0.0.1",
            "--port", str(port), "--workers", "1"]  # fmt: skip
    try:
        with run_server(argv, port, tmp, env) as server:
            yield Site(server, server.base_url, media, shots, set())
    finally:
        _drop_database(name)
    print(f"\nweb client screenshots: {shots}")


@pytest.fixture(scope="module")
def page(site: Site) -> Iterator[Any]:
    with browser_tab(site) as tab:
        yield tab


def shot(site: Site, page: Any, name: str, *, width: int | None = None) -> None:
    if width is not None:
        old = page.viewport_size
        page.set_viewport_size({"width": width, "height": 900 if width < 1000 else 1080})
        page.wait_for_timeout(300)
        page.screenshot(path=str(site.shots / f"{name}.png"), full_page=True)
        page.set_viewport_size(old)
    else:
        page.screenshot(path=str(site.shots / f"{name}.png"), full_page=True)


def wait_video(page: Any, condition: str, timeout: float = 60_000) -> None:
    """Wait until ``condition`` (JavaScript over ``v``, the video) holds; a failure says why."""
    try:
        page.wait_for_function(
            f"() => {{ const v = document.querySelector('video'); return Boolean(v && ({condition})); }}",
            timeout=timeout,
        )
    except Exception:
        state = page.evaluate(
            "() => { const v = document.querySelector('video');"
            " const e = document.querySelector('.state.error, .player-status');"
            " return {video: v ? {t: v.currentTime, src: v.currentSrc, err: v.error && v.error.message,"
            " ready: v.readyState} : null, said: e && e.textContent}; }"
        )
        raise AssertionError(f"video never met {condition}: {state}") from None


def go(page: Any, site: Site, route: str) -> None:
    page.goto(f"{site.base_url}/#{route}")


def api(site: Site, page: Any, method: str, path: str, **kwargs: Any) -> Any:
    """The API as the signed-in browser sees it (its cookie, the CSRF header)."""
    reply = page.request.fetch(
        f"{site.base_url}{path}",
        method=method,
        headers={"x-requested-with": "test"},
        **kwargs,
    )
    return reply


# -- first run ------------------------------------------------------------------------------------


def test_setup_creates_the_first_admin(site: Site, page: Any) -> None:
    log = site.server.output()
    assert log.count("no users exist yet") == 1, log
    assert re.search(r"setup code [A-Z0-9]{4}(-[A-Z0-9]{4}){3}", log)
    go(page, site, "/")
    page.wait_for_selector("h1:has-text('Welcome to Revenge')")
    assert page.locator("text=no setup code is needed").count() == 1  # this machine
    page.keyboard.press("Tab")  # keyboard first: the skip link, then the form
    shot(site, page, "01-setup")
    shot(site, page, "01-setup-360", width=360)
    page.fill("#f-username", "admin")
    page.fill("#f-password", PASSWORD)
    page.fill("#f-password_again", "not the same")
    page.click("button[type=submit]")
    page.wait_for_selector("text=The passwords differ")
    page.fill("#f-password_again", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("h2:has-text('Add your first library')")
    shot(site, page, "02-first-library")
    no_console_errors(site)


def test_runtime_page_shows_the_transcoder_cold(site: Site, page: Any) -> None:
    go(page, site, "/admin/runtime")
    row = page.wait_for_selector("tr[data-service=transcoder]")
    assert row.get_attribute("data-state") == "cold"
    assert page.locator("tr[data-service=database] .tier").inner_text().lower() == "warm"
    assert page.locator("tr[data-service=session_cache] .tier").inner_text().lower() == "hot"
    first = page.locator("[role=status]").inner_text()
    page.wait_for_function(
        "old => document.querySelector('[role=status]').textContent !== old", arg=first
    )  # it refreshes itself
    shot(site, page, "03-runtime-cold")
    shot(site, page, "03-runtime-cold-360", width=360)
    no_console_errors(site)


def test_add_a_library_and_scan_it(site: Site, page: Any) -> None:
    go(page, site, "/admin/libraries")
    page.wait_for_selector("h2:has-text('Add a library')")
    page.fill("#f-name", "Films")
    page.fill("#f-root", str(site.media))
    page.click("form.card-form button[type=submit]")
    page.wait_for_selector("td >> text=Films")
    page.wait_for_selector("text=/finished/", timeout=120_000)
    shot(site, page, "04-libraries")
    no_console_errors(site)


def test_the_transcoder_went_ready_after_probing(site: Site, page: Any) -> None:
    """The scan's probes ran through the cold transcoder, so it was built: now it is ready
    (or, on a slow machine, already offloaded again: it was used either way)."""
    go(page, site, "/admin/runtime")
    row = page.wait_for_selector(
        "tr[data-service=transcoder]:is([data-state=ready], [data-state=offloaded])",
        timeout=120_000,
    )  # the probe jobs may still be starting it (initialising)
    state = row.get_attribute("data-state")
    if state == "ready":
        shot(site, page, "05-runtime-ready")
    no_console_errors(site)


def test_a_library_name_is_text_not_markup(site: Site, page: Any) -> None:
    go(page, site, "/admin/libraries")
    page.wait_for_selector("h2:has-text('Add a library')")
    page.fill("#f-name", XSS)
    page.fill("#f-root", str(site.media.parent / "extra"))  # roots may not overlap
    page.click("form.card-form button[type=submit]")
    cell = page.wait_for_selector(f"td a:text-is('{XSS}')")
    assert cell.inner_text() == XSS
    assert page.locator("img[src=x]").count() == 0
    shot(site, page, "06-libraries-escaped")
    no_console_errors(site)  # an alert() would have opened a dialog, recorded as an error


def test_home_and_the_grid_with_posters(site: Site, page: Any) -> None:
    if not site.has(page, "/api/v1/movies"):
        pytest.skip("GET /api/v1/movies (browse API, issue: browse) is not on main yet")
    go(page, site, "/")
    page.wait_for_selector("nav.chips a:has-text('Films')")
    shot(site, page, "07-home")
    shot(site, page, "07-home-360", width=360)
    page.click("nav.chips a:has-text('Films')")
    page.wait_for_selector("ul.grid li.card")
    page.wait_for_selector(".poster.loaded img", timeout=60_000)
    titles = page.locator(".card-title").all_inner_texts()
    assert "Big Buck" in titles and XSS in titles
    assert page.locator("img[src=x]").count() == 0
    shot(site, page, "08-grid")
    shot(site, page, "08-grid-360", width=360)
    shot(site, page, "08-grid-tv", width=1920)
    no_console_errors(site)


def test_a_movie_page(site: Site, page: Any) -> None:
    if not site.has(page, "/api/v1/items/{item_id}") and not site.has(page, "/api/v1/items/{id}"):
        pytest.skip("GET /api/v1/items/{id} (browse API) is not on main yet")
    page.click(f".card-title:text-is('{XSS}')")
    page.wait_for_selector("article.detail h1")
    assert page.locator("article.detail h1").inner_text() == XSS
    assert page.locator("img[src=x]").count() == 0
    go(page, site, "/")
    page.wait_for_selector("nav.chips a:has-text('Films')")
    page.click("nav.chips a:has-text('Films')")
    page.click(".card-title:text-is('Big Buck')")
    page.wait_for_selector("article.detail h1:has-text('Big Buck')")
    shot(site, page, "09-movie")
    shot(site, page, "09-movie-360", width=360)
    no_console_errors(site)


def test_play_seek_and_the_position_is_saved(site: Site, page: Any) -> None:
    if not site.has(page, "/api/v1/playback/sessions"):
        pytest.skip("POST /api/v1/playback/sessions (playback API) is not on main yet")
    supported = page.evaluate(
        "() => MediaSource.isTypeSupported('video/mp4; codecs=\"avc1.640028,mp4a.40.2\"')"
    )
    assert supported, "this Chromium has no H.264 in Media Source Extensions"
    item_id = page.url.rsplit("/", 1)[-1]
    page.click("a.button.primary:has-text('Play')")
    page.wait_for_selector("video")
    wait_video(page, "v.currentTime > 3")
    assert page.locator(".player-bar .chip").inner_text() == "direct"  # H.264/AAC MP4 as it is
    shot(site, page, "10-player")
    page.evaluate("() => { const v = document.querySelector('video'); v.currentTime = 12; }")
    page.wait_for_function(
        "() => document.querySelector('video').currentTime >= 12", timeout=60_000
    )
    page.evaluate("() => document.querySelector('video').pause()")
    page.wait_for_selector("text=/Position saved at 0:1[2-9]/", timeout=30_000)
    item = api(site, page, "GET", f"/api/v1/items/{item_id}").json()
    assert item["user"]["position_ms"] >= 11_000, item["user"]
    go(page, site, f"/item/{item_id}")
    page.wait_for_selector("a.button.primary:has-text('Resume from')")
    shot(site, page, "11-movie-resume")
    no_console_errors(site)


def test_a_lower_quality_plays_through_hls_js(site: Site, page: Any) -> None:
    """Choosing a bit rate below the file's makes the server transcode to HLS, which
    Chromium plays through hls.js (Media Source Extensions); it resumes where it was."""
    if not site.has(page, "/api/v1/playback/sessions"):
        pytest.skip("POST /api/v1/playback/sessions (playback API) is not on main yet")
    page.click("a.button.primary:has-text('Resume from')")
    wait_video(page, "v.currentTime > 11")
    page.select_option("select[name=quality]", "1000000")  # the clip has 3 Mb/s
    try:
        page.wait_for_selector(".player-bar .chip:text-is('transcode')", timeout=30_000)
    except Exception:
        shot(site, page, "debug-hls")
        print(site.console, page.locator(".player-status").inner_text())
        raise
    page.wait_for_function("() => window.Hls !== undefined")
    wait_video(page, "v.currentTime > 12.5 && v.currentSrc.startsWith('blob:')", 90_000)
    # the operator's view, in a second tab while this one plays
    operator = page.context.new_page()
    try:
        go(operator, site, "/admin/runtime")
        operator.wait_for_selector("tr[data-service=transcoder][data-state=ready]")
        sessions = operator.wait_for_selector(".panel[aria-label='Playback sessions'] li")
        assert "transcode" in sessions.inner_text()
        shot(site, operator, "12-runtime-transcoding")
    finally:
        operator.close()
    no_console_errors(site)


def test_the_transcoder_is_offloaded_after_idle_ttl(site: Site, page: Any) -> None:
    go(page, site, "/admin/runtime")
    page.wait_for_selector(
        "tr[data-service=transcoder][data-state=offloaded]", timeout=(IDLE_TTL + 30) * 1000
    )
    assert int(page.locator("tr[data-service=transcoder] td.num").last.inner_text()) >= 1
    shot(site, page, "13-runtime-offloaded")
    shot(site, page, "13-runtime-tv", width=1920)
    no_console_errors(site)


def test_search(site: Site, page: Any) -> None:
    go(page, site, "/search?q=nihgt%20train")  # a typo
    hit = page.wait_for_selector(".hits .hit-title")  # typo-tolerant search found it
    assert hit.inner_text() == "Night Train"
    shot(site, page, "13-search")
    no_console_errors(site)


def test_users_and_account_pages(site: Site, page: Any) -> None:
    go(page, site, "/admin/users")
    page.wait_for_selector("td:text-is('admin')")
    page.fill("#f-username", "viewer")
    page.fill("#f-password", "initial password")
    page.click("form.card-form button[type=submit]")
    page.wait_for_selector("td:text-is('viewer')")
    shot(site, page, "14-users")
    go(page, site, "/account")
    page.fill("#f-key_name", "living room")
    page.click("form.inline-form button[type=submit]")
    page.wait_for_selector("code.secret")
    shot(site, page, "15-account")
    no_console_errors(site)


def test_series_season_episode_and_the_next_episode(site: Site, page: Any) -> None:
    """A TV library: the series, its seasons, a season's episodes, an episode; playing
    to the end saves it watched and goes on to the next episode; the last of a season
    offers the first of the next season."""
    go(page, site, "/admin/libraries")
    page.wait_for_selector("h2:has-text('Add a library')")
    page.fill("#f-name", "Series")
    page.select_option("#f-kind", "tv")
    page.fill("#f-root", str(site.media.parent / "tv"))
    page.click("form.card-form button[type=submit]")
    page.wait_for_selector("tr:has(a:text-is('Series')) >> text=/finished/", timeout=120_000)
    go(page, site, "/")
    page.click("nav.chips a:text-is('Series')")
    page.click(f".card-title:text-is('{SERIES}')")
    page.wait_for_selector(f"article.detail h1:text-is('{SERIES}')")
    seasons = page.locator("section[aria-label=Seasons] .card-title").all_inner_texts()
    assert len(seasons) == 2, seasons
    shot(site, page, "18-series")
    shot(site, page, "18-series-360", width=360)
    page.click("section[aria-label=Seasons] .card-link >> nth=0")
    page.wait_for_selector("ol.episode-list a.episode")
    titles = page.locator("ol.episode-list .ep-title").all_inner_texts()
    assert titles == ["Arrival", "Departure"], titles
    season_url = page.url
    shot(site, page, "19-season")
    shot(site, page, "19-season-360", width=360)
    page.click("ol.episode-list a.episode >> nth=0")
    page.wait_for_selector("article.detail h1:text-is('Arrival')")
    crumbs = page.locator("p.crumbs a").all_inner_texts()
    assert crumbs[0] == SERIES and crumbs[1].startswith("Season 1"), crumbs
    first_id = page.url.rsplit("/", 1)[-1]
    shot(site, page, "20-episode")
    shot(site, page, "20-episode-tv", width=1920)
    page.click("a.button.primary:has-text('Play')")
    page.wait_for_selector("a.button.next:has-text('Departure')")
    wait_video(page, "v.readyState >= 1 && v.duration > 0")
    shot(site, page, "21-player-episode")
    page.evaluate(
        "() => { const v = document.querySelector('video'); v.currentTime = v.duration - 0.3;"
        " v.play(); }"
    )
    page.wait_for_selector(".player-bar h1:text-is('Departure')", timeout=60_000)
    state = api(site, page, "GET", f"/api/v1/items/{first_id}").json()["user"]
    assert state["played"], state
    nxt = page.wait_for_selector("a.button.next")  # the last of season 1: season 2 next
    assert "Return" in nxt.inner_text() and "S2E1" in nxt.inner_text()
    page.goto(season_url)
    page.wait_for_selector("ol.episode-list .badge[aria-label=Watched]")
    assert page.locator("ol.episode-list li:has(.badge)").count() == 1
    no_console_errors(site)


def test_a_tv_is_signed_in_with_its_code(site: Site, page: Any) -> None:
    """A TV asks for a code (no credential); the signed-in person types it on the device
    page and approves; the TV's next poll gets a session of theirs."""
    tv_headers = {"user-agent": "Living room TV (test)"}
    # the TV is a bare client (the browser's cookie would make it signed in already)
    started = httpx.post(f"{site.base_url}/api/v1/auth/device", headers=tv_headers)
    assert started.status_code == 201, started.text
    code, secret = started.json()["user_code"], started.json()["device_secret"]
    pending = httpx.post(
        f"{site.base_url}/api/v1/auth/device/token", json={"device_secret": secret}
    )
    assert pending.json()["code"] == "authorization_pending"
    go(page, site, "/account")
    page.click("a:has-text('Sign in a TV')")
    page.wait_for_selector("h1:text-is('Sign in a TV')")
    with http_errors_expected(site):
        page.fill("#f-user_code", "ZZZZ-ZZZZ")  # a code nobody was given
        page.click("form button[type=submit]")
        page.wait_for_selector(".state.error:has-text('No such code')")
    shot(site, page, "22-device-wrong")
    page.fill("#f-user_code", code.lower())  # typed as a person types it
    page.click("form button[type=submit]")
    page.wait_for_selector("text=The TV is signed in.")
    assert "Living room TV (test)" in page.locator(".notice").inner_text()
    shot(site, page, "22-device-approved")
    shot(site, page, "22-device-360", width=360)
    signed_in = httpx.post(
        f"{site.base_url}/api/v1/auth/device/token",
        json={"device_secret": secret},
        headers=tv_headers,
    )
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["user"]["username"] == "admin"
    # the approval is a cookie request that changes state: without the header, refused
    other = httpx.post(f"{site.base_url}/api/v1/auth/device", headers=tv_headers).json()
    with http_errors_expected(site):
        bare = page.request.post(
            f"{site.base_url}/api/v1/auth/device/approve",
            data={"user_code": other["user_code"]},
        )
    assert bare.status == 403 and bare.json()["code"] == "csrf_header_required"
    no_console_errors(site)


def test_every_page_fits_a_phone_and_a_television(site: Site, page: Any) -> None:
    """Every page at 360 px and 1920 px: nothing wider than the screen, and the first
    things Tab reaches show a visible focus ring. Screenshots of each."""
    libraries = {
        lib["name"]: lib for lib in api(site, page, "GET", "/api/v1/libraries").json()["items"]
    }
    films, series_lib = libraries["Films"]["id"], libraries["Series"]["id"]
    movie = api(site, page, "GET", f"/api/v1/movies?library={films}&limit=1").json()["items"][0]
    series = api(site, page, "GET", f"/api/v1/series?library={series_lib}").json()["items"][0]
    season = api(site, page, "GET", f"/api/v1/items/{series['id']}").json()["seasons"][0]
    episode = api(site, page, "GET", f"/api/v1/items/{season['id']}").json()["episodes"][0]
    pages = {
        "home": ("/", "nav.chips"),
        "grid": (f"/library/{films}", "ul.grid li.card"),
        "movie": (f"/item/{movie['id']}", "article.detail h1"),
        "series": (f"/item/{series['id']}", "section[aria-label=Seasons]"),
        "season": (f"/item/{season['id']}", "ol.episode-list"),
        "episode": (f"/item/{episode['id']}", "p.crumbs"),
        "search": ("/search?q=night", ".hits"),
        "account": ("/account", "code, table, p.muted"),
        "device": ("/device", "#f-user_code"),
        "libraries": ("/admin/libraries", "td a"),
        "users": ("/admin/users", "td"),
        "runtime": ("/admin/runtime", "tr[data-service]"),
    }
    too_wide = []
    no_ring = []
    for width in (360, 1920):
        page.set_viewport_size({"width": width, "height": 800 if width < 1000 else 1080})
        for name, (route, ready) in pages.items():
            go(page, site, route)
            page.wait_for_selector(ready)
            page.wait_for_timeout(200)
            overflow = page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
            if overflow > 0:
                too_wide.append(f"{name}@{width}: {overflow} px")
            page.screenshot(path=str(site.shots / f"w{width}-{name}.png"), full_page=True)
            page.focus("#main")  # from the top of the page's own content
            rings = 0
            for _ in range(3):  # its first three controls
                page.keyboard.press("Tab")
                ring = page.evaluate(
                    "() => { const el = document.activeElement; const s = getComputedStyle(el);"
                    " return el === document.body ? 'body' :"
                    " (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2) ? '' :"
                    " el.tagName + '.' + el.className; }"
                )
                if ring == "body":  # past the page's last control
                    break
                if ring:
                    no_ring.append(f"{name}@{width}: {ring}")
                rings += 1
            if rings == 0:
                no_ring.append(f"{name}@{width}: Tab reached no control")
    page.set_viewport_size({"width": 1366, "height": 900})
    assert too_wide == [], too_wide
    assert no_ring == [], no_ring
    no_console_errors(site)


def test_an_api_problem_is_shown_with_its_detail(site: Site, page: Any) -> None:
    with http_errors_expected(site):
        go(page, site, "/library/999999")
        box = page.wait_for_selector(".state.error")
        text = box.inner_text()
        assert "Library not found" in text and "999999" in text
        shot(site, page, "16-error")
    no_console_errors(site)


def test_an_expired_session_signs_in_and_comes_back(site: Site, page: Any) -> None:
    go(page, site, "/admin/users")
    page.wait_for_selector("td:text-is('viewer')")
    ended = api(site, page, "DELETE", "/api/v1/auth/sessions")  # every session of mine
    assert ended.status == 200
    with http_errors_expected(site):
        go(page, site, "/admin/runtime")
        page.wait_for_selector("h1:has-text('Sign in')")
        assert "next=" in page.url
        shot(site, page, "17-signin")
        page.fill("#f-username", "admin")
        page.fill("#f-password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("tr[data-service=transcoder]")
    assert page.url.endswith("#/admin/runtime")
    no_console_errors(site)


def test_sign_out(site: Site, page: Any) -> None:
    go(page, site, "/")
    page.click("button:has-text('Sign out')")
    page.wait_for_selector("h1:has-text('Sign in')")
    with http_errors_expected(site):
        assert api(site, page, "GET", "/api/v1/me").status == 401
    no_console_errors(site)
