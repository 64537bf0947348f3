#!/usr/bin/env bash
# Benchmark of `imapref check` (1,000 checks against the built-in lab, in one process) beside a sequential Python
# imaplib loop and a pipelined Python asyncio client, in the same run. See scripts/bench_check.py and
# docs/performance.md. Extra arguments go to bench_check.py (--checks, --jobs, --port-base).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
# Not exec: the Python driver reads its children's peak RSS, which after an exec would include the build's rustc.
python3 scripts/bench_check.py --binary target/release/imapref "$@"
