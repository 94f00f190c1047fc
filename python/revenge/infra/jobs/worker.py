"""Run job bodies: ``run_worker`` (for ``revenge worker`` and the in-process worker of ``serve``).

pgqueuer's ``QueueManager`` claims jobs (``FOR UPDATE SKIP LOCKED``), heartbeats
them, re-picks jobs whose heartbeat is older than ``stalled_after`` (a dead worker's
jobs), and its ``SchedulerManager`` fires cron schedules once per tick cluster-wide.
This module adds what it lacks: the kind registry's options (back-off policy,
timeout), a local concurrency bound, progress, metrics, a supervised restart when
PostgreSQL goes away, and a shutdown that finishes or releases in-flight jobs.

Concurrency: a worker claims up to ``concurrency`` jobs per round trip but never
holds more than ``concurrency + prefetch`` (:mod:`~revenge.infra.jobs.manager`); a
semaphore lets at most ``concurrency`` bodies run. Claiming a whole batch per round
trip is what makes a burn-down of short jobs fast (benches/bench_jobs.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

import orjson
from pgqueuer import PgQueuer
from pgqueuer.errors import RetryRequested
from pgqueuer.executors import AbstractEntrypointExecutor, EntrypointExecutorParameters
from pgqueuer.models import Context, Job, Schedule

from revenge.infra.jobs.config import WorkerConfig
from revenge.infra.jobs.context import JobBody, JobContext
from revenge.infra.jobs.driver import PsycopgPoolDriver
from revenge.infra.jobs.kinds import JobKind
from revenge.infra.jobs.manager import SlotBoundQueueManager
from revenge.infra.jobs.metrics import JobMetrics, get_job_metrics
from revenge.infra.jobs.queue import Jobs, describe_failure
from revenge.infra.jobs.registry import KindRegistry
from revenge.infra.jobs.schema import install_schema
from revenge.runtime import Runtime, logs

log = logging.getLogger(__name__)

_RESTART_MIN, _RESTART_MAX = 0.5, 10.0


class _WorkerState:
    """State shared by the executors of one worker."""

    def __init__(
        self, jobs: Jobs, config: WorkerConfig, services: Runtime | None, metrics: JobMetrics
    ) -> None:
        self.jobs = jobs
        self.config = config
        # A worker without an application (tests, tools) gives its bodies an empty runtime.
        self.services = services if services is not None else Runtime(metrics=None)
        self.metrics = metrics
        self.slots = asyncio.Semaphore(config.concurrency)
        # The timeout scope of each running body: expiring it early is how a body is
        # cancelled at shutdown, without a task of its own per job.
        self.scopes: dict[int, asyncio.Timeout] = {}
        self.stopping = False  # no new body starts; claimed jobs not yet started go back
        self.releasing = False  # grace is over: running bodies are cancelled and go back
        self.released: set[int] = set()

    def release_all(self) -> None:
        """Give every claimed job back to the queue: running bodies are cancelled."""
        self.releasing = True
        now = asyncio.get_running_loop().time()
        for scope in list(self.scopes.values()):
            scope.reschedule(now)


class _KindExecutor(AbstractEntrypointExecutor):
    """Runs one kind's body under the kind's timeout and retry policy."""

    def __init__(
        self,
        parameters: EntrypointExecutorParameters,
        kind: JobKind,
        body: JobBody,
        runtime: _WorkerState,
    ) -> None:
        super().__init__(parameters)
        self.kind = kind
        self.body = body
        self.runtime = runtime

    async def execute(self, job: Job, context: Context) -> None:
        rt = self.runtime
        job_id = int(job.id)
        async with rt.slots:
            if rt.stopping:
                raise self._release(job_id)
            ctx = JobContext(job_id, self.kind.name, job.attempts, rt.jobs, rt.config, rt.services)
            payload = orjson.loads(job.payload) if job.payload else {}
            started = time.perf_counter()
            scope = asyncio.timeout(self.kind.timeout)
            token = logs.job_id.set(job_id)  # every line the body logs carries the job's id
            outcome = "cancelled"  # unless the body returns or raises an Exception
            try:
                async with scope:
                    rt.scopes[job_id] = scope
                    await self.body(ctx, payload)
                outcome = "succeeded"
            except Exception as exc:
                elapsed = time.perf_counter() - started
                if rt.releasing and scope.expired():
                    outcome = "released"
                    rt.metrics.observe(self.kind.name, outcome, elapsed)
                    raise self._release(job_id) from None
                failure = _timed_out(self.kind) if scope.expired() else exc
                if self.kind.retry.gives_up_after(job.attempts):
                    outcome = "failed"
                    rt.metrics.observe(self.kind.name, outcome, elapsed)
                    if failure is exc:
                        raise
                    raise failure from exc
                outcome = "retried"
                rt.metrics.observe(self.kind.name, outcome, elapsed)
                delay = timedelta(seconds=self.kind.retry.delay(job.attempts))
                raise RetryRequested(
                    delay=delay, reason=describe_failure(type(failure).__name__, str(failure))
                ) from exc
            finally:
                rt.scopes.pop(job_id, None)
                took = time.perf_counter() - started
                if outcome == "succeeded":
                    rt.metrics.observe(self.kind.name, outcome, took)
                log.log(
                    logging.INFO if outcome in ("succeeded", "released") else logging.WARNING,
                    "job %s #%d %s",
                    self.kind.name,
                    job_id,
                    outcome,
                    extra={
                        "kind": self.kind.name,
                        "attempt": job.attempts,
                        "outcome": outcome,
                        "duration_ms": round(took * 1000, 3),
                    },
                )
                logs.job_id.reset(token)

    def _release(self, job_id: int) -> RetryRequested:
        self.runtime.released.add(job_id)
        return RetryRequested(delay=timedelta(0), reason="released at worker shutdown")


def _timed_out(kind: JobKind) -> TimeoutError:
    """asyncio's timeout raises a ``TimeoutError`` without a message: say which limit ran out."""
    return TimeoutError(f"the job ran longer than its kind's timeout of {kind.timeout:g} s")


