"""Shared by the browser and interoperability tests: `tests/` is on sys.path from here."""
