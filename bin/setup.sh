#!/usr/bin/env bash
# Installs what ThreadML needs on Debian/Ubuntu with Node 20: Python's scientific stack for the
# harness, bubblewrap for the sandbox, and the npm dependencies. With --test, also the servers the
# test suite starts on loopback (redis-server, OpenSSH's sshd). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
/usr/bin/python3 -c "import numpy, pandas, sklearn" >/dev/null 2>&1 || missing+=(python3-sklearn python3-pandas)
/usr/bin/python3 -c "import matplotlib" >/dev/null 2>&1 || missing+=(python3-matplotlib)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v prlimit >/dev/null 2>&1 || missing+=(util-linux)
if [ "${1:-}" = "--test" ]; then
  command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
  [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
fi
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "Installing system packages: ${missing[*]}" >&2
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${missing[@]}"
fi

# Skip npm when node_modules already matches the lockfile.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
