"""Log formats: JSON off a terminal, key=value on one (a real pty), escaped values, the
request and job ids from context, and the access line's two formats."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator

import pytest

from revenge.http.access import AccessLog
from revenge.runtime import logs


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    sink = (logs.access.stream, logs.access.json, logs.access.enabled)
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    logs.access.configure(*sink)  # type: ignore[arg-type]


def _record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    return logging.getLogger("revenge.t").makeRecord(
        "revenge.t", logging.WARNING, __file__, 1, msg, args, None, extra=extra
    )


def test_json_lines_escape_what_a_client_sent() -> None:
    forged = 'name\r\n{"level":"error","msg":"forged"}'
    line = logs.JsonFormatter().format(_record("login failed for %s", forged, user=forged))
    assert "\n" not in line and "\r" not in line
    parsed = json.loads(line)
    assert parsed["msg"] == f"login failed for {forged}"
    assert parsed["user"] == forged
    assert parsed["level"] == "warning" and parsed["logger"] == "revenge.t"
    assert parsed["ts"].endswith("Z")


def test_text_lines_quote_values_and_escape_the_message() -> None:
    line = logs.TextFormatter().format(
        _record("path %s", "/x\r\nINFO forged", plain="ok", spaced="a b=c")
    )
    assert "\n" not in line and "\r" not in line
    assert "plain=ok" in line
    assert "spaced='a b=c'" in line
    assert "path /x\\r\\nINFO forged" in line


def test_the_running_jobs_id_is_on_every_line() -> None:
    jid = logs.job_id.set(42)
    try:
        parsed = json.loads(logs.JsonFormatter().format(_record("inside", request_id="r1")))
        text = logs.TextFormatter().format(_record("inside"))
    finally:
        logs.job_id.reset(jid)
    assert parsed["request_id"] == "r1" and parsed["job_id"] == 42
    assert "job_id=42" in text
    assert "job_id" not in json.loads(logs.JsonFormatter().format(_record("outside")))


def test_auto_is_text_on_a_terminal_and_json_elsewhere(restore_logging: None) -> None:
    leader, follower = os.openpty()
    with os.fdopen(follower, "w", buffering=1) as tty:
        logs.configure("info", "auto", tty)
        logging.getLogger("revenge.t").info("hello %s", "there", extra={"n": 1})
        out = os.read(leader, 4096).decode()
    os.close(leader)
    assert " INFO    revenge.t hello there n=1" in out
    stream = io.StringIO()
    logs.configure("info", "auto", stream)
    logging.getLogger("revenge.t").info("hello", extra={"n": 1})
    assert json.loads(stream.getvalue())["n"] == 1


def test_level_from_config_also_switches_the_access_lines(restore_logging: None) -> None:
    stream = io.StringIO()
    logs.configure("warning", "json", stream)
    logging.getLogger("revenge.t").info("dropped")
    assert stream.getvalue() == "" and not logs.access.enabled
    logs.configure("debug", "text", stream)
    assert logs.access.enabled and not logs.access.json


def _access_line(json_format: bool, method: str = "GET") -> str:
    stream = io.StringIO()
    sink = logs.AccessSink()
    sink.configure(stream, json_format, True)
    access = AccessLog((), sink)
    access.line(access.request_id(None, None), method, "/api/v1/users/{user_id}", 200, 0.00123, 7)
    access.line("r2", method, None, 404, 0.0001, None)
    sink.close()  # formatted, handed to the writer thread, written
    return stream.getvalue()


def test_access_lines_in_both_formats() -> None:
    first, second = (json.loads(line) for line in _access_line(True).splitlines())
    assert first["route"] == "/api/v1/users/{user_id}" and first["status"] == 200
    assert first["user_id"] == 7 and first["duration_ms"] == pytest.approx(1.23)
    assert first["logger"] == "revenge.access" and first["request_id"].endswith("-1")
    assert second["route"] is None and second["user_id"] is None
    text = _access_line(False).splitlines()
    assert (
        "method=GET route=/api/v1/users/{user_id} status=200 duration_ms=1.230 user_id=7" in text[0]
    )
    assert "route=- status=404" in text[1] and "user_id=-" in text[1]


def test_an_odd_method_is_escaped() -> None:
    odd = 'GE"T\r\nX'
    for line in _access_line(True, odd).splitlines():
        assert json.loads(line)["method"] == odd
    assert all("\r" not in line for line in _access_line(False, odd).splitlines())


def test_request_ids_are_taken_only_from_trusted_proxies_and_only_well_formed() -> None:
    access = AccessLog(["10.0.0.0/8"])
    assert access.request_id("req-1.a:b_c", "10.1.2.3") == "req-1.a:b_c"
    made = access.request_id("req-1", "192.0.2.1")
    assert made != "req-1" and len(made) == 12
    assert access.request_id("has space", "10.1.2.3") != "has space"
    assert access.request_id("x" * 129, "10.1.2.3") != "x" * 129
    assert access.request_id("ok\r\nforged", "10.1.2.3") != "ok\r\nforged"
    assert AccessLog().request_id("req-1", "10.1.2.3") != "req-1"  # no proxies trusted
    ids = {access.request_id(None, None) for _ in range(1000)}
    assert len(ids) == 1000


def test_a_log_reader_that_stalls_never_blocks_the_caller() -> None:
    """A real pipe nobody reads: the writer thread blocks, the caller goes on, lines past
    the cap are dropped and counted, and once the pipe is read again the next batch says so."""
    import threading

    read_end, write_end = os.pipe()
    stream = os.fdopen(write_end, "w")
    sink = logs.AccessSink()
    sink.configure(stream, True, True)
    record = (0.0, "r", "GET", "/api/v1/me", 200, 0.0004, 1)

    def flood() -> None:
        for _ in range(60_000):  # ~14 MB of lines: far past the pipe and the 4 MB cap
            sink.add(record)
        sink.flush()

    caller = threading.Thread(target=flood)
    caller.start()
    caller.join(120)
    assert not caller.is_alive(), "the caller was blocked by the log stream"
    assert sink.dropped > 0

    got: list[bytes] = []
    reader = threading.Thread(
        target=lambda: got.extend(iter(lambda: os.read(read_end, 1 << 16), b""))
    )
    reader.start()
    sink.close(timeout=60)  # what was queued is written once the pipe is read
    sink.add(record)  # the next batch says how many were dropped
    sink.close(timeout=60)
    stream.close()
    reader.join(60)
    os.close(read_end)
    lines = b"".join(got).decode().splitlines()
    parsed = [json.loads(line) for line in lines]  # every line whole
    notice = [p for p in parsed if p["level"] == "warning"]
    # Said, and every dropped line counted once: the notices (one per batch that got
    # through after drops, so more than one when the writer freed room mid-flood) add up.
    assert notice and sum(p["dropped"] for p in notice) == sink.dropped
    assert sum(1 for p in parsed if p["msg"] == "request") == 60_001 - sink.dropped
    assert sink.dropped < 60_000  # the pipe and the cap took their share
