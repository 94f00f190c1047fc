"""``revenge``: serve | worker | migrate | config | health | user create | library | backup | restore."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from revenge import __version__
from revenge.config import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from revenge.runtime import Runtime

Command = Callable[[argparse.Namespace, Settings], int]


def _fail(message: str) -> int:
    print(f"revenge: {message}", file=sys.stderr)
    return 1


def cmd_config_check(args: argparse.Namespace, settings: Settings) -> int:
    """Print the effective configuration, secrets redacted."""
    print(json.dumps(settings.redacted(), indent=2, default=str))
    return 0


def cmd_config_docs(args: argparse.Namespace, settings: Settings | None) -> int:
    """Print docs/configuration.md, generated from the settings model."""
    from revenge.config_docs import render

    sys.stdout.write(render())
    return 0


@contextmanager
def _prepared_database(settings: Settings) -> Iterator[str]:
    """The database URL, migrated; the embedded server runs until the block ends.

    Raises :class:`_Failed` saying which URL failed and why.
    """
    import asyncio

    from revenge import wiring
    from revenge.infra.db import (
        DatabaseUnreachable,
        EmbeddedDatabaseError,
        MigrationError,
        prepare_database,
    )
    from revenge.infra.jobs.schema import install_schema

    try:
        prepared = prepare_database(settings, wiring.migrations(settings))
    except (DatabaseUnreachable, EmbeddedDatabaseError, MigrationError) as exc:
        raise _Failed(str(exc)) from None
    try:
        for name in prepared.applied:
            print(f"revenge: applied migration {name}", file=sys.stderr)
        try:
            # The job queue's tables too (pgqueuer's own, versioned by it): a migrated
            # database is one every process can enqueue on from its first request.
            asyncio.run(install_schema(prepared.url))
        except DatabaseUnreachable as exc:
            raise _Failed(str(exc)) from None
        yield prepared.url
    finally:
        if prepared.stop is not None:
            prepared.stop()


class _Failed(Exception):
    """A command cannot go on; the message says what to fix."""


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the app on Granian (RSGI, uvloop), workers as separate processes.

    The parent resolves the database once (starting the embedded PostgreSQL when no
    URL is set), migrates it and exports the URL, so every worker shares one server.
    """
    from granian import Granian
    from granian.constants import Interfaces, Loops

    from revenge.modules.auth.admin import forget_setup_code
    from revenge.runtime import logs
    from revenge.runtime.metrics import prepare_multiprocess_dir

    server = settings.server
    logs.configure(settings.log.level, settings.log.format)
    # Before anything imports prometheus_client (preparing the database builds the
    # application): a client loaded first stays single-process, in this process and in
    # every worker forked from it, and /metrics, which reads the directory, comes out empty.
    prepare_multiprocess_dir(server.data_path / "run" / "metrics")
    with _prepared_database(settings) as url:
        forget_setup_code(url)
        Granian(
            "revenge.app:app",
            address=args.host or server.host,
            port=args.port if args.port is not None else server.port,
            interface=Interfaces.RSGI,
            workers=args.workers or server.workers,
            loop=Loops.auto,
            backpressure=server.backpressure,
            # A worker that dies (OOM killer, SIGKILL, a crash in an extension) comes back
            # instead of taking the whole server down; sessions live in PostgreSQL.
            respawn_failed_workers=True,
            respawn_interval=1.0,
            # Granian's own lines go through the root logger: one format on stderr.
            log_dictconfig=_GRANIAN_LOGGING,
        ).serve()
    return 0


