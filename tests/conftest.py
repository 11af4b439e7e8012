"""Fixtures shared by the whole test suite."""

import pytest
import torch


@pytest.fixture(scope="module")
def single_thread():
    """One torch thread for a module: tiny tensors gain nothing from more, and on a
    shared machine threads only contend. Use with
    ``pytestmark = pytest.mark.usefixtures("single_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
