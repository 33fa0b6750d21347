"""Every check of ``check_batch`` on its own, without a chain: one crafted batch per reason.

A small venue (two funded traders, an oracle price) is built by an honest sequencer path
(``BatchExecution``); the verifier's replica replays it. Then each case crafts batch 2 (bad in
exactly one way) and checks the reported ``Divergence`` (reason, entry), that the replica is
untouched or reported dirty, and that after restoring it the honest batch 2 still verifies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import coincurve
import pytest

from rollbook.commitment import genesis_commitment
from rollbook.execution import (
    Deposit,
    ForcedWithdrawal,
    OraclePrice,
    OracleUpdate,
    PlaceOrder,
    Side,
    Transaction,
    apply_transaction,
    default_venue_config,
    genesis_state,
)
from rollbook.execution.crypto import SECP256K1_N, address_of_public_key, keccak256, sign_digest
from rollbook.execution.oracle import oracle_message_digest
from rollbook.execution.stf import begin_batch
from rollbook.sequencer import AdmissionState, Eip712Domain, SignedTransaction, sign_action
from rollbook.sequencer.batch_data import (
    BatchData,
    BatchExecution,
    Entry,
    SystemEntry,
    encode_batch_data,
    signed_entry,
    system_entry,
)
from rollbook.sequencer.eip712 import RegisterAgent, RevokeAgent
from rollbook.sequencer.signatures import RECOVERY_CHUNK_MAX, recover_signers
from rollbook.verifier import (
    CheckRules,
    DivergenceReason,
    L1Book,
    L1Deposit,
    L1ForcedRequest,
    RecoveryPipeline,
    Replica,
    Submission,
    SubmitBatchCall,
    check_batch,
)
from rollbook.verifier.calldata import (
    SUBMIT_BATCH_SELECTOR,
    CalldataError,
    decode_submit_batch,
    encode_submit_batch,
)

USDC = 10**6
CHAIN_ID = 31337
CONTRACT = bytes.fromhex("5e771e0000000000000000000000000000c0ffee")
ORACLE_KEY = (0x0A11CE).to_bytes(32, "big")
ORACLE = address_of_public_key(coincurve.PrivateKey(ORACLE_KEY).public_key.format(
    compressed=False))
ALICE_KEY, BOB_KEY = (0xA11CE5).to_bytes(32, "big"), (0xB0B).to_bytes(32, "big")
ALICE = address_of_public_key(coincurve.PrivateKey(ALICE_KEY).public_key.format(compressed=False))
BOB = address_of_public_key(coincurve.PrivateKey(BOB_KEY).public_key.format(compressed=False))
T0_MS = 1_700_000_000_000
L1_TIME_S = 1_800_000_000
DEADLINE_S = 3_600
RULES = CheckRules(DEADLINE_S)
DOMAIN = Eip712Domain(CHAIN_ID, CONTRACT)
VENUE = default_venue_config((ORACLE,), chain_id=CHAIN_ID)


def _oracle(timestamp_ms: int) -> OracleUpdate:
    prices = (OraclePrice(1, 100_000 * USDC),)
    return OracleUpdate(timestamp_ms, prices, (sign_digest(ORACLE_KEY, oracle_message_digest(
        CHAIN_ID, timestamp_ms, prices)),))


def _submission(data: bytes, index: int, previous: bytes, root: bytes, deposit_count: int,
                forced_count: int, *, block_s: int = L1_TIME_S, data_hash: bytes | None = None,
                ) -> Submission:
    call = SubmitBatchCall(index, previous, root, keccak256(data) if data_hash is None
                           else data_hash, deposit_count, forced_count, data)
    return Submission(index, previous, root, call.data_hash, deposit_count, forced_count,
                      len(data), 100 + index, 0, block_s, keccak256(b"tx %d" % index), call)


@dataclass
class Base:
    """The verifier after batch 1, the operator's payload there, and the L1 book."""

    replica: Replica
    operator_payload: bytes
    book: L1Book

    def operator(self) -> Replica:
        return Replica.loads(self.operator_payload, DOMAIN)

    def honest(self, signed: Sequence[SignedTransaction], system: Sequence[Transaction] = (),
               timestamp_ms: int = T0_MS + 2_000) -> tuple[Submission, list[Entry]]:
        op = self.operator()
        execution = BatchExecution(op.state, op.admission, DOMAIN, 2, timestamp_ms)
        entries: list[Entry] = [*(system_entry(tx) for tx in system),
                                *(signed_entry(s) for s in signed)]
        for entry in entries:
            execution.execute(entry)
        root = op.commitment.commit(op.state)
        data = encode_batch_data(BatchData(2, timestamp_ms, self.replica.root, tuple(entries)))
        return _submission(data, 2, self.replica.root, root, op.state.next_deposit_id - 1,
                           op.state.next_forced_id - 1), entries

    def forged(self, entries: Sequence[Entry], timestamp_ms: int = T0_MS + 2_000) -> Submission:
        """Batch 2 executed without admission; its own root and counters."""
        op = self.operator()
        begin_batch(op.state, 2, timestamp_ms)
        for entry in entries:
            if isinstance(entry, SystemEntry):
                apply_transaction(op.state, entry.tx)
            else:
                action = entry.signed.action
                assert not isinstance(action, RegisterAgent | RevokeAgent)
                apply_transaction(op.state, action)
        root = op.commitment.commit(op.state)
        data = encode_batch_data(BatchData(2, timestamp_ms, self.replica.root, tuple(entries)))
        return _submission(data, 2, self.replica.root, root, op.state.next_deposit_id - 1,
                           op.state.next_forced_id - 1)


