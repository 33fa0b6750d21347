"""Benchmarks: seeded workloads and the ``rollbook bench`` commands (targets live here)."""
