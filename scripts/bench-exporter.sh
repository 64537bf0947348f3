#!/usr/bin/env bash
# Load on `imapref exporter` against the built-in lab: scrape latency, scrapes per second and the exporter's peak RSS
# (scripts/bench_exporter.py; docs/exporter.md quotes the figures). Extra arguments go to bench_exporter.py.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
python3 scripts/bench_exporter.py --binary target/release/imapref "$@"
