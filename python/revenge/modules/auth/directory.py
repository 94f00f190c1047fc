"""Per-worker view of the users that hold cached sessions: names and the ready ``/me`` body.

The Rust session cache holds ``user_id``, role and expiry; the username and the
serialised profile live here, so the hot path builds nothing per request. An
entry is dropped whenever its user changes (the ``u:<id>`` revocation message)
and refilled from the next cache miss, so ``/me`` always reflects the current user.

>>> from datetime import datetime, timezone
>>> d = UserDirectory(max_entries=2)
>>> view = d.put(7, "alice", "admin", datetime(2026, 1, 1, tzinfo=timezone.utc))
>>> view.me_body
b'{"id":7,"username":"alice","role":"admin","created_at":"2026-01-01T00:00:00+00:00"}'
>>> d.get(7) is view, d.drop(7), d.get(7)
(True, True, None)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson

from revenge.modules.auth.repository import Role


@dataclass(frozen=True, slots=True)
class UserView:
    id: int
    username: str
    role: Role
    me_body: bytes
    """``GET /api/v1/me`` as served: serialised once per change, not per request."""


class UserDirectory:
    """``user_id -> UserView``, bounded; the bound is a memory guard, not a cache policy."""

    __slots__ = ("_max_entries", "_views", "get")

    def __init__(self, *, max_entries: int = 100_000) -> None:
        self._max_entries = max_entries
        self._views: dict[int, UserView] = {}
        self.get = self._views.get
        """``get(user_id) -> UserView | None``: the bound dict method, one call on the hot path."""

    def put(self, user_id: int, username: str, role: Role, created_at: datetime) -> UserView:
        current = self._views.get(user_id)
        if current is not None and current.username == username and current.role == role:
            return current
        if len(self._views) >= self._max_entries:
            # Rare by construction (one entry per active user); the next miss refills.
            self._views.clear()
        view = self.view_of(user_id, username, role, created_at)
        self._views[user_id] = view
        return view

    @staticmethod
    def view_of(user_id: int, username: str, role: Role, created_at: datetime) -> UserView:
        body = orjson.dumps(
            {"id": user_id, "username": username, "role": role, "created_at": created_at}
        )
        return UserView(user_id, username, role, body)

    def drop(self, user_id: int) -> bool:
        return self._views.pop(user_id, None) is not None

    def clear(self) -> None:
        self._views.clear()

    def __len__(self) -> int:
        return len(self._views)
