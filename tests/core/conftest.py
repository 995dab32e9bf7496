"""Core tests run single-threaded: their tensors are small, so torch's intra-op thread pool costs
more than it gains, and on shared CI cores its spinning threads slow small ops by orders of
magnitude. The previous thread count is restored after each test."""

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_intra_op_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
