"""Targeted one-line mutations of the security- and data-critical modules (``just mutate``).

Each mutant is one deliberate bug of the kind a careless edit makes (a dropped
NOTIFY, ``>`` for ``>=``, a lost ``.lower()``); the tests named for it must fail.
The mutations are applied to a throw-away copy of the tree (the tracked files
plus the built ``_core`` extension), never to the working tree, one at a time:

    python scripts/mutate.py                 # every mutant; the kill rate at the end
    python scripts/mutate.py --list          # what would run
    python scripts/mutate.py --only S1,H2    # some of them
    python scripts/mutate.py --json out.json # also write the results

A mutant is *killed* when its tests fail (or time out), *survived* when they
pass. A survivor either gets a test (then it is killed) or an ``explained``
reason here (an equivalent mutant, or one only a timing or load test can see);
the run exits 1 when a survivor has no explanation. Before any mutant the same
tests run unmutated and must pass (else the run stops: a red suite kills
everything and proves nothing).

Needs what the tests need: PostgreSQL and Redis (``REVENGE_TEST_*``), the
built extension in ``python/revenge``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = "python/revenge/"

AUTH_API = "tests/integration/test_auth_api.py"
AUTH_REVOCATION = "tests/integration/test_auth_revocation.py"
AUTH_UNITS = "tests/unit/test_auth_units.py"
LOGIN_THROTTLE = "tests/integration/test_login_throttle.py"
AUTH_HIT = "tests/unit/test_http_auth_hit.py"
HTTP = (
    "tests/unit/test_http.py",
    "tests/unit/test_http_rsgi.py",
    "tests/unit/test_http_body_limit.py",
    "tests/unit/test_http_hardening.py",
)
RANGES = ("tests/unit/test_http_ranges.py",)
JOBS = "tests/integration/test_jobs.py"
JOBS_API = "tests/integration/test_api_jobs.py"
JOBS_RECOVERY = "tests/integration/test_jobs_recovery.py"
JOBS_REGISTRY = "tests/integration/test_jobs_registry.py"
JOBS_SHUTDOWN = "tests/integration/test_jobs_shutdown.py"
MIGRATIONS = "tests/integration/test_migrations.py"
L1 = "tests/unit/test_cache_l1.py"


@dataclass(frozen=True)
class Mutant:
    id: str
    path: str
    """Relative to ``python/revenge/``."""
    find: str
    """Text that occurs exactly once in the file (context may span lines; the change is one line)."""
    replace: str
    what: str
    tests: tuple[str, ...]
    """pytest arguments: files, node ids, ``-k`` expressions."""
    explained: str = ""
    """Why a survivor is acceptable; empty for a mutant that must be killed."""


MUTANTS: tuple[Mutant, ...] = (
    # -- login throttle ----------------------------------------------------------------------
    Mutant("T1", "modules/auth/throttle.py", "        if over <= 0:", "        if over < 0:",
           "one more failure before any delay", (AUTH_UNITS, PKG + "modules/auth/throttle.py")),
    Mutant("T2", "modules/auth/throttle.py", "(2.0 ** min(over - 1, 30))", "(2.0 ** min(over, 30))",
           "first delay doubled", (AUTH_UNITS,)),
    Mutant("T3", "modules/auth/throttle.py",
           "        return str(ipaddress.IPv6Network((address, 64), strict=False))",
           "        return str(address)",
           "IPv6 counted per address, not per /64 (one host holds 2^64 allowances)",
           (AUTH_UNITS, LOGIN_THROTTLE, "-k", "ipv6 or 64")),
    Mutant("T4", "modules/auth/throttle.py", "        if address.ipv4_mapped is not None:",
           "        if False:", "an IPv4-mapped IPv6 address counted apart from its IPv4 address",
           (AUTH_UNITS,)),
    Mutant("T8", "modules/auth/throttle.py", "        if wait > 0:", "        if wait > 1:",
           "a wait under 1 s is not enforced", (AUTH_UNITS,)),
    Mutant("T9", "modules/auth/throttle.py",
           "        if not forwarded_for or not self.trusted(peer):",
           "        if not forwarded_for:", "X-Forwarded-For trusted from any peer",
           (AUTH_UNITS, PKG + "modules/auth/throttle.py")),
    Mutant("T10", "modules/auth/throttle.py", "            if not self.trusted(hop):",
           "            if self.trusted(hop):", "the client is a proxy hop",
           (AUTH_UNITS, PKG + "modules/auth/throttle.py")),
    # -- auth service --------------------------------------------------------------------------
    Mutant("S1", "modules/auth/service.py",
           "            await self.throttle.refund(conn, network, account, succeeded=True)\n",
           "", "a successful login neither clears the pair counter nor makes the network known",
           (AUTH_API, LOGIN_THROTTLE, "-k", "clears_the_failures or owner")),
    Mutant("S2", "modules/auth/service.py",
           "        network, account = network_of(ip), comparable(username)",
           "        network, account = ip, comparable(username)",
           "the throttle keys IPv6 clients by address", (LOGIN_THROTTLE, "-k", "ipv6")),
    Mutant("S3", "modules/auth/service.py",
           "            await self.throttle.reserve(conn, network, account)  # 429, counting nothing\n",
           "", "throttle never consulted", (AUTH_API, LOGIN_THROTTLE, "-k", "throttle or network")),
    Mutant("S4", "modules/auth/service.py", "            await self.hasher.verify_dummy(password)\n",
           "", "unknown usernames answer without spending a hash (a timing oracle)",
           (AUTH_API, "-k", "spend_a_password_check")),
    Mutant("S5", "modules/auth/service.py", "        if user.disabled:", "        if False:",
           "a disabled user logs in", (AUTH_API, "-k", "disabled")),
    Mutant("S6", "modules/auth/service.py",
           "            if digest is not None:\n                await self.publisher.notify(conn, encode_token(digest))",
           "            if digest is not None:\n                pass",
           "no NOTIFY when one session is deleted by id or an API key revoked", (AUTH_REVOCATION, "-k", "notifies")),
    Mutant("S7", "modules/auth/service.py",
           "            found = await repo.delete_session_by_hash(conn, digest)\n            await self.publisher.notify(conn, encode_token(digest))",
           "            found = await repo.delete_session_by_hash(conn, digest)",
           "no NOTIFY on logout", (AUTH_REVOCATION, "-k", "logout")),
    Mutant("S8", "modules/auth/service.py",
           "            count = await repo.delete_user_sessions(conn, user_id)\n            await self.publisher.notify(conn, encode_user(user_id))",
           "            count = await repo.delete_user_sessions(conn, user_id)",
           "no NOTIFY when every session of a user is revoked", (AUTH_REVOCATION, "-k", "all_sessions_notifies")),
    Mutant("S9", "modules/auth/service.py",
           "            if changed:\n                await self.publisher.notify(conn, encode_user(user_id))",
           "            if changed:\n                pass",
           "no NOTIFY when a user is disabled", (AUTH_REVOCATION, "-k", "disable")),
    Mutant("S10", "modules/auth/service.py",
           "        if digest is not None:\n            self.authenticator.revoke_hash(digest)",
           "        if digest is not None:\n            pass",
           "the revoking worker keeps its own cached copy", (AUTH_API, "-k", "forgets_at_once")),
    # -- authenticator -------------------------------------------------------------------------
    Mutant("A1", "modules/auth/authenticator.py",
           "        if session is not None and session.flags == flags:",
           "        if session is not None:", "a cached session token accepted as an API key (and back)",
           (AUTH_HIT, AUTH_UNITS)),
    Mutant("A2", "modules/auth/authenticator.py", "        if generation == self.generation:",
           "        if True:", "a miss that raced a revocation fills the cache", (AUTH_UNITS,)),
    Mutant("A3", "modules/auth/authenticator.py",
           "        if not secret or len(secret) > MAX_CREDENTIAL_LENGTH:\n            raise",
           "        if not secret:\n            raise", "over-long credentials hashed and looked up",
           (AUTH_UNITS, AUTH_HIT)),
    Mutant("A4", "modules/auth/authenticator.py",
           "        self._cache.revoke(digest)\n        self._principals.pop(digest, None)",
           "        self._cache.revoke(digest)", "a revoked credential's ready Principal kept",
           (AUTH_UNITS, AUTH_HIT),
           explained="equivalent: a ready Principal is served only after the Rust cache says "
           "the hash is valid, and remember() drops it before the hash is cached again; "
           "the stale entry is only memory until the dict's bound clears it"),
    Mutant("A5", "modules/auth/authenticator.py",
           "            expires_at=min(credential.expires_at, time.time() + 366 * 86400.0),",
           "            expires_at=time.time() + 366 * 86400.0,",
           "a session cached past its expiry", (AUTH_UNITS, AUTH_HIT, AUTH_API)),
    # -- tokens, revocation messages, repository SQL --------------------------------------------
    Mutant("K1", "modules/auth/tokens.py", "TOKEN_BYTES = 32", "TOKEN_BYTES = 8",
           "64-bit tokens", (AUTH_UNITS, PKG + "modules/auth/tokens.py")),
    Mutant("K2", "modules/auth/tokens.py", ' or key[end] != "_":', ":",
           "any rvk_ string is shaped like a key", (AUTH_UNITS, PKG + "modules/auth/tokens.py")),
    Mutant("R1", "modules/auth/revocation.py", '_HASH = re.compile(r"^[0-9a-f]{64}$")',
           '_HASH = re.compile(r"^[0-9a-f]+$")', "malformed revocation hashes accepted",
           (AUTH_UNITS, PKG + "modules/auth/revocation.py")),
    Mutant("R2", "modules/auth/revocation.py",
           "                    # empty cache, then trust it again.\n                    self._on_gap()",
           "                    # empty cache, then trust it again.",
           "a reconnected listener keeps a cache that may have missed revocations",
           (AUTH_REVOCATION, "-k", "lost_listener")),
    Mutant("P1", "modules/auth/repository.py",
           '"WHERE s.token_hash = %s AND u.id = s.user_id AND NOT u.disabled "',
           '"WHERE s.token_hash = %s AND u.id = s.user_id "',
           "a disabled user's session resolves", (AUTH_API, AUTH_REVOCATION)),
    Mutant("P2", "modules/auth/repository.py",
           '"AND s.expires_at > now() AND s.last_seen_at > now() - make_interval(secs => %s) "',
           '"AND s.expires_at > now() AND %s IS NOT NULL "',
           "the idle timeout is ignored", (AUTH_API, "-k", "idle")),
    Mutant("P3", "modules/auth/repository.py",
           '"DELETE FROM sessions WHERE id = %s AND user_id = %s RETURNING token_hash",',
           '"DELETE FROM sessions WHERE id = %s AND (user_id = %s OR true) RETURNING token_hash",',
           "anyone deletes anyone's session", (AUTH_API, "-k", "someone_elses")),
    Mutant("P4", "modules/auth/repository.py",
           '"DELETE FROM api_keys WHERE id = %s AND user_id = %s RETURNING key_hash",',
           '"DELETE FROM api_keys WHERE id = %s AND (user_id = %s OR true) RETURNING key_hash",',
           "anyone revokes anyone's API key", (AUTH_API, "-k", "api_key")),
    Mutant("P5", "modules/auth/repository.py",
           '"AND (k.expires_at IS NULL OR k.expires_at > now()) "', '"AND true "',
           "expired API keys resolve", (AUTH_API, "-k", "expired_api_key")),
    # -- HTTP body handling ---------------------------------------------------------------------
    Mutant("H1", "http/request.py", "            if expected > self.max_body:",
           "            if expected >= self.max_body:",
           "a declared body of exactly max_body_bytes refused", HTTP),
    Mutant("H2", "http/request.py", "                    if size > self.max_body:",
           "                    if size >= self.max_body:",
           "a streamed body of exactly max_body_bytes refused", HTTP),
    Mutant("H3", "http/request.py", "            if expected > self.max_body:",
           "            if expected > self.max_body + 1:",
           "a declared body one byte over the limit accepted", HTTP),
    Mutant("H4", "http/request.py", "                    if size > self.max_body:",
           "                    if size > self.max_body + 1:",
           "a streamed body one byte over the limit accepted", HTTP),
    Mutant("H5", "http/request.py",
           "            if not declared.isascii() or not declared.isdigit():",
           "            if False:", "a junk Content-Length reaches int()", (*HTTP, AUTH_API)),
    Mutant("H6", "http/request.py", "        if expected is not None and size != expected:",
           "        if False:", "a body shorter than its Content-Length taken as whole", HTTP),
    Mutant("H7", "http/request.py", "                        raise IncompleteBody",
           "                        pass", "a failed chunked read taken as the body's end", HTTP),
    Mutant("H8", "http/router.py", '        if "\\x00" in path:',
           "        if False:", "a NUL in a path parameter reaches the handler", HTTP),
    Mutant("H9", "http/router.py", 'if public else "no-store"', "if public else None",
           "a private response without Cache-Control", HTTP),
    Mutant("G1", "http/ranges.py", "        if suffix == 0:",
           "        if False:", "bytes=-0 served as a range", RANGES),
    Mutant("G2", "http/ranges.py", "        if end is None or end < start:",
           "        if end is None:", "a reversed range served", RANGES),
    Mutant("G3", "http/ranges.py", "    if start >= size:",
           "    if start > size:", "a range starting at the end served empty", RANGES),
    # -- the L1 cache's budget -------------------------------------------------------------------
    Mutant("L1", "infra/cache/l1.py",
           "        while len(self._items) > self.max_entries or self._bytes > self.max_bytes:",
           "        while len(self._items) > self.max_entries:",
           "the L1 ignores its byte budget", (L1,)),
    Mutant("L2", "infra/cache/l1.py", "        size = len(key) + len(value)",
           "        size = len(value)", "keys not charged to the byte budget", (L1,)),
    Mutant("L3", "infra/cache/l1.py", "        if ttl <= 0 or size > self.max_bytes:",
           "        if ttl <= 0 or size >= self.max_bytes:",
           "a value of exactly the budget refused", (L1,)),
    Mutant("L4", "infra/cache/l1.py", "            self._bytes -= len(key) + len(item[1])",
           "            self._bytes -= len(item[1])", "removals leak the key's bytes", (L1,)),
    # -- job queue ------------------------------------------------------------------------------
    Mutant("J1", "infra/jobs/kinds.py", "        return attempt + 1 >= self.max_attempts",
           "        return attempt >= self.max_attempts", "one attempt more than allowed",
           (JOBS_REGISTRY, JOBS, "-k", "retried or last_attempt or timeout")),
    Mutant("J2", "infra/jobs/kinds.py", "self.initial_delay * self.multiplier**attempt",
           "self.initial_delay * self.multiplier", "back-off stops growing", (JOBS_REGISTRY,)),
    Mutant("J3", "infra/jobs/queue.py", "            dedupe if spec.unique else None,",
           "            None,", "unique kinds queued twice", (JOBS,)),
    Mutant("J4", "infra/jobs/queue.py",
           "            [spec.priority if priority is None else priority] * n,",
           "            [spec.priority] * n,", "an explicit priority ignored", (JOBS,)),
    Mutant("J5", "infra/jobs/queue.py",
           '                state = "stalled" if row["stale"] else "running"',
           '                state = "running"', "a dead worker's job shows as running",
           (JOBS_SHUTDOWN, "-k", "stale_heartbeat")),
    Mutant("J6", "infra/jobs/queue.py",
           "\"AND job_id NOT IN (SELECT id FROM pgqueuer WHERE status IN ('queued', 'picked'))\",",
           '"AND true",', "cleanup deletes the history of live jobs",
           (JOBS_RECOVERY, "-k", "cleanup")),
    Mutant("J7", "infra/jobs/queue.py", "\"DELETE FROM pgqueuer WHERE status = 'failed' \"",
           "\"DELETE FROM pgqueuer WHERE status IN ('failed', 'queued') \"",
           "cleanup deletes queued jobs", (JOBS_RECOVERY, "-k", "cleanup")),
    Mutant("J8", "infra/jobs/worker.py",
           "                failure = _timed_out(self.kind) if scope.expired() else exc",
           "                failure = exc", "a timed-out job is stored without a reason",
           (JOBS, "-k", "timeout")),
    Mutant("J9", "infra/jobs/worker.py", "            if rt.stopping:", "            if False:",
           "jobs start after shutdown began", (JOBS_SHUTDOWN, "-k", "not_started")),
    Mutant("J10", "infra/jobs/worker.py", '"UPDATE pgqueuer SET attempts = greatest(attempts - 1, 0) "',
           '"UPDATE pgqueuer SET attempts = greatest(attempts, 0) "',
           "a released job loses an attempt", (JOBS_SHUTDOWN, "-k", "not_charged")),
    Mutant("J11", "infra/jobs/queue.py", '    if exc_type == "RetryRequested":\n        return message',
           '    if exc_type == "RetryRequested":\n        return exc_type',
           "a retried job's reason is lost", (PKG + "infra/jobs/queue.py",)),
    # -- migrations -----------------------------------------------------------------------------
    Mutant("M1", "infra/db/migrate.py", "        if recorded_sum != migration.checksum:",
           "        if False:", "an edited, applied migration passes", (MIGRATIONS,)),
    Mutant("M2", "infra/db/migrate.py", "        await _lock(conn, lock_timeout)\n",
           "", "no advisory lock between appliers", (MIGRATIONS,)),
    Mutant("M3", "infra/db/migrate.py", "        return first_line != NO_TRANSACTION",
           "        return True", "no-transaction files run in a transaction", (MIGRATIONS,)),
    Mutant("M4", "infra/db/migrate.py", "        if version in found:", "        if False:",
           "two files with one version: one silently wins", (MIGRATIONS,)),
    Mutant("M5", "infra/db/migrate.py", '    return hashlib.sha256(text.replace("\\r\\n", "\\n")',
           '    return hashlib.sha256(text', "CRLF checkouts break applied checksums", (MIGRATIONS,)),
    Mutant("M6", "infra/db/migrate.py", "            async with conn.transaction():",
           "            if True:", "a migration applied but not recorded when its record fails", (MIGRATIONS,)),
    Mutant("M7", "infra/db/migrate.py", "                if migration.key not in applied:",
           "                if True:", "applied migrations run again", (MIGRATIONS,)),
)  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    id: str
    where: str
    what: str
    result: str  # killed | survived | timeout
    seconds: float
    explained: str
    evidence: str


def _copy_tree(dest: Path) -> None:
    """The tracked files and the built extension: what the tests import and read."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True
    ).stdout.split(b"\0")
    for name in filter(None, files):
        src = ROOT / name.decode()
        if src.is_file():
            target = dest / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    for ext in (ROOT / "python/revenge").glob("_core*.so"):
        shutil.copy2(ext, dest / "python/revenge" / ext.name)


