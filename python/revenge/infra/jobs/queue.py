"""``Jobs``: enqueue by kind, read status and progress, measure the queue, clean up.

Built on pgqueuer's tables and its enqueue; every option of a job comes from its
:class:`~revenge.infra.jobs.kinds.JobKind`, never from the call site (except an
explicit ``priority``/``delay`` override).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import orjson
from pgqueuer import Queries
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from revenge.infra.jobs.driver import ConnectionSource, PsycopgPoolDriver, conninfo_of
from revenge.infra.jobs.kinds import JobKind, Payload
from revenge.infra.jobs.registry import KindRegistry
from revenge.infra.jobs.schema import install_schema
from revenge.runtime.errors import ServiceUnavailable

JobState = Literal["queued", "scheduled", "running", "stalled", "succeeded", "failed", "canceled"]

# pgqueuer's final log statuses -> ours. "failed" is a job held after its last attempt.
_FINAL: dict[str, JobState] = {
    "successful": "succeeded",
    "exception": "failed",
    "failed": "failed",
    "canceled": "canceled",
    "deleted": "canceled",
}


def describe_failure(exc_type: str, message: str) -> str:
    """The text a failed run leaves on its job: the exception's type, then its message.

    A retry's record is pgqueuer's ``RetryRequested`` whose message already names the
    failure (the worker builds it with this function), so it is kept as it is.

    >>> describe_failure("ValueError", "the disk is on fire")
    'ValueError: the disk is on fire'
    >>> describe_failure("TimeoutError", "")
    'TimeoutError'
    >>> describe_failure("RetryRequested", "ValueError: the disk is on fire")
    'ValueError: the disk is on fire'
    """
    if exc_type == "RetryRequested":
        return message
    return f"{exc_type}: {message}" if message else exc_type


def _error_of(row: dict[str, Any]) -> str | None:
    if row["error_type"] is None:
        return None
    return describe_failure(row["error_type"], row["error"] or "")


@dataclass(frozen=True)
class JobProgress:
    """How far a job got; ``total`` is ``None`` while unknown.

    >>> JobProgress(1, "library_scan", 30, 120, "", datetime(2026, 1, 1)).fraction
    0.25
    """

    job_id: int
    kind: str
    done: int
    total: int | None
    message: str
    updated: datetime

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(self.done / self.total, 1.0)


@dataclass(frozen=True)
class JobStatus:
    """A job as the API shows it. ``error`` is the last failure's type and message, if any."""

    job_id: int
    kind: str
    state: JobState
    attempts: int
    updated: datetime
    progress: JobProgress | None
    error: str | None = None


@dataclass(frozen=True)
class CleanupReport:
    """Rows removed by one cleanup run."""

    log_rows: int
    statistics_rows: int
    failed_jobs: int
    progress_rows: int

    @property
    def total(self) -> int:
        return self.log_rows + self.statistics_rows + self.failed_jobs + self.progress_rows