def _order(key: bytes, owner: bytes, nonce: int, side: Side = Side.BUY,
           price: int = 999_000) -> SignedTransaction:
    return sign_action(key, DOMAIN, PlaceOrder(owner, 0, 1, side, price, 10), nonce)


@pytest.fixture
def base() -> Base:
    state = genesis_state(VENUE)
    commitment = genesis_commitment(state)
    operator = Replica(state, commitment, AdmissionState(), DOMAIN)
    verifier = Replica.loads(operator.dumps(), DOMAIN)
    book = L1Book()
    deposits = [Deposit(1, ALICE, 0, 100_000 * USDC), Deposit(2, BOB, 0, 100_000 * USDC)]
    for deposit in deposits:
        book.add_deposit(L1Deposit(deposit.deposit_id, deposit.owner, 0,
                                   deposit.amount_quantums))
    entries = [*(system_entry(d) for d in deposits), system_entry(_oracle(T0_MS + 1_000))]
    previous = operator.root
    execution = BatchExecution(operator.state, operator.admission, DOMAIN, 1, T0_MS + 1_000)
    for entry in entries:
        execution.execute(entry)
    root = operator.commitment.commit(operator.state)
    data = encode_batch_data(BatchData(1, T0_MS + 1_000, previous, tuple(entries)))
    outcome = check_batch(verifier, _submission(data, 1, previous, root, 2, 0), book, RULES)
    assert outcome.divergence is None and verifier.root == root
    return Base(verifier, operator.dumps(), book)


def _high_s(signed: SignedTransaction) -> SignedTransaction:
    r, s, v = signed.signature[:32], int.from_bytes(signed.signature[32:64], "big"), \
        signed.signature[64]
    flipped = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # 27 <-> 28
    return SignedTransaction(signed.action, signed.nonce_ms, flipped)


Case = Callable[[Base], tuple[Submission, DivergenceReason, int | None, bool]]


def _unavailable(base: Base) -> tuple[Submission, DivergenceReason, int | None, bool]:
    good, _ = base.honest([_order(ALICE_KEY, ALICE, T0_MS)])
    return (replace(good, call=None, call_error="not sent to the contract"),
            DivergenceReason.DATA_UNAVAILABLE, None, False)


def _event_disagrees(base: Base) -> tuple[Submission, DivergenceReason, int | None, bool]:
    good, _ = base.honest([_order(ALICE_KEY, ALICE, T0_MS)])
    return replace(good, new_root=bytes(32)), DivergenceReason.DATA_UNAVAILABLE, None, False


