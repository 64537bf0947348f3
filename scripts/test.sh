#!/usr/bin/env bash
# Runs imapref's whole test suite: unit, property, transcript, CLI, lab, pty and real-Dovecot tests.
# Installs what the tests need when it is missing (Debian's dovecot-imapd; the tests start their own Dovecot on
# loopback with their own configuration, without systemd and without touching /etc).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] || need+=(dovecot-imapd)
# xmllint validates `imapref check --junit` against tests/fixtures/junit-10.xsd.
command -v xmllint >/dev/null 2>&1 || need+=(libxml2-utils)
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]}" >&2
  if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
  # Debian's postinst would start the packaged service; policy-rc.d 101 keeps it stopped, the tests start their own.
  "${sudo[@]}" sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
  "${sudo[@]}" rm -f /usr/sbin/policy-rc.d
fi

# Python's prometheus_client parses `imapref check --format openmetrics` in tests/check_lab.rs.
if ! python3 -c 'import prometheus_client.openmetrics.parser' >/dev/null 2>&1; then
  echo "test.sh: installing prometheus_client (pip)" >&2
  python3 -m pip install -q prometheus_client 2>/dev/null || python3 -m pip install -q --break-system-packages prometheus_client
fi

cargo test --locked "$@"
