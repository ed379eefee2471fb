"""Benchmarks of taskbot: run on demand with `python -m bench`, never part of the tests."""
