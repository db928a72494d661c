"""Benchmarks: `.venv/bin/python bench/events.py` (see its docstring)."""
