"""Job lines of a real worker (real PostgreSQL queue): one line per run with the job's id,
kind, attempt, outcome and duration; every line a body logs carries the job's id."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from revenge.infra.jobs import JobContext, JobKind, Jobs, KindRegistry, Payload, RetryPolicy
from revenge.runtime import logs
from tests.integration.jobs_support import config, running_worker, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    logs.configure("info", "json", stream)
    yield stream
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    logs.access.configure(stream, True, False)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


async def test_job_lines_carry_the_job_id(fresh_pg_url: str, captured: io.StringIO) -> None:
    registry = KindRegistry((JobKind("greet"), JobKind("flaky", retry=RetryPolicy(max_attempts=1))))
    body_log = logging.getLogger("revenge.test.body")

    @registry.handler("greet")
    async def greet(ctx: JobContext, payload: Payload) -> None:
        body_log.info("greeting %s", payload["who"])

    @registry.handler("flaky")
    async def flaky(ctx: JobContext, payload: Payload) -> None:
        raise RuntimeError("no luck")

    async with Jobs.open(fresh_pg_url, registry=registry) as jobs:
        ok = await jobs.enqueue("greet", {"who": "line\r\nINFO forged"})
        bad = await jobs.enqueue("flaky", {})
        async with running_worker(config(fresh_pg_url), registry):
            for job_id, state in ((ok, "succeeded"), (bad, "failed")):
                await wait_for(
                    lambda j=job_id: jobs.status(j),
                    lambda s, w=state: s is not None and s.state == w,
                    f"job {job_id}",
                )
    lines = _lines(captured)
    inner = [line for line in lines if line["logger"] == "revenge.test.body"]
    assert len(inner) == 1 and inner[0]["job_id"] == ok
    assert inner[0]["msg"] == "greeting line\r\nINFO forged"  # escaped by JSON: one line
    runs = {
        line["job_id"]: line
        for line in lines
        if line["logger"] == "revenge.infra.jobs.worker" and "outcome" in line
    }
    assert runs[ok]["outcome"] == "succeeded" and runs[ok]["kind"] == "greet"
    assert runs[ok]["level"] == "info" and runs[ok]["attempt"] == 0
    assert isinstance(runs[ok]["duration_ms"], float)
    assert runs[bad]["outcome"] == "failed" and runs[bad]["level"] == "warning"
    assert all("\n" not in line for line in captured.getvalue().splitlines())
