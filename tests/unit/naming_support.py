"""The naming corpus and its scoring, shared by tests/unit/test_library_naming.py and the bench.

A case is one JSON line: ``path``, ``lib`` (movies | tv), an optional ``note``, and the expected
fields; a field that is absent is expected empty (null, [], false, {}). Every case scores the core
fields (kind, title, year, season, episodes) and each other field that either side fills, so a
parser is charged for what it misses and for what it invents.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "data"
CORPUS_FILES = (
    "naming_corpus_movies.jsonl",
    "naming_corpus_tv.jsonl",
    "naming_corpus_holdout.jsonl",  # written after the parser, scored as it came out first
)

CORE = ("kind", "title", "year", "season", "episodes")
OPTIONAL = (
    "episode_title",
    "air_date",
    "absolute",
    "part",
    "version",
    "extra_type",
    "is_3d",
    "resolution",
    "source",
    "video_codec",
    "edition",
    "release_group",
    "ids",
)
FIELDS = CORE + OPTIONAL

Fields = dict[str, Any]


@dataclass(frozen=True)
class Case:
    line: int
    path: str
    lib: str
    expected: Fields
    note: str | None = None
    source: str = ""


def load_corpus() -> list[Case]:
    cases: list[Case] = []
    for name in CORPUS_FILES:
        with open(DATA / name, encoding="utf-8") as fh:
            for n, raw in enumerate(fh, 1):
                if not raw.strip():
                    continue
                row = json.loads(raw)
                path, lib, note = row.pop("path"), row.pop("lib"), row.pop("note", None)
                unknown = set(row) - set(FIELDS)
                assert not unknown, f"{name}:{n}: unknown fields {unknown}"
                row.setdefault("kind", "movie" if lib == "movies" else "episode")
                cases.append(Case(n, path, lib, row, note, name))
    return cases


def _norm_text(value: Any) -> str:
    text = unicodedata.normalize("NFKC", str(value)).casefold()
    return "".join(ch for ch in text if ch.isalnum())


def _norm_edition(value: Any) -> str:
    text = _norm_text(value).replace("directors", "director")
    text = text.removeprefix("the")
    # "Ultimate Cut" and "Ultimate", "Extended Edition" and "Extended" name one edition.
    for word in ("edition", "version", "cut"):
        text = text.removesuffix(word)
    return text


def _empty(value: Any) -> bool:
    return value is None or value is False or value == [] or value == {} or value == ()


def same(field_name: str, expected: Any, actual: Any) -> bool:
    """Whether one field is right; text compares without case, spaces or punctuation."""
    if _empty(expected) or _empty(actual):
        return _empty(expected) and _empty(actual)
    if field_name in ("title", "episode_title", "version", "release_group"):
        return _norm_text(expected) == _norm_text(actual)
    if field_name == "edition":
        return _norm_edition(expected) == _norm_edition(actual)
    if field_name == "episodes":
        return list(expected) == list(actual)
    if field_name == "ids":
        return {k: str(v).lower() for k, v in expected.items()} == {
            k: str(v).lower() for k, v in actual.items()
        }
    return bool(expected == actual)


@dataclass
class Score:
    right: int = 0
    total: int = 0
    per_field: dict[str, list[int]] = field(default_factory=dict)
    misses: list[tuple[Case, str, Any, Any]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.right / self.total if self.total else 0.0

    def add(self, case: Case, actual: Fields) -> None:
        for name in FIELDS:
            exp, act = case.expected.get(name), actual.get(name)
            if name not in CORE and _empty(exp) and _empty(act):
                continue
            ok = same(name, exp, act)
            counts = self.per_field.setdefault(name, [0, 0])
            counts[0] += ok
            counts[1] += 1
            self.right += ok
            self.total += 1
            if not ok:
                self.misses.append((case, name, exp, act))


def score(cases: Iterable[Case], parse: Callable[[Case], Fields]) -> Score:
    result = Score()
    for case in cases:
        result.add(case, parse(case))
    return result


def ours(case: Case) -> Fields:
    """Our parser's result as corpus fields."""
    from revenge.modules.library.naming import parse

    p = parse(case.path, case.lib)  # type: ignore[arg-type]
    return {
        "kind": p.kind,
        "title": p.title,
        "year": p.year,
        "season": p.season,
        "episodes": list(p.episodes),
        "episode_title": p.episode_title,
        "air_date": p.air_date.isoformat() if p.air_date else None,
        "absolute": p.absolute,
        "part": p.part,
        "version": p.version,
        "extra_type": p.extra_type,
        "is_3d": p.is_3d,
        "resolution": p.resolution,
        "source": p.source,
        "video_codec": p.video_codec,
        "edition": p.edition,
        "release_group": p.release_group,
        "ids": dict(p.ids),
    }


def report(result: Score, *, misses: bool = False) -> str:
    lines = [f"all fields: {result.right}/{result.total} = {result.accuracy:.1%}"]
    for name in FIELDS:
        right, total = result.per_field.get(name, [0, 0])
        if total:
            lines.append(f"  {name:<14} {right:>4}/{total:<4} {right / total:6.1%}")
    if misses:
        for case, name, exp, act in result.misses:
            lines.append(f"  MISS {name}: {case.path!r} expected {exp!r} got {act!r}")
    return "\n".join(lines)
