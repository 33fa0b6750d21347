"""Signer recovery refuses malformed, high-s and bad-v signatures with their codes; the signed
transaction's canonical encoding round-trips and its decoder is strict."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seq_helpers import DOMAIN, OWNER, OWNER_KEY, T0_MS, any_action, place, u64

from rollbook.execution.crypto import SECP256K1_N
from rollbook.execution.encoding import encode_transaction
from rollbook.execution.txs import CancelOrder, Deposit, FundingTick, PlaceOrder, Side
from rollbook.sequencer import (
    AdmissionCode,
    AdmissionError,
    RegisterAgent,
    RevokeAgent,
    SignedTransaction,
    VerifiedTransaction,
    decode_signed_transaction,
    encode_signed_transaction,
    recover_signer,
    recover_signers,
    sign_action,
)
from rollbook.sequencer.signatures import SIGNED_TRANSACTION_BYTES_MAX, check_signature_shape


def code_of(signed: SignedTransaction) -> AdmissionCode:
    with pytest.raises(AdmissionError) as refused:
        recover_signer(DOMAIN, signed)
    return refused.value.code


def with_signature(signed: SignedTransaction, signature: bytes) -> SignedTransaction:
    return SignedTransaction(signed.action, signed.nonce_ms, signature)


GOOD = sign_action(OWNER_KEY, DOMAIN, place(), T0_MS)


def test_a_good_signature_recovers_its_signer() -> None:
    assert recover_signer(DOMAIN, GOOD) == VerifiedTransaction(GOOD, OWNER)


def test_high_s_is_refused() -> None:
    r, s, v = GOOD.signature[:32], int.from_bytes(GOOD.signature[32:64], "big"), GOOD.signature[64]
    # (r, n - s) with the other recovery id is the same signature, malleated
    high = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])
    assert code_of(with_signature(GOOD, high)) == AdmissionCode.SIGNATURE_HIGH_S


def _shape_reference(signature: bytes) -> bytes | AdmissionCode:
    """check_signature_shape as plain integer arithmetic: the compact form, or the refusal."""
    r = int.from_bytes(signature[0:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v not in (27, 28):
        return AdmissionCode.SIGNATURE_BAD_V
    if not 0 < r < SECP256K1_N or not 0 < s < SECP256K1_N:
        return AdmissionCode.SIGNATURE_INVALID
    if s > SECP256K1_N // 2:
        return AdmissionCode.SIGNATURE_HIGH_S
    return signature[:64] + bytes([v - 27])


def _shape(signature: bytes) -> bytes | AdmissionCode:
    try:
        return check_signature_shape(signature)
    except AdmissionError as error:
        return error.code


# the words around every boundary the leading-byte fast path and the exact checks draw
_EDGES = sorted({0, 1, 2, 1 << 248, (1 << 248) - 1, 0x7E << 248, (0x7F << 248) - 1,
                 0x7F << 248, SECP256K1_N // 2 - 1, SECP256K1_N // 2, SECP256K1_N // 2 + 1,
                 0xFE << 248, (0xFF << 248) - 1, 0xFF << 248, SECP256K1_N - 1, SECP256K1_N,
                 SECP256K1_N + 1, (1 << 256) - 1})


@pytest.mark.parametrize("r", _EDGES)
def test_the_shape_check_matches_the_integer_reference_at_every_edge(r: int) -> None:
    for s in _EDGES:
        for v in (27, 28, 29):
            signature = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])
            assert _shape(signature) == _shape_reference(signature), (hex(r), hex(s), v)


_WORD = st.one_of(st.integers(0, (1 << 256) - 1), st.sampled_from(_EDGES),
                  st.builds(lambda top, rest: top << 248 | rest, st.integers(0, 255),
                            st.integers(0, (1 << 248) - 1)))


@given(_WORD, _WORD, st.sampled_from([27, 28, 0, 1, 29]))
@settings(max_examples=500)
def test_the_shape_check_matches_the_integer_reference(r: int, s: int, v: int) -> None:
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])
    assert _shape(signature) == _shape_reference(signature)


@pytest.mark.parametrize("v", [0, 1, 26, 29, 35, 36, 255])
def test_v_other_than_27_or_28_is_refused(v: int) -> None:
    bad = GOOD.signature[:64] + bytes([v])
    assert code_of(with_signature(GOOD, bad)) == AdmissionCode.SIGNATURE_BAD_V


@pytest.mark.parametrize("length", [0, 1, 64, 66, 130])
def test_wrong_length_is_refused(length: int) -> None:
    bad = (GOOD.signature * 3)[:length]
    assert code_of(with_signature(GOOD, bad)) == AdmissionCode.SIGNATURE_MALFORMED


@pytest.mark.parametrize("r, s", [(0, 1), (1, 0), (SECP256K1_N, 1), (1, SECP256K1_N),
                                  ((1 << 256) - 1, 1)])
def test_r_or_s_out_of_range_is_refused(r: int, s: int) -> None:
    bad = r.to_bytes(32, "big") + s.to_bytes(32, "big") + b"\x1b"
    assert code_of(with_signature(GOOD, bad)) == AdmissionCode.SIGNATURE_INVALID


def test_r_that_is_not_a_curve_point_is_refused() -> None:
    # x = 5 is not the x-coordinate of a secp256k1 point (5^3 + 7 = 132 is a non-residue)
    bad = (5).to_bytes(32, "big") + (1).to_bytes(32, "big") + b"\x1b"
    assert code_of(with_signature(GOOD, bad)) == AdmissionCode.SIGNATURE_INVALID


def test_altered_fields_recover_someone_else() -> None:
    moved = SignedTransaction(PlaceOrder(OWNER, 0, 1, Side.BUY, 1_000_001, 5), GOOD.nonce_ms,
                              GOOD.signature)
    assert recover_signer(DOMAIN, moved).signer != OWNER
    later = SignedTransaction(GOOD.action, GOOD.nonce_ms + 1, GOOD.signature)
    assert recover_signer(DOMAIN, later).signer != OWNER


def test_thread_pool_recovery_equals_sequential() -> None:
    batch = [sign_action(OWNER_KEY, DOMAIN, CancelOrder(OWNER, 0, i), T0_MS + i)
             for i in range(700)]
    batch[5] = with_signature(batch[5], batch[5].signature[:64] + b"\x00")
    batch[600] = with_signature(batch[600], b"")
    sequential = recover_signers(DOMAIN, batch)
    with ThreadPoolExecutor(2) as pool:
        threaded = recover_signers(DOMAIN, batch, pool)
    assert threaded == sequential
    assert isinstance(sequential[5], AdmissionError)
    assert sequential[5].code == AdmissionCode.SIGNATURE_BAD_V
    assert isinstance(sequential[600], AdmissionError)
    assert sum(isinstance(r, VerifiedTransaction) and r.signer == OWNER for r in threaded) == 698


# --- canonical encoding ---------------------------------------------------------------------------

signatures = st.binary(min_size=65, max_size=65)


@pytest.mark.parametrize("nonce_ms", [0, 1, 255, 256, (1 << 32) - 1, 1 << 32, 1_700_000_000_123,
                                      (1 << 56) - 1, 1 << 56, (1 << 62) - 1, 1 << 62, 1 << 63,
                                      (1 << 64) - 1])
def test_the_prefix_reads_every_nonce_byte(nonce_ms: int) -> None:
    """The decoder reads the nonce byte by byte: every byte and the top bits come back (the
    compiled build's small-int fast path ends at 2**62)."""
    signed = SignedTransaction(GOOD.action, nonce_ms, GOOD.signature)
    decoded = decode_signed_transaction(encode_signed_transaction(signed))
    assert decoded == signed
    assert type(decoded.signature) is bytes and type(decoded.nonce_ms) is int


@settings(max_examples=300)
@given(action=any_action, nonce_ms=u64, signature=signatures)
def test_encoding_round_trips_within_its_limit(action: object, nonce_ms: int,
                                               signature: bytes) -> None:
    signed = SignedTransaction(action, nonce_ms, signature)  # type: ignore[arg-type]
    encoded = encode_signed_transaction(signed)
    assert len(encoded) <= SIGNED_TRANSACTION_BYTES_MAX
    assert decode_signed_transaction(encoded) == signed
    assert encode_signed_transaction(decode_signed_transaction(encoded)) == encoded


@settings(max_examples=300)
@given(data=st.binary(max_size=SIGNED_TRANSACTION_BYTES_MAX + 8))
def test_decoder_accepts_only_canonical_bytes(data: bytes) -> None:
    try:
        decoded = decode_signed_transaction(data)
    except AdmissionError as refused:
        assert refused.code == AdmissionCode.MALFORMED_ENCODING
    else:
        assert encode_signed_transaction(decoded) == data


@settings(max_examples=500)
@given(action=any_action, data=st.data())
def test_decoder_on_mutated_encodings(action: object, data: st.DataObject) -> None:
    encoded = encode_signed_transaction(SignedTransaction(action, 1, bytes(65)))  # type: ignore[arg-type]
    offset = data.draw(st.integers(0, len(encoded) - 1))
    mutated = _corrupt(encoded, offset, data.draw(st.integers(0, 255)))
    mutated = mutated[:data.draw(st.integers(0, len(mutated)))]
    try:
        decoded = decode_signed_transaction(mutated)
    except AdmissionError as refused:
        assert refused.code == AdmissionCode.MALFORMED_ENCODING
    else:
        assert encode_signed_transaction(decoded) == mutated


def test_golden_encoding() -> None:
    signed = SignedTransaction(PlaceOrder(OWNER, 1, 2, Side.SELL, 1_000_000, 7,
                                          client_order_id=42), T0_MS, bytes(range(65)))
    assert encode_signed_transaction(signed).hex() == (
        "01010000018bcfe56800000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f400104e05fcc2380"
        "7536bee418f142d19fa0d21bb0cff7000100020200000000000f42400000000000000007010100"
        "000000000000002a01")


def _corrupt(encoded: bytes, offset: int, value: int) -> bytes:
    return encoded[:offset] + bytes([value]) + encoded[offset + 1:]


def test_decoder_refusals() -> None:
    register = encode_signed_transaction(
        SignedTransaction(RegisterAgent(OWNER, b"\x02" * 20, T0_MS, None), 1, bytes(65)))
    revoke = encode_signed_transaction(
        SignedTransaction(RevokeAgent(OWNER, b"\x02" * 20), 1, bytes(65)))
    order = encode_signed_transaction(SignedTransaction(place(), 1, bytes(65)))
    prefix = bytes([1, 1]) + (1).to_bytes(8, "big") + bytes(65)
    refused = [
        b"",
        order[:75],  # no body
        _corrupt(order, 0, 2),  # version
        _corrupt(order, 1, 9),  # kind
        order + b"\x00",  # trailing byte
        order[:-1],  # short body
        _corrupt(register, 75 + 20, 2),  # all_subaccounts byte not 0/1
        _corrupt(register, 75 + 22, 1),  # all subaccounts with a subaccount number
        register[:-1],
        revoke + b"\x00",
        prefix + encode_transaction(Deposit(1, OWNER, 0, 5)),  # not user-signable
        prefix + encode_transaction(FundingTick()),
        order + bytes(SIGNED_TRANSACTION_BYTES_MAX),  # over the limit
    ]
    for data in refused:
        with pytest.raises(AdmissionError) as error:
            decode_signed_transaction(data)
        assert error.value.code == AdmissionCode.MALFORMED_ENCODING, data.hex()


def test_encoder_refuses_what_cannot_be_canonical() -> None:
    with pytest.raises(AdmissionError) as error:
        encode_signed_transaction(SignedTransaction(place(), 1, bytes(64)))
    assert error.value.code == AdmissionCode.SIGNATURE_MALFORMED
    with pytest.raises(AdmissionError) as error:
        encode_signed_transaction(SignedTransaction(place(owner=OWNER[:19]), 1, bytes(65)))
    assert error.value.code == AdmissionCode.FIELD_OUT_OF_RANGE


@pytest.mark.pure_only  # compiled, the encoder refuses the ill-typed action with a TypeError
def test_encoder_refuses_an_unsigned_transaction_type() -> None:
    with pytest.raises(AdmissionError) as error:
        encode_signed_transaction(SignedTransaction(FundingTick(), 1, bytes(65)))  # type: ignore[arg-type]
    assert error.value.code == AdmissionCode.UNSUPPORTED_ACTION


def test_refusals_pickle_with_their_code() -> None:
    import pickle

    error = AdmissionError(AdmissionCode.SIGNATURE_HIGH_S, "detail")
    assert pickle.loads(pickle.dumps(error)) == error


def test_option_actions_encode_as_kind_1_and_round_trip() -> None:
    from rollbook.execution.txs import MassQuote, Quote, SetMmp, SetPortfolioMargin
    from rollbook.sequencer import MASS_QUOTE_QUOTES_MAX

    full = MassQuote(OWNER, 3, 1, (Quote(2, Side.SELL, 10, 1),) * MASS_QUOTE_QUOTES_MAX)
    for action in (SetPortfolioMargin(OWNER, 1, True), SetMmp(OWNER, 1, 2, 3, 4, 5, 6, 7),
                   MassQuote(OWNER, 0, 1, ()), full):
        signed = SignedTransaction(action, T0_MS, bytes(65))
        encoded = encode_signed_transaction(signed)
        assert encoded[1] == 1  # kind 1: the STF encoding
        assert encoded[75:] == encode_transaction(action)
        assert len(encoded) <= SIGNED_TRANSACTION_BYTES_MAX
        assert decode_signed_transaction(encoded) == signed
    # one quote past the STF's bound is not a signed transaction, even when it fits the bytes
    over = MassQuote(OWNER, 0, 1, (Quote(2, Side.SELL, 10, 1),) * (MASS_QUOTE_QUOTES_MAX + 1))
    prefix = bytes([1, 1]) + T0_MS.to_bytes(8, "big") + bytes(65)
    with pytest.raises(AdmissionError) as error:
        decode_signed_transaction(prefix + encode_transaction(over))
    assert error.value.code == AdmissionCode.MALFORMED_ENCODING


def test_the_hot_path_records_declare_their_init() -> None:
    """Built once per decoded (``SignedTransaction``) and per recovered (``VerifiedTransaction``)
    signature on the verifier's replay thread: native constructors when compiled, still frozen
    and comparable."""
    from declared_init import assert_declares_init
    from rollbook.sequencer.signatures import VerifiedTransaction

    assert_declares_init(SignedTransaction)
    assert_declares_init(VerifiedTransaction)
    verified = VerifiedTransaction(SignedTransaction(RevokeAgent(bytes(20), bytes([1]) * 20), 1,
                                                     bytes(65)), bytes(20))
    assert verified == VerifiedTransaction(verified.signed, bytes(20))
    assert hash(verified) == hash(VerifiedTransaction(verified.signed, bytes(20)))
