#!/usr/bin/env bash
# Makes sure a headless-capable Chromium is on this machine: the HTML report tests and
# `make screenshots` drive it over the DevTools protocol (src/drillharness/browser.py).
set -euo pipefail

if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "Chromium is missing; install it with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium" >&2
  exit 1
fi

echo "Installing Chromium (chromium)..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium >/dev/null 2>&1 || { echo "the chromium package did not provide chromium" >&2; exit 1; }
