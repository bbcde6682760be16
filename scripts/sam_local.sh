#!/usr/bin/env bash
# `make sam-local` after `sam build`: every sample event in events/ through `sam local invoke`.
# Prepares what is missing: Debian's docker.io and debootstrap (installed as root), a running
# dockerd (started here, in the background, and stopped at the end if this script started it),
# and the Lambda Python 3.12 base image (scripts/sam_local_image.sh, skipped when current).
# Then scripts/sam_local/ seeds moto and checks each event's outcome. Leaves nothing running.
set -euo pipefail
cd "$(dirname "$0")/.."

STATE_DIR="${SAM_LOCAL_STATE_DIR:-/var/tmp/restoredrill-sam-local}"
DOCKERD_PID=""

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "sam-local: $1 (as root: $2)" >&2
    exit 1
  fi
}

ensure_packages() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  [ "${#missing[@]}" -eq 0 ] && return 0
  need_root "missing ${missing[*]}" "apt-get install -y ${missing[*]}"
  echo "sam-local: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

stop_dockerd() {
  if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
    kill "$DOCKERD_PID"
    for _ in $(seq 1 30); do
      kill -0 "$DOCKERD_PID" 2>/dev/null || return 0
      sleep 1
    done
    echo "sam-local: dockerd (pid $DOCKERD_PID) did not stop within 30 s; killing it" >&2
    kill -KILL "$DOCKERD_PID" 2>/dev/null || true
  fi
}

# Started here only when no engine answers; left to its owner otherwise. No iptables rules:
# the containers reach this machine's bridge address and nothing beyond it.
ensure_dockerd() {
  docker info >/dev/null 2>&1 && return 0
  need_root "no container engine is running" "dockerd &"
  mkdir -p "$STATE_DIR"
  dockerd --iptables=false --ip-masq=false --pidfile "$STATE_DIR/dockerd.pid" \
    >"$STATE_DIR/dockerd.log" 2>&1 </dev/null &
  DOCKERD_PID=$!
  trap stop_dockerd EXIT
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && {
      echo "sam-local: dockerd started (pid $DOCKERD_PID; stopped when this run ends)"
      return 0
    }
    kill -0 "$DOCKERD_PID" 2>/dev/null || break
    sleep 1
  done
  echo "sam-local: dockerd did not come up; its log:" >&2
  tail -n 20 "$STATE_DIR/dockerd.log" >&2
  exit 1
}

bridge_address() {
  local address
  address="$(docker network inspect bridge -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}')"
  if [ -z "$address" ]; then
    address="$(ip -4 -o addr show docker0 | awk '{print $4}' | cut -d/ -f1 | head -n 1)"
  fi
  [ -n "$address" ] || { echo "sam-local: no address on the docker bridge" >&2; exit 1; }
  echo "$address"
}

ensure_packages
ensure_dockerd
bash scripts/sam_local_image.sh
PYTHONPATH=scripts .venv/bin/python -m sam_local --bridge "$(bridge_address)"
