"""What every stage needs from the machine: device and precision, distributed setup, seeded streams, checkpoints, workdir."""
