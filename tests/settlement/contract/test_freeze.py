"""freeze()."""

from __future__ import annotations

import boa

from .conftest import FORCED_DEADLINE_S, WINDOW_S, LeafTree, System, events, withdrawal_leaf


def _overdue(system: System) -> None:
    boa.env.time_travel(seconds=FORCED_DEADLINE_S + 1)


def test_freeze_on_the_latest_final_root_and_discards_the_rest(system: System) -> None:
    s = system.settlement
    system.deposit(system.alice, 100)
    system.deposit(system.bob, 40)
    final = LeafTree(nonce=1)
    system.submit(final, deposit_count=1)
    system.request_forced(system.carol)
    _overdue(system)  # batch 1 is final by now; the request is not covered
    system.deposit(system.carol, 7)
    system.submit(LeafTree(nonce=2), deposit_count=3, forced_count=0)  # in its window
    assert s.freezable()
    s.freeze()
    (log,) = events(s, "Frozen")
    # uncredited: deposits 2 and 3 (40 + 7) are refunded in full, the rest is the pool
    assert (log.escape_batch, log.escape_root, log.escape_pool) == (1, final.root, 100)
    assert s.frozen() and s.frozen_at() == boa.env.timestamp
    assert (s.escape_batch(), s.escape_root(), s.escape_deposit_count(), s.escape_pool()) == (
        1, final.root, 1, 100)
    assert s.latest_batch() == 1
    assert not s.freezable()


def test_freeze_pool_counts_donations(system: System) -> None:
    system.deposit(system.alice, 100)  # never credited: not in the pool
    system.token.mint(system.settlement.address, 55)
    system.freeze()
    assert system.settlement.escape_pool() == 55


def test_freeze_pool_is_zero_when_a_final_root_paid_out_uncredited_funds(system: System) -> None:
    # batch 1 credits nothing yet pays Bob Alice's uncredited deposit: the balance cannot cover
    # the refund, and the pool floors at zero instead of reverting
    system.deposit(system.alice, 100)
    tree = LeafTree({5: withdrawal_leaf(1, system.bob, 100)}, nonce=1)
    system.submit(tree, deposit_count=0)
    system.finalize()
    system.settlement.claim_withdrawal(1, 5, tree.leaves[5], tree.proof(5))
    system.freeze()
    assert system.settlement.escape_pool() == 0


def test_freeze_rejects_twice(system: System) -> None:
    system.freeze()
    system.assert_reverts("Settlement: already frozen", system.settlement.freeze)


def test_freeze_rejects_without_requests(system: System) -> None:
    boa.env.time_travel(seconds=10 * FORCED_DEADLINE_S)
    system.assert_reverts("Settlement: no overdue forced withdrawal", system.settlement.freeze)


def test_freeze_needs_a_request_strictly_older_than_the_deadline(system: System) -> None:
    system.request_forced(system.alice)
    boa.env.time_travel(seconds=FORCED_DEADLINE_S)
    assert not system.settlement.freezable()
    system.assert_reverts("Settlement: no overdue forced withdrawal", system.settlement.freeze)
    boa.env.time_travel(seconds=1)
    system.settlement.freeze()


def test_freeze_counts_requests_covered_by_the_latest_batch_even_inside_its_window(
        system: System) -> None:
    s = system.settlement
    system.request_forced(system.alice)
    system.request_forced(system.bob)
    system.submit(LeafTree(nonce=1), forced_count=2)
    _overdue(system)
    system.assert_reverts("Settlement: no overdue forced withdrawal", s.freeze)
    # a request the latest batch has not processed becomes overdue; once covered, it is not
    system.request_forced(system.carol)
    system.submit(LeafTree(nonce=2), forced_count=2)
    _overdue(system)
    assert s.freezable()
    system.submit(LeafTree(nonce=3), forced_count=3)  # not final yet, but covers it
    system.assert_reverts("Settlement: no overdue forced withdrawal", s.freeze)
    # disputing that batch uncovers the request again
    with boa.env.prank(system.challenger):
        s.dispute(3)
    s.freeze()
    assert s.escape_batch() == 2  # batch 2 became final while the request waited


def test_freeze_with_many_batches_in_the_window_finds_the_latest_final(system: System) -> None:
    s = system.settlement
    system.request_forced(system.alice)
    step_s = WINDOW_S // 8
    for nonce in range(1, 40):
        system.submit(LeafTree(nonce=nonce), forced_count=0)
        boa.env.time_travel(seconds=step_s)
    boa.env.time_travel(seconds=FORCED_DEADLINE_S)
    for nonce in range(40, 50):
        system.submit(LeafTree(nonce=nonce), forced_count=0)
        boa.env.time_travel(seconds=step_s)
    expected = max(i for i in range(50) if s.is_finalized(i))
    assert expected == s.latest_finalized_batch() == 42  # 8 steps of WINDOW_S // 8 ago
    s.freeze()
    assert s.escape_batch() == expected and s.latest_batch() == expected
