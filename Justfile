# Revenge developer commands. `just --list` shows them.

# build the Rust extension into .venv (release)
dev:
    . .venv/bin/activate && maturin develop --release

# everything CI runs: build, services, cargo test, pytest, ruff, mypy, clippy, promtool
test *ARGS:
    bash scripts/test.sh {{ARGS}}

# lints only
lint:
    . .venv/bin/activate && ruff check . && ruff format --check . && mypy
    cargo fmt --all -- --check && cargo clippy --all-targets -- -D warnings

# serve on Granian (embedded PostgreSQL unless REVENGE_DATABASE__URL is set)
serve *ARGS:
    .venv/bin/revenge serve {{ARGS}}

# benchmarks (pytest-benchmark suites and the HTTP load harness)
bench:
    . .venv/bin/activate && python -m pytest benches -q --benchmark-only
