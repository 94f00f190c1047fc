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

import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from pydantic import BaseModel

from revenge.http.declare import NOTHING, Declared, declare
from revenge.http.errors import NOSNIFF
from revenge.http.request import Request
from revenge.http.response import Response

Handler = Callable[[Request], Awaitable[Response]]
"""An HTTP handler; one with declared inputs also takes them as keywords (``body=``...)."""


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    public: bool = False
    """Served without a session or API key (health, metrics, login)."""
    summary: str = ""
    tags: tuple[str, ...] = ()
    cache_control: str | None = None
    """``Cache-Control`` of its answers; ``None``: none when public, ``no-store`` when not
    (what a credential unlocks is nobody else's, so no shared cache may keep it)."""
    tail: tuple[tuple[str, str], ...] = (NOSNIFF,)
    """Headers the dispatcher adds to each of its answers (built by :meth:`Router.add`)."""
    declared: Declared = NOTHING
    """Its request and response models (``revenge.http.declare``), for decoding and OpenAPI."""
    endpoint: Callable[..., Awaitable[Response]] | None = None
    """The handler as given, before ``declared`` wrapped it (``handler`` decodes, then calls it)."""


_NO_PARAMS: Mapping[str, str] = MappingProxyType({})
_PARAM_NAMES = re.compile(r"{(\w+)}")


@dataclass(frozen=True, slots=True)
class Match:
    route: Route | None
    params: Mapping[str, str] = field(default_factory=lambda: _NO_PARAMS)
    allowed: tuple[str, ...] = ()
    """Methods the path does answer, when ``route`` is None because of the method."""
    invalid: bool = False
    """The path cannot name any resource (a NUL byte): a 400, not a 404."""


_NO_MATCH = Match(None)
_INVALID = Match(None, invalid=True)


class _Node:
    """One path segment of the parameterised routes: literal children first, then a parameter."""

    __slots__ = ("methods", "names", "param", "path", "static")

    def __init__(self) -> None:
        self.static: dict[str, _Node] = {}
        self.param: _Node | None = None
        self.methods: dict[str, Route] | None = None
        """Set on the node where a route's path ends."""
        self.names: tuple[str, ...] = ()
        self.path = ""

    def find(self, parts: list[str], index: int, values: list[str]) -> _Node | None:
        """The end node for ``parts[index:]``, literal segments preferred; fills ``values``."""
        if index == len(parts):
            return self if self.methods is not None else None
        part = parts[index]
        child = self.static.get(part)
        if child is not None:
            found = child.find(parts, index + 1, values)
            if found is not None:
                return found
        if self.param is not None and part:  # an empty segment is no value
            values.append(part)
            found = self.param.find(parts, index + 1, values)
            if found is not None:
                return found
            values.pop()
        return None


