"""The job-kind registry and its policies (no database needed)."""

from __future__ import annotations

import pytest
from psycopg_pool import AsyncConnectionPool

from revenge.infra.jobs import (
    CLEANUP,
    JobContext,
    JobKind,
    Jobs,
    KindRegistry,
    Payload,
    RetryPolicy,
    UnknownJobKind,
    builtin_registry,
)


def test_the_platform_owns_cleanup_and_modules_declare_their_kinds() -> None:
    """Kinds come from the module list (``ctx.job``), the same in every process."""
    from revenge.config import load_settings
    from revenge.wiring import build

    registry = build(load_settings(env={}), role="migrate").kinds
    assert "cleanup" in registry.runnable() and registry.kind("cleanup") is CLEANUP
    assert registry.kind("cleanup").schedule is not None
    assert "search_reindex" in registry.runnable()  # the search module's kind and body
    assert set(builtin_registry().kinds()) == {"cleanup"}


def test_backoff_grows_geometrically_and_is_capped() -> None:
    policy = RetryPolicy(max_attempts=10, initial_delay=1.0, max_delay=5.0, multiplier=2.0)
    assert [policy.delay(n) for n in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert not policy.gives_up_after(8) and policy.gives_up_after(9)
    assert RetryPolicy(max_attempts=1).gives_up_after(0)
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(multiplier=0.5)


def test_kind_names_and_options_are_validated() -> None:
    with pytest.raises(ValueError, match="lower_snake_case"):
        JobKind("Library Scan")
    with pytest.raises(ValueError):
        JobKind("x", timeout=0)
    with pytest.raises(ValueError):
        JobKind("x", max_running=-1)
    assert JobKind("scan", unique=True).dedupe_key(None) == "scan:"


def test_registry_rejects_duplicates_and_unknown_kinds() -> None:
    registry = KindRegistry((JobKind("a", queue="q1"), JobKind("b", queue="q2")))
    with pytest.raises(ValueError, match="already defined"):
        registry.define(JobKind("a"))
    with pytest.raises(UnknownJobKind, match="known kinds: a, b"):
        registry.kind("nope")
    with pytest.raises(UnknownJobKind):
        registry.handler("nope")

    async def body(ctx: JobContext, payload: Payload) -> None:
        return None

    async def other(ctx: JobContext, payload: Payload) -> None:
        return None

    registry.handler("a")(body)
    registry.handler("a")(body)  # the same body again (a module re-imported) is fine
    with pytest.raises(ValueError, match="already has a body"):
        registry.handler("a")(other)
    registry.handler("b")(other)
    assert set(registry.runnable()) == {"a", "b"}
    assert set(registry.runnable(frozenset({"q2"}))) == {"b"}


def test_copy_keeps_kinds_and_bodies_apart_from_the_original() -> None:
    original = builtin_registry()
    clone = original.copy()
    clone.define(JobKind("only_in_the_copy"))
    assert "only_in_the_copy" not in original.kinds()
    assert clone.body("cleanup") is original.body("cleanup")


async def test_enqueue_of_an_unknown_kind_fails_before_touching_the_database() -> None:
    pool: AsyncConnectionPool = AsyncConnectionPool("postgresql://nowhere.invalid/x", open=False)
    jobs = Jobs(pool, registry=KindRegistry((JobKind("known"),)))
    with pytest.raises(UnknownJobKind):
        await jobs.enqueue("unknown")
    with pytest.raises(ValueError, match="differ in length"):
        await jobs.enqueue_many("known", [{}, {}], keys=["1"])


def test_worker_config_rejects_a_bad_cron_expression() -> None:
    from revenge.infra.jobs import WorkerConfig

    with pytest.raises(ValueError, match=r"'cleanup'.*not a cron expression"):
        WorkerConfig(url="postgresql://x/y", schedules={"cleanup": "every night"})
    assert WorkerConfig(url="postgresql://x/y", schedules={"cleanup": ""}).schedules


def test_the_pgqueuer_hooks_we_override_still_exist() -> None:
    """SlotBoundQueueManager overrides these; a pgqueuer upgrade that renames them
    would silently fall back to slower NOTIFY-driven claiming, so say it here."""
    import inspect

    from pgqueuer import QueueManager

    assert list(inspect.signature(QueueManager.fetch_jobs).parameters) == [
        "self",
        "batch_size",
        "global_concurrency_limit",
        "heartbeat_timeout",
    ]
    assert list(inspect.signature(QueueManager._effective_dequeue_timeout).parameters) == [
        "self",
        "dequeue_timeout",
    ]
    assert list(inspect.signature(QueueManager.forget_job).parameters) == [
        "self",
        "job_id",
        "context",
        "task",
    ]