async def run_worker(
    config: WorkerConfig,
    stop_event: asyncio.Event,
    *,
    registry: KindRegistry,
    services: Runtime | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Run jobs until ``stop_event`` is set; then finish or release in-flight jobs and return.

    Installs the job tables first (idempotent; :class:`DatabaseUnreachable` when
    PostgreSQL cannot be reached). If PostgreSQL goes away later the worker restarts
    itself with back-off; only ``stop_event`` ends it. ``ready`` is set once its pool is
    open and the queue manager started. ``services`` (the application's runtime,
    built from the same module list in every process) reaches every body as
    ``ctx.services``.
    """
    await install_schema(config.url)
    runnable = registry.runnable(config.queues)
    if not runnable:
        log.warning("job worker has no kinds to run (queues=%s)", config.queues)
    missing = sorted(set(registry.kinds()) - set(registry.runnable()))
    if missing:
        log.info("job kinds without a body yet (left queued): %s", ", ".join(missing))
    delay = _RESTART_MIN
    while not stop_event.is_set():
        try:
            await _run_once(config, stop_event, registry, services, ready)
            delay = _RESTART_MIN
        except Exception:
            log.exception("job worker stopped unexpectedly; restarting in %.1fs", delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_event.wait(), timeout=delay)
            delay = min(delay * 2, _RESTART_MAX)


async def run_worker_until_signal(
    config: WorkerConfig,
    *,
    registry: KindRegistry,
    services: Runtime | None = None,
    signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM),
) -> None:
    """``revenge worker``: :func:`run_worker` until SIGINT or SIGTERM, then a clean stop.

    In-flight jobs get ``config.shutdown_grace`` seconds to finish; the rest go back
    to the queue for another worker.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        await run_worker(config, stop, registry=registry, services=services)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


async def _run_once(
    config: WorkerConfig,
    stop_event: asyncio.Event,
    registry: KindRegistry,
    services: Runtime | None,
    ready: asyncio.Event | None,
) -> None:
    pool_size = max(4, config.concurrency // 2 + 3)
    async with Jobs.open(
        config.url,
        registry=registry,
        install=False,
        max_size=pool_size,
        stalled_after=config.stalled_after,
    ) as jobs:
        runtime = _WorkerState(jobs, config, services, get_job_metrics())
        pgq = _queuer(jobs, config)
        _register(pgq, registry, runtime)
        run = asyncio.create_task(
            pgq.run(
                dequeue_timeout=timedelta(seconds=config.poll_interval),
                batch_size=config.concurrency,
                max_concurrent_tasks=None,  # bounded by SlotBoundQueueManager.claim_limit
                heartbeat_timeout=timedelta(seconds=config.stalled_after),
            ),
            name="revenge-jobs-worker",
        )
        sampler = asyncio.create_task(_sample_depth(runtime, stop_event))
        stop = asyncio.create_task(stop_event.wait())
        try:
            if ready is not None:
                ready.set()
            await asyncio.wait({run, stop}, return_when=asyncio.FIRST_COMPLETED)
            if run.done():
                run.result()  # a crash: let the supervisor restart us
                return
            await _stop(pgq, run, runtime)
        finally:
            for task in (sampler, stop, run):
                task.cancel()
            await asyncio.gather(sampler, stop, run, return_exceptions=True)


def _queuer(jobs: Jobs, config: WorkerConfig) -> PgQueuer:
    pgq = PgQueuer(PsycopgPoolDriver(jobs.pool, listen_conninfo=jobs.conninfo))
    qm = SlotBoundQueueManager(
        pgq.qm.queries, pgq.channel, resources=pgq.resources, claim_limit=config.claim_limit
    )
    qm.shutdown = pgq.shutdown
    pgq.qm = qm
    return pgq


def _register(pgq: PgQueuer, registry: KindRegistry, runtime: _WorkerState) -> None:
    for name, (kind, body) in registry.runnable(runtime.config.queues).items():
        pgq.entrypoint(
            name,
            concurrency_limit=kind.max_running,
            on_failure="hold",  # keep the failed job readable by id until cleanup
            executor_factory=_executor_factory(kind, body, runtime),
        )(_run_by_executor)
        expression = runtime.config.schedule_for(kind)
        if expression:
            pgq.schedule(name, expression, clean_old=True)(_enqueuer(runtime.jobs, name))


async def _run_by_executor(job: Job) -> None:
    """pgqueuer wants a function per entrypoint; ours run through :class:`_KindExecutor`."""
    raise RuntimeError(f"job {job.id} reached pgqueuer's default executor")


def _executor_factory(
    kind: JobKind, body: JobBody, runtime: _WorkerState
) -> Callable[[EntrypointExecutorParameters], AbstractEntrypointExecutor]:
    def build(params: EntrypointExecutorParameters) -> AbstractEntrypointExecutor:
        return _KindExecutor(params, kind, body, runtime)

    return build


def _enqueuer(jobs: Jobs, kind: str) -> Callable[[Schedule], Awaitable[None]]:
    async def fire(schedule: Schedule) -> None:
        job_id = await jobs.enqueue(kind)
        log.info("scheduled job %s enqueued as #%d", kind, job_id)

    return fire


async def _stop(pgq: PgQueuer, run: asyncio.Task[None], runtime: _WorkerState) -> None:
    """Stop claiming; let in-flight jobs finish within the grace period, then release them."""
    runtime.stopping = True
    pgq.shutdown.set()
    done, _ = await asyncio.wait({run}, timeout=runtime.config.shutdown_grace)
    if not done:
        log.info("releasing %d in-flight jobs at shutdown", len(runtime.scopes))
        runtime.release_all()
        await asyncio.wait({run})
    if runtime.released:
        # A release is not a failed attempt: undo the retry's attempt count.
        async with runtime.jobs.pool.connection() as conn:
            await conn.execute(
                "UPDATE pgqueuer SET attempts = greatest(attempts - 1, 0) "
                "WHERE id = ANY(%s) AND status = 'queued'",
                (sorted(runtime.released),),
            )


async def _sample_depth(runtime: _WorkerState, stop_event: asyncio.Event) -> None:
    kinds = list(runtime.jobs.registry.kinds())
    while not stop_event.is_set():
        try:
            runtime.metrics.set_depth(kinds, await runtime.jobs.queue_depth())
        except Exception as exc:
            log.debug("queue depth sample failed: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop_event.wait(), timeout=runtime.config.metrics_interval)
