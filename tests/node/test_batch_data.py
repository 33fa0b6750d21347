"""Published batch bytes: round trips, strict decoding, golden vectors, and ``replay_batch``.

Golden vectors live in ``tests/golden/batch_data_vectors.json`` (hex of fixed batches and their
keccak). A deliberate layout change bumps ``BATCH_DATA_VERSION``; regenerate with
``ROLLBOOK_REGENERATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import json
import os
import pathlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from node_helpers import key, owner, sign

from conftest import ALICE, BOB, INDEX_100K_QUANTUMS, ORACLE_KEY, USDC, Venue, signed_oracle
from rollbook.commitment import apply_and_commit
from rollbook.execution import (
    Batch,
    CancelOrder,
    Deposit,
    ErrorCode,
    ForcedWithdrawal,
    FundingTick,
    PlaceOrder,
    ProcessLiquidations,
    Side,
    Withdraw,
)
from rollbook.execution.crypto import SECP256K1_N, keccak256
from rollbook.execution.encoding import encode_transaction
from rollbook.sequencer import (
    AdmissionState,
    Eip712Domain,
    RegisterAgent,
    RevokeAgent,
    SignedTransaction,
)
from rollbook.sequencer.batch_data import (
    BATCH_DATA_BYTES_MAX,
    BATCH_DATA_MAGIC,
    BATCH_DATA_VERSION,
    BATCH_ENTRIES_MAX,
    ENTRY_SIGNED,
    ENTRY_SYSTEM,
    BatchData,
    BatchDataError,
    BatchReplayError,
    SignedEntry,
    decode_batch_data,
    decode_entry,
    encode_batch_data,
    encode_entry,
    encode_header,
    replay_batch,
    signed_entry,
    system_entry,
)
from rollbook.sequencer.errors import AdmissionCode

GOLDEN = pathlib.Path(__file__).resolve().parent.parent / "golden" / "batch_data_vectors.json"
REGENERATE = os.environ.get("ROLLBOOK_REGENERATE_GOLDEN") == "1"
DOMAIN = Eip712Domain(31337, bytes.fromhex("5e771e0000000000000000000000000000c0ffee"))
T0_MS = 1_700_000_000_000
ROOT = bytes(range(32))


def golden_batches() -> dict[str, BatchData]:
    venue = Venue()
    venue.clock_ms = T0_MS - 1_000
    oracle = signed_oracle(venue.state, T0_MS, INDEX_100K_QUANTUMS)
    alice = owner(1)
    entries = (
        system_entry(Deposit(1, alice, 0, 5 * USDC)),
        system_entry(oracle),
        system_entry(FundingTick()),
        system_entry(ProcessLiquidations()),
        system_entry(ForcedWithdrawal(1, alice, 0, USDC)),
        signed_entry(sign(1, PlaceOrder(alice, 0, 1, Side.BUY, 1_000_000, 10), DOMAIN, T0_MS)),
        signed_entry(sign(1, RegisterAgent(alice, owner(2), T0_MS + 86_400_000, 3), DOMAIN,
                          T0_MS + 1)),
        signed_entry(sign(1, RevokeAgent(alice, owner(2)), DOMAIN, T0_MS + 2)),
        signed_entry(sign(1, Withdraw(alice, 0, 2 * USDC), DOMAIN, T0_MS + 3)),
    )
    return {
        "empty": BatchData(1, T0_MS, ROOT, ()),
        "mixed": BatchData(7, T0_MS, ROOT, entries),
    }


def test_golden_batch_data_vectors() -> None:
    batches = golden_batches()
    vectors = {name: {"data": encode_batch_data(batch).hex(),
                      "keccak256": keccak256(encode_batch_data(batch)).hex()}
               for name, batch in batches.items()}
    if REGENERATE:
        GOLDEN.write_text(json.dumps(vectors, indent=2) + "\n")
    pinned = json.loads(GOLDEN.read_text())
    assert pinned == vectors
    for name, batch in batches.items():
        assert decode_batch_data(bytes.fromhex(pinned[name]["data"])) == batch


def test_layout_spelled_out_by_hand() -> None:
    deposit = Deposit(1, ALICE, 0, 5 * USDC)
    body = encode_transaction(deposit)
    data = (BATCH_DATA_MAGIC + bytes([BATCH_DATA_VERSION]) + (9).to_bytes(8, "big")
            + T0_MS.to_bytes(8, "big") + ROOT + (1).to_bytes(4, "big")
            + bytes([ENTRY_SYSTEM]) + len(body).to_bytes(2, "big") + body)
    assert encode_batch_data(BatchData(9, T0_MS, ROOT, (system_entry(deposit),))) == data


_ADDRESS = st.binary(min_size=20, max_size=20)
_U16 = st.integers(0, 0xFFFF)
_U64 = st.integers(0, (1 << 64) - 1)
any_action = st.one_of(
    st.builds(PlaceOrder, _ADDRESS, _U16, _U16, st.sampled_from(Side), _U64, _U64),
    st.builds(CancelOrder, _ADDRESS, _U16, _U64),
    st.builds(Withdraw, _ADDRESS, _U16, _U64),
    st.builds(RegisterAgent, _ADDRESS, _ADDRESS, _U64, st.none() | _U16),
    st.builds(RevokeAgent, _ADDRESS, _ADDRESS),
)
_SIGNATURE = st.binary(min_size=65, max_size=65)
_signed = st.builds(SignedTransaction, any_action, st.integers(0, (1 << 64) - 1), _SIGNATURE)
_system = st.sampled_from([
    Deposit(3, ALICE, 7, 10), FundingTick(), ProcessLiquidations(),
    ForcedWithdrawal(2, BOB, 1, 99)])
_entries = st.lists(st.one_of(_signed.map(signed_entry), _system.map(system_entry)),
                    max_size=20)


@given(st.integers(0, (1 << 64) - 1), st.integers(0, (1 << 64) - 1),
       st.binary(min_size=32, max_size=32), _entries)
@settings(max_examples=150, deadline=None)
def test_round_trip(index: int, timestamp_ms: int, root: bytes, entries: list[object]) -> None:
    batch = BatchData(index, timestamp_ms, root, tuple(entries))  # type: ignore[arg-type]
    data = encode_batch_data(batch)
    assert decode_batch_data(data) == batch
    assert encode_batch_data(decode_batch_data(data)) == data


def test_every_truncation_and_any_trailing_byte_is_refused() -> None:
    data = encode_batch_data(golden_batches()["mixed"])
    for cut in range(len(data)):
        with pytest.raises(BatchDataError):
            decode_batch_data(data[:cut])
    with pytest.raises(BatchDataError, match="trailing"):
        decode_batch_data(data + b"\x00")


def _with_entry(kind: int, body: bytes) -> bytes:
    return encode_header(1, T0_MS, ROOT, 1) + bytes([kind]) + len(body).to_bytes(2, "big") + body


def test_strict_header_and_entries() -> None:
    good = encode_batch_data(golden_batches()["mixed"])
    with pytest.raises(BatchDataError, match="magic"):
        decode_batch_data(b"XYZ" + good[3:])
    with pytest.raises(BatchDataError, match="version"):
        decode_batch_data(good[:3] + bytes([BATCH_DATA_VERSION + 1]) + good[4:])
    with pytest.raises(BatchDataError, match="unknown entry kind"):
        decode_batch_data(_with_entry(3, encode_transaction(FundingTick())))
    # a withdrawal as a system entry would execute without anybody's signature
    with pytest.raises(BatchDataError, match="needs a signature"):
        decode_batch_data(_with_entry(ENTRY_SYSTEM, encode_transaction(Withdraw(ALICE, 0, 1))))
    # a deposit is not a signed user action
    fake_signed = bytes([1, 1]) + (5).to_bytes(8, "big") + bytes(65) + encode_transaction(
        Deposit(1, ALICE, 0, 1))
    with pytest.raises(BatchDataError, match="signed entry"):
        decode_batch_data(_with_entry(ENTRY_SIGNED, fake_signed))
    # a bool byte other than 0/1 is a second spelling
    place = bytearray(encode_transaction(PlaceOrder(ALICE, 0, 1, Side.BUY, 5, 5)))
    with pytest.raises(BatchDataError):
        decode_entry(bytes([ENTRY_SYSTEM]) + len(place).to_bytes(2, "big") + bytes(place))
    # the count says more entries than there are
    header = encode_header(1, T0_MS, ROOT, 2) + encode_entry(system_entry(FundingTick()))
    with pytest.raises(BatchDataError, match="truncated"):
        decode_batch_data(header)
    with pytest.raises(BatchDataError):
        encode_header(1, T0_MS, ROOT, BATCH_ENTRIES_MAX + 1)
    with pytest.raises(BatchDataError, match="bytes"):
        decode_batch_data(b"\x00" * (BATCH_DATA_BYTES_MAX + 1))
    with pytest.raises(ValueError, match="not a system transaction"):
        system_entry(Withdraw(ALICE, 0, 1))


# --- replay -------------------------------------------------------------------------------------

def test_system_batches_replay_exactly_as_apply_batch() -> None:
    """For batches without signed entries, replay_batch is the STF's apply_batch."""
    live, replayed = Venue(), Venue()
    admission = AdmissionState()
    txs = [live.oracle(INDEX_100K_QUANTUMS), Deposit(1, ALICE, 0, 100 * USDC),
           Deposit(3, BOB, 0, USDC), Deposit(2, BOB, 0, USDC), FundingTick()]
    batch = Batch(1, live.clock_ms + 1_000, live.commitment.root, tuple(txs))
    expected, expected_root = apply_and_commit(live.state, live.commitment, batch)
    data = BatchData(1, batch.timestamp_ms, batch.previous_root,
                     tuple(system_entry(tx) for tx in txs))
    receipts, root = replay_batch(replayed.state, replayed.commitment, admission, DOMAIN,
                                  encode_batch_data(data))
    assert receipts == expected and root == expected_root
    assert ErrorCode.DEPOSIT_OUT_OF_ORDER in [r.code for r in receipts]


