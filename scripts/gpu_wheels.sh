#!/usr/bin/env bash
# Wheels for bench/gpu.sh on a machine that has torch but cannot fetch: run this where pip
# can reach the index, with the device machine's Python version, then carry wheels/ along.
set -euo pipefail
cd "$(dirname "$0")/.."
PYV="${PYV:-$(python3 -c 'import sys; print(f"{sys.version_info.major}{sys.version_info.minor}")')}"
python3 -m pip download -q -d wheels --only-binary=:all: --python-version "$PYV" \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
  duckdb tqdm scipy pandas numpy scikit-learn plotly networkx
ls wheels
