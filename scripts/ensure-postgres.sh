#!/usr/bin/env bash
# Makes sure PostgreSQL's server binaries (and amcheck, from contrib) are on this machine.
# The tests and the demo start their own throwaway servers; nothing is started here.
set -euo pipefail

find_bindir() {
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && echo "$dir"
  done | sort -V | tail -n 1
}

if [ -n "$(find_bindir)" ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "PostgreSQL server binaries are missing; install them with:" >&2
  echo "  sudo apt-get install -y postgresql postgresql-contrib" >&2
  exit 1
fi

echo "Installing PostgreSQL (postgresql, postgresql-contrib)..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq postgresql postgresql-contrib >/dev/null
# The Debian package starts a cluster of its own; restoredrill never uses it.
if command -v pg_lsclusters >/dev/null 2>&1; then
  pg_lsclusters -h 2>/dev/null | while read -r version cluster _; do
    pg_ctlcluster "$version" "$cluster" stop 2>/dev/null || true
  done
fi
[ -n "$(find_bindir)" ] || { echo "PostgreSQL install did not provide initdb" >&2; exit 1; }
