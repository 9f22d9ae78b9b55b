"""Shared test fixtures."""
from __future__ import annotations

import os

import pytest
import torch
from hypothesis import settings

# CI replays a fixed example set (derandomize) so a run's verdict is reproducible; locally, fuzzing explores anew.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="module")
def one_thread():
    """Tiny fits: one torch thread is faster and avoids over-subscribing a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