def _hash(base: Base) -> tuple[Submission, DivergenceReason, int | None, bool]:
    good, _ = base.honest([_order(ALICE_KEY, ALICE, T0_MS)])
    assert good.call is not None
    lie = _submission(good.call.data, 2, good.prev_root, good.new_root, 2, 0,
                      data_hash=keccak256(b"other bytes"))
    return lie, DivergenceReason.DATA_HASH_MISMATCH, None, False


def _garbage(base: Base) -> tuple[Submission, DivergenceReason, int | None, bool]:
    return (_submission(b"RBD\x01 not a batch", 2, base.replica.root, bytes(32), 2, 0),
            DivergenceReason.DATA_UNDECODABLE, None, False)


def _other_index(base: Base) -> tuple[Submission, DivergenceReason, int | None, bool]:
    data = encode_batch_data(BatchData(3, T0_MS + 2_000, base.replica.root, ()))
    return (_submission(data, 2, base.replica.root, base.replica.root, 2, 0),
            DivergenceReason.HEADER_MISMATCH, None, False)


def _other_previous(base: Base) -> tuple[Submission, DivergenceReason, int | None, bool]:
    data = encode_batch_data(BatchData(2, T0_MS + 2_000, bytes(32), ()))
    return (_submission(data, 2, bytes(32), base.replica.root, 2, 0),
            DivergenceReason.HEADER_MISMATCH, None, False)


def _time_back(base: Base) -> tuple[Submission, DivergenceReason, int | None, bool]:
    good, _ = base.honest([], timestamp_ms=T0_MS + 1_000)
    data = encode_batch_data(BatchData(2, T0_MS, base.replica.root, ()))
    return (_submission(data, 2, base.replica.root, good.new_root, 2, 0),
            DivergenceReason.TIMESTAMP_INVALID, None, False)