class Router:
    """Routes registered once at start-up; matching allocates nothing for exact paths.

    Parameterised paths live in a segment trie, so matching walks the path's
    segments whatever the number of routes (``benches/bench_router.py``).
    """

    def __init__(self) -> None:
        self._exact: dict[str, dict[str, Route]] = {}
        # Built at add(): matching an exact path is two dictionary look-ups, no allocation.
        self._exact_matches: dict[str, dict[str, Match]] = {}
        self._exact_denied: dict[str, Match] = {}
        self._root = _Node()
        self._patterns: list[_Node] = []  # registration order, for __iter__

    def add(
        self,
        method: str,
        path: str,
        handler: Callable[..., Awaitable[Response]],
        *,
        public: bool = False,
        summary: str = "",
        tags: tuple[str, ...] = (),
        cache_control: str | None = None,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        params: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        admin: bool = False,
        problems: tuple[int, ...] = (),
    ) -> None:
        """Add a route; ``body``, ``query``, ``params`` and ``response`` declare its models.

        Declared inputs are decoded before ``handler`` runs and given to it as
        keywords (``revenge.http.declare``); ``response`` and ``status`` document
        its success answer. ``admin``: administrators only (403 for anyone else,
        before the input is decoded). ``problems``: the statuses of problems it answers
        to input its schema allows (documented; ``revenge.http.declare.Declared``).
        ``cache_control``: on every success answer (default: ``no-store`` unless public);
        ``""``: the handler sets its own per answer.
        """
        if admin and public:
            raise ValueError(f"route {path} cannot be both public and for administrators")
        if not path.startswith("/"):
            raise ValueError(f"route path must start with '/': {path!r}")
        method = method.upper()
        caching = cache_control if cache_control is not None else None if public else "no-store"
        tail = (NOSNIFF,) if not caching else (("cache-control", caching), NOSNIFF)
        summary = summary or _first_line(handler)
        if any(not 400 <= code <= 499 for code in problems):
            raise ValueError(f"route {path}: problems are 4xx statuses, not {problems}")
        declared = Declared(body, query, params, response, status, admin, tuple(sorted(problems)))
        if params is not None:
            missing = set(params.model_fields) ^ set(_PARAM_NAMES.findall(path))
            if missing:
                raise ValueError(f"route {path}: params model and path disagree on {missing}")
        route = Route(
            method,
            path,
            declare(handler, declared),
            public,
            summary,
            tags,
            cache_control,
            tail,
            declared,
            handler,
        )
        methods = self._exact.setdefault(path, {}) if "{" not in path else self._node_for(path)
        if method in methods:
            raise ValueError(f"route {method} {path} registered twice")
        methods[method] = route
        if "{" not in path:
            matches = {name: Match(r) for name, r in methods.items()}
            if "GET" in matches and "HEAD" not in matches:
                matches["HEAD"] = matches["GET"]
            self._exact_matches[path] = matches
            self._exact_denied[path] = Match(None, allowed=_allowed(methods))

    def include(self, prefix: str, router: Router) -> None:
        """Mount every route of ``router`` under ``prefix`` (``""`` for none).

        >>> async def show(request): ...
        >>> movies = Router()
        >>> movies.add("GET", "/{movie_id}", show)
        >>> api = Router()
        >>> api.include("/api/v1/movies", movies)
        >>> api.match("GET", "/api/v1/movies/7").params
        {'movie_id': '7'}
        """
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ValueError(f"a prefix starts with '/' and does not end with one: {prefix!r}")
        for route in router:
            path = prefix + route.path if route.path != "/" or not prefix else prefix
            declared = route.declared
            self.add(
                route.method,
                path,
                route.endpoint or route.handler,
                public=route.public,
                summary=route.summary,
                tags=route.tags,
                cache_control=route.cache_control,
                body=declared.body,
                query=declared.query,
                params=declared.params,
                response=declared.response,
                status=declared.status,
                admin=declared.admin,
                problems=declared.problems,
            )

    def _node_for(self, path: str) -> dict[str, Route]:
        node = self._root
        names: list[str] = []
        for segment in path.strip("/").split("/"):
            if segment.startswith("{") and segment.endswith("}"):
                names.append(segment[1:-1])
                if node.param is None:
                    node.param = _Node()
                node = node.param
            else:
                node = node.static.setdefault(segment, _Node())
        if node.methods is None:
            node.methods = {}
            node.names = tuple(names)
            node.path = path
            self._patterns.append(node)
        elif node.names != tuple(names):
            raise ValueError(f"route {path} names its parameters unlike {node.path}")
        return node.methods

    def match(self, method: str, path: str) -> Match:
        exact = self._exact_matches.get(path)
        if exact is not None:
            return exact.get(method) or self._exact_denied[path]
        if "\x00" in path:  # a decoded %00: no resource has it, and PostgreSQL text refuses it
            return _INVALID
        values: list[str] = []
        node = self._root.find(path.strip("/").split("/"), 0, values)
        if node is None or node.methods is None:
            return _NO_MATCH
        methods = node.methods
        route = methods.get(method)
        if route is None and method == "HEAD":
            route = methods.get("GET")
        if route is None:
            return Match(None, allowed=_allowed(methods))
        return Match(route, dict(zip(node.names, values, strict=True)))

    def __iter__(self) -> Iterator[Route]:
        for methods in self._exact.values():
            yield from methods.values()
        for node in self._patterns:
            if node.methods:
                yield from node.methods.values()


def _allowed(methods: dict[str, Route]) -> tuple[str, ...]:
    names = set(methods)
    if "GET" in names:
        names.add("HEAD")
    return tuple(sorted(names))


def _first_line(handler: Callable[..., Awaitable[Response]]) -> str:
    doc = handler.__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""