def _funded_venue() -> tuple[Venue, AdmissionState]:
    venue = Venue()
    venue.clock_ms = T0_MS - 10_000
    venue.run_ok(venue.oracle(INDEX_100K_QUANTUMS), Deposit(1, owner(1), 0, 10**6 * USDC))
    return venue, AdmissionState()


def _replay(venue: Venue, admission: AdmissionState, *entries: object) -> None:
    data = BatchData(venue.state.batch_index + 1, T0_MS, venue.commitment.root,
                     tuple(entries))  # type: ignore[arg-type]
    replay_batch(venue.state, venue.commitment, admission, DOMAIN, encode_batch_data(data))


def test_replay_checks_signatures_nonces_and_agents() -> None:
    venue, admission = _funded_venue()
    order = sign(1, PlaceOrder(owner(1), 0, 1, Side.BUY, 999_000, 1), DOMAIN, T0_MS)
    high_s = SignedTransaction(order.action, order.nonce_ms, order.signature[:32] + (
        SECP256K1_N - int.from_bytes(order.signature[32:64], "big")).to_bytes(32, "big")
        + bytes([55 - order.signature[64]]))
    with pytest.raises(BatchReplayError, match="SIGNATURE_HIGH_S") as refused:
        _replay(venue, admission, signed_entry(order), signed_entry(high_s))
    assert refused.value.entry == 1

    venue, admission = _funded_venue()
    with pytest.raises(BatchReplayError, match="NONCE_USED"):
        _replay(venue, admission, signed_entry(order), signed_entry(order))

    venue, admission = _funded_venue()
    by_agent = sign(2, PlaceOrder(owner(1), 0, 1, Side.BUY, 999_000, 1), DOMAIN, T0_MS)
    with pytest.raises(BatchReplayError, match="SIGNER_NOT_AUTHORISED"):
        _replay(venue, admission, signed_entry(by_agent))

    venue, admission = _funded_venue()
    register = sign(1, RegisterAgent(owner(1), owner(2), T0_MS + 60_000), DOMAIN, T0_MS + 1)
    _replay(venue, admission, signed_entry(register), signed_entry(by_agent))
    assert admission.agents_of(owner(1))
    assert len(venue.state.orders) == 1


