"""The check_delegation tests use the reference fixtures of tests/conftest.py (helpers in
tests/reference_support.py)."""
