"""The e-mailed links in a real browser: Debian's chromium (headless, Playwright), a real
``revenge serve`` and a real SMTP server (aiosmtpd) receiving the mails.

A person who forgot their password asks for a reset on the sign-in page, the link from the
mail that arrives opens the reset page, the new password is set and signs in; the spent link
then says it was used. An invitation mail's link lets a guest choose a name and password and
lands them signed in at home. Screenshots at 360 and 1920 px go to
``<basetemp>/web-screenshots`` (or ``$REVENGE_TEST_SCREENSHOTS``).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from revenge.wiring import migrate
from tests.cheap_settings import FAST_ARGON2
from tests.conftest import _drop_database, _fresh_database
from tests.e2e.browser_support import CHROMIUM, browser_tab, http_errors_expected, no_console_errors
from tests.e2e.conftest import Server, free_port, run_server, serve_argv
from tests.e2e.test_email_accounts import Inbox

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.e2e

ADMIN_PASSWORD = "admin-password-1"
OLD_PASSWORD = "the-old-password"
NEW_PASSWORD = "a-brand-new-password"

if not os.path.exists(CHROMIUM):
    pytest.skip("chromium is not installed (scripts/test.sh installs it)", allow_module_level=True)


@dataclass
class Site:
    server: Server
    inbox: Inbox
    admin: str
    """The administrator's bearer token (set-up calls go through the API, not the browser)."""
    shots: Path
    console: list[str] = field(default_factory=list)

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.admin}"}
        return httpx.request(
            method, self.server.base_url + path, headers=headers, timeout=30, **kwargs
        )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("webmail")
    shots = Path(
        os.environ.get("REVENGE_TEST_SCREENSHOTS")
        or tmp_path_factory.getbasetemp() / "web-screenshots"
    )
    shots.mkdir(parents=True, exist_ok=True)
    inbox, smtp_port = Inbox(), free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    name, url = _fresh_database("revenge_webmail")
    asyncio.run(migrate(url))
    port = free_port()
    env = {
        "REVENGE_DATABASE__URL": url,
        "REVENGE_SERVER__DATA_DIR": str(tmp / "data"),
        "REVENGE_AUTH__BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
        **FAST_ARGON2,
        "REVENGE_EMAIL__HOST": "127.0.0.1",
        "REVENGE_EMAIL__PORT": str(smtp_port),
        "REVENGE_EMAIL__SECURITY": "none",
        "REVENGE_EMAIL__TIMEOUT": "3",
        # The links in the mails point at this very server, as a real deployment's would.
        "REVENGE_EMAIL__BASE_URL": f"http://127.0.0.1:{port}",
    }
    try:
        with run_server(serve_argv(port), port, tmp, env, "/health/ready") as server:
            login = httpx.post(
                server.base_url + "/api/v1/auth/login",
                json={"username": "admin", "password": ADMIN_PASSWORD},
                timeout=30,
            )
            assert login.status_code == 200, login.text
            yield Site(server, inbox, login.json()["token"], shots)
    finally:
        smtp.stop()
        _drop_database(name)


@pytest.fixture(scope="module")
def page(site: Site) -> Iterator[Any]:
    with browser_tab(site) as tab:
        yield tab


