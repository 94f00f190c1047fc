#!/usr/bin/env bash
# The one test command (README "Quick start", `just test`, and .ci/run):
# installs what the tests need, builds the Rust extension, makes sure PostgreSQL
# and Redis are up, then runs cargo test, pytest, ruff, mypy, clippy and promtool.
# Any failure stops the run with a non-zero exit.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { printf '\033[31mFAILED: %s\033[0m\n' "$*" >&2; exit 1; }

APT_PACKAGES=(ffmpeg prometheus wrk nginx-light caddy systemd openssl chromium nodejs)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  say "apt: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

say "python: virtualenv and dependencies"
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e ".[test,bench]"

say "rust: build the extension (release) into the virtualenv"
maturin develop --release --quiet
python -c "import revenge._core"

say "services: PostgreSQL 127.0.0.1:5432 and Redis 127.0.0.1:6379"
scripts/services.sh

say "cargo fmt --check / clippy / test"
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --quiet

say "ruff / mypy"
ruff check .
ruff format --check .
mypy

say "promtool: alert rules"
if [ -f configs/alerts.yml ]; then
  promtool check rules configs/alerts.yml
  promtool test rules configs/alerts_test.yml
fi

say "pytest"
set +e
python -m pytest -q "$@"
rc=$?
set -e
[ $rc -eq 5 ] && die "pytest collected no tests"
[ $rc -eq 0 ] || die "pytest exited $rc"

if [ $# -eq 0 ]; then
  # Restarts the machine's PostgreSQL for real, so it runs alone, after everything else.
  say "pytest: recovery across a real PostgreSQL restart"
  REVENGE_TEST_PG_RESTART=1 python -m pytest -q \
    tests/integration/test_database_pool.py -k real_server_restart

  # The harnesses must run; their numbers are not pass/fail here (quote them from `just bench`).
  say "benchmark harnesses: one short round each"
  python -m pytest -q benches --benchmark-disable -p no:cacheprovider
  python benches/bench_jobs.py --jobs 200 --repeat 1
  python -m benches.http.run --rounds 1 --duration 1 --skip-revocation
  python -m benches.http.db --repeat 1 --seconds 1 --connections 16
fi
say "all checks passed"
