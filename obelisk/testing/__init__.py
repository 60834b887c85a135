"""What tests and benchmarks share: the pure-Python twins of the core and seeded workloads."""
