"""Checking a library root folder before it is stored: the problems an administrator sees.

Pure and blocking (a few ``stat`` calls): the service runs it in a thread. A root is
kept as the exact bytes of its absolute, normalised path (``os.fsencode``), so a folder
whose name is not UTF-8 is stored and compared losslessly.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     check_root("media/movies", data_dir=d, others=[]).code
'root_not_absolute'
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["OtherRoot", "RootProblem", "check_root", "overlaps", "root_bytes"]


@dataclass(frozen=True, slots=True)
class RootProblem:
    """Why a root is refused: a stable ``code`` and a sentence naming the path."""

    code: str
    detail: str
    status: int = 409  # the request is well formed; the server's folders say no


@dataclass(frozen=True, slots=True)
class OtherRoot:
    """A root some library already has (``library`` names it in the problem)."""

    path: bytes
    library: str


def root_bytes(path: str) -> bytes:
    """The stored form of an absolute root: normalised, no trailing slash, exact bytes.

    >>> root_bytes("/media//movies/")
    b'/media/movies'
    """
    return os.fsencode(os.path.normpath(path))


def overlaps(a: bytes, b: bytes) -> bool:
    """True when one folder is the other or lies inside it.

    >>> overlaps(b"/media/tv", b"/media/tv/Show"), overlaps(b"/media/tv", b"/media/tvx")
    (True, False)
    """
    if a == b:
        return True
    a_dir, b_dir = a.rstrip(b"/") + b"/", b.rstrip(b"/") + b"/"
    return a_dir.startswith(b_dir) or b_dir.startswith(a_dir)


def _real(path: bytes) -> bytes:
    try:
        return os.path.realpath(path, strict=False)
    except (OSError, ValueError):
        return path


def check_root(
    path: str, *, data_dir: str | os.PathLike[str], others: Iterable[OtherRoot]
) -> RootProblem | None:
    """``None`` when ``path`` can be a root, else the first problem with it.

    ``others`` are the roots already stored (other libraries' and this library's own
    other roots); a root inside or around one of them is refused, as is any path inside
    (or holding) the server's data folder: Revenge's own files are never media.
    """
    shown = os.fsencode(path).decode("utf-8", "replace") if path else "''"
    if not path or "\x00" in path:
        return RootProblem("root_invalid", "a root is a non-empty path without NUL bytes", 422)
    if not os.path.isabs(path):
        return RootProblem("root_not_absolute", f"{shown} is not an absolute path", 422)
    raw = root_bytes(path)
    try:
        os.stat(raw)
    except FileNotFoundError:
        return RootProblem("root_missing", f"{shown} does not exist")
    except PermissionError:
        return RootProblem("root_unreadable", f"{shown} cannot be reached by the server's user")
    except OSError as exc:
        return RootProblem("root_unreadable", f"{shown}: {exc.strerror}")
    if not os.path.isdir(raw):
        return RootProblem("root_not_directory", f"{shown} is not a folder")
    if not os.access(raw, os.R_OK | os.X_OK):
        return RootProblem("root_unreadable", f"{shown} is not readable by the server's user")
    try:
        with os.scandir(raw) as it:
            next(it, None)
    except OSError as exc:
        return RootProblem("root_unreadable", f"{shown} cannot be listed: {exc.strerror}")
    real = _real(raw)
    data = _real(os.fsencode(os.path.abspath(os.fspath(data_dir))))
    if overlaps(real, data):
        return RootProblem("root_in_data_dir", f"{shown} overlaps the server's data folder")
    for other in others:
        if overlaps(real, _real(other.path)) or overlaps(raw, other.path):
            return RootProblem(
                "root_overlaps",
                f"{shown} is inside or around a root of library {other.library!r}",
                status=409,
            )
    return None
