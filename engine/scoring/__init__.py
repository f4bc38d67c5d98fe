"""Scoring: validation error with generated weights, in draws and halving rungs; the probe set; the NASWOT proxy."""
