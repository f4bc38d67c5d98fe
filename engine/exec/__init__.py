"""Where compute runs: spec (which executor), contract (what each promises), local, ray, pick."""
