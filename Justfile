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

# benchmarks: the Rust core vs its peers (table), every pytest-benchmark suite, the job queue
# against its baselines, the HTTP load harnesses (raw outputs in benches/results/)
bench:
    . .venv/bin/activate && python benches/bench_core_report.py
    . .venv/bin/activate && python -m pytest benches -q --benchmark-only --ignore=benches/bench_core.py
    . .venv/bin/activate && python benches/bench_jobs.py
    . .venv/bin/activate && python -m benches.http.run
    . .venv/bin/activate && python -m benches.http.db

# targeted one-line mutations of the security- and data-critical modules: the kill rate
mutate *ARGS:
    . .venv/bin/activate && python scripts/mutate.py {{ARGS}}

# 10 minutes of mixed traffic against `revenge serve --workers 2`: RSS growth, descriptor and
# connection leaks (a short form runs in pytest: tests/faults/test_soak.py)
soak *ARGS:
    . .venv/bin/activate && python -m benches.soak {{ARGS}}

# the Rust core's comparison table only
bench-core *ARGS:
    . .venv/bin/activate && python benches/bench_core_report.py {{ARGS}}

# cargo-mutants over the transcode cache's budget code (installs cargo-mutants on first use).
# It runs the cargo tests only: a mutant the Python property tests would catch shows as missed.
mutate-rust *ARGS:
    command -v cargo-mutants >/dev/null || cargo install --locked cargo-mutants
    cargo mutants -f 'rust/transcode_cache/core.rs' -j 1 {{ARGS}}
