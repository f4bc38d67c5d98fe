#!/usr/bin/env bash
# The GPU figures in one run (steps 1-3 well under 8 minutes on one modern GPU; the ladder, 4, longer):
#   1. bench/step.py on CUDA in bf16 at the CIFAR size: the SMASH step against the same
#      static network (step_ratio) and the first step of each new architecture (fresh_ratio);
#   2. bench/score.py on CUDA: architectures per minute at 1,000 validation images;
#   3. 300 steps of CIFAR-size SMASH training (configs/cifar10.toml's networks) with the
#      store on, on a CIFAR-shaped data set made on the spot (nothing is downloaded).
# Each step has its own time limit, so one that hangs cannot eat the others' time; the
# figures go to $OUT (or artifacts/gpu) and the last line of each log is its JSON.
#
# The machine needs torch with CUDA. What else the engine imports (duckdb, tqdm, scipy,
# pandas, numpy) is installed from ./wheels when missing: fill it beforehand, where pip can
# fetch, with `bash scripts/gpu_wheels.sh` (wheels/ is ignored by git; carry it along).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-artifacts/gpu}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"

if ! "$PY" -c "import duckdb, tqdm, scipy, pandas, sklearn, plotly, networkx" 2>/dev/null; then
  "$PY" -m pip install -q --no-index --find-links wheels duckdb tqdm scipy pandas scikit-learn plotly networkx
fi
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))" \
  | tee "$OUT/device.txt"

echo "== step" && timeout 180 "$PY" bench/step.py --device cuda --precision bf16 --archs 4 --reps 3 \
  | tee "$OUT/step.log" | tail -1
echo "== score" && timeout 150 "$PY" bench/score.py --device cuda --precision bf16 --archs 64 --val 1000 \
  --batch 500 | tee "$OUT/score.log" | tail -1

echo "== train"
WORK="$(mktemp -d)"
"$PY" - "$WORK" <<'PYEOF'
import re
import sys
from pathlib import Path

import numpy as np

work = Path(sys.argv[1])
rng = np.random.default_rng(0)
x = rng.integers(0, 256, (12000, 32, 32, 3), dtype=np.uint8)  # CIFAR's shape, HWC
y = rng.integers(0, 10, 12000)
np.savez(work / "cifar-shaped.npz", x=x[:10000], y=y[:10000], x_test=x[10000:], y_test=y[10000:])
cfg = Path("configs/cifar10.toml").read_text()
cfg = re.sub(r'dataset = "cifar10"\n(root = .*\n)?', f'dataset = "npz"\nroot = "{work / "cifar-shaped.npz"}"\n', cfg)
(work / "gpu.toml").write_text(cfg)
PYEOF
timeout 240 "$PY" -m cli train --config "$WORK/gpu.toml" --workdir "$WORK/runs" --steps 300 --quiet --json \
  | tee "$OUT/train.log" | tail -1

# 4. The ranking study's truth ladder at full size: 48 archs, two seeds, retrained for 12
#    epochs with the truth read after 1, 2, 4, 8 and 12 (docs/correlation.md). It needs
#    Fashion-MNIST's IDX files: FASHION_ROOT names their folder (default Debian's); without
#    them this step says so and is skipped. LADDER_TIMEOUT bounds it (seconds).
FASHION_ROOT="${FASHION_ROOT:-/usr/share/datasets/fashion-mnist}"
if [ -d "$FASHION_ROOT" ]; then
  echo "== ladder"
  sed "s|^dataset = \"fashion-mnist\"|dataset = \"fashion-mnist\"\nroot = \"$FASHION_ROOT\"|" configs/demo.toml \
    > "$WORK/ladder.toml"
  timeout "${LADDER_TIMEOUT:-3000}" "$PY" bench/fidelity.py --workdir "$WORK/ladder" --config "$WORK/ladder.toml" \
    --k 48 --every 1 --epochs 1,2,4,8,12 --workers 1 --no-variants --csv "$OUT/fidelity-archs-gpu.csv" \
    --out "$OUT/fidelity-gpu.json" | tee "$OUT/ladder.log" | tail -1
else
  echo "== ladder skipped: no Fashion-MNIST at $FASHION_ROOT (set FASHION_ROOT)"
fi
