"""hyper."""
