"""The name parser: accuracy on the corpus, per field, and names that try to break it."""

from __future__ import annotations

import os
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from revenge.modules.library.naming import ParsedName, display_text, parse
from tests.unit import naming_support as ns

CASES = ns.load_corpus()


def test_corpus_is_large_and_mixed() -> None:
    kinds = {c.expected["kind"] for c in CASES}
    assert len(CASES) >= 500
    assert kinds == {"movie", "episode", "extra"}
    assert sum(c.lib == "tv" for c in CASES) >= 200


def test_corpus_accuracy_overall_and_per_field() -> None:
    result = ns.score(CASES, ns.ours)
    assert result.accuracy >= 0.95, ns.report(result, misses=True)
    for field, (right, total) in result.per_field.items():
        assert right / total >= 0.9, f"{field}: {right}/{total}\n" + ns.report(result, misses=True)


def test_holdout_accuracy() -> None:
    holdout = [c for c in CASES if c.source == "naming_corpus_holdout.jsonl"]
    assert len(holdout) >= 100
    assert ns.score(holdout, ns.ours).accuracy >= 0.95


def test_scoring_charges_invented_fields() -> None:
    case = ns.Case(1, "Heat (1995).mkv", "movies", {"kind": "movie", "title": "Heat", "year": 1995})
    perfect = ns.score([case], ns.ours)
    assert perfect.accuracy == 1.0
    invented = ns.score([case], lambda c: {**ns.ours(c), "part": 2, "year": 1996})
    assert invented.right == perfect.right - 1
    assert invented.total == perfect.total + 1


@pytest.mark.parametrize(
    ("path", "library", "expected"),
    [
        (
            "Lost/Season 1/Lost - S01E01-E03.mkv",
            "tv",
            {"kind": "episode", "season": 1, "episodes": (1, 2, 3)},
        ),
        (
            "The Daily Show/The Daily Show 2024-04-23.mkv",
            "tv",
            {"air_date": date(2024, 4, 23), "season": None, "episodes": ()},
        ),
        (
            "Doctor Who (2005)/Specials/Doctor Who - S00E01 - The Christmas Invasion.mkv",
            "tv",
            {"season": 0, "episodes": (1,), "year": 2005},
        ),
        ("Bleach/Bleach - 001.mkv", "tv", {"absolute": 1, "season": None, "episodes": ()}),
        ("Heat (1995)/Heat (1995) - cd2.avi", "movies", {"part": 2, "version": None}),
        (
            "Avatar (2009)/Avatar (2009) - 4K.mkv",
            "movies",
            {"version": "4K", "resolution": "2160p"},
        ),
        ("Avatar (2009)/Avatar (2009).3D.SBS.mkv", "movies", {"is_3d": True, "stereo": "sbs"}),
        (
            "The Matrix (1999)/Featurettes/Making The Matrix.mkv",
            "movies",
            {"kind": "extra", "extra_type": "featurette", "title": "Making The Matrix"},
        ),
        (
            "The Matrix (1999) [imdbid-tt0133093] {tmdb-603}/The Matrix (1999).mkv",
            "movies",
            {"ids": (("imdb", "tt0133093"), ("tmdb", "603"))},
        ),
    ],
)
def test_conventions(path: str, library: str, expected: dict[str, object]) -> None:
    parsed = parse(path, library)  # type: ignore[arg-type]
    for field, value in expected.items():
        assert getattr(parsed, field) == value, (field, parsed)


def test_id_lookup_and_frozen() -> None:
    parsed = parse("Heat (1995) [tmdbid-949]/Heat (1995).mkv", "movies")
    assert parsed.id("tmdb") == "949"
    assert parsed.id("imdb") is None
    with pytest.raises(AttributeError):
        parsed.title = "x"  # type: ignore[misc]


def test_root_is_stripped_and_bytes_accepted() -> None:
    rel = parse("Show/Season 2/Show - S02E03.mkv", "tv")
    absolute = parse("/media/tv/Show/Season 2/Show - S02E03.mkv", "tv", root="/media/tv")
    raw = parse(b"/media/tv/Show/Season 2/Show - S02E03.mkv", "tv", root=b"/media/tv")
    assert rel == absolute == raw
    assert rel.title == "Show"


def test_undecodable_bytes_become_readable_title() -> None:
    name = os.fsdecode(b"Am\xe9lie (2001)/Am\xe9lie (2001).mkv")
    parsed = parse(name, "movies")
    assert parsed.title == "Amélie"
    assert parsed.year == 2001
    parsed.title.encode("utf-8")  # storable: no lone surrogates left


def test_control_characters_are_not_kept() -> None:
    parsed = parse("Bad\x00Na\x1bme\x7f (2010).mkv", "movies")
    assert parsed.year == 2010
    assert not any(ord(ch) < 32 or 0x7F <= ord(ch) <= 0x9F for ch in parsed.title)


def test_huge_names_are_bounded() -> None:
    long_name = "A" * 4096 + " (1999).mkv"
    parsed = parse(long_name, "movies")
    assert len(parsed.title) <= 1024
    deep = "/".join(["Folder"] * 500) + "/The Matrix (1999).mkv"
    assert parse(deep, "movies").title == "The Matrix"
    noisy = ("S01E01-" * 600) + ".mkv"
    assert len(parse("Show/" + noisy, "tv").episodes) <= 60


@pytest.mark.parametrize(
    "path", ["", "/", ".mkv", "...", "-", "()", "[]", "{}", "Season 1/", "Extras/x.mkv", "\x00"]
)
@pytest.mark.parametrize("library", ["movies", "tv"])
def test_degenerate_paths(path: str, library: str) -> None:
    assert isinstance(parse(path, library), ParsedName)  # type: ignore[arg-type]


_path_text = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from([*"._- ()[]{}/SsEex0123456789", "\udce9", "\udcff", "\x00"]),
    ),
    max_size=300,
)


@settings(max_examples=400, deadline=None)
@given(path=_path_text, library=st.sampled_from(["movies", "tv"]))
def test_never_raises_and_output_is_storable(path: str, library: str) -> None:
    parsed = parse(path, library)  # type: ignore[arg-type]
    for text in (parsed.title, parsed.episode_title, parsed.version, parsed.edition):
        if text is not None:
            text.encode("utf-8")
            assert display_text(text) == text
    assert all(isinstance(n, int) for n in parsed.episodes)
