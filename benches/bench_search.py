"""Search latency on 20,000 generated titles through PostgreSQL (migration 0003_search).

Each benchmark is one query through :class:`PostgresSearch` on the shared pool
(a uvloop loop); the floor is ``SELECT 1`` through the same pool in the same
run, so ``query / floor`` is the search's own cost over a round trip. The
catalogue is generated (seeded) into a throw-away database.

    python -m pytest benches/bench_search.py --benchmark-only
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import uvloop

from revenge.infra.db import Database
from revenge.infra.search import PostgresSearch, SearchDocument
from revenge.wiring import migrate

ADMIN_URL = os.environ.get("REVENGE_BENCH_DB_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TITLES = 20_000

KINDS = ("movie", "movie", "series", "episode")
SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ra",
    "ven",
    "tor",
    "sha",
    "el",
    "dun",
    "bri",
    "cal",
    "mor",
    "ste",
    "fa",
    "nu",
    "zi",
    "qua",
    "pel",
    "dor",
    "ith",
]


def vocabulary(rng: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def zipf_pick(rng: random.Random, words: list[str]) -> str:
    # Roughly Zipfian: a few words are common, most are rare, as in real titles.
    return words[min(len(words) - 1, int(rng.paretovariate(1.1)) - 1)]


def catalogue(count: int) -> list[SearchDocument]:
    """Seeded synthetic library: Zipf-distributed title and overview words, shared cast."""
    rng = random.Random(20_000)
    title_words = vocabulary(rng, 4000)
    rng.shuffle(title_words)
    prose = vocabulary(rng, 20000)
    rng.shuffle(prose)
    names = [
        f"{w.title()} {v.title()}" for w, v in zip(prose[:2000], prose[2000:4000], strict=True)
    ]
    docs = []
    for i in range(count):
        words = [zipf_pick(rng, title_words).title() for _ in range(rng.randint(1, 4))]
        title = ("The " if rng.random() < 0.3 else "") + " ".join(words)
        overview = " ".join(zipf_pick(rng, prose) for _ in range(rng.randint(20, 40)))
        docs.append(
            SearchDocument(
                id=f"{i:06d}",
                kind=rng.choice(KINDS),
                title=title,
                year=rng.randint(1950, 2025),
                overview=overview,
                people=tuple(rng.sample(names, 4)),
            )
        )
    docs += [
        SearchDocument("matrix", "movie", "The Matrix", year=1999, people=("Keanu Reeves",)),
        SearchDocument("dark", "series", "Dark", year=2017, people=("Louis Hofmann",)),
        SearchDocument("heat", "movie", "Heat", year=1995, people=("Al Pacino", "Robert De Niro")),
    ]
    return docs


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    event_loop = uvloop.new_event_loop()
    yield event_loop
    event_loop.close()


@pytest.fixture(scope="module")
def db(loop: asyncio.AbstractEventLoop) -> Iterator[Database]:
    name = f"revenge_bench_search_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    database = Database(url)
    try:
        loop.run_until_complete(migrate(url))
        loop.run_until_complete(database.start())
        started = time.perf_counter()
        docs = catalogue(TITLES)
        loop.run_until_complete(PostgresSearch(database).index(docs))
        elapsed = time.perf_counter() - started
        print(f"\nindexed {len(docs)} documents in {elapsed:.2f}s")
        loop.run_until_complete(database.execute("VACUUM ANALYZE search_documents"))
        yield database
    finally:
        loop.run_until_complete(database.close())
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _bench(benchmark, loop, search: PostgresSearch, query: str, **options) -> list:  # type: ignore[no-untyped-def]
    hits = benchmark.pedantic(
        lambda: loop.run_until_complete(search.search(query, **options)),
        rounds=60,
        warmup_rounds=3,
    )
    return hits  # type: ignore[no-any-return]


COMMON = "the"


def test_floor_select_1(benchmark, loop, db: Database) -> None:  # type: ignore[no-untyped-def]
    benchmark.pedantic(lambda: loop.run_until_complete(db.fetch_one("SELECT 1")), rounds=60)


def test_one_word(benchmark, loop, db: Database) -> None:  # type: ignore[no-untyped-def]
    hits = _bench(benchmark, loop, PostgresSearch(db), "heat")
    assert hits and hits[0].id == "heat"


def test_two_words(benchmark, loop, db: Database) -> None:  # type: ignore[no-untyped-def]
    hits = _bench(benchmark, loop, PostgresSearch(db), "the matrix")
    assert hits and hits[0].id == "matrix"


def test_typo(benchmark, loop, db: Database) -> None:  # type: ignore[no-untyped-def]
    hits = _bench(benchmark, loop, PostgresSearch(db), "matirx")
    assert any(h.id == "matrix" for h in hits)


def test_common_word_many_matches(benchmark, loop, db: Database) -> None:  # type: ignore[no-untyped-def]
    # The most common title word: thousands of word matches to rank.
    hits = _bench(benchmark, loop, PostgresSearch(db), COMMON)
    assert len(hits) == 20


def test_person_with_kind_filter(benchmark, loop, db: Database) -> None:  # type: ignore[no-untyped-def]
    hits = _bench(benchmark, loop, PostgresSearch(db), "hofmann", kinds=["series"])
    assert hits and hits[0].id == "dark" and all(h.kind == "series" for h in hits)
