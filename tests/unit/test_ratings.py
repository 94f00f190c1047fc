"""The ratings mapping as a table: every system's labels, the spellings NFOs use, and the unrated."""

from __future__ import annotations

import pytest

from revenge.modules.auth.ratings import AGES, limit_age, rating_age

TABLE = [
    # MPAA
    ("G", 0),
    ("PG", 10),
    ("PG-13", 13),
    ("Rated PG-13", 13),
    ("PG-13 for sequences of violence", 13),
    ("US:PG-13", 13),
    ("pg13", 13),
    ("R", 17),
    ("Rated R", 17),
    ("NC-17", 18),
    ("X", 18),
    # BBFC
    ("U", 0),
    ("UC", 0),
    ("gb:PG", 8),
    ("UK:PG", 8),
    ("12A", 12),
    ("12", 12),
    ("gb:15", 15),
    ("18", 18),
    ("R18", 18),
    # FSK
    ("FSK 0", 0),
    ("FSK 6", 6),
    ("FSK12", 12),
    ("FSK-16", 16),
    ("FSK 18", 18),
    ("de:FSK 18", 18),
    ("Germany:16", 16),
    # TV Parental Guidelines
    ("TV-Y", 0),
    ("TV-G", 0),
    ("TV-Y7", 7),
    ("TV-Y7-FV", 7),
    ("TV-PG", 10),
    ("TV-14", 14),
    ("tv_ma", 17),
    ("  TV-MA  ", 17),
    # unrated, or nothing any system knows
    ("NR", None),
    ("Not Rated", None),
    ("Unrated", None),
    ("", None),
    ("Approved", None),
    ("99", None),
    ("PG-14", None),
    (None, None),
]


@pytest.mark.parametrize(("label", "age"), TABLE)
def test_every_system_maps_to_one_ordered_scale(label: str | None, age: int | None) -> None:
    assert rating_age(label) == age


def test_the_scale_orders_systems_against_each_other() -> None:
    order = ["TV-Y", "FSK 6", "gb:PG", "PG", "PG-13", "TV-14", "15", "FSK 16", "R", "NC-17"]
    ages = [rating_age(label) for label in order]
    assert ages == sorted(ages)  # type: ignore[type-var]
    assert rating_age("FSK 12") == rating_age("12A") < rating_age("PG-13") < rating_age("TV-14")


def test_a_limit_must_name_a_known_rating() -> None:
    assert limit_age("PG-13") == 13 and limit_age("0") == 0
    for bad in ("NR", "Unrated", "PG-14", "adults"):
        with pytest.raises(ValueError, match="unknown rating"):
            limit_age(bad)


def test_every_known_label_is_in_the_table() -> None:
    """A label added to AGES without a row here (and in the SQL twin) fails this test."""
    spelled = {(label or "").upper().replace("-", "").replace(" ", "") for label, _ in TABLE}
    assert set(AGES) - spelled == set()