class Jobs:
    """The job queue as the rest of the app sees it.

    Borrow the app's pool (``Jobs(database)`` with ``revenge.infra.db.pool.Database``,
    or a psycopg ``AsyncConnectionPool``), or let :meth:`open` make a small one.
    ``conninfo`` is needed only when it cannot be read off the pool.
    """

    def __init__(
        self,
        pool: ConnectionSource,
        *,
        conninfo: str | None = None,
        registry: KindRegistry,
        stalled_after: float = 300.0,
    ) -> None:
        self.pool = pool
        self.conninfo = conninfo or conninfo_of(pool)
        self.registry = registry
        self.stalled_after = stalled_after
        self.queries = Queries(PsycopgPoolDriver(pool, listen_conninfo=self.conninfo))
        self._installing: asyncio.Task[None] | None = None

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        conninfo: str,
        *,
        registry: KindRegistry,
        install: bool = True,
        max_size: int = 4,
        stalled_after: float = 300.0,
    ) -> AsyncIterator[Jobs]:
        """A ``Jobs`` with its own small pool (for the worker and for tools)."""
        if install:
            await install_schema(conninfo)
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_size,
            kwargs={"autocommit": True, "application_name": "revenge-jobs"},
            open=False,
            name="revenge-jobs",
        )
        async with pool:
            yield cls(pool, registry=registry, stalled_after=stalled_after)

    async def install(self) -> None:
        """Create or upgrade the job tables (idempotent, advisory-locked)."""
        await install_schema(self.conninfo)

    def install_soon(self) -> None:
        """:meth:`install` in a background task; ``enqueue`` and ``status`` wait for it.

        An application's queue does this at start: the tables are nearly always
        there already (``revenge migrate`` makes them), and checking them is not
        worth delaying readiness for.
        """
        if self._installing is None:
            self._installing = asyncio.get_running_loop().create_task(
                self.install(), name="revenge-jobs-install"
            )

    async def _installed(self) -> None:
        task = self._installing
        if task is None:
            return
        try:
            await asyncio.shield(task)
        except Exception as exc:
            if self._installing is task:  # the next caller tries again
                self._installing = asyncio.get_running_loop().create_task(self.install())
            raise ServiceUnavailable("jobs", "the queue's tables are not ready") from exc
        if self._installing is task:
            self._installing = None

    # -- enqueue ---------------------------------------------------------------------

    async def enqueue(
        self,
        kind: str,
        payload: Payload | None = None,
        *,
        key: str | None = None,
        priority: int | None = None,
        delay: float = 0.0,
    ) -> int:
        """Queue one job of ``kind``; returns its id.

        For a ``unique`` kind, when a job with the same ``key`` is already queued or
        running, nothing is added and that job's id is returned.
        """
        return (
            await self.enqueue_many(kind, [payload], keys=[key], priority=priority, delay=delay)
        )[0]

    async def enqueue_many(
        self,
        kind: str,
        payloads: Sequence[Payload | None],
        *,
        keys: Sequence[str | None] | None = None,
        priority: int | None = None,
        delay: float = 0.0,
    ) -> list[int]:
        """Queue many jobs of one kind in one statement; ids in input order."""
        spec = self.registry.kind(kind)
        await self._installed()
        n = len(payloads)
        if keys is not None and len(keys) != n:
            raise ValueError("keys and payloads differ in length")
        if n == 0:
            return []
        dedupe = [spec.dedupe_key(k) for k in (keys or [None] * n)]
        ids = await self.queries.enqueue(
            [kind] * n,
            [None if p is None else orjson.dumps(p) for p in payloads],
            [spec.priority if priority is None else priority] * n,
            [timedelta(seconds=delay) if delay > 0 else None] * n,
            dedupe if spec.unique else None,
            on_conflict="skip",
        )
        if all(i is not None for i in ids):
            return [int(i) for i in ids if i is not None]
        return await self._fill_duplicates(spec, ids, dedupe, payloads, keys or [None] * n)

    async def _fill_duplicates(
        self,
        spec: JobKind,
        ids: Sequence[int | None],
        dedupe: list[str | None],
        payloads: Sequence[Payload | None],
        keys: Sequence[str | None],
    ) -> list[int]:
        """Ids for the inputs a unique kind skipped: the jobs already holding their keys."""
        missing = sorted({d for i, d in zip(ids, dedupe, strict=True) if i is None and d})
        existing = await self._fetch(
            "SELECT dedupe_key, id FROM pgqueuer WHERE dedupe_key = ANY(%s) "
            "AND status IN ('queued', 'picked')",
            (missing,),
        )
        by_key = {row["dedupe_key"]: int(row["id"]) for row in existing}
        out: list[int] = []
        for i, d, payload, key in zip(ids, dedupe, payloads, keys, strict=True):
            if i is not None:
                out.append(int(i))
            elif d in by_key:
                out.append(by_key[d])
            else:
                # The holder finished between our insert and our read: queue it afresh.
                out.append(await self.enqueue(spec.name, payload, key=key))
        return out

    # -- status and progress ---------------------------------------------------------

    async def set_progress(
        self, job_id: int, kind: str, done: int, total: int | None = None, message: str = ""
    ) -> None:
        if done < 0 or (total is not None and total < 0):
            raise ValueError("progress counts cannot be negative")
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO revenge_job_progress (job_id, kind, done, total, message) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (job_id) DO UPDATE SET "
                "done = EXCLUDED.done, total = EXCLUDED.total, message = EXCLUDED.message, "
                "updated = now()",
                (job_id, kind, done, total, message),
            )

    async def progress(self, job_id: int) -> JobProgress | None:
        rows = await self._fetch(
            "SELECT job_id, kind, done, total, message, updated FROM revenge_job_progress "
            "WHERE job_id = %s",
            (job_id,),
        )
        return JobProgress(**rows[0]) if rows else None

    async def status(self, job_id: int) -> JobStatus | None:
        """Where a job is: in the queue, running, or finished (while its log is kept).

        ``attempts`` counts the runs started so far, a re-run after a stall included.
        """
        await self._installed()
        progress = await self.progress(job_id)
        runs = await self._fetch(
            "SELECT count(*) AS n FROM pgqueuer_log WHERE job_id = %s AND status = 'picked'",
            (job_id,),
        )
        attempts = int(runs[0]["n"])
        live = await self._fetch(
            "SELECT entrypoint, status::text AS status, updated, "
            "execute_after > now() AS deferred, "
            "heartbeat < now() - make_interval(secs => %s) AS stale "
            "FROM pgqueuer WHERE id = %s",
            (self.stalled_after, job_id),
        )
        if live:
            row = live[0]
            state: JobState
            if row["status"] == "queued":
                state = "scheduled" if row["deferred"] else "queued"
            elif row["status"] == "picked":
                state = "stalled" if row["stale"] else "running"
            else:
                state = "failed"
            error = None if state == "running" else await self._last_error(job_id)
            return JobStatus(
                job_id, row["entrypoint"], state, attempts, row["updated"], progress, error
            )
        done = await self._fetch(
            "SELECT entrypoint, status::text AS status, created, "
            "traceback->>'exception_type' AS error_type, "
            "traceback->>'exception_message' AS error "
            "FROM pgqueuer_log WHERE job_id = %s AND status NOT IN ('queued', 'picked') "
            "ORDER BY id DESC LIMIT 1",
            (job_id,),
        )
        if not done:
            return None
        row = done[0]
        return JobStatus(
            job_id,
            row["entrypoint"],
            _FINAL.get(row["status"], "failed"),
            attempts,
            row["created"],
            progress,
            _error_of(row),
        )

    async def _last_error(self, job_id: int) -> str | None:
        rows = await self._fetch(
            "SELECT traceback->>'exception_type' AS error_type, "
            "traceback->>'exception_message' AS error FROM pgqueuer_log "
            "WHERE job_id = %s AND traceback IS NOT NULL ORDER BY id DESC LIMIT 1",
            (job_id,),
        )
        return _error_of(rows[0]) if rows else None

    async def queue_depth(self) -> dict[tuple[str, JobState], int]:
        """Jobs in the queue table by (kind, state): queued, scheduled, running, stalled, failed."""
        rows = await self._fetch(
            "SELECT entrypoint, CASE "
            " WHEN status = 'queued' AND execute_after > now() THEN 'scheduled' "
            " WHEN status = 'queued' THEN 'queued' "
            " WHEN status = 'picked' AND heartbeat < now() - make_interval(secs => %s) "
            "  THEN 'stalled' "
            " WHEN status = 'picked' THEN 'running' "
            " ELSE 'failed' END AS state, count(*) AS n "
            "FROM pgqueuer GROUP BY 1, 2",
            (self.stalled_after,),
        )
        return {(row["entrypoint"], row["state"]): int(row["n"]) for row in rows}

    async def active(self, limit: int = 50) -> list[JobStatus]:
        """Running jobs first, then queued ones (oldest first), with their progress.

        ``attempts`` is left 0: counting runs per job would cost a log scan each.
        """
        rows = await self._fetch(
            "SELECT q.id, q.entrypoint, q.updated, CASE "
            " WHEN q.status = 'queued' AND q.execute_after > now() THEN 'scheduled' "
            " WHEN q.status = 'queued' THEN 'queued' "
            " WHEN q.heartbeat < now() - make_interval(secs => %s) THEN 'stalled' "
            " ELSE 'running' END AS state, "
            "p.done, p.total, p.message, p.updated AS progress_updated "
            "FROM pgqueuer q LEFT JOIN revenge_job_progress p ON p.job_id = q.id "
            "WHERE q.status IN ('queued', 'picked') "
            "ORDER BY q.status = 'picked' DESC, q.id LIMIT %s",
            (self.stalled_after, limit),
        )
        out = []
        for row in rows:
            progress = None
            if row["done"] is not None:
                progress = JobProgress(
                    row["id"], row["entrypoint"], row["done"], row["total"], row["message"],
                    row["progress_updated"],
                )  # fmt: skip
            out.append(
                JobStatus(row["id"], row["entrypoint"], row["state"], 0, row["updated"], progress)
            )
        return out

    async def sample_metrics(self) -> None:
        """Set the queue-depth gauge from the table (workers do this every ``metrics_interval``)."""
        from revenge.infra.jobs.metrics import get_job_metrics

        get_job_metrics().set_depth(list(self.registry.kinds()), await self.queue_depth())

    # -- maintenance -----------------------------------------------------------------

    async def cleanup(self, keep_finished: float) -> CleanupReport:
        """Delete the history of jobs that finished more than ``keep_finished`` seconds ago.

        Removes old log and statistics rows, failed jobs held after their last attempt,
        and progress rows of jobs no longer in the queue. Queued and running jobs are
        never touched, whatever their age.
        """
        await self.queries.aggregate_logs()  # fold the log into statistics before trimming it
        cutoff = (keep_finished,)
        async with self.pool.connection() as conn, conn.transaction():
            log = await conn.execute(
                "DELETE FROM pgqueuer_log WHERE created < now() - make_interval(secs => %s) "
                "AND job_id NOT IN (SELECT id FROM pgqueuer WHERE status IN ('queued', 'picked'))",
                cutoff,
            )
            stats = await conn.execute(
                "DELETE FROM pgqueuer_statistics WHERE created < now() - make_interval(secs => %s)",
                cutoff,
            )
            failed = await conn.execute(
                "DELETE FROM pgqueuer WHERE status = 'failed' "
                "AND updated < now() - make_interval(secs => %s)",
                cutoff,
            )
            progress = await conn.execute(
                "DELETE FROM revenge_job_progress p "
                "WHERE updated < now() - make_interval(secs => %s) "
                "AND NOT EXISTS (SELECT 1 FROM pgqueuer q WHERE q.id = p.job_id)",
                cutoff,
            )
        return CleanupReport(log.rowcount, stats.rowcount, failed.rowcount, progress.rowcount)

    async def _fetch(self, query: str, params: Sequence[object]) -> list[dict[str, Any]]:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(query, params)
            rows: list[dict[str, Any]] = await cur.fetchall()
            return rows
