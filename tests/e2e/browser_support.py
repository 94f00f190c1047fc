"""Debian's chromium, headless, driven by Playwright: one way to open a tab for a test.

The flags are the ones this machine's Chromium needs to start quietly without a network
(no background networking, component updates or sync, which would try hosts that are
not there), as root (no sandbox) and without a GPU.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class Watched(Protocol):
    """What a browser test keeps: every console error and page error seen so far."""

    console: list[str]


@contextmanager
def browser_tab(watched: Watched, width: int = 1366, height: int = 900) -> Iterator[Any]:
    """A tab whose console errors, page errors and dialogs are noted in ``watched.console``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": width, "height": height})
        tab = context.new_page()
        tab.set_default_timeout(30_000)

        def on_console(message: Any) -> None:
            if message.type == "error":
                watched.console.append(f"{message.text} ({message.location.get('url', '')})")

        tab.on("console", on_console)
        tab.on("pageerror", lambda error: watched.console.append(f"page error: {error}"))
        tab.on("dialog", lambda dialog: watched.console.append(f"dialog opened: {dialog.message}"))
        try:
            yield tab
        finally:
            context.close()
            browser.close()


def no_console_errors(watched: Watched) -> None:
    """Fail on the errors noted since the last check (and forget them)."""
    errors, watched.console[:] = list(watched.console), []
    assert errors == [], errors


@contextmanager
def http_errors_expected(watched: Watched) -> Iterator[None]:
    """A step that provokes HTTP errors on purpose: Chromium logs each failed fetch."""
    yield
    watched.console[:] = [e for e in watched.console if "Failed to load resource" not in e]
