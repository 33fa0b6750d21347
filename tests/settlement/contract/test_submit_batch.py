"""submit_batch(batch_index, prev_root, new_root, data_hash, deposit_count, forced_count, data)."""

from __future__ import annotations

import boa

from rollbook.settlement import reference as ref

from .conftest import INTRINSIC_GAS, LeafTree, System, cold_access, events, tx_gas

# transaction gas of a small batch; measured on the embedded py-evm chain (Prague): 125,310
SUBMIT_GAS_MAX = 135_000
CALLDATA_FLOOR_PER_NONZERO_BYTE = 40  # EIP-7623: 10 gas per token, 4 tokens per non-zero byte


def _submit(system: System, index: int, prev_root: bytes, new_root: bytes = b"\x07" * 32,
            deposit_count: int = 0, forced_count: int = 0, data: bytes = b"data",
            sender: object = None) -> None:
    with boa.env.prank(sender or system.operator):
        system.settlement.submit_batch(index, prev_root, new_root, b"\x0d" * 32, deposit_count,
                                       forced_count, data)


def test_submit_extends_the_chain(system: System) -> None:
    s = system.settlement
    genesis = system.trees[0].root
    system.deposit(system.alice, 10)
    system.request_forced(system.bob)
    _submit(system, 1, genesis, b"\x01" * 32, deposit_count=1, forced_count=1, data=b"abc")
    (log,) = events(s, "BatchSubmitted")
    assert (log.batch_index, log.prev_root, log.new_root, log.data_hash, log.deposit_count,
            log.forced_count, log.data_bytes) == (1, genesis, b"\x01" * 32, b"\x0d" * 32, 1, 1, 3)
    assert s.latest_batch() == 1
    assert tuple(s.batch(1)) == (b"\x01" * 32, b"\x0d" * 32, 1, 1, boa.env.timestamp)
    _submit(system, 2, b"\x01" * 32, b"\x02" * 32, deposit_count=1, forced_count=1)
    assert s.latest_batch() == 2 and s.batch(2)[0] == b"\x02" * 32


def test_submit_accepts_data_up_to_the_bound(system: System) -> None:
    _submit(system, 1, system.trees[0].root, data=b"\xff" * ref.BATCH_DATA_BYTES_MAX)
    assert events(system.settlement, "BatchSubmitted")[0].data_bytes == ref.BATCH_DATA_BYTES_MAX


def test_submit_rejects_data_above_the_bound_without_a_reason(system: System) -> None:
    # Vyper's ABI decoder checks the bound before the body runs: no reason string exists
    before = system.fingerprint()
    with boa.reverts():
        _submit(system, 1, system.trees[0].root, data=b"\xff" * (ref.BATCH_DATA_BYTES_MAX + 1))
    assert system.fingerprint() == before


def test_submit_rejects_a_caller_other_than_the_operator(system: System) -> None:
    for caller in (system.challenger, system.alice):
        system.assert_reverts("Settlement: caller is not the operator", lambda c=caller: _submit(
            system, 1, system.trees[0].root, sender=c))


def test_submit_rejects_when_frozen(system: System) -> None:
    system.freeze()
    system.assert_reverts("Settlement: frozen",
                          lambda: _submit(system, 1, system.trees[0].root))


def test_submit_rejects_a_wrong_index(system: System) -> None:
    genesis = system.trees[0].root
    for index in (0, 2, 2**256 - 1):
        system.assert_reverts("Settlement: batch index is not latest + 1",
                              lambda i=index: _submit(system, i, genesis))
    _submit(system, 1, genesis, b"\x01" * 32)
    system.assert_reverts("Settlement: batch index is not latest + 1",
                          lambda: _submit(system, 1, genesis), lambda: system.settlement.batch(1))


def test_submit_rejects_a_stale_prev_root(system: System) -> None:
    genesis = system.trees[0].root
    system.assert_reverts("Settlement: prev_root is not the latest root",
                          lambda: _submit(system, 1, b"\x05" * 32))
    _submit(system, 1, genesis, b"\x01" * 32)
    system.assert_reverts("Settlement: prev_root is not the latest root",
                          lambda: _submit(system, 2, genesis))


def test_submit_rejects_deposit_count_going_down(system: System) -> None:
    system.deposit(system.alice, 10)
    _submit(system, 1, system.trees[0].root, b"\x01" * 32, deposit_count=1)
    system.assert_reverts("Settlement: deposit count went down",
                          lambda: _submit(system, 2, b"\x01" * 32, deposit_count=0))


def test_submit_rejects_deposit_count_above_deposits(system: System) -> None:
    system.deposit(system.alice, 10)
    system.assert_reverts("Settlement: deposit count above deposits made",
                          lambda: _submit(system, 1, system.trees[0].root, deposit_count=2))


def test_submit_rejects_forced_count_going_down(system: System) -> None:
    system.request_forced(system.alice)
    _submit(system, 1, system.trees[0].root, b"\x01" * 32, forced_count=1)
    system.assert_reverts("Settlement: forced count went down",
                          lambda: _submit(system, 2, b"\x01" * 32, forced_count=0))


def test_submit_rejects_forced_count_above_requests(system: System) -> None:
    system.assert_reverts("Settlement: forced count above requests made",
                          lambda: _submit(system, 1, system.trees[0].root, forced_count=1))


def test_submit_gas(system: System) -> None:
    """A small batch costs about 125,000 gas (three fresh slots); data adds 0.094 execution gas
    per byte (calldatacopy; the memory expansion to BATCH_DATA_BYTES_MAX is paid by every
    call) but 16 (4 for zero bytes) of calldata, or 40 (10) under EIP-7623's floor, which a
    large batch reaches: then the data alone sets the price."""
    s, operator, roots = system.settlement, system.operator, [system.trees[0].root]
    execution = {}
    for index, data in enumerate((b"", b"\xff" * ref.BATCH_DATA_BYTES_MAX), start=1):
        roots.append(index.to_bytes(32, "big"))
        with cold_access():
            _submit(system, index, roots[-2], roots[-1], data=data)
        execution[len(data)] = s._computation.get_gas_used()
    per_byte_milligas = (execution[ref.BATCH_DATA_BYTES_MAX] - execution[0]) * 1000 // (
        ref.BATCH_DATA_BYTES_MAX)
    assert per_byte_milligas <= 100  # 3 gas per 32-byte word copied
    small = tx_gas(s, "submit_batch", 3, roots[-1], b"\x03" * 32, b"\x0d" * 32, 0, 0,
                   b"\x01\x02", sender=operator)
    assert small <= SUBMIT_GAS_MAX
    full = tx_gas(s, "submit_batch", 4, b"\x03" * 32, b"\x04" * 32, b"\x0d" * 32, 0, 0,
                  b"\xff" * ref.BATCH_DATA_BYTES_MAX, sender=operator)
    calldata_bytes_max = ref.BATCH_DATA_BYTES_MAX + 512  # the other arguments: 8 words + selector
    assert full <= INTRINSIC_GAS + CALLDATA_FLOOR_PER_NONZERO_BYTE * calldata_bytes_max


def test_submit_then_tree_root_round_trip(system: System) -> None:
    tree = LeafTree(nonce=9)
    index = system.submit(tree)
    assert system.settlement.batch(index)[0] == tree.root
