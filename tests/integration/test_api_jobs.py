"""``GET /api/v1/jobs/{job_id}`` on the real app (``build_app``, real PostgreSQL and pgqueuer).

Jobs are enqueued through ``Jobs`` on their own pool; failing and succeeding runs
come from a real worker with a test registry. The app's in-process worker is off
here so a queued job stays queued while it is looked at.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from revenge.infra.jobs import JobContext, JobKind, Jobs, KindRegistry, Payload, RetryPolicy
from revenge.wiring import migrate

from .jobs_support import config, running_worker, wait_for
from .test_api_search import RunningApp, assert_problem, bearer, running_app

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

JOBS = "/api/v1/jobs"
# Kinds a content module would declare (the API reads any kind's job by id).
# library_scan is unique per key: each test queues its own library so it gets its own job.
CONTENT_KINDS = KindRegistry(
    (
        JobKind("library_scan", queue="library", unique=True),
        JobKind("metadata_fetch", queue="metadata", unique=True),
    )
)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(pg_url: str) -> AsyncIterator[RunningApp]:
    await migrate(pg_url)
    async with running_app(pg_url, REVENGE_JOBS__IN_PROCESS_WORKER="false") as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def jobs(api: RunningApp) -> AsyncIterator[Jobs]:
    async with Jobs.open(api.url, registry=CONTENT_KINDS) as queue:
        yield queue


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def admin(api: RunningApp) -> dict[str, str]:
    return bearer(await api.token(admin=True))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def user(api: RunningApp) -> dict[str, str]:
    return bearer(await api.token())


async def get_job(api: RunningApp, headers: dict[str, str], job_id: int) -> dict[str, Any]:
    reply = await api.client.get(f"{JOBS}/{job_id}", headers=headers)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def test_a_queued_job_shows_state_attempts_and_no_progress(
    api: RunningApp, jobs: Jobs, admin: dict[str, str]
) -> None:
    job_id = await jobs.enqueue("library_scan", {"library_id": 7}, key="api-test-lib-7")
    body = await get_job(api, admin, job_id)
    assert set(body) == {"id", "kind", "state", "attempts", "updated_at", "progress", "error"}
    assert body["id"] == job_id and body["kind"] == "library_scan"
    assert (body["state"], body["attempts"], body["progress"], body["error"]) == (
        "queued",
        0,
        None,
        None,
    )


async def test_progress_is_shown_as_it_is_stored(
    api: RunningApp, jobs: Jobs, admin: dict[str, str]
) -> None:
    job_id = await jobs.enqueue("metadata_fetch", {"item": "m1"})
    await jobs.set_progress(job_id, "metadata_fetch", 30, total=120, message="posters")
    progress = (await get_job(api, admin, job_id))["progress"]
    assert {k: progress[k] for k in ("done", "total", "fraction", "message")} == {
        "done": 30,
        "total": 120,
        "fraction": 0.25,
        "message": "posters",
    }
    assert isinstance(progress["updated_at"], str)


async def test_a_delayed_job_is_scheduled(
    api: RunningApp, jobs: Jobs, admin: dict[str, str]
) -> None:
    job_id = await jobs.enqueue("library_scan", {"library_id": 8}, key="api-test-lib-8", delay=3600)
    assert (await get_job(api, admin, job_id))["state"] == "scheduled"


async def test_finished_jobs_show_their_outcome_and_last_error(
    api: RunningApp, admin: dict[str, str]
) -> None:
    registry = KindRegistry(
        (
            JobKind("api_doomed", retry=RetryPolicy(max_attempts=2, initial_delay=0.05)),
            JobKind("api_ok"),
        )
    )

    @registry.handler("api_doomed")
    async def doomed(ctx: JobContext, payload: Payload) -> None:
        raise ValueError("the disk is on fire")

    @registry.handler("api_ok")
    async def ok(ctx: JobContext, payload: Payload) -> None:
        await ctx.progress(2, total=2, message="all done")

    async with Jobs.open(api.url, registry=registry) as queue:
        doomed_id = await queue.enqueue("api_doomed")
        ok_id = await queue.enqueue("api_ok")
        async with running_worker(config(api.url), registry):
            failed = await wait_for(
                lambda: get_job(api, admin, doomed_id), lambda b: b["state"] == "failed", "failure"
            )
            done = await wait_for(
                lambda: get_job(api, admin, ok_id), lambda b: b["state"] == "succeeded", "success"
            )
    assert failed["attempts"] == 2 and failed["error"] == "ValueError: the disk is on fire"
    assert done["attempts"] == 1 and done["error"] is None
    assert (done["progress"]["done"], done["progress"]["total"]) == (2, 2)
    assert done["progress"]["message"] == "all done"


async def test_an_unknown_job_is_404(api: RunningApp, admin: dict[str, str]) -> None:
    for job_id in ("0", "987654321", str(2**63 - 1)):
        reply = await api.client.get(f"{JOBS}/{job_id}", headers=admin)
        assert_problem(reply, 404, "job_not_found")


@pytest.mark.parametrize(
    "job_id", ["abc", "1.5", "-1", "1e3", "%D9%A1", "0x10", str(2**63), "9" * 30]
)
async def test_a_non_integer_id_is_422(api: RunningApp, admin: dict[str, str], job_id: str) -> None:
    # The path is declared (JobPath: an integer 0..2**63-1), so a bad id is bad input.
    reply = await api.client.get(f"{JOBS}/{job_id}", headers=admin)
    body = assert_problem(reply, 422, "validation_failed")
    assert body["field"] == "job_id"


async def test_only_administrators_may_read_jobs(
    api: RunningApp, jobs: Jobs, user: dict[str, str]
) -> None:
    job_id = await jobs.enqueue("library_scan", {"library_id": 9}, key="api-test-lib-9")
    for path in (f"{JOBS}/{job_id}", f"{JOBS}/987654321", f"{JOBS}/abc"):
        assert_problem(await api.client.get(path, headers=user), 403, "admin_required")


async def test_jobs_require_a_signed_in_caller(api: RunningApp, jobs: Jobs) -> None:
    job_id = await jobs.enqueue("library_scan", {"library_id": 10}, key="api-test-lib-10")
    assert_problem(await api.client.get(f"{JOBS}/{job_id}"), 401, "unauthenticated")
    reply = await api.client.get(f"{JOBS}/{job_id}", headers=bearer("not-a-token"))
    assert_problem(reply, 401, "unauthenticated")


async def test_a_queue_not_started_yet_is_503_not_500() -> None:
    """Before the runtime has built the queue, its provider raises ServiceUnavailable."""
    from revenge.http import HttpApp, Principal, Request, Router
    from revenge.modules.jobs import JobQueue, add_jobs_routes
    from revenge.runtime.errors import ServiceUnavailable

    async def admin_caller(request: Request) -> Principal:
        return Principal(1, "root", "admin", "session", "hash")

    def not_started() -> JobQueue:
        raise ServiceUnavailable("jobs", "not started")

    router = Router()
    add_jobs_routes(router, not_started)
    transport = httpx.ASGITransport(app=HttpApp(router, authenticator=admin_caller))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        reply = await client.get(f"{JOBS}/1")
    assert_problem(reply, 503, "jobs_unavailable")
    assert reply.headers["retry-after"] == "1"