_GRANIAN_LOGGING = {
    "loggers": {
        "_granian": {"handlers": [], "propagate": True},
        "granian.access": {"handlers": [], "propagate": True},
    }
}


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    """Apply the pending migrations (under an advisory lock: safe beside running servers)."""
    with _prepared_database(settings):
        print("revenge: database is up to date")
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Run background jobs until SIGINT/SIGTERM; any number of these may run on any host.

    The worker builds the same application as ``serve`` (the module list's services,
    job kinds and bodies) with the job worker as its critical background service.
    """
    import asyncio

    from revenge import wiring
    from revenge.infra.db import DatabaseUnreachable
    from revenge.runtime import logs

    logs.configure(settings.log.level, settings.log.format)
    with _prepared_database(settings):
        overrides: dict[str, object] = {}
        if args.concurrency:
            overrides["concurrency"] = args.concurrency
        if args.queues:
            overrides["queues"] = frozenset(q.strip() for q in args.queues.split(",") if q.strip())
        settings = load_settings()  # with the URL the database step exported
        assembly = wiring.build(settings, role="worker", worker=overrides)
        try:
            asyncio.run(_run_until_signal(assembly.runtime))
        except DatabaseUnreachable as exc:
            raise _Failed(str(exc)) from None
    return 0


async def _run_until_signal(runtime: Runtime) -> None:
    """Start ``runtime``; stop it on SIGINT/SIGTERM, or when its job worker ends by itself."""
    import asyncio
    import signal

    from revenge.contract import JOB_WORKER

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await runtime.start()
    try:
        worker = runtime.get(JOB_WORKER)
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({stopped, worker.task}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
    finally:
        await runtime.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def cmd_health(args: argparse.Namespace, settings: Settings) -> int:
    """Ask a running server for its health report; exit 0 only when it is healthy.

    The report is for operators: the request carries ``metrics.scrape_token`` when set.
    """
    host = "127.0.0.1" if settings.server.host in ("0.0.0.0", "::") else settings.server.host  # noqa: S104
    url = args.url or f"http://{host}:{settings.server.port}/health"
    token = settings.metrics.scrape_token.get_secret_value()
    request = urllib.request.Request(  # noqa: S310 - the operator's own URL
        url, headers={"authorization": f"Bearer {token}"} if token else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.health.timeout) as reply:  # noqa: S310
            body = reply.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
    except OSError as exc:
        return _fail(f"cannot reach {url}: {exc}")
    print(body.decode("utf-8", "replace"))
    try:
        return 0 if json.loads(body).get("status") == "healthy" else 1
    except ValueError:
        return _fail(f"{url} did not answer with JSON")


def cmd_user_create(args: argparse.Namespace, settings: Settings) -> int:
    """Create a user (an administrator with ``--admin``); the password never appears in argv."""
    import asyncio
    import getpass

    from revenge.modules.auth.admin import create_user
    from revenge.modules.auth.repository import UsernameTaken

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            return _fail("the passwords differ")
    try:
        with _prepared_database(settings) as url:
            user = asyncio.run(
                create_user(url, settings, args.username, password, admin=args.admin)
            )
    except ValueError as exc:
        return _fail(str(exc))
    except UsernameTaken:
        return _fail(f"a user named {args.username!r} already exists")
    print(f"created {user.role} {user.username!r} (id {user.id})")
    return 0


def cmd_library(args: argparse.Namespace, settings: Settings) -> int:
    """``library add|list|scan|rm|grant|revoke``: the same checks and problems as the API."""
    import asyncio

    from revenge.http import Problem
    from revenge.modules.library import admin

    try:
        with _prepared_database(settings) as url:
            if args.library_command == "add":
                lib = asyncio.run(admin.add(url, settings, args.name, args.kind, args.roots))
                print(f"created {lib.kind} library {lib.name!r} (id {lib.id})")
            elif args.library_command == "list":
                for lib in asyncio.run(admin.listing(url, settings)):
                    roots = ", ".join(r.text for r in lib.roots)
                    print(f"{lib.id}\t{lib.name}\t{lib.kind}\t{roots}")
            elif args.library_command == "rm":
                lib = asyncio.run(admin.remove(url, settings, args.library))
                print(f"deleted library {lib.name!r} (id {lib.id}); no media file was touched")
            elif args.library_command in ("grant", "revoke"):
                revoke = args.library_command == "revoke"
                lib, user_id, changed = asyncio.run(
                    admin.grant(url, settings, args.library, args.user, revoke=revoke)
                )
                verb = "revoked from" if revoke else "granted to"
                note = "" if changed else " (it already was)" if not revoke else " (it was not)"
                print(f"library {lib.name!r} (id {lib.id}) {verb} user {user_id}{note}")
            else:
                request, report = asyncio.run(
                    admin.scan(url, settings, args.library, wait=args.wait)
                )
                state = "already queued or running" if request.already else "queued"
                print(f"scan job {request.job_id} {state}")
                if report is not None:
                    print(json.dumps(report, indent=2, default=str))
    except Problem as exc:
        return _fail(f"{exc.code}: {exc.detail or exc.title}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="revenge", description=__doc__)
    parser.add_argument("--version", action="version", version=f"revenge {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the HTTP API on Granian")
    serve.add_argument("--host", help="bind address (default: server.host)")
    serve.add_argument("--port", type=int, help="port (default: server.port, 8096)")
    serve.add_argument("--workers", type=int, help="worker processes (default: server.workers)")
    serve.set_defaults(run=cmd_serve)

    migrate = commands.add_parser("migrate", help="apply pending database migrations")
    migrate.set_defaults(run=cmd_migrate)

    worker = commands.add_parser("worker", help="run background jobs")
    worker.add_argument("--concurrency", type=int, help="jobs at once (default: jobs.concurrency)")
    worker.add_argument("--queues", help="comma-separated queues to serve (default: all)")
    worker.set_defaults(run=cmd_worker)

    config = commands.add_parser("config", help="configuration tools")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = config_commands.add_parser("check", help="validate and print the effective config")
    check.set_defaults(run=cmd_config_check)
    docs = config_commands.add_parser("docs", help="print the configuration reference (Markdown)")
    docs.set_defaults(run=cmd_config_docs, needs_settings=False)

    health = commands.add_parser("health", help="query a running server's /health")
    health.add_argument("--url", help="full URL of /health (default: from server.host/port)")
    health.set_defaults(run=cmd_health)

    user = commands.add_parser("user", help="user accounts")
    user_commands = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    create = user_commands.add_parser("create", help="create a user (prompts for the password)")
    create.add_argument("username")
    create.add_argument("--admin", action="store_true", help="an administrator")
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    create.set_defaults(run=cmd_user_create)

    from revenge.ops import backup_commands

    backup_commands.add_parsers(commands)

    library = commands.add_parser("library", help="movie and TV libraries")
    library_commands = library.add_subparsers(
        dest="library_command", required=True, metavar="ACTION"
    )
    add = library_commands.add_parser("add", help="create a library")
    add.add_argument("name")
    add.add_argument("--kind", required=True, choices=("movies", "tv"))
    add.add_argument("roots", nargs="+", metavar="ROOT", help="absolute folder paths")
    library_commands.add_parser("list", help="list libraries")
    scan = library_commands.add_parser("scan", help="queue a scan (a worker runs it)")
    scan.add_argument("library", help="name or id")
    scan.add_argument("--wait", action="store_true", help="wait for it and print its report")
    rm = library_commands.add_parser("rm", help="delete a library (media files are untouched)")
    rm.add_argument("library", help="name or id")
    for verb, what in (("grant", "let a user see a library"), ("revoke", "stop a user seeing it")):
        granting = library_commands.add_parser(verb, help=what)
        granting.add_argument("library", help="name or id")
        granting.add_argument("user", help="user name or id")
    library.set_defaults(run=cmd_library)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not getattr(args, "needs_settings", True):
        return int(args.run(args, None))  # works whatever the environment says
    try:
        settings = load_settings()
    except ConfigError as exc:
        return _fail(str(exc))
    run: Command = args.run
    try:
        return run(args, settings)
    except _Failed as exc:
        return _fail(str(exc))


if __name__ == "__main__":
    sys.exit(main())
