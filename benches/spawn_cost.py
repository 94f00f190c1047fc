"""What starting a program costs from a worker-sized Python process: a ``preexec_fn`` (fork)
against ``setpriv --pdeathsig KILL`` (vfork), both arming the parent-death signal ffmpeg runs with.

    python -m benches.spawn_cost [--mb 150] [--runs 20]

The process first holds ``--mb`` MiB (a Granian worker of Revenge is ~150 MB); each start is timed
from the call to the return of ``create_subprocess_exec`` (the child has exec'd), interleaved.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from benches.record import RunRecord

from revenge.runtime.orphans import die_with_parent, dying_with_parent


async def start(argv: list[str], preexec: object) -> float:
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *argv,
        preexec_fn=preexec,
        start_new_session=True,  # type: ignore[arg-type]
    )
    elapsed = time.perf_counter() - started
    await process.wait()
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=150)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    record = RunRecord("spawn-cost")
    record.header()
    held = [bytearray(1 << 20) for _ in range(args.mb)]  # touched: resident, like a worker's heap
    ways = {"preexec_fn (fork)": (["/bin/true"], die_with_parent),
            "setpriv (vfork)": dying_with_parent(["/bin/true"])}  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.runs):
        for name, (argv, preexec) in ways.items():
            times[name].append(await start(argv, preexec))
    for name, values in times.items():
        record.print(f"- {name}, {args.mb} MiB held: median {statistics.median(values) * 1000:.2f} ms,"
                     f" max {max(values) * 1000:.2f} ms (n={len(values)})")  # fmt: skip
    record.round(kind="spawn", mb=args.mb, **{k.split()[0]: v for k, v in times.items()})
    record.finish({})
    del held


if __name__ == "__main__":
    asyncio.run(main())
