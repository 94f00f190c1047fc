"""A job worker in a process of its own, for the SIGKILL recovery test.

    python tests/integration/jobs_worker_proc.py <database url> <stalled_after seconds>

Its ``sticky`` body reports progress naming this process, then waits forever: the test
kills the process with SIGKILL mid-job and checks that another worker re-runs the job.
"""

from __future__ import annotations

import asyncio
import os
import sys

from revenge.infra.jobs import (
    JobContext,
    JobKind,
    KindRegistry,
    Payload,
    WorkerConfig,
    run_worker,
)

registry = KindRegistry((JobKind("sticky"),))


@registry.handler("sticky")
async def sticky(ctx: JobContext, payload: Payload) -> None:
    await ctx.progress(1, 2, f"held by pid {os.getpid()}")
    await asyncio.Event().wait()


async def main(url: str, stalled_after: float) -> None:
    config = WorkerConfig(url=url, concurrency=2, stalled_after=stalled_after, poll_interval=0.5)
    await run_worker(config, asyncio.Event(), registry=registry)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
