"""A static route table: exact paths by dictionary, parameterised paths by segments.

>>> async def show(request): ...
>>> router = Router()
>>> router.add("GET", "/api/v1/movies/{movie_id}", show)
>>> match = router.match("GET", "/api/v1/movies/42")
>>> match.route.path, match.params
('/api/v1/movies/{movie_id}', {'movie_id': '42'})
>>> router.match("POST", "/api/v1/movies/42").allowed
('GET', 'HEAD')
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from revenge.http.request import Request
from revenge.http.response import Response

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    public: bool = False
    """Served without a session or API key (health, metrics, login)."""
    summary: str = ""
    tags: tuple[str, ...] = ()


_NO_PARAMS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Match:
    route: Route | None
    params: Mapping[str, str] = field(default_factory=lambda: _NO_PARAMS)
    allowed: tuple[str, ...] = ()
    """Methods the path does answer, when ``route`` is None because of the method."""


_NO_MATCH = Match(None)


@dataclass(slots=True)
class _Pattern:
    segments: tuple[str, ...]
    params: tuple[tuple[int, str], ...]
    methods: dict[str, Route]

    def bind(self, parts: list[str]) -> dict[str, str] | None:
        if len(parts) != len(self.segments):
            return None
        for index, segment in enumerate(self.segments):
            if segment[0] != "{" and segment != parts[index]:
                return None
        values = {name: parts[index] for index, name in self.params}
        return values if all(values.values()) else None


class Router:
    """Routes registered once at start-up; matching allocates nothing for exact paths."""

    def __init__(self) -> None:
        self._exact: dict[str, dict[str, Route]] = {}
        # Built at add(): matching an exact path is two dictionary look-ups, no allocation.
        self._exact_matches: dict[str, dict[str, Match]] = {}
        self._exact_denied: dict[str, Match] = {}
        self._patterns: list[_Pattern] = []

    def add(
        self,
        method: str,
        path: str,
        handler: Handler,
        *,
        public: bool = False,
        summary: str = "",
        tags: tuple[str, ...] = (),
    ) -> None:
        if not path.startswith("/"):
            raise ValueError(f"route path must start with '/': {path!r}")
        method = method.upper()
        route = Route(method, path, handler, public, summary or _first_line(handler), tags)
        if "{" not in path:
            methods = self._exact.setdefault(path, {})
        else:
            methods = self._pattern_for(path).methods
        if method in methods:
            raise ValueError(f"route {method} {path} registered twice")
        methods[method] = route
        if "{" not in path:
            matches = {name: Match(r) for name, r in methods.items()}
            if "GET" in matches and "HEAD" not in matches:
                matches["HEAD"] = matches["GET"]
            self._exact_matches[path] = matches
            self._exact_denied[path] = Match(None, allowed=_allowed(methods))

    def _pattern_for(self, path: str) -> _Pattern:
        segments = tuple(path.strip("/").split("/"))
        for pattern in self._patterns:
            if pattern.segments == segments:
                return pattern
        params = tuple(
            (index, segment[1:-1])
            for index, segment in enumerate(segments)
            if segment.startswith("{") and segment.endswith("}")
        )
        pattern = _Pattern(segments, params, {})
        self._patterns.append(pattern)
        return pattern

    def match(self, method: str, path: str) -> Match:
        exact = self._exact_matches.get(path)
        if exact is not None:
            return exact.get(method) or self._exact_denied[path]
        parts = path.strip("/").split("/")
        for pattern in self._patterns:
            params = pattern.bind(parts)
            if params is not None:
                methods = pattern.methods
                break
        else:
            return _NO_MATCH
        route = methods.get(method)
        if route is None and method == "HEAD":
            route = methods.get("GET")
        if route is None:
            return Match(None, allowed=_allowed(methods))
        return Match(route, params)

    def __iter__(self) -> Iterator[Route]:
        for methods in self._exact.values():
            yield from methods.values()
        for pattern in self._patterns:
            yield from pattern.methods.values()


def _allowed(methods: dict[str, Route]) -> tuple[str, ...]:
    names = set(methods)
    if "GET" in names:
        names.add("HEAD")
    return tuple(sorted(names))


def _first_line(handler: Handler) -> str:
    doc = handler.__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""
