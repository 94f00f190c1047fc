"""``revenge``: serve | worker | migrate | config check | health | user create."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence

from revenge import __version__
from revenge.config import ConfigError, Settings, load_settings

Command = Callable[[argparse.Namespace, Settings], int]


def _fail(message: str) -> int:
    print(f"revenge: {message}", file=sys.stderr)
    return 1


def cmd_config_check(args: argparse.Namespace, settings: Settings) -> int:
    """Print the effective configuration, secrets redacted."""
    print(json.dumps(settings.redacted(), indent=2, default=str))
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the app on Granian (RSGI, uvloop), workers as separate processes."""
    from granian import Granian
    from granian.constants import Interfaces, Loops

    server = settings.server
    Granian(
        "revenge.app:app",
        address=args.host or server.host,
        port=args.port if args.port is not None else server.port,
        interface=Interfaces.RSGI,
        workers=args.workers or server.workers,
        loop=Loops.auto,
    ).serve()
    return 0


def cmd_health(args: argparse.Namespace, settings: Settings) -> int:
    """Ask a running server for its health report; exit 0 only when it is healthy."""
    host = "127.0.0.1" if settings.server.host in ("0.0.0.0", "::") else settings.server.host  # noqa: S104
    url = args.url or f"http://{host}:{settings.server.port}/health"
    try:
        with urllib.request.urlopen(url, timeout=settings.health.timeout) as reply:  # noqa: S310
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

    url = settings.database.url.get_secret_value()
    if not url:
        return _fail("set REVENGE_DATABASE__URL (database.url) to create users")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            return _fail("the passwords differ")
    try:
        user = asyncio.run(create_user(url, settings, args.username, password, admin=args.admin))
    except ValueError as exc:
        return _fail(str(exc))
    except UsernameTaken:
        return _fail(f"a user named {args.username!r} already exists")
    print(f"created {user.role} {user.username!r} (id {user.id})")
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

    config = commands.add_parser("config", help="configuration tools")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = config_commands.add_parser("check", help="validate and print the effective config")
    check.set_defaults(run=cmd_config_check)

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        return _fail(str(exc))
    run: Command = args.run
    return run(args, settings)


if __name__ == "__main__":
    sys.exit(main())
