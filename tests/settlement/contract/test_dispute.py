"""dispute(batch_index)."""

from __future__ import annotations

import boa

from .conftest import WINDOW_S, LeafTree, System, events


def _dispute(system: System, index: int, sender: object = None) -> None:
    with boa.env.prank(sender or system.challenger):
        system.settlement.dispute(index)


def test_dispute_discards_the_batch_and_every_later_one(system: System) -> None:
    s = system.settlement
    for nonce in (1, 2, 3):
        system.submit(LeafTree(nonce=nonce))
    _dispute(system, 2)
    (log,) = events(s, "BatchDisputed")
    assert (log.batch_index, log.challenger) == (2, system.challenger)
    assert s.latest_batch() == 1
    with boa.reverts("Settlement: no such batch"):
        s.batch(2)
    # the operator resubmits from the disputed index on top of batch 1
    replacement = LeafTree(nonce=22)
    assert system.submit(replacement) == 2
    assert s.batch(2)[0] == replacement.root


def test_dispute_is_possible_until_the_last_second_of_the_window(system: System) -> None:
    system.submit(LeafTree(nonce=1))
    boa.env.time_travel(seconds=WINDOW_S - 1)
    _dispute(system, 1)
    assert system.settlement.latest_batch() == 0


def test_dispute_rejects_a_caller_who_is_not_a_challenger(system: System) -> None:
    system.submit(LeafTree(nonce=1))
    for caller in (system.operator, system.alice):
        system.assert_reverts("Settlement: caller is not a challenger",
                              lambda c=caller: _dispute(system, 1, c))


def test_dispute_rejects_when_frozen(system: System) -> None:
    system.freeze()
    system.assert_reverts("Settlement: frozen", lambda: _dispute(system, 1))


def test_dispute_rejects_a_batch_that_does_not_exist(system: System) -> None:
    system.submit(LeafTree(nonce=1))
    for index in (2, 2**256 - 1):
        system.assert_reverts("Settlement: no such batch", lambda i=index: _dispute(system, i))


def test_dispute_rejects_a_final_batch(system: System) -> None:
    system.assert_reverts("Settlement: batch is final", lambda: _dispute(system, 0))
    system.submit(LeafTree(nonce=1))
    boa.env.time_travel(seconds=WINDOW_S)  # exactly at submitted_at + window: final
    system.assert_reverts("Settlement: batch is final", lambda: _dispute(system, 1))
    system.submit(LeafTree(nonce=2))
    # batch 2 is still disputable although batch 1 before it is final
    _dispute(system, 2)
    assert system.settlement.latest_batch() == 1
