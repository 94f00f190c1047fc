"""Walk + parse of a generated library: files per second, and the walk's memory.

    python benches/bench_library_walk.py                 # 10,000 videos, best of 3 rounds
    python benches/bench_library_walk.py --files 2000 --rounds 1    # a quick round

The tree is made in a temporary folder: 60 % movies (one folder each, in Plex/Jellyfin style,
in release-name style, some with several versions or parts, nfo + poster + fanart beside them),
40 % TV (shows / Season NN / episodes with an nfo and a thumbnail each, season posters), plus
extras, samples and a NAS @eaDir the walk must skip. Videos are sparse files of 1-4 GB (no disk
used). The page cache holds the folders after they are made, so these are warm-cache numbers;
a first scan of a NAS pays its network listing on top.

Reported: walk alone, parse alone (the relative paths), walk + parse together, each the best of
N rounds, and the traced peak memory of one walk + parse (flat: one folder at a time).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))

from revenge.modules.library import naming
from revenge.modules.library.walk import MediaFile, WalkStats, walk

WORDS = [
    "the",
    "dark",
    "night",
    "city",
    "river",
    "last",
    "first",
    "lost",
    "blue",
    "red",
    "shadow",
    "king",
    "queen",
    "war",
    "peace",
    "star",
    "moon",
    "sun",
    "winter",
    "summer",
    "house",
    "road",
    "man",
    "woman",
    "story",
    "secret",
    "garden",
    "fire",
    "ice",
    "storm",
    "dream",
    "empire",
    "return",
    "rise",
    "fall",
    "world",
    "edge",
    "time",
    "machine",
    "ghost",
    "island",
    "ocean",
    "mountain",
    "silent",
    "golden",
    "iron",
    "broken",
    "hidden",
    "wild",
    "sweet",
    "bitter",
    "long",
    "short",
]
GROUPS = ["SPARKS", "FLUX", "NTb", "GRP", "CMRG", "EPSiLON", "ROVERS", "ETHEL"]
TAGS = [
    "1080p.BluRay.x264",
    "2160p.UHD.BluRay.x265",
    "720p.WEB-DL.DDP5.1.H.264",
    "1080p.WEBRip.x265",
    "2160p.WEB-DL.DDP5.1.Atmos.DV.HDR.H.265",
]
GB = 1 << 30


def _title(rng: random.Random) -> str:
    return " ".join(w.capitalize() for w in rng.sample(WORDS, rng.randint(1, 4)))


def _sparse(path: Path, rng: random.Random) -> None:
    with open(path, "wb") as fh:
        fh.truncate(rng.randint(1, 4) * GB)


def make_tree(root: Path, files: int, seed: int = 10) -> tuple[int, int]:
    """Make ``files`` videos under root/movies and root/tv; returns (videos, sidecars)."""
    rng = random.Random(seed)
    movies_root, tv_root = root / "movies", root / "tv"
    videos = sidecars = 0
    movie_target = files * 6 // 10
    n = 0
    while videos < movie_target:
        n += 1
        title, year = f"{_title(rng)} {n}", rng.randint(1950, 2024)
        folder = movies_root / f"{title} ({year})"
        folder.mkdir(parents=True)
        style = rng.random()
        if style < 0.5:
            names = [f"{title} ({year}).mkv"]
        elif style < 0.75:
            tag = rng.choice(TAGS)
            names = [f"{title.replace(' ', '.')}.{year}.{tag}-{rng.choice(GROUPS)}.mkv"]
        elif style < 0.9:
            names = [f"{title} ({year}) - 1080p.mkv", f"{title} ({year}) - 4K.mkv"]
        else:
            names = [f"{title} ({year}) - cd1.avi", f"{title} ({year}) - cd2.avi"]
        for name in names[: movie_target - videos]:
            _sparse(folder / name, rng)
            videos += 1
        for car in ("movie.nfo", "poster.jpg", "fanart.jpg"):
            (folder / car).touch()
            sidecars += 1
        if rng.random() < 0.1:
            (folder / "Trailers").mkdir()
            _sparse(folder / "Trailers" / "Official Trailer.mp4", rng)
            videos += 1
        if rng.random() < 0.05:
            (folder / "sample.mkv").touch()
        if rng.random() < 0.05:
            (folder / "@eaDir").mkdir()
            (folder / "@eaDir" / "SYNOVIDEO.mkv").touch()
    s = 0
    while videos < files:
        s += 1
        show = f"{_title(rng)} {s}"
        show_dir = tv_root / f"{show} ({rng.randint(1990, 2024)})"
        show_dir.mkdir(parents=True)
        for car in ("tvshow.nfo", "poster.jpg", "fanart.jpg", "banner.jpg"):
            (show_dir / car).touch()
            sidecars += 1
        for season in range(1, rng.randint(2, 8)):
            season_dir = show_dir / f"Season {season:02d}"
            season_dir.mkdir()
            (show_dir / f"season{season:02d}-poster.jpg").touch()
            sidecars += 1
            for ep in range(1, rng.randint(6, 24)):
                if videos >= files:
                    break
                if rng.random() < 0.5:
                    stem = f"{show} - S{season:02d}E{ep:02d} - {_title(rng)}"
                else:
                    tag = rng.choice(TAGS)
                    stem = f"{show.replace(' ', '.')}.S{season:02d}E{ep:02d}.{tag}-{rng.choice(GROUPS)}"
                _sparse(season_dir / f"{stem}.mkv", rng)
                videos += 1
                for ext in (".nfo", "-thumb.jpg"):
                    (season_dir / f"{stem}{ext}").touch()
                    sidecars += 1
    return videos, sidecars


def _walk_only(root: Path) -> int:
    count = 0
    for lib in ("movies", "tv"):
        for record in walk(root / lib):
            count += isinstance(record, MediaFile)
    return count


def _walk_parse(root: Path) -> int:
    count = 0
    for lib, kind in (("movies", "movies"), ("tv", "tv")):
        for record in walk(root / lib):
            if isinstance(record, MediaFile):
                naming.parse(record.relpath, kind)  # type: ignore[arg-type]
                count += 1
    return count


def _best(fn: object, rounds: int) -> tuple[float, float, int]:
    """Best wall and best CPU seconds (this process, user + system) over the rounds."""
    best_wall = best_cpu = float("inf")
    count = 0
    for _ in range(rounds):
        naming._folder.cache_clear()
        wall, cpu = time.perf_counter(), time.process_time()
        count = fn()  # type: ignore[operator]
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu, count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", help="make the tree here (kept) instead of a temporary folder")
    args = ap.parse_args()

    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="revenge-walk-"))
    try:
        if not (root / "movies").exists():
            start = time.perf_counter()
            videos, sidecars = make_tree(root, args.files)
            print(
                f"tree: {videos} videos, {sidecars} sidecars in {time.perf_counter() - start:.1f} s"
            )
        rels: list[tuple[str, str]] = []
        stats = WalkStats()
        for lib in ("movies", "tv"):
            rels += [(r.relpath, lib) for r in walk(root / lib, stats) if isinstance(r, MediaFile)]
        print(
            f"walk saw {stats.folders} folders, {stats.sidecars} sidecars, skipped {stats.skipped}"
        )

        def parse_only() -> int:
            for rel, lib in rels:
                naming.parse(rel, lib)  # type: ignore[arg-type]
            return len(rels)

        print(
            f"{'step':<12} {'files':>6} {'wall':>9} {'cpu':>9} {'files/s (wall)':>15}"
            f" {'files/s (cpu)':>14} {'cpu/file':>9}"
        )
        for name, fn in (
            ("walk", lambda: _walk_only(root)),
            ("parse", parse_only),
            ("walk+parse", lambda: _walk_parse(root)),
        ):
            wall, cpu, count = _best(fn, args.rounds)
            print(
                f"{name:<12} {count:>6} {wall:>7.3f} s {cpu:>7.3f} s {count / wall:>15.0f}"
                f" {count / cpu:>14.0f} {cpu / count * 1e6:>6.1f} us"
            )
        print(f"(load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
        naming._folder.cache_clear()
        tracemalloc.start()
        _walk_parse(root)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"traced peak of one walk+parse: {peak / 1e6:.2f} MB (folder cache included)")
    finally:
        if not args.dir:
            shutil.rmtree(root)


if __name__ == "__main__":
    os.umask(0o022)
    main()


# pytest-benchmark entry (`just bench`; CI runs it once with --benchmark-disable).


def test_walk_and_parse(benchmark: object, tmp_path: Path) -> None:
    videos, _ = make_tree(tmp_path, 1000)
    benchmark.group = "library walk + parse: 1,000 videos"  # type: ignore[attr-defined]
    benchmark.extra_info["ops"] = videos  # type: ignore[attr-defined]

    def run() -> int:
        naming._folder.cache_clear()
        return _walk_parse(tmp_path)

    assert benchmark(run) == videos  # type: ignore[operator]
