"""The one helper that turns an exception into the one line a user reads."""
from __future__ import annotations

from qiren_gen.runtime import one_line


def test_one_line_of_an_exception():
    assert one_line(ValueError("  bad value\n")) == "bad value"
    assert one_line(KeyError()) == "KeyError"
