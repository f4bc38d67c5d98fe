"""The SMASH engine, everything that needs torch: data, networks, HyperNet, training, scoring, search, jobs."""

import os

# SMASH trains a new architecture every step, so oneDNN keeps meeting convolution shapes
# it has not built kernels for; with its default cache of 1,024 kernels it rebuilds them
# over and over. A larger cache made the demo's HyperNet training 1.8x faster for about
# 1 GB more memory (docs/performance.md). Set the variable yourself to override.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "65536")
