#!/usr/bin/env bash
# Measures imapref's protocol core and prints the figures in plain words:
#
#   1. `cargo bench --bench framing` (criterion, benches/framing.rs): framing + parsing of a realistic mixed server
#      stream fed in 64 KiB reads, in MB/s and responses/s; IMAP URL parsing and explain_line, per second.
#   2. `cargo run --release --example stream_literal`: a 1 GiB FETCH literal streamed through the framer, with its
#      MB/s and peak RSS (it fails above 64 MiB).
#
#   scripts/bench.sh                       # everything (about two minutes)
#   scripts/bench.sh --measurement-time 2  # extra arguments go to criterion
#
# MB is 10^6 bytes. The figures of record, and the machine they come from, are in docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."

export CRITERION_HOME="${CRITERION_HOME:-$PWD/target/criterion}"
mkdir -p "$CRITERION_HOME"
marker=$(mktemp)
trap 'rm -f "$marker" "${out:-}"' EXIT
out=$(mktemp)

echo "bench.sh: cargo bench --bench framing $*"
cargo bench --locked --bench framing -- "$@" | tee "$out"

# The time per iteration in ns from criterion's estimates of this run, as criterion prints it: the slope of the linear
# fit when there is one, else the mean. Empty when the benchmark did not run this time.
time_ns() {
  local file="$CRITERION_HOME/$1/new/estimates.json"
  [ -f "$file" ] && [ "$file" -nt "$marker" ] || return 0
  local kind
  for kind in slope mean; do
    if grep -q "\"$kind\":{" "$file"; then
      sed -E "s/.*\"$kind\":\{\"confidence_interval\":\{[^}]*\},\"point_estimate\":([0-9.eE+-]+).*/\1/" "$file"
      return 0
    fi
  done
}

stream=$(sed -n 's/^stream: //p' "$out" | tail -n 1)
bytes=$(printf '%s\n' "$stream" | sed -n 's/.*bytes=\([0-9]*\).*/\1/p')
responses=$(printf '%s\n' "$stream" | sed -n 's/.*responses=\([0-9]*\).*/\1/p')
urls=$(sed -n 's/^urls: \([0-9]*\)$/\1/p' "$out" | tail -n 1)
lines=$(sed -n 's/^lines: \([0-9]*\)$/\1/p' "$out" | tail -n 1)

echo
echo "bench.sh: results (MB = 10^6 bytes; time = criterion's estimate per iteration)"
for bench in mixed_stream_frame_and_parse mixed_stream_frame_only; do
  ns=$(time_ns "framing/$bench")
  if [ -z "$ns" ] || [ -z "$bytes" ]; then
    echo "  framing/$bench: not measured in this run"
    continue
  fi
  awk -v ns="$ns" -v b="$bytes" -v r="$responses" -v name="$bench" 'BEGIN {
    s = ns / 1e9
    printf "  framing/%s: %d bytes and %d responses in %.3f ms: %.0f MB/s, %.0f responses/s\n", name, b, r, ns / 1e6, b / 1e6 / s, r / s
  }'
done
ns=$(time_ns url/parse_fixture_urls)
if [ -n "$ns" ] && [ -n "$urls" ]; then
  awk -v ns="$ns" -v n="$urls" 'BEGIN { printf "  url/parse_fixture_urls: %d URLs in %.2f us: %.0f ns per URL, %.2f million URLs/s\n", n, ns / 1e3, ns / n, n / (ns / 1e9) / 1e6 }'
else
  echo "  url/parse_fixture_urls: not measured in this run"
fi
ns=$(time_ns explain/explain_fixture_lines)
if [ -n "$ns" ] && [ -n "$lines" ]; then
  awk -v ns="$ns" -v n="$lines" 'BEGIN { printf "  explain/explain_fixture_lines: %d lines in %.2f us: %.0f ns per line, %.0f lines/s\n", n, ns / 1e3, ns / n, n / (ns / 1e9) }'
else
  echo "  explain/explain_fixture_lines: not measured in this run"
fi

echo
echo "bench.sh: cargo run --release --example stream_literal (1 GiB literal, 64 KiB reads)"
cargo run --locked --release --example stream_literal
