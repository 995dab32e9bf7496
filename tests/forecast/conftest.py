"""Forecast tests run their tiny networks on one thread: for graphs of a few hundred nodes thread
start-up costs more than it saves, and on a shared machine two threads contend badly."""


import pytest


@pytest.fixture(autouse=True)
def _every_test_on_one_thread(one_thread: None) -> None:
    """Every test here runs with torch on one thread (``one_thread`` in tests/conftest.py)."""
