"""Forecast tests run their tiny networks on one thread: for graphs of a few hundred nodes thread
start-up costs more than it saves, and on a shared machine two threads contend badly."""

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
