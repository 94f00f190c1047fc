"""``media_probe`` over 1,000 real files: bounded concurrency, RSS, event-loop lag.

    python benches/bench_library_probe.py                       # 1,000 files, 2 at once
    python benches/bench_library_probe.py --files 200 --concurrency 4

One 2 s H.264 + AAC clip with chapters is made by ffmpeg and copied ``--files`` times
into movie folders of a throw-away database's library, scanned, then every file is probed
by ``probe_file`` (ffprobe through the real ``Transcoder``, rows written) with at most
``--concurrency`` at once (the job kind's ``max_running``). Meanwhile a ticker asks the
event loop for a 10 ms sleep and records how late it wakes (the loop lag: a blocked loop
shows here). Baseline in the same run, same files, same concurrency: bare ``ffprobe``
subprocesses with nothing stored (the floor); the ratio says what Revenge adds.
Printed: files/s both ways, the ratio, loop lag p50/p99/max, RSS before/after/peak.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benches.http.harness import fresh_database
from benches.sampling import LoopLag, rss_mib

from revenge.infra.db import Database, PoolConfig
from revenge.modules.library.probe import probe_file
from revenge.modules.library.scan import Scanner
from revenge.modules.playback import Transcoder

META = ";FFMETADATA1\ntitle=Bench Clip\n\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=1000\ntitle=A\n"


async def bounded(n: int, jobs: list, run) -> float:  # type: ignore[no-untyped-def]
    gate = asyncio.Semaphore(n)

    async def one(job) -> None:  # type: ignore[no-untyped-def]
        async with gate:
            await run(job)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(j) for j in jobs))
    return time.perf_counter() - t0


async def run(root: Path, url: str, concurrency: int) -> None:
    db = Database(url, PoolConfig(min_conns=2, max_conns=4))
    await db.start()
    row = await db.fetch_one(
        "INSERT INTO libraries (name, kind) VALUES ('p', 'movies') RETURNING id"
    )
    assert row is not None
    await db.execute(
        "INSERT INTO library_roots (library_id, path, path_text) VALUES (%s, %s, 'p')",
        (row[0], os.fsencode(root)),
    )
    ids: list[int] = []

    async def collect(files) -> None:  # type: ignore[no-untyped-def]
        ids.extend(files)

    await Scanner(db).scan(int(row[0]), on_files=collect)
    transcoder = await Transcoder.discover()
    paths = sorted(str(p) for p in root.rglob("*.mkv"))
    assert len(ids) == len(paths)
    # answers checked before timing: one file probes ok with its chapter
    assert await probe_file(db, transcoder, ids[0]) == "ok"

    async def bare(path: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            transcoder.ffprobe, "-v", "error", "-print_format", "json", "-show_format",
            "-show_streams", "-show_chapters", path, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        await proc.communicate()

    async with LoopLag() as base_lag:
        floor = await bounded(concurrency, paths, bare)
    before = rss_mib()
    outcomes: list[str | None] = []

    async def probe(file_id: int) -> None:
        outcomes.append(await probe_file(db, transcoder, file_id))

    async with LoopLag() as lag:
        took = await bounded(concurrency, ids, probe)
    after = rss_mib()
    assert outcomes.count("ok") == len(ids), {o: outcomes.count(o) for o in set(outcomes)}
    chapters = await db.fetch_one("SELECT count(*) FROM media_chapters")
    assert chapters == (len(ids),)
    n = len(ids)
    load = os.getloadavg()
    print(f"{n} files, {concurrency} at once; load average {load[0]:.2f} {load[1]:.2f}")
    print(f"bare ffprobe (floor, same run): {floor:.2f} s, {n / floor:.0f} files/s")
    print(f"media_probe (probe_file, rows written): {took:.2f} s, {n / took:.0f} files/s;"
          f" floor / revenge = {floor / took:.2f}")  # fmt: skip
    print(base_lag.line("bare ffprobe (baseline)"))
    print(lag.line("media_probe"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"RSS: {before:.1f} MiB before, {after:.1f} MiB after ({after - before:+.1f}),"
        f" peak {peak:.1f} MiB"
    )
    await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="revenge-probe-bench-"))
    try:
        clip, meta = root / "clip.mkv", root / "meta.txt"
        meta.write_text(META)
        subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2",
             "-f", "lavfi", "-i", "sine=duration=2", "-i", str(meta), "-map", "0:v", "-map", "1:a",
             "-map_chapters", "2", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
             str(clip)],
            check=True,
        )  # fmt: skip
        media = root / "media"
        for n in range(args.files):
            folder = media / f"Film {n} ({1950 + n % 70})"
            folder.mkdir(parents=True)
            shutil.copyfile(clip, folder / f"Film {n} ({1950 + n % 70}).mkv")
        with fresh_database() as url:
            asyncio.run(run(media, url, args.concurrency))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
