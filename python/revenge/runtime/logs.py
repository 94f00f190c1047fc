"""Log lines an operator can trust: one line each, JSON for machines, key=value for people.

:func:`configure` installs one handler on the root logger, writing to stderr: JSON
objects (``format="json"``, or ``"auto"`` when stderr is not a terminal) or readable
``time LEVEL logger message key=value`` lines (``"text"``, or ``"auto"`` on a
terminal). Every field a record carries in ``extra`` is written; so are the ids of
what is running when it is logged (:data:`request_id` inside a request, :data:`job_id`
inside a job), kept in context variables so any module's line carries them.

Values are escaped in both formats: JSON strings by the encoder, text values quoted
(``repr``) whenever they hold a space, a quote, ``=`` or a control character, so a
value a client chose (CR/LF included) can never end a line or forge a field.

The access line of each HTTP request (see :mod:`revenge.http.access`) is built
without a ``LogRecord`` (it is on every request's path) but by the same rules, into
the same stream.

>>> text_value("plain")
'plain'
>>> text_value("two words\\r\\nINFO forged=1")
"'two words\\\\r\\\\nINFO forged=1'"
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import logging
import sys
import threading
import time
from typing import IO, Any, Literal

import orjson

Format = Literal["auto", "json", "text"]

job_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("revenge_job_id", default=None)
"""The id of the job being run (set by the job worker)."""

# Attributes every LogRecord has: anything else on a record came in ``extra``.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
_NEEDS_QUOTES = frozenset(" \"'=\\")
_MARK = "_revenge_handler"


def text_value(value: object) -> str:
    """``value`` for a key=value line: bare when safe, else a quoted, escaped literal."""
    text = value if isinstance(value, str) else str(value)
    if text and text.isprintable() and not _NEEDS_QUOTES.intersection(text):
        return text
    return repr(text)


def _escape_message(message: str) -> str:
    # A message is ours, but may embed a value: CR, LF and other controls never pass.
    return message if message.isprintable() else repr(message)[1:-1]


class _Clock:
    """``2026-12-02T13:04:05.123Z``: the seconds part formatted once per second, the
    whole once per millisecond (a busy worker's lines share them)."""

    __slots__ = ("_milli", "_prefix", "_second", "_stamp")

    def __init__(self) -> None:
        self._second = self._milli = -1
        self._prefix = self._stamp = ""

    def stamp(self, now: float) -> str:
        milli = int(now * 1000)
        if milli == self._milli:
            return self._stamp
        second = milli // 1000
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        self._milli = milli
        self._stamp = f"{self._prefix}.{milli % 1000:03d}Z"
        return self._stamp


clock = _Clock()


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
    if "job_id" not in fields:
        jid = job_id.get()
        if jid is not None:
            fields["job_id"] = jid
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg``, then the fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": clock.stamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in _fields(record).items():
            line.setdefault(key, value)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """``time LEVEL logger message key=value ...``; a traceback follows on its own lines."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            clock.stamp(record.created),
            f"{record.levelname:<7}",
            record.name,
            _escape_message(record.getMessage()),
        ]
        parts.extend(f"{k}={text_value(v)}" for k, v in _fields(record).items())
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def use_json(fmt: Format, stream: IO[str]) -> bool:
    if fmt != "auto":
        return fmt == "json"
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):
        return True


def configure(level: str = "info", fmt: Format = "auto", stream: IO[str] | None = None) -> None:
    """Root logger at ``level``, one handler on ``stream`` (stderr) in the chosen format.

    Idempotent: a second call replaces the handler it installed, never another's.
    """
    target = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(target)
    handler.setFormatter(JsonFormatter() if use_json(fmt, target) else TextFormatter())
    setattr(handler, _MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Libraries' chatter at INFO (connection pools, the queue's polling) is not the operator's.
    for noisy in ("psycopg.pool", "pgqueuer", "httpx", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    access.configure(target, use_json(fmt, target), root.isEnabledFor(logging.INFO))


AccessRecord = tuple[float, str, str, str | None, int, float, int | None]
"""``(time, request id, method, route pattern or None, status, seconds, user id or None)``."""

_PLAIN_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


class _Writer:
    """Writes on its own thread: a log reader that stalls (a full pipe, a stuck journald)
    blocks this thread, never the event loop. Past ``MAX_PENDING`` characters waiting,
    batches are dropped and counted (``dropped`` lines) rather than memory grown."""

    MAX_PENDING = 4 << 20

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.dropped = 0
        self._queue: collections.deque[str] = collections.deque()
        self._pending = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def put(self, text: str, lines: int) -> bool:
        """Queue ``text`` (``lines`` lines) for writing; False when it was dropped."""
        with self._cond:
            if self._pending + len(text) > self.MAX_PENDING:
                self.dropped += lines
                return False
            self._queue.append(text)
            self._pending += len(text)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="revenge-access-log", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()
            return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                text = self._queue[0]
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):
                pass  # a closed log stream never fails a request
            with self._cond:
                self._queue.popleft()
                self._pending -= len(text)
                self._cond.notify_all()

    def drain(self, timeout: float) -> bool:
        """Wait until everything put is written (or ``timeout``); whether it was."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue, timeout)


class AccessSink:
    """Where the access lines go: the log stream, formatted and written in batches.

    A request only appends its :data:`AccessRecord` (a tuple: ~0.2 us); the first one
    of a batch schedules :meth:`flush` on the running loop ``FLUSH_DELAY`` later (at
    once when no loop runs or ``MAX_BATCH`` records wait), which formats the batch and
    hands it to a writer thread (one ``write`` per batch). A line is thus on the stream
    within ~0.1 s; a busy worker's request path never formats or writes a log line, and
    a stalled log reader never blocks the event loop (lines are dropped and counted,
    and the next batch says how many).
    """

    FLUSH_DELAY = 0.1
    MAX_BATCH = 512

    def __init__(self) -> None:
        self.stream: IO[str] | None = None
        self.json = True
        self.enabled = False
        self._batch: list[AccessRecord] = []
        self._scheduled = False
        self._middles: dict[tuple[str, str | None, int], str] = {}
        self._writer: _Writer | None = None
        self._reported = 0

    @property
    def dropped(self) -> int:
        """Access lines dropped because the log stream was not read fast enough."""
        return self._writer.dropped if self._writer is not None else 0

    def configure(self, stream: IO[str], json: bool, enabled: bool) -> None:
        self.close()
        self.stream, self.json, self.enabled = stream, json, enabled
        self._writer = _Writer(stream) if stream is not None else None
        self._reported = 0
        self._middles.clear()

    def close(self, timeout: float = 2.0) -> None:
        """Write what waits (at shutdown), for at most ``timeout`` seconds."""
        self.flush()
        if self._writer is not None:
            self._writer.drain(timeout)

    def add(self, record: AccessRecord) -> None:
        batch = self._batch
        batch.append(record)
        if len(batch) >= self.MAX_BATCH:
            self.flush()
        elif not self._scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._scheduled = True
            loop.call_later(self.FLUSH_DELAY, self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if not self._batch or self._writer is None:
            self._batch.clear()
            return
        batch, self._batch = self._batch, []
        text = self._json_lines(batch) if self.json else self._text_lines(batch)
        writer = self._writer
        dropped = writer.dropped
        if dropped != self._reported:  # said once, in the first batch that gets through
            text = self._dropped_line(dropped - self._reported) + text
        if writer.put(text, len(batch)):
            self._reported = dropped

    def _dropped_line(self, count: int) -> str:
        message = f"{count} access lines dropped: the log stream was not read fast enough"
        stamp = clock.stamp(time.time())
        if self.json:
            return (
                f'{{"ts":"{stamp}","level":"warning","logger":"revenge.access",'
                f'"msg":"{message}","dropped":{count}}}\n'
            )
        return f"{stamp} WARNING revenge.access {message} dropped={count}\n"

    def _json_lines(self, batch: list[AccessRecord]) -> str:
        # The middle of a line depends on (method, route, status) only: made once each.
        middles, stamp = self._middles, clock.stamp
        lines = []
        last, ts = -1, ""
        for now, rid, method, route, status, seconds, user in batch:
            milli = int(now * 1000)
            if milli != last:  # a batch's lines share their milliseconds: formatted once each
                last, ts = milli, stamp(now)
            middle = middles.get((method, route, status))
            if middle is None:
                middle = self._json_middle(method, route, status)
            lines.append(
                f'{{"ts":"{ts}","level":"info","logger":"revenge.access","msg":"request",'
                f'"request_id":"{rid}{middle}{seconds * 1000.0:.3f},'
                f'"user_id":{"null" if user is None else user}}}\n'
            )
        return "".join(lines)

    def _json_middle(self, method: str, route: str | None, status: int) -> str:
        plain = method in _PLAIN_METHODS
        verb = method if plain else orjson.dumps(method).decode()[1:-1]
        middle = (
            f'","method":"{verb}","route":{orjson.dumps(route).decode()},'
            f'"status":{status},"duration_ms":'
        )
        if plain and len(self._middles) < 4096:  # a client's odd methods are not kept
            self._middles[(method, route, status)] = middle
        return middle

    def _text_lines(self, batch: list[AccessRecord]) -> str:
        lines = []
        for now, rid, method, route, status, seconds, user in batch:
            verb = method if method in _PLAIN_METHODS else text_value(method)
            where = "-" if route is None else text_value(route)
            lines.append(
                f"{clock.stamp(now)} INFO    revenge.access request request_id={rid} "
                f"method={verb} route={where} status={status} "
                f"duration_ms={seconds * 1000.0:.3f} user_id={'-' if user is None else user}\n"
            )
        return "".join(lines)


access = AccessSink()
"""The process's access-line sink (configured by :func:`configure`)."""
