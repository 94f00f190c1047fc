"""Usernames as people see them: one account per name however it is typed, no look-alikes.

``comparable(name)`` is the key for lookups, uniqueness and the login throttle:
NFKC (fullwidth ``\\uff41dmin`` is ``admin``), then case-folded (``ADMIN``,
``Straße`` / ``STRASSE``), then NFKC again (case folding can un-normalise).

``display_name(name)`` is what a new account keeps: NFKC, trimmed, checked. A
name that mixes scripts (Latin with Cyrillic or Greek: ``p\\u0430ypal`` with a
Cyrillic ``a``) is refused, as Unicode's "highly restrictive" profile (UTS #39)
does: one script per name, or Latin with the scripts written together in
Chinese, Japanese or Korean.

>>> comparable("\\uff21\\uff24MIN"), comparable("Straße"), comparable("admin") == comparable("ADMIN")
('admin', 'strasse', True)
>>> display_name(" \\uff4aosé "), display_name("東京タワー")
('josé', '東京タワー')
>>> display_name("p\\u0430ypal")
Traceback (most recent call last):
ValueError: a username may not mix scripts (CYRILLIC, LATIN)
"""

from __future__ import annotations

import unicodedata

MAX_LENGTH = 64

_ALLOWED_MIXES = (
    frozenset({"LATIN", "CJK", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "CJK", "BOPOMOFO"}),
    frozenset({"LATIN", "CJK", "HANGUL"}),
)
_COMMON = frozenset({"KATAKANA-HIRAGANA"})  # the prolonged sound mark belongs to both


def comparable(name: str) -> str:
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name.strip()).casefold())


def scripts(name: str) -> frozenset[str]:
    """The scripts of the letters in ``name`` (digits and punctuation belong to none)."""
    found = set()
    for ch in name:
        if not ch.isalpha():
            continue
        script = unicodedata.name(ch, "UNKNOWN").split(" ", 1)[0]
        if script not in _COMMON:
            found.add(script)
    return frozenset(found)


def display_name(name: str) -> str:
    """The name a new account keeps; ``ValueError`` saying what is wrong with it."""
    name = unicodedata.normalize("NFKC", name.strip())
    if not name or len(name) > MAX_LENGTH:
        raise ValueError(f"a username has 1 to {MAX_LENGTH} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in name):
        raise ValueError("a username may not contain spaces or control characters")
    used = scripts(name)
    if len(used) > 1 and not any(used <= mix for mix in _ALLOWED_MIXES):
        raise ValueError(f"a username may not mix scripts ({', '.join(sorted(used))})")
    return name
