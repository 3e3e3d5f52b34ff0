"""Test doubles and builders that both the tests and the benchmarks use (not part of the installed wheel)."""
