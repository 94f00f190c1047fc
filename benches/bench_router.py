"""Route matching against the number of routes (run: ``pytest benches/bench_router.py --benchmark-only``).

The router keeps parameterised paths in a segment trie, so a match walks the
request path's segments whatever the table's size: the per-match time at 10,
100 and 300 routes should be flat. A linear scan over the same patterns (what
the router did before) is measured beside it for contrast; it grows with the
count. Each round matches the worst case for a scan: the last route added.
"""

from __future__ import annotations

import pytest

from revenge.http import Request, Response, Router, json_response

COUNTS = (10, 100, 300)


async def handler(request: Request) -> Response:
    return json_response({})


def paths(count: int) -> list[str]:
    # A realistic spread: resources, sub-resources and actions under /api/v1.
    shapes = (
        "/api/v1/res{i}/{{item_id}}",
        "/api/v1/res{i}/{{item_id}}/parts/{{part_id}}",
        "/api/v1/res{i}/{{item_id}}/actions/refresh",
    )
    return [shapes[i % 3].format(i=i) for i in range(count)]


def concrete(path: str) -> str:
    return path.replace("{item_id}", "42").replace("{part_id}", "7")


def build(count: int) -> tuple[Router, str]:
    router = Router()
    table = paths(count)
    for path in table:
        router.add("GET", path, handler)
    return router, concrete(table[-1])


class LinearScan:
    """The former matcher: every pattern's segments compared in turn."""

    def __init__(self, table: list[str]) -> None:
        self.patterns = [tuple(p.strip("/").split("/")) for p in table]

    def match(self, path: str) -> dict[str, str] | None:
        parts = path.strip("/").split("/")
        for segments in self.patterns:
            if len(segments) != len(parts):
                continue
            for segment, part in zip(segments, parts, strict=True):
                if segment[0] != "{" and segment != part:
                    break
            else:
                return {s[1:-1]: p for s, p in zip(segments, parts, strict=True) if s[0] == "{"}
        return None


@pytest.mark.parametrize("count", COUNTS)
def test_trie_match(benchmark: pytest.FixtureRequest, count: int) -> None:
    router, path = build(count)
    benchmark.group = "router: match the last of N routes"
    benchmark.name = f"trie, {count} routes"
    found = benchmark(router.match, "GET", path)  # type: ignore[operator]
    assert found.route is not None and found.params["item_id"] == "42"


@pytest.mark.parametrize("count", COUNTS)
def test_linear_scan_match(benchmark: pytest.FixtureRequest, count: int) -> None:
    table = paths(count)
    scan, path = LinearScan(table), concrete(table[-1])
    benchmark.group = "router: match the last of N routes"
    benchmark.name = f"linear scan, {count} routes"
    assert benchmark(scan.match, path) is not None  # type: ignore[operator]