def _time_ahead(base: Base) -> tuple[Submission, DivergenceReason, int | None, bool]:
    good, _ = base.honest([])
    assert good.call is not None
    # stamped 10 minutes after the L1 block that carried it (tolerance: 5 minutes)
    late = _submission(good.call.data, 2, good.prev_root, good.new_root, 2, 0,
                       block_s=(T0_MS + 2_000) // 1_000 - 600)
    return late, DivergenceReason.TIMESTAMP_INVALID, None, False


def _unknown_deposit(base: Base) -> tuple[Submission, DivergenceReason, int | None, bool]:
    fake = system_entry(Deposit(3, BOB, 0, 1_000_000 * USDC))
    return (base.forged([signed_entry(_order(ALICE_KEY, ALICE, T0_MS)), fake]),
            DivergenceReason.L1_DEPOSIT_MISMATCH, 1, False)


def _inflated_deposit(base: Base) -> tuple[Submission, DivergenceReason, int | None, bool]:
    base.book.add_deposit(L1Deposit(3, BOB, 0, 5 * USDC))
    inflated = system_entry(Deposit(3, BOB, 0, 5_000 * USDC))
    return base.forged([inflated]), DivergenceReason.L1_DEPOSIT_MISMATCH, 0, False


def _unknown_forced(base: Base) -> tuple[Submission, DivergenceReason, int | None, bool]:
    fake = system_entry(ForcedWithdrawal(1, ALICE, 0, 10 * USDC))
    return base.forged([fake]), DivergenceReason.L1_FORCED_MISMATCH, 0, False


def _high_s_signature(base: Base) -> tuple[Submission, DivergenceReason, int | None, bool]:
    entries = [signed_entry(_order(BOB_KEY, BOB, T0_MS)),
               signed_entry(_high_s(_order(ALICE_KEY, ALICE, T0_MS)))]
    return base.forged(entries), DivergenceReason.SIGNATURE_INVALID, 1, True


def _wrong_key(base: Base) -> tuple[Submission, DivergenceReason, int | None, bool]:
    entries = [signed_entry(_order(BOB_KEY, ALICE, T0_MS))]  # Bob signs Alice's order
    return base.forged(entries), DivergenceReason.UNAUTHORISED_SIGNER, 0, True


def _replayed_nonce(base: Base) -> tuple[Submission, DivergenceReason, int | None, bool]:
    order = _order(ALICE_KEY, ALICE, T0_MS)
    entries = [signed_entry(order), signed_entry(_order(BOB_KEY, BOB, T0_MS)),
               signed_entry(order)]
    return base.forged(entries), DivergenceReason.NONCE_INVALID, 2, True


def _deposit_count(base: Base) -> tuple[Submission, DivergenceReason, int | None, bool]:
    good, _ = base.honest([_order(ALICE_KEY, ALICE, T0_MS)])
    assert good.call is not None
    lie = _submission(good.call.data, 2, good.prev_root, good.new_root, 1, 0)
    return lie, DivergenceReason.DEPOSIT_COUNT_MISMATCH, None, True


def _forced_count(base: Base) -> tuple[Submission, DivergenceReason, int | None, bool]:
    good, _ = base.honest([_order(ALICE_KEY, ALICE, T0_MS)])
    assert good.call is not None
    lie = _submission(good.call.data, 2, good.prev_root, good.new_root, 2, 1)
    return lie, DivergenceReason.FORCED_COUNT_MISMATCH, None, True


def _forced_omitted(base: Base) -> tuple[Submission, DivergenceReason, int | None, bool]:
    base.book.add_forced(L1ForcedRequest(1, ALICE, 0, 10 * USDC, L1_TIME_S - DEADLINE_S - 1))
    good, _ = base.honest([_order(ALICE_KEY, ALICE, T0_MS)])
    return good, DivergenceReason.FORCED_WITHDRAWAL_OMITTED, None, True


def _root(base: Base) -> tuple[Submission, DivergenceReason, int | None, bool]:
    good, _ = base.honest([_order(ALICE_KEY, ALICE, T0_MS)])
    assert good.call is not None
    lie = _submission(good.call.data, 2, good.prev_root, keccak256(b"a root"), 2, 0)
    return lie, DivergenceReason.ROOT_MISMATCH, None, True


CASES: dict[str, Case] = {
    "data unavailable": _unavailable, "calldata disagrees with its event": _event_disagrees,
    "data hash": _hash, "undecodable data": _garbage, "header index": _other_index,
    "header previous root": _other_previous, "time goes back": _time_back,
    "time after its L1 block": _time_ahead, "unknown deposit": _unknown_deposit,
    "inflated deposit": _inflated_deposit, "unknown forced withdrawal": _unknown_forced,
    "high-s signature": _high_s_signature, "signed with another key": _wrong_key,
    "replayed nonce": _replayed_nonce, "deposit count": _deposit_count,
    "forced count": _forced_count, "forced withdrawal omitted": _forced_omitted,
    "root": _root,
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_each_check_reports_its_reason(base: Base, case: str) -> None:
    submission, reason, entry, dirty = CASES[case](base)
    before = base.replica.root
    outcome = check_batch(base.replica, submission, base.book, RULES)
    divergence = outcome.divergence
    assert divergence is not None
    assert (divergence.batch_index, divergence.entry, divergence.reason) == (2, entry, reason), \
        divergence
    assert outcome.dirty == dirty
    if not dirty:
        assert base.replica.root == before and not base.replica.dirty
    assert divergence.as_dict()["reason"] == reason.value and str(divergence).startswith(
        "batch 2")


def test_an_honest_batch_passes_and_the_deadline_is_strict(base: Base) -> None:
    # a forced request exactly at its deadline is not overdue yet (the contract's rule)
    base.book.add_forced(L1ForcedRequest(1, ALICE, 0, 10 * USDC, L1_TIME_S - DEADLINE_S))
    good, _ = base.honest([_order(ALICE_KEY, ALICE, T0_MS), _order(BOB_KEY, BOB, T0_MS,
                                                                   Side.SELL, 999_000)])
    outcome = check_batch(base.replica, good, base.book, RULES)
    assert outcome.divergence is None and not outcome.dirty
    assert base.replica.root == good.new_root and outcome.transactions == 2


def test_a_dirty_replica_refuses_work_until_restored(base: Base) -> None:
    payload = base.replica.dumps()
    submission, _, _, _ = _wrong_key(base)
    assert check_batch(base.replica, submission, base.book, RULES).dirty
    with pytest.raises(RuntimeError):
        base.replica.dumps()
    restored = Replica.loads(payload, DOMAIN)
    good, _ = base.honest([_order(ALICE_KEY, ALICE, T0_MS)])
    assert check_batch(restored, good, base.book, RULES).divergence is None


def test_a_replay_that_raises_is_reported(base: Base, monkeypatch: pytest.MonkeyPatch) -> None:
    good, _ = base.honest([_order(ALICE_KEY, ALICE, T0_MS)])

    def explode(*args: object, **kwargs: object) -> None:
        raise AssertionError("an STF invariant")

    monkeypatch.setattr("rollbook.verifier.replica.replay_batch", explode)
    outcome = check_batch(base.replica, good, base.book, RULES)
    assert outcome.divergence is not None and outcome.dirty
    assert outcome.divergence.reason is DivergenceReason.REPLAY_FAILED


def test_submit_batch_calldata_is_decoded_strictly() -> None:
    call = SubmitBatchCall(7, bytes(range(32)), bytes(32), keccak256(b"x"), 3, 1, b"batch")
    data = encode_submit_batch(call)
    assert data[:4] == SUBMIT_BATCH_SELECTOR
    assert decode_submit_batch(data) == call
    with pytest.raises(CalldataError, match="selector"):
        decode_submit_batch(b"\x00\x00\x00\x00" + data[4:])
    with pytest.raises(CalldataError):
        decode_submit_batch(data + b"\x00" * 32)  # a second spelling of the same call
    with pytest.raises(CalldataError):
        decode_submit_batch(data[:-40])


def test_the_selector_is_the_contracts() -> None:
    from rollbook.settlement import compile_contract

    abi = compile_contract("Settlement").abi
    (function,) = [f for f in abi if f.get("name") == "submit_batch"]
    types = ",".join(p["type"] for p in function["inputs"])
    assert keccak256(f"submit_batch({types})".encode())[:4] == SUBMIT_BATCH_SELECTOR


def test_the_pipeline_returns_what_recover_signers_returns() -> None:
    signed = [_order(ALICE_KEY if n % 2 else BOB_KEY, ALICE if n % 2 else BOB, T0_MS + n)
              for n in range(RECOVERY_CHUNK_MAX * 2 + 17)]
    signed[5] = _high_s(signed[5])  # a refusal travels as a result too
    batch = BatchData(2, T0_MS, bytes(32), tuple(signed_entry(s) for s in signed))
    expected = recover_signers(DOMAIN, signed)
    pipeline = RecoveryPipeline(DOMAIN, 2)
    try:
        pipeline.prefetch(batch)
        same_objects = [entry.signed for entry in batch.entries]  # type: ignore[union-attr]
        assert recover_signers(DOMAIN, same_objects, pipeline) == expected
        assert (pipeline.hits, pipeline.misses) == (3, 0)
        # other objects (equal values) are not the prefetched work: computed afresh
        assert recover_signers(DOMAIN, list(signed), pipeline) == expected
        assert pipeline.misses == 3
        with ThreadPoolExecutor(2) as pool:
            assert recover_signers(DOMAIN, signed, pool) == expected
    finally:
        pipeline.shutdown()


def test_the_l1_book() -> None:
    book = L1Book()
    deposit = L1Deposit(1, ALICE, 0, 5)
    book.add_deposit(deposit)
    book.add_deposit(deposit)  # a rescan
    with pytest.raises(ValueError):
        book.add_deposit(L1Deposit(1, ALICE, 0, 6))
    book.add_forced(L1ForcedRequest(1, BOB, 0, 7, 1_000))
    book.add_forced(L1ForcedRequest(2, BOB, 0, 8, 2_000))
    assert book.overdue(0, 1_000 + DEADLINE_S, DEADLINE_S) is None
    assert book.overdue(0, 1_001 + DEADLINE_S, DEADLINE_S) == book.forced[1]
    assert book.overdue(1, 1_001 + DEADLINE_S, DEADLINE_S) is None
    assert book.overdue(2, 10**9, DEADLINE_S) is None
    restored = L1Book.restore(book.snapshot())
    assert (restored.deposits, restored.forced) == (book.deposits, book.forced)
    book.prune(2, 2)
    assert not book.deposits and list(book.forced) == [2]
