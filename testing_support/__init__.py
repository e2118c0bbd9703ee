"""Helpers shared by the tests and the benchmarks (stdlib only; not part of the service).

The benchmarks run as ``python bench/<name>.py`` and put the repository root on their import
path to reach it; the tests import it from the root, where pytest runs.
"""
