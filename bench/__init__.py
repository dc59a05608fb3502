"""Benchmarks for World Weaver (run them as scripts, e.g. ``python bench/locomo.py``)."""
