"""claim_withdrawal(batch_index, leaf_index, leaf, proof)."""

from __future__ import annotations

import boa

from rollbook.settlement import reference as ref

from .conftest import WINDOW_S, LeafTree, System, account_leaf, events, tx_gas, withdrawal_leaf

# the budget, in transaction gas (calldata of a 32-sibling proof included); measured on the
# embedded py-evm chain (Prague): 96,428, or 113,552 when the owner held no tokens before
CLAIM_GAS_MAX = 150_000
WITHDRAWAL_SLOT = 5
AMOUNT = 250_000


def _funded_batch(system: System, amount: int = AMOUNT, withdrawal_id: int = 1) -> LeafTree:
    """Alice deposits; a final batch holds her withdrawal leaf at WITHDRAWAL_SLOT."""
    system.deposit(system.alice, 1_000_000)
    tree = LeafTree({WITHDRAWAL_SLOT: withdrawal_leaf(withdrawal_id, system.alice, amount)},
                    nonce=1)
    system.submit(tree)
    system.finalize()
    return tree


def _claim(system: System, batch_index: int, tree: LeafTree, slot: int = WITHDRAWAL_SLOT,
           leaf: bytes | None = None, proof: list[bytes] | None = None) -> None:
    with boa.env.prank(system.stranger):  # anyone may claim; the owner is paid
        system.settlement.claim_withdrawal(batch_index, slot,
                                           tree.leaves[slot] if leaf is None else leaf,
                                           tree.proof(slot) if proof is None else proof)


def _paid(system: System, withdrawal_id: int = 1) -> bool:
    paid: bool = system.settlement.withdrawal_paid(withdrawal_id)
    return paid


def test_claim_pays_the_owner_once(system: System) -> None:
    tree = _funded_batch(system)
    before = system.token.balanceOf(system.alice)
    _claim(system, 1, tree)
    (log,) = events(system.settlement, "WithdrawalClaimed")
    assert (log.withdrawal_id, log.owner, log.amount, log.batch_index) == (
        1, system.alice, AMOUNT, 1)
    assert system.token.balanceOf(system.alice) == before + AMOUNT
    assert system.token.balanceOf(system.settlement) == 1_000_000 - AMOUNT
    assert _paid(system)


def test_claim_from_an_older_final_batch(system: System) -> None:
    tree = _funded_batch(system)
    system.submit(LeafTree(nonce=2))  # a newer batch, still inside its window
    _claim(system, 1, tree)
    assert _paid(system)


def test_claim_rejects_when_frozen(system: System) -> None:
    tree = _funded_batch(system)
    system.freeze()
    system.assert_reverts("Settlement: frozen", lambda: _claim(system, 1, tree),
                          lambda: _paid(system))


def test_claim_rejects_a_batch_that_does_not_exist(system: System) -> None:
    tree = _funded_batch(system)
    system.assert_reverts("Settlement: no such batch", lambda: _claim(system, 2, tree))


def test_claim_rejects_a_batch_inside_its_window(system: System) -> None:
    system.deposit(system.alice, 1_000_000)
    tree = LeafTree({WITHDRAWAL_SLOT: withdrawal_leaf(1, system.alice, AMOUNT)}, nonce=1)
    system.submit(tree)
    boa.env.time_travel(seconds=WINDOW_S - 1)
    system.assert_reverts("Settlement: batch not final", lambda: _claim(system, 1, tree),
                          lambda: _paid(system))
    boa.env.time_travel(seconds=1)
    _claim(system, 1, tree)


def test_claim_rejects_a_disputed_batch(system: System) -> None:
    system.deposit(system.alice, 1_000_000)
    tree = LeafTree({WITHDRAWAL_SLOT: withdrawal_leaf(1, system.alice, AMOUNT)}, nonce=1)
    system.submit(tree)
    with boa.env.prank(system.challenger):
        system.settlement.dispute(1)
    system.finalize()
    system.assert_reverts("Settlement: no such batch", lambda: _claim(system, 1, tree))


