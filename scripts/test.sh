#!/usr/bin/env bash
# Runs imapref's whole test suite: unit, property, transcript, CLI, lab, pty and real-Dovecot tests.
# Installs what the tests need when it is missing (Debian's dovecot-imapd; the tests start their own Dovecot on
# loopback with their own configuration, without systemd and without touching /etc).
# On a workstation (stdin a terminal, CI not set) it asks before installing; answering no prints the commands and
# exits 1. In CI, or without a terminal, it installs without asking.
# IMAPREF_TEST_SH_ROOT (for the tests of this script only) puts a prefix before /usr/sbin in its two paths.
set -euo pipefail
cd "$(dirname "$0")/.."

root=${IMAPREF_TEST_SH_ROOT:-}
need=()
command -v dovecot >/dev/null 2>&1 || [ -x "$root/usr/sbin/dovecot" ] || need+=(dovecot-imapd)
# xmllint validates `imapref check --junit` against tests/fixtures/junit-10.xsd.
command -v xmllint >/dev/null 2>&1 || need+=(libxml2-utils)
# tests/exporter.rs starts a real Prometheus that scrapes `imapref exporter`.
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
  policy="$root/usr/sbin/policy-rc.d"
  # Debian's postinst would start the packaged service; policy-rc.d 101 keeps it stopped, the tests start their own.
  commands=(
    "${sudo[*]:+${sudo[*]} }sh -c 'printf \"#!/bin/sh\\nexit 101\\n\" > $policy && chmod +x $policy'"
    "${sudo[*]:+${sudo[*]} }env DEBIAN_FRONTEND=noninteractive apt-get update -qq"
    "${sudo[*]:+${sudo[*]} }env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${need[*]}"
    "${sudo[*]:+${sudo[*]} }rm -f $policy"
  )
  if [ -t 0 ] && [ -z "${CI:-}" ]; then
    echo "test.sh: the real-Dovecot tests need ${need[*]}, which is not installed. To install it, test.sh would run:" >&2
    printf '  %s\n' "${commands[@]}" >&2
    printf 'test.sh: run these now? [y/N] ' >&2
    answer=
    read -r answer || true
    case "$answer" in
      y|Y|yes|YES) ;;
      *)
        echo "test.sh: not installing; run the commands above yourself, then run scripts/test.sh again" >&2
        exit 1
        ;;
    esac
  fi
  echo "test.sh: installing ${need[*]}" >&2
  "${sudo[@]}" sh -c "printf '#!/bin/sh\\nexit 101\\n' > '$policy' && chmod +x '$policy'"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
  "${sudo[@]}" rm -f "$policy"
fi

# Python's prometheus_client parses `imapref check --format openmetrics` in tests/check_lab.rs.
if ! python3 -c 'import prometheus_client.openmetrics.parser' >/dev/null 2>&1; then
  echo "test.sh: installing prometheus_client (pip)" >&2
  python3 -m pip install -q prometheus_client 2>/dev/null || python3 -m pip install -q --break-system-packages prometheus_client
fi

cargo test --locked "$@"
