"""The proxy recipes (deploy/nginx, deploy/caddy) run for real in front of an app on loopback.

Used by ``test_proxy_recipes.py`` and ``benches/proxy_first_byte.py``: each proxy gets its
own configuration in a temporary folder, its own free port and its own logs.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NGINX_SNIPPET = REPO / "deploy" / "nginx" / "revenge-proxy.conf"
CADDY_SNIPPET = REPO / "deploy" / "caddy" / "revenge-proxy.caddy"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"proxy exited {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"proxy did not listen on {port}:\n{log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def nginx_config(folder: Path, port: int, upstream_port: int) -> Path:
    """A whole nginx.conf around the recipe's location snippet, everything under ``folder``."""
    temp = {name: folder / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(exist_ok=True)
    conf = folder / "nginx.conf"
    conf.write_text(
        f"""
daemon off;
master_process off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    upstream revenge {{
        server 127.0.0.1:{upstream_port};
        keepalive 8;
    }}
    server {{
        listen 127.0.0.1:{port};
        include {NGINX_SNIPPET};
    }}
}}
"""
    )
    return conf


@contextmanager
def run_nginx(folder: Path, upstream_port: int) -> Iterator[str]:
    """nginx with the recipe in front of ``upstream_port``; yields its base URL."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = nginx_config(folder, port, upstream_port)
    check = subprocess.run(
        [nginx, "-t", "-p", str(folder), "-e", str(folder / "error.log"), "-c", str(conf)],
        capture_output=True,
        text=True,
    )
    if check.returncode != 0:
        raise RuntimeError(f"nginx -t refused the recipe:\n{check.stderr}")
    log = folder / "stdout.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [nginx, "-p", str(folder), "-e", str(folder / "error.log"), "-c", str(conf)],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_listening(port, process, folder / "error.log")
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)


@contextmanager
def run_caddy(folder: Path, upstream_port: int) -> Iterator[str]:
    """Caddy with the recipe's snippet in front of ``upstream_port``; yields its base URL."""
    caddy = shutil.which("caddy") or "/usr/bin/caddy"
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = folder / "Caddyfile"
    conf.write_text(
        f"{{\n\tadmin off\n\tauto_https off\n}}\n\nimport {CADDY_SNIPPET}\n\n"
        f"http://127.0.0.1:{port} {{\n\timport revenge_proxy 127.0.0.1:{upstream_port}\n}}\n"
    )
    env = {**os.environ, "XDG_DATA_HOME": str(folder), "XDG_CONFIG_HOME": str(folder)}
    log = folder / "caddy.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [caddy, "run", "--config", str(conf), "--adapter", "caddyfile"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        _wait_listening(port, process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)


def make_hls(folder: Path, seconds: int = 4) -> list[str]:
    """A real HLS rendition (H.264 + AAC, 1 s segments) made by ffmpeg; the segment names."""
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
            "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
            "-c:a", "aac", "-shortest",
            "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod",
            "-hls_segment_filename", str(folder / "seg%03d.ts"),
            str(folder / "index.m3u8"),
        ],
        check=True,
        timeout=120,
    )  # fmt: skip
    lines = (folder / "index.m3u8").read_text().splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def first_byte_seconds(base_url: str, path: str) -> float:
    """Seconds from sending a GET to the first body byte, on a fresh connection."""
    host, port = base_url.removeprefix("http://").split(":")
    start = time.perf_counter()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError(f"{base_url}{path}: connection closed before the body")
            received += chunk
        if received.split(b"\r\n\r\n", 1)[1] == b"":
            sock.recv(1)
        return time.perf_counter() - start


def compare_first_byte(
    direct: str, proxied: str, paths: list[str], rounds: int = 10
) -> dict[str, float]:
    """Median first-byte time of each face over interleaved rounds, and their ratio."""
    times: dict[str, list[float]] = {"direct": [], "proxied": []}
    for _ in range(rounds):
        for path in paths:
            times["direct"].append(first_byte_seconds(direct, path))
            times["proxied"].append(first_byte_seconds(proxied, path))
    direct_ms = statistics.median(times["direct"]) * 1000
    proxied_ms = statistics.median(times["proxied"]) * 1000
    return {"direct_ms": direct_ms, "proxied_ms": proxied_ms, "ratio": proxied_ms / direct_ms}
