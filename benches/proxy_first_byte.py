"""First byte of an HLS segment through the proxy recipes and direct, in the same run.

    python -m benches.proxy_first_byte [--rounds 50]

Starts Granian serving ``tests/e2e/proxy_app.py`` over a real ffmpeg HLS rendition, then
Debian's nginx and Caddy with the recipe files from deploy/ in front of it, and times
request -> first body byte on fresh connections, interleaving direct and proxied
requests. Issue 16's target: the proxied median within 10 % of the direct one. Numbers
taken while the machine is busy are noise; quote a quiet run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.e2e.proxy_support import compare_first_byte, free_port, make_hls, run_caddy, run_nginx


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="revenge-proxy-bench-") as tmp:
        folder = Path(tmp)
        (folder / "media").mkdir()
        segments = make_hls(folder / "media")
        port = free_port()
        env = {**os.environ, "REVENGE_TEST_MEDIA_DIR": str(folder / "media")}
        argv = [sys.executable, "-m", "granian", "--host", "127.0.0.1", "--port", str(port)]
        app = subprocess.Popen([*argv, "tests.e2e.proxy_app:app"], env=env)
        try:
            direct = f"http://127.0.0.1:{port}"
            for _ in range(200):
                try:
                    urllib.request.urlopen(direct + "/health/live", timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            paths = [f"/files/{name}" for name in segments]
            for name, runner in (("nginx", run_nginx), ("caddy", run_caddy)):
                with runner(folder / name, port) as proxied:
                    report = compare_first_byte(direct, proxied, paths, rounds=args.rounds)
                verdict = "met" if report["ratio"] <= 1.10 else "not met"
                print(
                    f"{name}: first byte median direct {report['direct_ms']:.3f} ms, "
                    f"proxied {report['proxied_ms']:.3f} ms, ratio {report['ratio']:.2f} "
                    f"(target <= 1.10: {verdict}; {args.rounds} rounds x {len(paths)} segments)"
                )
        finally:
            app.terminate()
            app.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
