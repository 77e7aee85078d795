#!/usr/bin/env bash
# Installs what ThreadML needs on Debian/Ubuntu with Node 20: Python's scientific stack for the
# harness (scikit-learn, XGBoost, Optuna, openpyxl, matplotlib), bubblewrap for the sandbox, and the
# npm dependencies. Flags:
#   --torch  also PyTorch and torchvision (CPU builds, several hundred MB): a small CNN for images
#   --test   also what the test suite needs: PyTorch, and the servers it starts on loopback
#            (redis-server, OpenSSH's sshd, a single-node Slurm cluster with munge)
# Safe to run again: only what is missing is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

torch=0
test=0
for arg in "$@"; do
  case "$arg" in
    --torch) torch=1 ;;
    --test) test=1; torch=1 ;;
    *) echo "usage: bin/setup.sh [--torch] [--test]" >&2; exit 2 ;;
  esac
done

py() { /usr/bin/python3 -c "$1" >/dev/null 2>&1; }
missing=()
py "import numpy, pandas, sklearn" || missing+=(python3-sklearn python3-pandas)
py "import matplotlib" || missing+=(python3-matplotlib)
py "import xgboost" || missing+=(python3-xgboost)
py "import optuna" || missing+=(python3-optuna)
py "import openpyxl" || missing+=(python3-openpyxl)
if [ "$torch" = 1 ]; then
  py "import torch" || missing+=(python3-torch)
  py "import torchvision" || missing+=(python3-torchvision)
fi
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v prlimit >/dev/null 2>&1 || missing+=(util-linux)
if [ "$test" = 1 ]; then
  command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
  [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
  [ -x /usr/sbin/slurmctld ] || missing+=(slurmctld)
  [ -x /usr/sbin/slurmd ] || missing+=(slurmd)
  command -v sbatch >/dev/null 2>&1 || missing+=(slurm-client)
  [ -x /usr/sbin/munged ] || missing+=(munge)
fi
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "Installing system packages: ${missing[*]}" >&2
  $SUDO apt-get update
  # without recommends: PyTorch alone would pull in a desktop's worth of optional packages
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi

# Skip npm when node_modules already matches the lockfile.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
