"""Benchmarks of gainscale's targets (a package, so its conftest does not shadow tests/conftest.py)."""
