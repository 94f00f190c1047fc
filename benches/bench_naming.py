"""Name parsing: accuracy on the corpus and time per path, ours beside guessit, in one run.

    python benches/bench_naming.py                # table
    python benches/bench_naming.py --misses       # and every field each parser got wrong
    python benches/bench_naming.py --rounds 3     # fewer timing rounds (guessit is slow)

The corpus is tests/data/naming_corpus_*.jsonl (see tests/unit/naming_support.py for the scoring:
core fields always, other fields whenever either side fills them). guessit is given the same
relative path and the library's type ("movie" or "episode"), as a scanner would; its fields are
mapped onto ours (source "Blu-ray" -> bluray, "other: 3D" -> is_3d, an episode with no season ->
absolute, "other: Trailer" -> an extra...). The holdout file was written after the parser and
is reported on its own too. Time per path is the best of N rounds over every corpus path.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "python"))

from tests.unit import naming_support as ns  # noqa: E402

_SOURCES = {
    "Blu-ray": "bluray",
    "Ultra HD Blu-ray": "bluray",
    "Web": "web",
    "HDTV": "hdtv",
    "Ultra HDTV": "hdtv",
    "TV": "hdtv",
    "Digital TV": "hdtv",
    "Satellite": "hdtv",
    "DVD": "dvd",
    "VHS": "vhs",
    "Camera": "cam",
    "HD Camera": "cam",
    "Telesync": "telesync",
    "HD Telesync": "telesync",
}
_CODECS = {
    "H.264": "h264",
    "H.265": "h265",
    "Xvid": "xvid",
    "DivX": "divx",
    "AV1": "av1",
    "VP9": "vp9",
    "MPEG-2": "mpeg2",
    "VC-1": "vc1",
}
_EDITIONS = {"Collector": "Collector's Edition", "Special": "Special Edition"}
_EXTRAS = {"Trailer": "trailer", "Extras": "other", "Sample": "sample"}


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def guessit_fields(result: dict[str, Any], case: ns.Case) -> ns.Fields:
    other = [str(o) for o in _as_list(result.get("other"))]
    extra = next((_EXTRAS[o] for o in other if o in _EXTRAS), None)
    episodes = [int(e) for e in _as_list(result.get("episode"))]
    season = result.get("season")
    if isinstance(season, list):
        season = season[0]
    absolute = result.get("absolute_episode")
    if season is None and episodes and result.get("date") is None:
        absolute, episodes = absolute or episodes[0], []
    editions = [_EDITIONS.get(str(e), str(e)) for e in _as_list(result.get("edition"))]
    date = result.get("date")
    title = result.get("title")
    if isinstance(title, list):
        title = " ".join(map(str, title))
    kind = "extra" if extra else ("movie" if case.lib == "movies" else "episode")
    return {
        "kind": kind,
        "title": title,
        "year": result.get("year"),
        "season": season,
        "episodes": episodes,
        "episode_title": result.get("episode_title"),
        "air_date": date.isoformat() if date is not None else None,
        "absolute": absolute,
        "part": result.get("part") or result.get("cd"),
        "version": None,
        "extra_type": extra,
        "is_3d": "3D" in other,
        "resolution": result.get("screen_size"),
        "source": _SOURCES.get(str(result.get("source"))),
        "video_codec": _CODECS.get(str(result.get("video_codec"))),
        "edition": " ".join(editions) or None,
        "release_group": result.get("release_group"),
        "ids": {"imdb": result["imdb_id"]} if result.get("imdb_id") else {},
    }


def _time_per_path(
    fn: Callable[[ns.Case], object],
    cases: list[ns.Case],
    rounds: int,
    before_round: Callable[[], object] = lambda: None,
) -> tuple[float, float]:
    """Best wall time and best CPU time per path over the rounds.

    CPU time (this process's, user + system) is the steadier number on a shared machine: it
    does not count the time other processes held the cores.
    """
    best_wall = best_cpu = float("inf")
    for _ in range(rounds):
        before_round()
        wall, cpu = time.perf_counter(), time.process_time()
        for case in cases:
            fn(case)
        best_wall = min(best_wall, (time.perf_counter() - wall) / len(cases))
        best_cpu = min(best_cpu, (time.process_time() - cpu) / len(cases))
    return best_wall, best_cpu


def _hostile(parse: Callable[..., object]) -> tuple[float, str]:
    import random

    rng = random.Random(1)
    names = {
        "4 KB of one letter": "A" * 4096 + ".mkv",
        "dotted words": ".".join(["ab"] * 1400) + ".mkv",
        "episode chain": "S01E01" + "E02-E03" * 300 + ".mkv",
        "NxM chain": "1x01" + "-02x03" * 400 + ".mkv",
        "years": " ".join(["1999"] * 800) + ".mkv",
        "brackets": "[(" * 1000 + ".mkv",
        "dash numbers": " - 12" * 800 + ".mkv",
        "tags": ".1080p.x264.BluRay" * 200 + ".mkv",
        "editions": ".Directors.Cut.Extended" * 200 + ".mkv",
        "separators": "-._ " * 1000 + "x.mkv",
        "random": "".join(rng.choice("abc. -_()[]{}0123456789SExX") for _ in range(4096)),
    }
    worst, which = 0.0, ""
    for label, name in names.items():
        for lib in ("movies", "tv"):
            best = float("inf")
            for _ in range(5):
                start = time.perf_counter()
                parse("Show/" + name, lib)
                best = min(best, time.perf_counter() - start)
            if best > worst:
                worst, which = best, f"{label}, {lib}"
    return worst, which


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="timing rounds for ours (default 5)")
    ap.add_argument("--guessit-rounds", type=int, default=1, help="timing rounds for guessit")
    ap.add_argument("--misses", action="store_true", help="list every wrong field")
    ap.add_argument("--no-guessit", action="store_true", help="ours only (a quick run)")
    args = ap.parse_args()

    from revenge.modules.library import naming
    from revenge.modules.library.naming import parse

    cases = ns.load_corpus()
    holdout = [c for c in cases if c.source == "naming_corpus_holdout.jsonl"]

    def ours_raw(case: ns.Case) -> object:
        return parse(case.path, case.lib)  # type: ignore[arg-type]

    def ours_cold(case: ns.Case) -> object:
        naming._folder.cache_clear()
        return parse(case.path, case.lib)  # type: ignore[arg-type]

    rows: list[tuple[str, ns.Score, ns.Score, tuple[float, float]]] = []
    full, held = ns.score(cases, ns.ours), ns.score(holdout, ns.ours)
    # Headline: no folder cache at all (emptied before every path). Second row: the cache as a
    # scan uses it, emptied before each round (corpus paths share some folders, a library more).
    rows.append(("revenge (cold)", full, held, _time_per_path(ours_cold, cases, args.rounds)))
    per_path = _time_per_path(ours_raw, cases, args.rounds, naming._folder.cache_clear)
    rows.append(("revenge (cached)", full, held, per_path))

    try:
        import guessit  # type: ignore[import-untyped]
    except ImportError:
        print("guessit is not installed (pip install guessit): ours only", file=sys.stderr)
        guessit = None
    if guessit is not None and not args.no_guessit:
        cache: dict[int, dict[str, Any]] = {}

        def guessit_raw(case: ns.Case) -> object:
            typ = "movie" if case.lib == "movies" else "episode"
            result = dict(guessit.guessit(case.path, {"type": typ}))
            cache[id(case)] = result
            return result

        guessit_raw(cases[0])  # its rules are built on first use
        per_path = _time_per_path(guessit_raw, cases, args.guessit_rounds)

        def theirs(case: ns.Case) -> ns.Fields:
            return guessit_fields(cache[id(case)], case)

        label = f"guessit {guessit.__version__}"
        rows.append((label, ns.score(cases, theirs), ns.score(holdout, theirs), per_path))

    print(
        f"naming corpus: {len(cases)} paths ({len(holdout)} in the holdout written after the parser)"
    )
    print(
        f"{'parser':<18} {'fields right':>16} {'holdout':>9} {'wall/path':>11} {'cpu/path':>11}"
        f" {'paths/s (cpu)':>14}"
    )
    for name, full, held, (wall, cpu) in rows:
        print(
            f"{name:<18} {full.right:>5}/{full.total:<5} {full.accuracy:6.1%} {held.accuracy:8.1%}"
            f" {wall * 1e3:8.3f} ms {cpu * 1e3:8.3f} ms {1 / cpu:14.0f}"
        )
    print(f"(load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    print()
    print(f"{'field':<14}" + "".join(f"{name:>18}" for name, *_ in rows))
    for field in ns.FIELDS:
        cells = []
        for _, full, _, _ in rows:
            right, total = full.per_field.get(field, [0, 0])
            cells.append(f"{right:>5}/{total:<5} {right / total if total else 0:5.1%}")
        print(f"{field:<14}" + "".join(f"{c:>18}" for c in cells))
    worst, which = _hostile(parse)
    print(
        f"\nhostile names (4 KB, runs of brackets, separators, tags; best of 5): worst {worst * 1e3:.2f} ms ({which})"
    )
    if args.misses:
        for name, full, _, _ in rows:
            print(f"\n## {name}: {len(full.misses)} wrong fields")
            for case, field, exp, act in full.misses:
                print(f"  {field}: {case.path!r} expected {exp!r} got {act!r}")


if __name__ == "__main__":
    main()


# pytest-benchmark entries (`just bench`; CI runs them once with --benchmark-disable).


def test_naming_ours(benchmark: Any) -> None:
    from revenge.modules.library import naming

    cases = ns.load_corpus()
    benchmark.group = "library naming: whole corpus"
    benchmark.extra_info["ops"] = len(cases)

    def run() -> list[object]:
        naming._folder.cache_clear()
        return [naming.parse(c.path, c.lib) for c in cases]  # type: ignore[arg-type]

    assert len(benchmark(run)) == len(cases)
    assert ns.score(cases, ns.ours).accuracy >= 0.95


def test_naming_guessit(benchmark: Any) -> None:
    import pytest

    guessit = pytest.importorskip("guessit")
    cases = ns.load_corpus()
    benchmark.group = "library naming: whole corpus"
    benchmark.extra_info["ops"] = len(cases)
    benchmark.extra_info["baseline"] = True

    def run() -> list[object]:
        return [
            guessit.guessit(c.path, {"type": "movie" if c.lib == "movies" else "episode"})
            for c in cases
        ]

    assert len(benchmark.pedantic(run, rounds=1, iterations=1)) == len(cases)
