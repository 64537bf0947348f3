#!/usr/bin/env bash
# Runs imapref's whole test suite: unit, property, transcript, CLI, lab, pty and real-Dovecot tests.
# Installs what the tests need when it is missing (Debian's dovecot-imapd; the tests start their own Dovecot on
# loopback with their own configuration, without systemd and without touching /etc).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] || need+=(dovecot-imapd)
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]}" >&2
  if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
  # Debian's postinst would start the packaged service; policy-rc.d 101 keeps it stopped, the tests start their own.
  "${sudo[@]}" sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
  "${sudo[@]}" rm -f /usr/sbin/policy-rc.d
fi

cargo test --locked "$@"
