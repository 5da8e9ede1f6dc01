"""The 2-rank tests of dlfast.distributed (a package, so that its conftest does not shadow
tests/conftest.py, which other test modules import by name)."""
