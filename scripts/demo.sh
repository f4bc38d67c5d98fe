#!/usr/bin/env bash
# Set up, then run SMASH Explorer on the embedded default data set (Fashion-MNIST): the engine
# and the dashboard start, a HyperNet run on configs/demo.toml is queued (training, then
# scoring 200 architectures), and the dashboard's URL is printed. Ctrl-C stops both; running
# this again continues where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/smash up --config configs/demo.toml --workdir "${SMASH_WORKDIR:-runs}" "$@"
