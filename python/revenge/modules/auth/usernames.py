"""Usernames as people see them: one account per name however it is typed.

``comparable(name)`` is the key for lookups, uniqueness and the login throttle:
NFKC (fullwidth ``\\uff41dmin`` is ``admin``), then case-folded (``ADMIN``, ``Straße`` /
``STRASSE``), then NFKC again (case folding can un-normalise).

>>> comparable("\\uff21\\uff24MIN"), comparable("Straße"), comparable("admin") == comparable("ADMIN")
('admin', 'strasse', True)
"""

from __future__ import annotations

import unicodedata


def comparable(name: str) -> str:
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name.strip()).casefold())
