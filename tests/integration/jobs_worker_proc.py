"""A job worker in a process of its own, for the SIGKILL and SIGTERM tests.

    python tests/integration/jobs_worker_proc.py <database url> <stalled_after> [<grace>]

Its ``sticky`` body reports progress naming this process, then waits forever. The
tests kill the process (SIGKILL) or stop it (SIGTERM) mid-job and check what becomes
of the job.
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
    run_worker_until_signal,
)

registry = KindRegistry((JobKind("sticky"),))


@registry.handler("sticky")
async def sticky(ctx: JobContext, payload: Payload) -> None:
    await ctx.progress(1, 2, f"held by pid {os.getpid()}")
    await asyncio.Event().wait()


async def main(url: str, stalled_after: float, grace: float) -> None:
    config = WorkerConfig(
        url=url,
        concurrency=2,
        stalled_after=stalled_after,
        poll_interval=0.5,
        shutdown_grace=grace,
    )
    await run_worker_until_signal(config, registry=registry)


if __name__ == "__main__":
    grace = float(sys.argv[3]) if len(sys.argv) > 3 else 30.0
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), grace))
