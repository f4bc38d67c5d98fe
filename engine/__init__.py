"""The SMASH engine, everything that needs torch: data, networks, HyperNet, training, scoring, search, jobs."""

import os

# SMASH trains a new architecture every step, so oneDNN keeps meeting convolution shapes
# it has not built kernels for; with its default cache of 1,024 kernels it rebuilds them
# over and over. A larger cache made the demo's HyperNet training 1.8x faster for about
# 1 GB more memory (docs/performance.md). Set the variable yourself to override.
#
# That cache is most of a train job's memory beyond torch's own (about 650 MB after the
# imports): about 60 KB per cached kernel, and a demo job meets an estimated 20,000-26,000
# kernels (bench/memory.py, docs/performance.md). Measured and not taken: a cache of
# 8,192 saved about 400 MB on a 300-step run yet still peaked at 1.7 GB, and would rebuild
# kernels over the full run; MALLOC_ARENA_MAX=2, often advised for threaded processes,
# saved nothing and made bf16 training 7x slower.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "65536")

# OpenMP's threads spin on their core while they wait for work ("active" waiting). On a
# machine where another process is busy that spinning steals the very core the other
# threads wait for: 2 threads beside one busy process ran the demo's training at 30% of
# their quiet speed, and at 53% with passive waiting (docs/performance.md). The variable
# is read once, when torch loads OpenMP, so it is set here, before anything imports torch;
# one-thread runs never wait, so they are unaffected. Set it yourself to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
