"""Rows for the browse benchmarks, written by SQL directly (browse is measured, not scanning).

* :func:`seed_movies`: a movies library of ``n`` movies with realistic spread: titles
  (some with a leading article), years, ratings and runtimes with a share of NULLs,
  1-3 genres, dates added over years, a poster each, a file each, and the user's state
  on a share of them (played, in progress, favourite).
* :func:`seed_shows`: a TV library of ``series`` x ``seasons`` x ``episodes`` and a user
  who played the first ``watched`` episodes of it, spread over the series in order.
"""

from __future__ import annotations

from typing import Any

GENRES = ["Drama", "Comedy", "Action", "Thriller", "Documentary", "Horror", "Romance",
          "Animation", "Science Fiction", "Crime"]  # fmt: skip


def _library(conn: Any, name: str, kind: str, root: str) -> int:
    row = conn.execute(
        "INSERT INTO libraries (name, kind) VALUES (%s, %s) RETURNING id", (name, kind)
    ).fetchone()
    library_id = int(row[0])
    conn.execute(
        "INSERT INTO library_roots (library_id, path, path_text) VALUES (%s, %s, %s)",
        (library_id, root.encode(), root),
    )
    return library_id


def seed_movies(conn: Any, n: int, user_id: int, *, name: str = "Bench movies") -> int:
    """A movies library of ``n`` movies; its id. ``conn`` is a psycopg (sync) connection."""
    root = f"/bench/{name.lower().replace(' ', '-')}"
    library_id = _library(conn, name, "movies", root)
    conn.execute(
        """
        INSERT INTO items (library_id, kind, key, title, sort_title, year, rating,
                           runtime_seconds, genres, content_rating, date_added, video_height,
                           overview)
        SELECT %(lib)s, 'movie', 'movie:bench:' || g,
               t.title, lower(regexp_replace(t.title, '^(The|A|An) ', '')),
               CASE WHEN g %% 17 = 0 THEN NULL ELSE 1930 + (g * 7) %% 95 END,
               CASE WHEN g %% 11 = 0 THEN NULL ELSE ((g * 7919) %% 91) / 10.0 + 1 END,
               CASE WHEN g %% 13 = 0 THEN NULL ELSE 4800 + (g * 31) %% 5400 END,
               ARRAY(SELECT (%(genres)s::text[])[1 + (g * k * 37) %% 10]
                     FROM generate_series(1, 1 + g %% 3) k),
               (ARRAY['G', 'PG', 'PG-13', 'R', NULL])[1 + g %% 5],
               now() - make_interval(secs => g * 1811),
               (ARRAY[480, 720, 1080, 2160])[1 + g %% 4],
               'A generated film, number ' || g || ', for the browse benchmark.'
          FROM generate_series(1, %(n)s) g
          CROSS JOIN LATERAL (SELECT (CASE WHEN g %% 9 = 0 THEN 'The ' ELSE '' END)
                 || initcap(substr(md5(g::text), 1, 4 + g %% 5)) || ' '
                 || initcap(substr(md5((g * 3)::text), 1, 3 + g %% 7)) AS title) t
        """,
        {"lib": library_id, "n": n, "genres": GENRES},
    )
    conn.execute(
        """
        INSERT INTO images (item_id, kind, source, source_path, width, height, blurhash, status)
        SELECT id, 'poster', 'sidecar', convert_to(%(root)s || '/' || id || '/poster.jpg', 'UTF8'),
               1000, 1500, 'LEHV6nWB2yk8pyo0adR*.7kCMdnj', 'ok'
          FROM items WHERE library_id = %(lib)s
        """,
        {"lib": library_id, "root": root},
    )
    root_id = conn.execute(
        "SELECT id FROM library_roots WHERE library_id = %s", (library_id,)
    ).fetchone()[0]
    conn.execute(
        """
        INSERT INTO media_files (item_id, library_id, root_id, path, path_text, size, mtime_ns,
                                 inode, device, probe_status, container, duration, width, height,
                                 video_codec)
        SELECT i.id, i.library_id, %(root_id)s, convert_to(p, 'UTF8'), p, 4000000000, 0, i.id, 1,
               'ok', 'matroska', coalesce(i.runtime_seconds, 5400), i.video_height * 16 / 9,
               i.video_height, 'h264'
          FROM items i CROSS JOIN LATERAL (SELECT %(root)s || '/' || i.id || '/movie.mkv' AS p) x
         WHERE i.library_id = %(lib)s
        """,
        {"lib": library_id, "root": root, "root_id": root_id},
    )
    conn.execute(
        """
        INSERT INTO user_item_state (user_id, item_id, position_ms, played, play_count,
                                     last_played_at, favourite)
        SELECT %(user)s, id, CASE WHEN id %% 7 = 3 THEN 600000 ELSE 0 END, id %% 7 = 0,
               (id %% 7 = 0)::int, now() - make_interval(mins => id::int), id %% 23 = 0
          FROM items WHERE library_id = %(lib)s AND (id %% 7 IN (0, 3) OR id %% 23 = 0)
        """,
        {"lib": library_id, "user": user_id},
    )
    conn.execute("ANALYZE items")
    conn.execute("ANALYZE images")
    conn.execute("ANALYZE user_item_state")
    return library_id


