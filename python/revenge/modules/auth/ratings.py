"""Content ratings of every common system on one ordered scale: the youngest age it suits.

NFO files carry ``<mpaa>`` / certification values as people type them:
``PG-13``, ``Rated R``, ``gb:15``, ``de:FSK 12``, ``TV-MA``, ``FSK16``,
``PG-13 for violence``. :func:`rating_age` reads one into an age (0 to 18); the
scale is the age, so any two systems compare:

=========  ====================  ===========  =============  ==============================
age        MPAA                  BBFC         FSK            TV Parental Guidelines
=========  ====================  ===========  =============  ==============================
0          G                     U, UC        FSK 0          TV-Y, TV-G
6 / 7                                         FSK 6          TV-Y7, TV-Y7-FV (7)
8 / 10     PG (10)               PG (8)                      TV-PG (10)
12 / 13    PG-13 (13)            12, 12A      FSK 12
14 / 15                          15                          TV-14 (14)
16 / 17    R (17)                             FSK 16         TV-MA (17)
18         NC-17, X              18, R18      FSK 18
=========  ====================  ===========  =============  ==============================

A bare number up to 21 is that age (many NFOs of other countries' boards say
``12`` or ``16``). ``NR``, ``Unrated``, ``Not Rated``, an empty value or one no
system knows is *unrated* (``None``): the user's unrated policy decides.

The database computes the same function (``content_rating_age`` in
``migrations/0007_people.sql``) for its stored ``items.rating_age`` column, so
the filter is one integer comparison per row; ``tests/integration/test_parental.py``
checks that both agree on every label of the table and its spellings.

>>> rating_age("Rated PG-13"), rating_age("gb:PG"), rating_age("de:FSK 16"), rating_age("NR")
(13, 8, 16, None)
"""

from __future__ import annotations

import re

MAX_AGE = 21

AGES: dict[str, int] = {
    # MPAA
    "G": 0,
    "PG": 10,
    "PG13": 13,
    "R": 17,
    "NC17": 18,
    "X": 18,
    # BBFC (PG is 8 in the United Kingdom: see _UK)
    "U": 0,
    "UC": 0,
    "12A": 12,
    "R18": 18,
    # FSK
    "FSK0": 0,
    "FSK6": 6,
    "FSK12": 12,
    "FSK16": 16,
    "FSK18": 18,
    # TV Parental Guidelines
    "TVY": 0,
    "TVG": 0,
    "TVY7": 7,
    "TVY7FV": 7,
    "TVPG": 10,
    "TV14": 14,
    "TVMA": 17,
}
"""Labels with spaces, dots, hyphens and underscores taken out, upper-cased."""

_UK = frozenset({"GB", "UK", "UNITED KINGDOM"})
_UK_PG = 8
_RATED = re.compile(r"^RATED\s+")
_REASON = re.compile(r"\s+FOR\s.*$")
_SEPARATORS = re.compile(r"[\s._-]+")
_NUMBER = re.compile(r"^[0-9]{1,2}$")


def rating_age(value: str | None) -> int | None:
    """The youngest age ``value`` suits, or ``None`` when it is unrated or unknown."""
    if value is None:
        return None
    label = value.strip().upper()
    label = _RATED.sub("", label)
    country = ""
    if ":" in label:
        country, label = label.split(":", 1)
        country, label = country.strip(), label.strip()
    label = _REASON.sub("", label)
    label = _SEPARATORS.sub("", label)
    if _NUMBER.match(label):
        age = int(label)
        return age if age <= MAX_AGE else None
    if label == "PG" and country in _UK:
        return _UK_PG
    return AGES.get(label)


def limit_age(value: str) -> int:
    """The age an administrator's limit names (``PG-13``, ``FSK 12``, ``15``, ``TV-14``).

    ``ValueError`` for a label no system knows: a limit must be unambiguous.
    """
    age = rating_age(value)
    if age is None:
        raise ValueError(
            f"unknown rating {value!r}: use an MPAA, BBFC, FSK or TV Parental Guidelines "
            "rating, or an age"
        )
    return age
