#!/usr/bin/env bash
# Set up everything SMASH Explorer needs on a fresh Debian machine: Debian's Fashion-MNIST,
# tcmalloc (the engine's allocator),
# Chromium (which `smash graph` drives through Kaleido for SVG, PNG and PDF; the browser
# tests use it too), a virtual environment at .venv with torch and the
# project installed. Safe to run again: it skips what is already in place.
# Usage: scripts/setup.sh [dev]
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"

need=()
[ -d /usr/share/datasets/fashion-mnist ] || need+=(dataset-fashion-mnist)
[ -x /usr/bin/chromium ] || need+=(chromium)
# tcmalloc: the engine's processes run on it where installed (engine/runtime/allocator.py)
ls /usr/lib/*/libtcmalloc_minimal.so.4 /usr/lib/libtcmalloc_minimal.so.4 >/dev/null 2>&1 || need+=(libtcmalloc-minimal4)
if [ "$mode" = dev ]; then
  [ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
  [ -x /usr/bin/time ] || need+=(time)  # bench/cli.py reads a command's peak memory through GNU time
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=".venv/.installed-$mode-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: installing Python packages into .venv (first time takes a few minutes)"
  .venv/bin/pip install -q --disable-pip-version-check torch==2.14.1 torchvision==0.29.1
  extras=""
  [ "$mode" = dev ] && extras="[dev]"
  .venv/bin/pip install -q --disable-pip-version-check -e ".$extras"
  touch "$stamp"
fi
echo "setup: ready (.venv)"