def seed_shows(
    conn: Any,
    user_id: int,
    *,
    series: int,
    seasons: int,
    episodes: int,
    watched: int,
    name: str = "Bench shows",
) -> int:
    """A TV library; the user played the first ``watched`` episodes (series by series, in
    order), so next up has an answer in every series not finished. Its id."""
    library_id = _library(conn, name, "tv", f"/bench/{name.lower().replace(' ', '-')}")
    conn.execute(
        """
        INSERT INTO items (library_id, kind, key, title, sort_title, year, genres, date_added)
        SELECT %(lib)s, 'series', 'series:bench:' || s, 'Show ' || s, 'show ' || lpad(s::text, 6, '0'),
               1990 + s %% 30, ARRAY['Drama'], now() - make_interval(days => s)
          FROM generate_series(1, %(series)s) s
        """,
        {"lib": library_id, "series": series},
    )
    conn.execute(
        """
        INSERT INTO items (library_id, kind, key, title, sort_title, parent_id, series_id,
                           season_number)
        SELECT %(lib)s, 'season', i.key || ':s' || n, 'Season ' || n, 'season ' || n, i.id, i.id, n
          FROM items i CROSS JOIN generate_series(1, %(seasons)s) n
         WHERE i.library_id = %(lib)s AND i.kind = 'series'
        """,
        {"lib": library_id, "seasons": seasons},
    )
    conn.execute(
        """
        INSERT INTO items (library_id, kind, key, title, sort_title, parent_id, series_id,
                           season_number, episode_number, runtime_seconds, date_added)
        SELECT %(lib)s, 'episode', s.key || ':e' || e, 'Episode ' || e, 'episode ' || e, s.id,
               s.series_id, s.season_number, e, 2700, now() - make_interval(hours => s.id::int)
          FROM items s CROSS JOIN generate_series(1, %(episodes)s) e
         WHERE s.library_id = %(lib)s AND s.kind = 'season'
        """,
        {"lib": library_id, "episodes": episodes},
    )
    per_series = max(1, watched // series)
    conn.execute(
        """
        INSERT INTO user_item_state (user_id, item_id, played, play_count, last_played_at)
        SELECT %(user)s, id, true, 1, now() - make_interval(mins => (series_id * 1000 - rn)::int)
          FROM (SELECT id, series_id, row_number() OVER (PARTITION BY series_id
                       ORDER BY season_number, episode_number, id) AS rn
                  FROM items WHERE library_id = %(lib)s AND kind = 'episode') x
         WHERE rn <= %(per)s
        """,
        {"lib": library_id, "user": user_id, "per": per_series},
    )
    return library_id


def grant(conn: Any, user_id: int, *libraries: int) -> None:
    """Let ``user_id`` see ``libraries``, then vacuum and analyze every table: what
    autovacuum does within a minute of such a burst of writes. Without it the plans
    measured are those of a table with no statistics: ``user_series_progress``, rewritten
    by its trigger once per seeded play (9,800 dead rows for 200 live ones, no statistics),
    made next up's custom plan read every series of the user before its LIMIT (20 ms
    instead of 0.6 ms, while a generic plan of the same statement took 1 ms)."""
    for library in libraries:
        conn.execute(
            "INSERT INTO library_grants (user_id, library_id) VALUES (%s, %s)",
            (user_id, library),
        )
    conn.execute("VACUUM ANALYZE")


def watched_count(conn: Any, user_id: int, library_id: int) -> int:
    row = conn.execute(
        "SELECT count(*) FROM user_item_state s JOIN items i ON i.id = s.item_id"
        " WHERE s.user_id = %s AND s.played AND i.library_id = %s AND i.kind = 'episode'",
        (user_id, library_id),
    ).fetchone()
    return int(row[0])


def movies_page_ms(db_url: str, user_id: int, runs: int) -> list[float]:
    """Wall time of the first movies page as browse makes it (the caller's libraries, then
    the page's one statement), in this process over one connection, after 5 runs to
    prepare it: the database's share of a request, without HTTP."""
    import asyncio
    import time

    import psycopg

    from revenge.modules.library import browse
    from revenge.modules.library.visibility import load_viewer

    async def timed() -> list[float]:
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            times = []
            for n in range(runs + 5):
                started = time.perf_counter()
                viewer = await load_viewer(conn, user_id, admin=False)
                page = await browse.list_items(
                    conn, viewer, kind="movie", library_ids=viewer.library_ids("movie"),
                    sort="title", order="asc", filters=browse.Filters(), cursor=None, limit=100,
                )  # fmt: skip
                if n >= 5:
                    times.append((time.perf_counter() - started) * 1000)
                assert page is not None
            return times

    return asyncio.run(timed())
