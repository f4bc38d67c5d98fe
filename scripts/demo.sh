#!/usr/bin/env bash
# Set up, then run the main job on the embedded default data set (Fashion-MNIST):
# train a SMASH HyperNet with configs/demo.toml, score 200 architectures, retrain the best briefly.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
workdir=${SMASH_WORKDIR:-runs}
smash=.venv/bin/smash
$smash train --config configs/demo.toml --workdir "$workdir"
$smash score --workdir "$workdir" --archs 200
$smash retrain --workdir "$workdir" --arch best --epochs 2
echo "Results are in $workdir/smash.duckdb; export the best: $smash export --workdir $workdir --arch best --format json --out best.json"
