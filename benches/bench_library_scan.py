"""The scanner end to end on the real PostgreSQL: first scan to browsable, unchanged rescan, RSS.

    python benches/bench_library_scan.py                      # 10,000 videos, 5 rescans
    python benches/bench_library_scan.py --files 1000 --rescans 2    # a quick round

The tree is ``bench_library_walk.make_tree``'s (60 % movies, 40 % TV, realistic names, NFOs
and images beside them, sparse 1-4 GB videos: no disk used), in two libraries (movies, tv)
of a throw-away database. "Browsable" means every item, file and image row committed and
every new item in the PostgreSQL search index (the scan's ``on_items``), as the
``library_scan`` job does; ffprobe is not part of it (``media_probe`` jobs, measured apart).

Printed: first scan seconds (target < 10 s), unchanged rescan seconds (each, target < 1 s),
and this process's RSS after the first scan and after each rescan (growth target < 5 MB).
Warm page cache: the tree was just made. The machine may be shared: say so with the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benches.http.harness import fresh_database
from benches.sampling import rss_mib

from bench_library_walk import make_tree
from revenge.infra.db import Database, PoolConfig
from revenge.infra.search import PostgresSearch, SearchDocument
from revenge.modules.library.scan import Scanner, WrittenItem
from revenge.modules.library.walk import walk


async def run(root: Path, url: str, rescans: int) -> None:
    db = Database(url, PoolConfig(min_conns=2, max_conns=4))
    await db.start()
    search = PostgresSearch(db)

    async def index(items: Sequence[WrittenItem]) -> None:
        await search.index(
            [SearchDocument(str(i.id), i.kind, i.title, i.original_title, i.year, i.overview,
                            i.people) for i in items]
        )  # fmt: skip

    libraries = []
    for kind, folder in (("movies", "movies"), ("tv", "tv")):
        row = await db.fetch_one(
            "INSERT INTO libraries (name, kind) VALUES (%s, %s) RETURNING id", (kind, kind)
        )
        assert row is not None
        raw = os.fsencode(root / folder)
        await db.execute(
            "INSERT INTO library_roots (library_id, path, path_text) VALUES (%s, %s, %s)",
            (row[0], raw, str(root / folder)),
        )
        libraries.append(int(row[0]))
    scanner = Scanner(db)
    started = time.perf_counter()
    reports = [await scanner.scan(lib, on_items=index) for lib in libraries]
    first = time.perf_counter() - started
    files = sum(r.files for r in reports)
    items = await db.fetch_one("SELECT count(*) FROM items")
    docs = await db.fetch_one("SELECT count(*) FROM search_documents")
    gc.collect()
    base = rss_mib()
    print(f"first scan: {files} files -> {items[0] if items else 0} items,"
          f" {docs[0] if docs else 0} search documents in {first:.2f} s (target < 10 s)")  # fmt: skip
    print(f"RSS after first scan: {base:.1f} MiB")
    times = []
    for n in range(rescans):
        started = time.perf_counter()
        again = [await scanner.scan(lib, on_items=index) for lib in libraries]
        times.append(time.perf_counter() - started)
        assert sum(r.unchanged for r in again) == files, again
        gc.collect()
        print(
            f"rescan {n + 1}: {times[-1]:.3f} s unchanged (target < 1 s), RSS {rss_mib():.1f} MiB"
        )
    growth = rss_mib() - base
    started = time.perf_counter()
    walked = sum(1 for lib in ("movies", "tv") for _ in walk(str(root / lib)))
    floor = time.perf_counter() - started
    print(
        f"floor, same run: the bare walk (scandir + stat, no parse, no database) of the"
        f" {walked} entries takes {floor:.3f} s"
    )
    print(
        f"unchanged rescan: best {min(times):.3f} s, worst {max(times):.3f} s;"
        f" RSS growth over {rescans} rescans: {growth:+.2f} MiB (target < 5 MB = 4.77 MiB)"
    )
    await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--rescans", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="revenge-scan-bench-"))
    try:
        videos, sidecars = make_tree(root, args.files)
        print(f"tree: {videos} videos, {sidecars} sidecars under {root}")
        with fresh_database() as url:
            asyncio.run(run(root, url, args.rescans))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
