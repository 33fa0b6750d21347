"""rollbook.runtime: the shared switch-interval holder."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from rollbook.runtime import SWITCH_INTERVAL, SwitchInterval
from switch_interval import DEFAULT_INTERVAL_S, about, default_interval


@pytest.fixture(autouse=True)
def default_switch_interval() -> Iterator[None]:
    with default_interval():
        yield


def test_lowered_while_held_and_restored_by_the_last_release() -> None:
    holder = SwitchInterval()
    holder.lower(0.001)
    assert sys.getswitchinterval() == about(0.001) and holder.holders == 1
    holder.lower(0.0005)  # a second holder asking for less gets less
    assert sys.getswitchinterval() == about(0.0005)
    holder.lower(0.002)  # a holder asking for more never raises it
    assert sys.getswitchinterval() == about(0.0005)
    holder.release()
    holder.release()
    assert sys.getswitchinterval() == about(0.0005) and holder.holders == 1
    holder.release()
    assert sys.getswitchinterval() == about(DEFAULT_INTERVAL_S) and holder.holders == 0


def test_release_without_lower_and_bad_intervals_are_refused() -> None:
    holder = SwitchInterval()
    with pytest.raises(AssertionError):
        holder.release()
    for interval_s in (0.0, -1.0):
        with pytest.raises(ValueError):
            holder.lower(interval_s)
    assert holder.holders == 0 and sys.getswitchinterval() == about(DEFAULT_INTERVAL_S)


def test_the_process_holder_starts_unheld() -> None:
    assert SWITCH_INTERVAL.holders == 0
