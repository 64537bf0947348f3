#!/usr/bin/env bash
# Smoke-fuzzes imapref's protocol core: runs each cargo-fuzz target (fuzz/fuzz_targets/) for SECONDS seconds
# (default 10), one worker each, so it fits in CI.
#
#   scripts/fuzz.sh            # 10 s per target
#   scripts/fuzz.sh 300        # 5 min per target
#
# Exits non-zero when a target crashes (the input is saved under fuzz/artifacts/<target>/ and the path printed).
# Exits 0 with a message, doing nothing, when the nightly toolchain or cargo-fuzz is missing: fuzzing needs both
# (`rustup toolchain install nightly`, `cargo install cargo-fuzz --locked`).
# The corpus (fuzz/corpus/, not committed) is seeded from tests/fixtures/server-lines.txt and grows run after run.
# Long runs and their figures: docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-10}"
case "$seconds" in
  '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, not \`$seconds\`" >&2; exit 2 ;;
esac
targets=(framing_parse imap_url client_command target explain client_machine check_file)

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz.sh: skipped: no nightly toolchain (rustup toolchain install nightly)"
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: skipped: cargo-fuzz is not installed (cargo install cargo-fuzz --locked)"
  exit 0
fi

# Seed corpora from the fixture lines (adding files is harmless when the corpus already has them).
fixture=tests/fixtures/server-lines.txt
for t in "${targets[@]}"; do mkdir -p "fuzz/corpus/$t"; done
lines=$(sed -n 's/^S: //p' "$fixture")
# framing_parse: byte 0 picks the chunk sizes, byte 1 the limits (0xff: the default limits).
{ printf '\x21\xff'; printf '%s\r\n' "$lines"; } > fuzz/corpus/framing_parse/seed-fixture-default-limits
{ printf '\x03\x5a'; printf '%s\r\n' "$lines"; } > fuzz/corpus/framing_parse/seed-fixture-small-limits
printf '\x07\xb3* 1 FETCH (BODY[] {40}\r\n%s)\r\n* LIST (\\HasNoChildren) "/" {8}\r\nEntw&APw-\r\na1 OK done\n' \
  'Subject: hello\r\nFrom: a@example.com\r\n\r\n' > fuzz/corpus/framing_parse/seed-literals
# imap_url: every URL of the fixture.
i=0
grep -oiE 'imap://[^] ]+' "$fixture" | while IFS= read -r url; do
  i=$((i + 1))
  printf '%s' "$url" > "fuzz/corpus/imap_url/seed-$i"
done
# client_command: byte 0 picks LITERAL+ and the argument kinds; 0xff separates the strings.
printf '? login DOMname/UserN/AliasN PASSword\r\n' > fuzz/corpus/client_command/seed-kb-login
printf 'a1 SELECT {5+}\r\nEntw\xc3\xbc "x y" (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n' > fuzz/corpus/client_command/seed-literal
printf '\x25DOMname/User1\xffpass word\xffEntw\xc3\xbcrfe\xffNIL' > fuzz/corpus/client_command/seed-encode
# target: what users type.
printf 'mail.b\xc3\xbccher.de' > fuzz/corpus/target/seed-idn
printf 'imap://DOM%%2Fuser%%2Falias@host:143/INBOX' > fuzz/corpus/target/seed-url
printf '[::1]:1143' > fuzz/corpus/target/seed-v6
# explain: byte 0 picks the prefixes (0: as given, 1: C:/S: alternating); then a log.
{ printf '\x00'; cat "$fixture"; } > fuzz/corpus/explain/seed-fixture
printf '\x02? login DOMname/UserN/AliasN PASSword\n? OK [REFERRAL imap://a%%2Fb%%2Fc;AUTH=*@h] x\na1 LOGIN {4}\n+ go\njdoe {7}\n+ go\nhunter2\na2 AUTHENTICATE PLAIN\n+\nAGpk\na2 OK\n' > fuzz/corpus/explain/seed-log

# check_file: the example of docs/check.md.
sed -n '/^```toml$/,/^```$/p' docs/check.md | sed '1d;$d' > fuzz/corpus/check_file/seed-doc-example
printf '[[check]]\ntarget = "[::1]:1143"\nlogin = "a"\npassword_env = "PW"\nexpect = "referred"\n[[check]]\nname = 7\n' > fuzz/corpus/check_file/seed-bad-check

# -O -a: optimised, with debug assertions and overflow checks (cargo-fuzz 0.13 adds them to an -O build only with -a,
# and rustc turns overflow checks on with debug assertions). -s none: no AddressSanitizer. imapref forbids unsafe
# code, so ASan has little to find, and it slows the targets down many times over; panics, failed assertions,
# overflows, timeouts and out-of-memory are still caught.
flags=(-O -a -s none)
echo "fuzz.sh: building the fuzz targets (cargo +nightly fuzz build ${flags[*]})"
cargo +nightly fuzz build "${flags[@]}"

logs=fuzz/target/fuzz-logs
mkdir -p "$logs"
failed=()
for t in "${targets[@]}"; do
  echo "fuzz.sh: $t for ${seconds}s"
  # One process, one job: CI machines are small.
  if ! cargo +nightly fuzz run "${flags[@]}" "$t" -- \
      -max_total_time="$seconds" -max_len=4096 -timeout=10 -print_final_stats=1 2>"$logs/$t.log"; then
    failed+=("$t")
    echo "fuzz.sh: $t FAILED; the log ends with:" >&2
    tail -n 40 "$logs/$t.log" >&2
  else
    grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec)' "$logs/$t.log" | sed "s/^/fuzz.sh: $t: /"
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: crashes in: ${failed[*]} (inputs in fuzz/artifacts/<target>/; reproduce with cargo +nightly fuzz run ${flags[*]} <target> <file>)" >&2
  exit 1
fi
echo "fuzz.sh: no crash in ${targets[*]}"