def test_replay_checks_the_header() -> None:
    venue, admission = _funded_venue()
    with pytest.raises(BatchReplayError, match="extends"):
        replay_batch(venue.state, venue.commitment, admission, DOMAIN,
                     encode_batch_data(BatchData(venue.state.batch_index + 1, T0_MS, ROOT, ())))
    with pytest.raises(BatchReplayError, match="does not follow"):
        replay_batch(venue.state, venue.commitment, admission, DOMAIN, encode_batch_data(
            BatchData(venue.state.batch_index + 2, T0_MS, venue.commitment.root, ())))
    with pytest.raises(BatchReplayError, match="goes back"):
        replay_batch(venue.state, venue.commitment, admission, DOMAIN, encode_batch_data(
            BatchData(venue.state.batch_index + 1, 5, venue.commitment.root, ())))


def test_a_signature_for_another_domain_recovers_someone_else() -> None:
    venue, admission = _funded_venue()
    other_chain = Eip712Domain(1, DOMAIN.verifying_contract)
    order = sign(1, PlaceOrder(owner(1), 0, 1, Side.BUY, 999_000, 1), other_chain, T0_MS)
    with pytest.raises(BatchReplayError) as refused:
        _replay(venue, admission, signed_entry(order))
    assert AdmissionCode.SIGNER_NOT_AUTHORISED.name in str(refused.value)


def test_entry_encoding_is_the_signed_encoding() -> None:
    order = sign(1, PlaceOrder(owner(1), 0, 1, Side.BUY, 999_000, 1), DOMAIN, T0_MS)
    entry = signed_entry(order)
    assert isinstance(entry, SignedEntry)
    data = encode_entry(entry)
    assert struct.unpack(">BH", data[:3]) == (ENTRY_SIGNED, len(entry.body))
    assert decode_entry(data) == (entry, len(data))
    assert key(1) != ORACLE_KEY
