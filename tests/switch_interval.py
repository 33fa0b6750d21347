"""One set-up for the tests of the interpreter's switch interval (rollbook.runtime's holder and
the verifier's pipeline that holds it): CPython's default set before each test and restored
after, and comparisons at the precision the interpreter keeps."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

DEFAULT_INTERVAL_S = 0.005  # CPython's
# the interpreter keeps whole microseconds, truncating: a value read back and set again may lose
# one, so comparisons allow a microsecond and a half
INTERVAL_RESOLUTION_S = 1.5e-6


def about(interval_s: float) -> object:
    return pytest.approx(interval_s, abs=INTERVAL_RESOLUTION_S)


@contextmanager
def default_interval() -> Iterator[None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(DEFAULT_INTERVAL_S)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)
