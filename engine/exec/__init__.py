"""Where scoring and final training run: in this process or on Ray, behind one contract."""