def _pytest(tree: Path, args: Sequence[str], timeout: float) -> tuple[int | None, str]:
    env = {**os.environ, "PYTHONPATH": str(tree / "python"), "PYTHONDONTWRITEBYTECODE": "1"}
    # Our own basetemp: pytest prunes the shared /tmp/pytest-of-<user> of other runs' folders.
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
           f"--basetemp={tree / '.pytest-tmp'}", *args]  # fmt: skip
    try:
        done = subprocess.run(
            cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return None, "timed out"
    return done.returncode, done.stdout + done.stderr


def _check_imports_from(tree: Path) -> None:
    """The copy's ``revenge`` must be the one imported, or no mutant could ever be killed."""
    env = {**os.environ, "PYTHONPATH": str(tree / "python")}
    found = subprocess.run(
        [sys.executable, "-c", "import revenge, revenge._core; print(revenge.__file__)"],
        cwd=tree, env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if not found.startswith(str(tree)):
        raise SystemExit(f"revenge imports from {found}, not from the mutated copy {tree}")


def _first_failure(output: str) -> str:
    for line in output.splitlines():  # pytest's summary lines, not captured log lines
        if line.startswith(("FAILED ", "ERROR ")) and "::" in line.split(" - ")[0]:
            return line[:160]
    for line in output.splitlines():
        if line.startswith(("FAILED", "ERROR")):
            return line[:160]
    return output.strip().splitlines()[-1][:160] if output.strip() else ""


def _apply(tree: Path, mutant: Mutant) -> str:
    """Mutate the copy; the original text (to put back)."""
    path = tree / PKG / mutant.path
    text = path.read_text()
    if text.count(mutant.find) != 1:
        raise SystemExit(
            f"{mutant.id}: {mutant.path} holds {text.count(mutant.find)} copies of its "
            "target text (expected exactly 1): update the mutant to the current code"
        )
    mutated = text.replace(mutant.find, mutant.replace)
    compile(mutated, str(path), "exec")  # a mutant must be valid Python, or it proves nothing
    path.write_text(mutated)
    return text


def _where(mutant: Mutant, tree: Path = ROOT) -> str:
    text = (tree / PKG / mutant.path).read_text()
    line = text[: text.find(mutant.find)].count("\n") + 1 if mutant.find in text else 0
    return f"{mutant.path}:{line}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated mutant ids")
    parser.add_argument("--list", action="store_true", help="print the mutants and exit")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per mutant")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    wanted = {m.strip() for m in args.only.split(",") if m.strip()}
    mutants = [m for m in MUTANTS if not wanted or m.id in wanted]
    if wanted - {m.id for m in mutants}:
        raise SystemExit(f"unknown mutant ids: {sorted(wanted - {m.id for m in mutants})}")
    if args.list:
        for m in mutants:
            print(f"{m.id:<4} {_where(m):<38} {m.what}")
        return 0

    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="revenge-mutate-") as tmp:
        tree = Path(tmp)
        _copy_tree(tree)
        _check_imports_from(tree)
        # Every test set once, unmutated: a red baseline would "kill" every mutant.
        for test_args in dict.fromkeys(m.tests for m in mutants):
            rc, output = _pytest(tree, test_args, args.timeout)
            if rc != 0:
                print(output[-3000:])
                raise SystemExit(
                    f"baseline fails before any mutation: pytest {' '.join(test_args)}"
                )
        print(f"baseline green; {len(mutants)} mutants\n", flush=True)
        for mutant in mutants:
            where = _where(mutant, tree)  # the copy's lines: the tree may change meanwhile
            original = _apply(tree, mutant)
            started = time.monotonic()
            try:
                rc, output = _pytest(tree, mutant.tests, args.timeout)
            finally:
                (tree / PKG / mutant.path).write_text(original)
            took = time.monotonic() - started
            result = "timeout" if rc is None else "survived" if rc == 0 else "killed"
            evidence = "" if result == "survived" else _first_failure(output)
            outcomes.append(
                Outcome(mutant.id, where, mutant.what, result, took, mutant.explained, evidence)
            )
            note = f"  ({mutant.explained})" if result == "survived" and mutant.explained else ""
            print(f"{mutant.id:<4} {result:<8} {took:6.1f}s  {where:<38} {mutant.what}{note}")
            if evidence:
                print(f"     {evidence}")
            sys.stdout.flush()

    killed = sum(o.result != "survived" for o in outcomes)
    explained = [o for o in outcomes if o.result == "survived" and o.explained]
    unexplained = [o for o in outcomes if o.result == "survived" and not o.explained]
    print(
        f"\nkill rate: {killed}/{len(outcomes)} ({killed / max(1, len(outcomes)):.0%}); "
        f"survivors explained: {len(explained)}, unexplained: {len(unexplained)}"
    )
    for o in unexplained:
        print(f"  UNEXPLAINED {o.id} {o.where}: {o.what}")
    if args.json:
        args.json.write_text(json.dumps([asdict(o) for o in outcomes], indent=1) + "\n")
    return 1 if unexplained else 0


if __name__ == "__main__":
    raise SystemExit(main())
