"""Language tags checked against the real lists: ISO 639 languages, ISO 15924 scripts, ISO 3166 regions.

A preference names a language the way clients and files do: ``en``, ``eng``,
``ger`` (ISO 639-2/B), ``pt-BR``, ``zh-Hant-TW`` (BCP 47). :func:`canonical`
checks every subtag against the tables babelfish ships (SIL's ISO 639-3 table,
which also carries the 639-1 and 639-2 codes; ISO 15924; ISO 3166-1) and answers
the BCP 47 form: the shortest language code, ``Title`` script, upper-case region.
Extensions and private use subtags are refused: no player matches on them.

>>> canonical("eng"), canonical("GER"), canonical("pt_br"), canonical("zh-hant-tw")
('en', 'de', 'pt-BR', 'zh-Hant-TW')
>>> canonical("xx")
Traceback (most recent call last):
...
ValueError: unknown language 'xx' (not in ISO 639)
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

MAX_TAG_LENGTH = 35
"""Longest tag accepted: language (3) + script (4) + region (3) with room to spare."""

_SUBTAGS = re.compile(r"[A-Za-z0-9]{1,8}")


@cache
def _tables() -> tuple[dict[str, str], frozenset[str], frozenset[str]]:
    """(every ISO 639 code -> its shortest code, scripts lower-cased, regions upper-cased)."""
    data = resources.files("babelfish") / "data"
    languages: dict[str, str] = {}
    rows = (data / "iso-639-3.tab").read_text(encoding="utf-8").splitlines()[1:]
    for row in rows:
        part3, part2b, part2t, part1 = row.split("\t")[:4]
        shortest = part1 or part3
        for code in (part3, part2b, part2t, part1):
            if code:
                languages.setdefault(code, shortest)
    scripts = frozenset(
        line.split(";", 1)[0].lower()
        for line in (data / "iso15924-utf8-20131012.txt").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    regions = frozenset(
        line.rsplit(";", 1)[1].strip().upper()
        for line in (data / "iso-3166-1.txt").read_text(encoding="utf-8").splitlines()[1:]
        if ";" in line
    )
    return languages, scripts, regions


def canonical(tag: str) -> str:
    """The BCP 47 form of ``tag``; ``ValueError`` naming the subtag no list has."""
    if not tag or len(tag) > MAX_TAG_LENGTH:
        raise ValueError(f"a language tag has 1 to {MAX_TAG_LENGTH} characters")
    parts = re.split(r"[-_]", tag)
    if not all(_SUBTAGS.fullmatch(part) for part in parts):
        raise ValueError(f"{tag!r} is not a language tag (letters and digits joined by '-')")
    languages, scripts, regions = _tables()
    code = parts[0].lower()
    if not 2 <= len(code) <= 3 or code not in languages:
        raise ValueError(f"unknown language {parts[0]!r} (not in ISO 639)")
    out = [languages[code]]
    rest = parts[1:]
    if rest and len(rest[0]) == 4 and rest[0].isalpha():
        if rest[0].lower() not in scripts:
            raise ValueError(f"unknown script {rest[0]!r} (not in ISO 15924)")
        out.append(rest[0].title())
        rest = rest[1:]
    if rest:
        region = rest[0].upper()
        if not (region in regions or (len(region) == 3 and region.isdigit())):
            raise ValueError(f"unknown region {rest[0]!r} (not in ISO 3166-1 or UN M.49)")
        out.append(region)
        rest = rest[1:]
    if rest:
        raise ValueError(f"{tag!r}: only language, script and region subtags are understood")
    return "-".join(out)
