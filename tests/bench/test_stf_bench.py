"""``rollbook bench stf``'s method: interleaved rounds, each side's best, one root."""

from __future__ import annotations

import pytest

from rollbook.bench.stf import _best_peer_round, run_stf_bench

OPS = 2_000  # enough for fills, cancels and modifies; seconds, not minutes


def test_rounds_are_reported_and_the_best_is_the_figure() -> None:
    once = run_stf_bench(seed=3, ops=OPS, resting_orders=0, with_peer=False, repeats=1)
    thrice = run_stf_bench(seed=3, ops=OPS, resting_orders=0, with_peer=False, repeats=3)
    assert thrice["repeats"] == 3 and len(thrice["rounds_orders_per_s"]) == 3
    assert thrice["orders_per_s"] == max(thrice["rounds_orders_per_s"])
    # the workload and its outcome do not depend on how often it is replayed
    for key in ("state_root", "fills", "resting_orders_end", "ops", "batches"):
        assert thrice[key] == once[key], key
    assert once["fills"] > 0


@pytest.mark.parametrize("repeats", [0, -1, 21])
def test_repeats_out_of_range_are_refused(repeats: int) -> None:
    with pytest.raises(ValueError):
        run_stf_bench(seed=3, ops=OPS, resting_orders=0, with_peer=False, repeats=repeats)


def test_the_peer_figure_is_its_fastest_round() -> None:
    rounds: list[dict[str, object]] = [
        {"name": "matching-engine", "orders_per_s": 10.0, "python": "3.13"},
        {"name": "matching-engine", "skipped": True, "reason": "a hiccup"},
        {"name": "matching-engine", "orders_per_s": 30.0, "python": "3.13"},
        {"name": "matching-engine", "orders_per_s": 20.0, "python": "3.13"},
    ]
    best = _best_peer_round(rounds)
    assert best["orders_per_s"] == 30.0
    assert best["rounds_orders_per_s"] == [10.0, 30.0, 20.0]
    skipped = [{"name": "matching-engine", "skipped": True, "reason": "no Python 3.12"}]
    assert _best_peer_round(skipped) == skipped[0]
