"""The command-line value checks every command shares: one message per kind of bad value."""
from __future__ import annotations

import pytest

from qiren_gen.runtime.values import MAX_SEED, MAX_THREADS, check_seed, check_threads


@pytest.mark.parametrize("threads", [1, 2, MAX_THREADS])
def test_check_threads_accepts_counts_up_to_the_bound(threads):
    check_threads(threads)


@pytest.mark.parametrize(("threads", "message"), [(0, "--threads must be >= 1, got 0"),
                                                   (-3, "--threads must be >= 1, got -3"),
                                                   (MAX_THREADS + 1, f"--threads must be between 1 and {MAX_THREADS}")])
def test_check_threads_names_the_flag(threads, message):
    with pytest.raises(ValueError, match=message):
        check_threads(threads)


def test_check_seed_bounds_the_span():
    assert check_seed(MAX_SEED - 4, span=4) == MAX_SEED - 4
    with pytest.raises(ValueError, match="--seed must be a whole number between 0 and"):
        check_seed(MAX_SEED - 3, span=4)
