"""Benchmarks (SPEC §6).  Each module is a script: ``python -m bench.<name>``."""
