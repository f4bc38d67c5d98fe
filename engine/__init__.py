"""The SMASH engine, everything that needs torch: data, networks, HyperNet, training, scoring, search, jobs."""

import os

# SMASH trains a new architecture every step, so oneDNN keeps meeting convolution shapes
# it has not built kernels for; with its default cache of 1,024 kernels it rebuilds them
# over and over. A larger cache made the demo's HyperNet training 1.8x faster for about
# 1 GB more memory (docs/performance.md). Set the variable yourself to override.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "65536")

# OpenMP's threads spin on their core while they wait for work ("active" waiting). On a
# machine where another process is busy that spinning steals the very core the other
# threads wait for: 2 threads beside one busy process ran the demo's training at 30% of
# their quiet speed, and at 53% with passive waiting (docs/performance.md). The variable
# is read once, when torch loads OpenMP, so it is set here, before anything imports torch;
# one-thread runs never wait, so they are unaffected. Set it yourself to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
