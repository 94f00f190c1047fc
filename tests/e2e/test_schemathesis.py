"""schemathesis over the OpenAPI document: every route, with an admin API key and with nothing.

A real server (Granian, real PostgreSQL) is fuzzed by the ``schemathesis run`` command
line, all checks on: no 5xx, every response conforms to the documented schema (status,
content type, body), valid input is accepted, invalid input refused, authentication
not ignored. The document is fetched once with the key and fuzzed from a file, so
the unauthenticated run reads the same operations. Examples per operation are
bounded (``REVENGE_TEST_FUZZ_EXAMPLES``, default 15) so both runs take about a minute
on an idle 2-core machine; raise it for a longer hunt:

    REVENGE_TEST_FUZZ_EXAMPLES=200 python -m pytest tests/e2e/test_schemathesis.py -s

What schemathesis cannot know is told in ``schemathesis.toml`` below, each with why.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from revenge.wiring import migrate
from tests.e2e.conftest import free_port, granian_argv, run_server

pytestmark = pytest.mark.e2e

PASSWORD = "schemathesis admin password"
EXAMPLES = int(os.environ.get("REVENGE_TEST_FUZZ_EXAMPLES", "15"))
SEED = os.environ.get("REVENGE_TEST_FUZZ_SEED", "20261202")

CONFIG = """
[auth]
# It would sign up a user through POST /api/v1/users and log in as that user instead.
auto-signup = false
{auth}
{operations}
"""

ACCEPTED = ["2xx", "401", "403", "404", "409", "429"]
"""What a schema-valid request may be answered by anywhere (no credential, not found...)."""


def declared_problems(document: dict[str, Any]) -> str:
    """One ``[[operations]]`` entry per route that declares problems for schema-valid input.

    A route's ``problems=`` (listed as numbered responses besides its success and
    ``default``) are the rules no JSON Schema can say: a name that passes for another
    (POST /api/v1/users, issue 14 item 11), a language code not in ISO 639, a TV code
    that expired. Valid-looking input may get those, and only those, besides ACCEPTED.
    """
    entries = []
    for methods in document["paths"].values():
        for operation in methods.values():
            codes = sorted(
                int(code)
                for code in operation["responses"]
                if code.isdigit() and 400 <= int(code) <= 499
            )
            if codes:
                listed = dict.fromkeys([*ACCEPTED, *map(str, codes)])
                statuses = ", ".join(f'"{s}"' for s in listed)
                entries.append(
                    "[[operations]]\n"
                    f'include-operation-id = "{operation["operationId"]}"\n'
                    f"checks.positive_data_acceptance.expected-statuses = [{statuses}]\n"
                )
    return "\n".join(entries)


API_KEY_AUTH = """
[auth.openapi.apiKey]
api_key = "${FUZZ_API_KEY}"
"""


def schemathesis(
    document: Path, base_url: str, config: Path, key: str | None, out: Path
) -> tuple[int, str]:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--no-color",
        "--config-file",
        str(config),
        "run",
        str(document),
        "--url",
        base_url,
        "--checks",
        "all",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        SEED,
        "--request-timeout",
        "30",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVENGE_")}  # not ours to read
    if key is not None:
        env["FUZZ_API_KEY"] = key
    done = subprocess.run(
        command,
        env=env,
        cwd=out,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = done.stdout + done.stderr
    (out / "schemathesis.txt").write_text(output)
    print(" ".join(command))
    print(_summary(output))
    return done.returncode, output


def _summary(output: str) -> str:
    found = re.search(r"Test cases:\s*\n\s*(.+)", output)
    return found.group(1).strip() if found else output[-2000:]


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    fresh_pg_url: str, tmp_path: Path
) -> None:
    asyncio.run(migrate(fresh_pg_url))  # an empty users table: the bootstrap admin is created
    port = free_port()
    env = {
        "REVENGE_DATABASE__URL": fresh_pg_url,
        "REVENGE_AUTH__BOOTSTRAP_ADMIN_PASSWORD": PASSWORD,
        "REVENGE_AUTH__ARGON2_MEMORY_KIB": "8192",
        "REVENGE_AUTH__ARGON2_TIME_COST": "1",
    }
    with (
        run_server(granian_argv(port), port, tmp_path, env) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as client,
    ):
        login = client.post("/api/v1/auth/login", json={"username": "admin", "password": PASSWORD})
        assert login.status_code == 200, login.text
        token = {"authorization": f"Bearer {login.json()['token']}"}
        created = client.post("/api/v1/auth/api-keys", json={"name": "fuzz"}, headers=token)
        assert created.status_code == 201, created.text
        key = created.json()["key"]
        document = tmp_path / "openapi.json"
        reply = client.get("/api/v1/openapi.json", headers={"x-api-key": key})
        assert reply.status_code == 200
        document.write_bytes(reply.content)

        failures = []
        for name, auth, used_key in (("admin-key", API_KEY_AUTH, key), ("anonymous", "", None)):
            out = tmp_path / name
            out.mkdir()
            config = out / "schemathesis.toml"
            operations = declared_problems(reply.json())
            config.write_text(CONFIG.format(auth=auth, operations=operations))
            code, output = schemathesis(document, server.base_url, config, used_key, out)
            if code != 0:
                failures.append(f"--- {name} (exit {code}) ---\n{output[-12000:]}")
        assert "Traceback" not in server.output(), server.output()[-5000:]
    assert not failures, "\n".join(failures)
