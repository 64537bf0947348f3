#!/usr/bin/env bash
# Mutation testing (cargo-mutants) on the code that decides where a password goes: the IMAP URL and response-code
# parsers, the known server texts, the referral policy, the verdict and the referral follower. Only the library's
# own tests are built and run for each mutant (`--cargo-arg=--lib`), one job at a time (the machine is shared).
#
#   scripts/mutants.sh                         # every file below
#   scripts/mutants.sh src/proto/code.rs       # one file (or several)
#
# Results: target/mutants/mutants.out/ (caught.txt, missed.txt, timeout.txt, unviable.txt). The survivors that are
# equivalent mutants, and why, are listed in docs/testing.md; any other survivor is a missing test.
# Exits 0 when every viable mutant was caught, 2 when some were missed (cargo-mutants' own exit codes).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo mutants --version >/dev/null 2>&1; then
  echo "mutants.sh: installing cargo-mutants (cargo install --locked cargo-mutants)"
  cargo install --locked --quiet cargo-mutants
fi

files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  files=(src/proto/url.rs src/proto/code.rs src/explain/known_text.rs src/probe/verdict.rs)
  # The referral follower, its policy and the outcome classifier.
  [ -d src/follow ] && files+=(src/follow/)
fi
args=()
for f in "${files[@]}"; do
  case "$f" in
    */) args+=(-f "${f}**/*.rs") ;;
    *) args+=(-f "$f") ;;
  esac
done

mkdir -p target/mutants
# --copy-target: start from the warm target/ instead of building every dependency again.
status=0
cargo mutants "${args[@]}" --jobs 1 --copy-target=true --cargo-arg=--lib --output target/mutants || status=$?
out=target/mutants/mutants.out
count() { if [ -s "$out/$1.txt" ]; then grep -c . "$out/$1.txt"; else echo 0; fi; }
caught=$(count caught); missed=$(count missed); timeout=$(count timeout); unviable=$(count unviable)
viable=$((caught + missed + timeout))
if [ "$viable" -gt 0 ]; then
  echo "mutants.sh: $caught of $viable viable mutants caught ($((100 * (caught + timeout) / viable)) % with timeouts counted as caught), $missed missed, $timeout timed out, $unviable unviable"
fi
if [ "$missed" -gt 0 ]; then
  echo "mutants.sh: survivors:"
  sed 's/^/  /' "$out/missed.txt"
fi
exit "$status"