def shots(site: Site, page: Any, name: str) -> None:
    """The page as it is, at a phone's width and a television's."""
    old = page.viewport_size
    for width, height in ((360, 800), (1920, 1080)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(200)
        page.screenshot(path=str(site.shots / f"mail-{name}-{width}.png"), full_page=True)
    page.set_viewport_size(old)


def open_signed_out(site: Site, page: Any, url: str) -> None:
    """Load ``url`` afresh without a session: the client's start asks ``/api/v1/me`` (401)."""
    page.context.clear_cookies()
    with http_errors_expected(site):
        page.goto(url)
        page.reload()
        page.wait_for_selector("h1")


def link_in(site: Site, to: str, subject: str, route: str) -> str:
    """The link the mail to ``to`` carries: this server's address and ``#/<route>/<token>``."""
    message = site.inbox.wait_for(to, subject)
    text = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    found = re.search(rf"(\S+/#/{route}/[A-Za-z0-9_-]{{20,}})", text)
    assert found, text
    assert found.group(1).startswith(site.server.base_url + "/#/"), found.group(1)
    return found.group(1)


def signed_in_as(page: Any) -> str | None:
    reply = page.request.get(page.url.split("#")[0] + "api/v1/me")
    return reply.json()["username"] if reply.status == 200 else None


def test_forgotten_password_reset_through_the_mailed_link(site: Site, page: Any) -> None:
    made = site.call("POST", "/api/v1/users", json={"username": "ann", "password": OLD_PASSWORD})
    assert made.status_code == 201, made.text
    put = site.call(
        "PUT", f"/api/v1/users/{made.json()['id']}/email", json={"email": "ann@example.org"}
    )
    assert put.status_code == 200, put.text

    open_signed_out(site, page, site.server.base_url + "/#/signin")
    page.click("text=Forgot password?")
    page.wait_for_selector("h1:has-text('Forgot password?')")
    shots(site, page, "forgot")
    page.fill("#f-email", "ann@example.org")
    page.click("button[type=submit]")
    said = page.wait_for_selector("[role=status].notice").inner_text()
    assert "If an account has this address, a mail is on its way" in said
    shots(site, page, "forgot-sent")

    # An unknown address gets the very same answer, and no mail.
    page.goto(site.server.base_url + "/#/signin")
    page.click("text=Forgot password?")
    page.fill("#f-email", "nobody@example.org")
    page.click("button[type=submit]")
    assert page.wait_for_selector("[role=status].notice").inner_text() == said

    url = link_in(site, "ann@example.org", "Reset your Revenge password", "reset-password")
    page.goto(url)  # from the sign-in page, as a mail client opening the link in this tab
    page.wait_for_selector("h1:has-text('Choose a new password')")
    shots(site, page, "reset")
    page.fill("#f-password", NEW_PASSWORD)
    page.fill("#f-password_again", "not the same one")
    page.click("button[type=submit]")
    page.wait_for_selector("text=The passwords differ")
    page.fill("#f-password_again", NEW_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("[role=status]:has-text('Your password is changed')")
    assert page.url.endswith("#/signin?reset=1")
    shots(site, page, "reset-done")

    page.fill("#f-username", "ann")
    page.fill("#f-password", NEW_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("nav.nav")
    assert signed_in_as(page) == "ann"
    assert site.inbox.to("nobody@example.org") == []
    no_console_errors(site)

    # The link works once: opened again it says so, in the API's words, and offers a new one.
    open_signed_out(site, page, url)
    page.wait_for_selector("h1:has-text('Choose a new password')")
    with http_errors_expected(site):
        page.fill("#f-password", "yet-another-password")
        page.fill("#f-password_again", "yet-another-password")
        page.click("button[type=submit]")
        box = page.wait_for_selector(".form-errors [role=alert]")
        assert "The reset link was used" in box.inner_text()
        assert "ask for a new reset e-mail" in box.inner_text()
        assert page.locator("a:has-text('Ask for a new reset link')").count() == 1
        shots(site, page, "reset-used")
    login = httpx.post(
        site.server.base_url + "/api/v1/auth/login",
        json={"username": "ann", "password": NEW_PASSWORD},
        timeout=30,
    )
    assert login.status_code == 200, login.text  # the spent link changed nothing
    no_console_errors(site)


def test_invitation_link_signs_the_guest_in(site: Site, page: Any) -> None:
    invited = site.call("POST", "/api/v1/invitations", json={"email": "guest@example.org"})
    assert invited.status_code == 201, invited.text
    url = link_in(site, "guest@example.org", "You are invited", "invitation")
    open_signed_out(site, page, url)
    page.wait_for_selector("h1:has-text('You are invited')")
    shots(site, page, "invitation")
    with http_errors_expected(site):
        page.fill("#f-username", "ann")  # taken: the API's answer shows, the form stays
        page.fill("#f-password", NEW_PASSWORD)
        page.fill("#f-password_again", NEW_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector(".form-errors [role=alert]:has-text('Username taken')")
    page.fill("#f-username", "guest")
    page.click("button[type=submit]")
    page.wait_for_selector("nav.nav")
    assert page.url.endswith("#/")
    assert signed_in_as(page) == "guest"
    shots(site, page, "invitation-home")
    no_console_errors(site)