def test_claim_rejects_an_invalid_proof(system: System) -> None:
    tree = _funded_batch(system)
    proof = tree.proof(WITHDRAWAL_SLOT)
    bad_sibling = [b"\x01" * 32, *proof[1:]]
    forged = withdrawal_leaf(1, system.alice, AMOUNT + 1)
    for attempt in (
        lambda: _claim(system, 1, tree, proof=bad_sibling),
        lambda: _claim(system, 1, tree, leaf=forged),
        lambda: _claim(system, 0, tree),  # the right leaf against another root
    ):
        system.assert_reverts("Settlement: invalid proof", attempt, lambda: _paid(system))
    with boa.env.prank(system.stranger):
        for slot in (WITHDRAWAL_SLOT + 1, WITHDRAWAL_SLOT + 2**ref.TREE_DEPTH):
            # the right siblings at a wrong slot; an index beyond the tree never verifies
            system.assert_reverts("Settlement: invalid proof", lambda i=slot: (
                system.settlement.claim_withdrawal(1, i, tree.leaves[WITHDRAWAL_SLOT], proof)))


def test_claim_rejects_another_kind_of_leaf(system: System) -> None:
    system.deposit(system.alice, 1_000_000)
    # a liquidation-queue-sized leaf padded to 6 words: proven, but kind 7
    alien = (7).to_bytes(32, "big") + withdrawal_leaf(1, system.alice, AMOUNT)[32:]
    tree = LeafTree({WITHDRAWAL_SLOT: alien}, nonce=1)
    system.submit(tree)
    system.finalize()
    system.assert_reverts("Settlement: not a withdrawal leaf", lambda: _claim(system, 1, tree),
                          lambda: _paid(system))


def test_claim_rejects_a_leaf_longer_than_a_withdrawal_without_a_reason(system: System) -> None:
    system.deposit(system.alice, 1_000_000)
    tree = LeafTree({WITHDRAWAL_SLOT: account_leaf(system.alice, collaterals=(5,))}, nonce=1)
    system.submit(tree)
    system.finalize()
    before = system.fingerprint()
    with boa.reverts():  # the ABI decoder's bound on Bytes[192], before the body runs
        _claim(system, 1, tree)
    assert system.fingerprint() == before


def test_claim_rejects_a_replay(system: System) -> None:
    tree = _funded_batch(system)
    _claim(system, 1, tree)
    system.assert_reverts("Settlement: withdrawal already paid", lambda: _claim(system, 1, tree))
    # the same withdrawal leaf is still in later roots: still paid only once
    system.submit(tree.set(0, LeafTree(nonce=3).leaves[0]))
    system.finalize()
    system.assert_reverts("Settlement: withdrawal already paid", lambda: _claim(system, 2, tree))


def test_claim_rejects_a_zero_withdrawal(system: System) -> None:
    tree = _funded_batch(system, amount=0)
    system.assert_reverts("Settlement: zero withdrawal", lambda: _claim(system, 1, tree),
                          lambda: _paid(system))


def test_claim_gas_within_budget(system: System) -> None:
    newcomer = boa.env.generate_address("newcomer")  # holds no tokens: a fresh balance slot
    system.deposit(system.alice, 1_000_000)
    tree = LeafTree({WITHDRAWAL_SLOT: withdrawal_leaf(1, system.alice, AMOUNT),
                     WITHDRAWAL_SLOT + 1: withdrawal_leaf(2, newcomer, AMOUNT)}, nonce=1)
    system.submit(tree)
    system.finalize()
    for slot in (WITHDRAWAL_SLOT, WITHDRAWAL_SLOT + 1):
        gas = tx_gas(system.settlement, "claim_withdrawal", 1, *tree.args(slot),
                     sender=system.stranger)
        assert gas <= CLAIM_GAS_MAX
