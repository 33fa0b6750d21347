"""Signed transactions: their canonical bytes, and signer recovery on the hot path.

A ``SignedTransaction`` is a user action (an STF transaction a user may sign, or an agent
registration/revocation), the signer's nonce (a millisecond timestamp) and a 65-byte signature
``r || s || v`` over the EIP-712 digest of (action, nonce) in the venue's domain. The signer is
not carried: it is recovered, which costs no calldata and makes a signature for another domain
recover to an unrelated address (refused later as ``SIGNER_NOT_AUTHORISED``).

Recovery refuses, each with its stable code:
- a signature that is not 65 bytes (``SIGNATURE_MALFORMED``);
- ``v`` other than 27 or 28 (``SIGNATURE_BAD_V``): one spelling per signature;
- ``s > n/2`` (``SIGNATURE_HIGH_S``): low-s only, so a signature cannot be malleated into a
  second valid one;
- ``r`` or ``s`` zero or not below the curve order, or a point that recovers no key
  (``SIGNATURE_INVALID``).

Canonical encoding (what batch data on chain carries for each signed action)::

    version (u8) | kind (u8) | nonce_ms (u64) | signature (65) | body

``kind`` 1: body = ``rollbook.execution.encoding.encode_transaction(tx)`` (a user-signable
transaction); kind 2: ``RegisterAgent`` = owner (20) | all_subaccounts (u8 0/1) | subaccount
(u16, 0 when all) | agent (20) | expiry_ms (u64); kind 3: ``RevokeAgent`` = owner (20) | agent
(20). ``SetPortfolioMargin``, ``SetMmp`` and ``MassQuote`` are kind 1 (their STF encodings;
a mass quote's body grows with its quotes, at most ``MASS_QUOTE_QUOTES_MAX``; more is
``MALFORMED_ENCODING``). Decoding is strict (version, kind, body length, bool bytes, enum
values, trailing bytes) so that bytes and actions map one to one;
``SIGNED_TRANSACTION_BYTES_MAX`` bounds it.

Threads: coincurve (cffi over libsecp256k1) releases the GIL inside the recovery, so
``recover_signers`` may fan a batch out over a thread pool; the keccak and packing around it
still hold the GIL, which bounds the speed-up (measured figures in
``tests/sequencer/bench_sequencer.py``).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from types import FunctionType
from typing import Final

import coincurve

from rollbook.execution.crypto import SECP256K1_N, address_of_public_key, keccak256
from rollbook.execution.encoding import DecodeError, decode_transaction, encode_transaction
from rollbook.execution.pickling import register_frozen_classes
from rollbook.execution.txs import (
    CancelAll,
    CancelOrder,
    CancelOrderByClientId,
    MassQuote,
    ModifyOrder,
    MoveIsolatedMargin,
    PlaceOrder,
    Quote,
    SetMarginMode,
    SetMmp,
    SetPortfolioMargin,
    Side,
    Transaction,
    Transfer,
    Withdraw,
)
from rollbook.sequencer.eip712 import (
    ADDRESS_BYTES,
    MASS_QUOTE_QUOTES_MAX,
    USER_ACTION_TYPES,
    Eip712Domain,
    RegisterAgent,
    RevokeAgent,
    UserAction,
    check_fields,
    signing_digest,
)
from rollbook.sequencer.errors import AdmissionCode, AdmissionError

__all__ = [
    "SIGNATURE_BYTES",
    "SIGNED_ENCODING_VERSION",
    "SIGNED_TRANSACTION_BYTES_MAX",
    "SignedTransaction",
    "VerifiedTransaction",
    "check_signature_shape",
    "decode_signed_transaction",
    "encode_signed_transaction",
    "recover_address",
    "recover_signer",
    "recover_signers",
    "sign_action",
    "signed_transaction_id",
]

# Final here and below: the compiled build reads them as constants on the decoding path
SIGNATURE_BYTES: Final = 65
SIGNED_ENCODING_VERSION: Final = 1
# the largest user action body is a MassQuote of MASS_QUOTE_QUOTES_MAX quotes (29 + 19 per
# quote: 1,245 bytes at 64); the limit leaves room for growth and is checked against every body
# layout below
SIGNED_TRANSACTION_BYTES_MAX: Final = 2048
RECOVERY_CHUNK_MAX = 256  # signatures per thread-pool task: amortises the task overhead

_SECP256K1_HALF_N = SECP256K1_N // 2
_V_BASE = 27  # Ethereum's v = 27 + recovery id; 0/1 and EIP-155 spellings are refused
_RECOVERY_IDS: Final = (b"\x00", b"\x01")  # coincurve's last byte, by v - 27
# what the leading-byte fast path of check_signature_shape relies on
assert SECP256K1_N >> 248 == 0xFF and _SECP256K1_HALF_N >> 248 == 0x7F

_KIND_TRANSACTION: Final = 1
_KIND_REGISTER_AGENT: Final = 2
_KIND_REVOKE_AGENT: Final = 3
_PREFIX: Final = struct.Struct(">BBQ65s")
_PREFIX_BYTES: Final = _PREFIX.size
_NONCE_END: Final = 10  # version (1) | kind (1) | nonce_ms (8): where the signature starts
assert _PREFIX_BYTES == _NONCE_END + SIGNATURE_BYTES
_REGISTER_AGENT: Final = struct.Struct(">20sBH20sQ")
_REVOKE_AGENT: Final = struct.Struct(">20s20s")


def _probe() -> None:
    """Never called: what kind of object it is tells which build runs this module."""


# mypyc compiles a module's functions into built-in functions (as in rollbook.execution.txs)
_COMPILED: Final = not isinstance(_probe, FunctionType)
_set: Final = object.__setattr__  # the interpreted path of the declared __init__s


@dataclass(frozen=True, slots=True)
class SignedTransaction:
    """An action as its signer signed it: the fields, the nonce, and ``r || s || v``.

    One is built per decoded transaction on the node's and the verifier's hot path, so it
    declares its ``__init__`` as ``rollbook.execution.txs`` does for the order path's
    transactions (see its docstring): native slot writes when compiled, ``object.__setattr__``
    when interpreted; frozen, hashable and comparable either way.
    """

    action: UserAction
    nonce_ms: int
    signature: bytes

    def __init__(self, action: UserAction, nonce_ms: int, signature: bytes) -> None:
        if _COMPILED:  # native slot writes (no __setattr__)
            self.action = action  # type: ignore[misc]
            self.nonce_ms = nonce_ms  # type: ignore[misc]
            self.signature = signature  # type: ignore[misc]
        else:
            _set(self, "action", action)
            _set(self, "nonce_ms", nonce_ms)
            _set(self, "signature", signature)


@dataclass(frozen=True, slots=True)
class VerifiedTransaction:
    """A signed transaction with the address its signature recovers to.

    Only ``recover_signer``/``recover_signers`` should build these: admission trusts ``signer``.
    One is built per recovered signature on the verifier's replay thread, so it declares its
    ``__init__`` as ``SignedTransaction`` does (native slot writes when compiled).
    """

    signed: SignedTransaction
    signer: bytes

    def __init__(self, signed: SignedTransaction, signer: bytes) -> None:
        if _COMPILED:  # native slot writes (no __setattr__)
            self.signed = signed  # type: ignore[misc]
            self.signer = signer  # type: ignore[misc]
        else:
            _set(self, "signed", signed)
            _set(self, "signer", signer)


def sign_action(private_key: bytes, domain: Eip712Domain, action: UserAction,
                nonce_ms: int) -> SignedTransaction:
    """Sign as a client would (low-s, v in {27, 28}); for SDKs, tools and tests."""
    digest = signing_digest(domain, action, nonce_ms)
    recoverable = coincurve.PrivateKey(private_key).sign_recoverable(digest, hasher=None)
    signature = recoverable[:64] + bytes([recoverable[64] + _V_BASE])
    return SignedTransaction(action, nonce_ms, signature)


def check_signature_shape(signature: bytes) -> bytes:
    """The 65-byte coincurve form ``r || s || recovery_id``, or a refusal with its code (the
    checks that need no curve work: length, ``v``, range, low-s)."""
    if type(signature) is not bytes or len(signature) != SIGNATURE_BYTES:
        raise AdmissionError(AdmissionCode.SIGNATURE_MALFORMED,
                             f"{len(signature) if isinstance(signature, bytes) else '?'} bytes")
    v = signature[64]
    if v != _V_BASE and v != _V_BASE + 1:
        raise AdmissionError(AdmissionCode.SIGNATURE_BAD_V, f"v = {v}")
    # Fast path, decided by the leading bytes alone (this runs for every signature on the
    # verifier's serial path, where two 32-byte int conversions cost more than the rest): r's
    # first byte within 1..0xFE puts r within [2**248, 0xFF * 2**248), inside 0 < r < n (n
    # starts 0xFF FF ...), and s's within 1..0x7E puts s inside 0 < s <= n/2 (n/2 starts
    # 0x7F FF ...). Anything else (about 1 signature in 40) takes the exact integer checks.
    if not (0 < signature[0] < 0xFF and 0 < signature[32] < 0x7F):
        _check_signature_range(signature)
    return signature[:64] + _RECOVERY_IDS[v - _V_BASE]


def _check_signature_range(signature: bytes) -> None:
    """The exact range and low-s checks of a 65-byte signature (the reference for the leading
    bytes' fast path in ``check_signature_shape``)."""
    r = int.from_bytes(signature[0:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    if not 0 < r < SECP256K1_N or not 0 < s < SECP256K1_N:
        raise AdmissionError(AdmissionCode.SIGNATURE_INVALID, "r or s out of range")
    if s > _SECP256K1_HALF_N:
        raise AdmissionError(AdmissionCode.SIGNATURE_HIGH_S)


def recover_signer(domain: Eip712Domain, signed: SignedTransaction) -> VerifiedTransaction:
    """Recover the signer's address; raises ``AdmissionError`` with the reason's code."""
    compact = check_signature_shape(signed.signature)
    digest = signing_digest(domain, signed.action, signed.nonce_ms)
    return VerifiedTransaction(signed, recover_address(compact, digest))


def recover_address(compact: bytes, digest: bytes) -> bytes:
    """The address whose key signed ``digest`` with ``compact`` (``check_signature_shape``'s
    form); the curve work of a recovery, which also runs in ``recovery_processes``' workers.
    Raises ``AdmissionError`` (``SIGNATURE_INVALID``) when the signature recovers no key."""
    try:
        public_key = coincurve.PublicKey.from_signature_and_message(compact, digest, hasher=None)
    except ValueError as error:  # r is not the x of a curve point, or the key is infinity
        raise AdmissionError(AdmissionCode.SIGNATURE_INVALID, str(error)) from error
    signer = address_of_public_key(public_key.format(compressed=False))
    assert len(signer) == ADDRESS_BYTES
    return signer


def _recover_chunk(domain: Eip712Domain, chunk: Sequence[SignedTransaction],
                   ) -> list[VerifiedTransaction | AdmissionError]:
    results: list[VerifiedTransaction | AdmissionError] = []
    for signed in chunk:
        try:
            results.append(recover_signer(domain, signed))
        except AdmissionError as error:
            results.append(error)
    return results


def recover_signers(domain: Eip712Domain, signed: Sequence[SignedTransaction],
                    executor: Executor | None = None,
                    ) -> list[VerifiedTransaction | AdmissionError]:
    """Recover many signers, in order; each result is the verified transaction or its refusal.

    With an ``executor`` (a ``ThreadPoolExecutor``) the work is split into chunks of at most
    ``RECOVERY_CHUNK_MAX`` that run concurrently. Recovery is a pure function of its input, so
    the result is the same however it is scheduled.
    """
    if executor is None or len(signed) <= RECOVERY_CHUNK_MAX:
        return _recover_chunk(domain, signed)
    chunks = [signed[i:i + RECOVERY_CHUNK_MAX] for i in range(0, len(signed), RECOVERY_CHUNK_MAX)]
    results: list[VerifiedTransaction | AdmissionError] = []
    for part in executor.map(_recover_chunk, [domain] * len(chunks), chunks):
        results.extend(part)
    assert len(results) == len(signed)
    return results


# --- canonical encoding -------------------------------------------------------------------------

# the STF transactions a user signs (kind 1); everything else in txs.py is never user-signed
_USER_STF_TYPES = (PlaceOrder, CancelOrder, CancelOrderByClientId, CancelAll, ModifyOrder,
                   Withdraw, Transfer, SetMarginMode, MoveIsolatedMargin, SetPortfolioMargin,
                   SetMmp, MassQuote)
assert set(_USER_STF_TYPES) | {RegisterAgent, RevokeAgent} == set(USER_ACTION_TYPES)
# decode_transaction builds exactly these classes (never subclasses): a set lookup decides
_USER_STF_TYPE_SET: Final = frozenset(_USER_STF_TYPES)
_ZERO = bytes(ADDRESS_BYTES)
# every user layout is fixed-width but MassQuote's, which is bounded by its quote count: measure
# the widest against the limit, so that a layout change in rollbook.execution.encoding cannot
# silently outgrow it
_BODY_BYTES_MAX = max(
    len(encode_transaction(PlaceOrder(_ZERO, 0, 0, Side.BUY, 0, 0))),
    len(encode_transaction(Transfer(_ZERO, 0, _ZERO, 0, 0))),
    len(encode_transaction(ModifyOrder(_ZERO, 0, 0, 0, 0))),
    len(encode_transaction(SetMmp(_ZERO, 0, 0, 0, 0, 0, 0, 0))),
    len(encode_transaction(MassQuote(_ZERO, 0, 0, (Quote(0, Side.BUY, 0, 0),)
                                     * MASS_QUOTE_QUOTES_MAX))),
    _REGISTER_AGENT.size, _REVOKE_AGENT.size)
assert _PREFIX.size + _BODY_BYTES_MAX <= SIGNED_TRANSACTION_BYTES_MAX


def encode_signed_transaction(signed: SignedTransaction) -> bytes:
    """Canonical bytes; raises ``AdmissionError`` for a value that has no canonical encoding."""
    if type(signed.signature) is not bytes or len(signed.signature) != SIGNATURE_BYTES:
        raise AdmissionError(AdmissionCode.SIGNATURE_MALFORMED)
    action = signed.action
    check_fields(action, signed.nonce_ms)  # "20s" would pad a short address, for one
    try:
        if isinstance(action, RegisterAgent):
            every = action.subaccount is None
            kind = _KIND_REGISTER_AGENT
            body = _REGISTER_AGENT.pack(action.owner, every, 0 if every else action.subaccount,
                                        action.agent, action.expiry_ms)
        elif isinstance(action, RevokeAgent):
            kind = _KIND_REVOKE_AGENT
            body = _REVOKE_AGENT.pack(action.owner, action.agent)
        else:
            kind = _KIND_TRANSACTION
            body = encode_transaction(action)
        prefix = _PREFIX.pack(SIGNED_ENCODING_VERSION, kind, signed.nonce_ms, signed.signature)
    except (struct.error, ValueError) as error:  # unreachable after check_fields; kept as a net
        raise AdmissionError(AdmissionCode.FIELD_OUT_OF_RANGE, str(error)) from error
    encoded = prefix + body
    assert len(encoded) <= SIGNED_TRANSACTION_BYTES_MAX
    return encoded


def decode_signed_transaction(data: bytes) -> SignedTransaction:
    """The signed transaction of canonical bytes; ``MALFORMED_ENCODING`` for anything else."""
    if not _PREFIX_BYTES < len(data) <= SIGNED_TRANSACTION_BYTES_MAX:
        raise AdmissionError(AdmissionCode.MALFORMED_ENCODING, f"length {len(data)}")
    # ``_PREFIX`` read field by field: byte indexing and one slice, which the compiled build
    # runs natively (a struct call here cost about a fifth of decoding a signed entry)
    version = data[0]
    kind = data[1]
    nonce_ms = (data[2] << 56 | data[3] << 48 | data[4] << 40 | data[5] << 32
                | data[6] << 24 | data[7] << 16 | data[8] << 8 | data[9])  # u64, big-endian
    signature = data[_NONCE_END:_PREFIX_BYTES]
    if type(signature) is not bytes:  # as the body below: a signature is bytes, whatever came in
        signature = bytes(signature)
    if version != SIGNED_ENCODING_VERSION:
        raise AdmissionError(AdmissionCode.MALFORMED_ENCODING, f"version {version}")
    body = data[_PREFIX_BYTES:]
    if type(body) is not bytes:  # a bytes ``data`` sliced to bytes already: no second copy
        body = bytes(body)
    action: UserAction
    if kind == _KIND_TRANSACTION:
        try:
            tx: Transaction = decode_transaction(body)
        except DecodeError as error:
            raise AdmissionError(AdmissionCode.MALFORMED_ENCODING, str(error)) from error
        if type(tx) not in _USER_STF_TYPE_SET:  # deposits, oracle and operator txs: unsigned
            raise AdmissionError(AdmissionCode.MALFORMED_ENCODING,
                                 f"{type(tx).__name__} is not a user action")
        if type(tx) is MassQuote and len(tx.quotes) > MASS_QUOTE_QUOTES_MAX:
            raise AdmissionError(AdmissionCode.MALFORMED_ENCODING,
                                 f"{len(tx.quotes)} > {MASS_QUOTE_QUOTES_MAX} quotes")
        action = tx  # type: ignore[assignment]  # one of _USER_STF_TYPES, checked above
    elif kind == _KIND_REGISTER_AGENT:
        action = _decode_register_agent(body)
    elif kind == _KIND_REVOKE_AGENT:
        if len(body) != _REVOKE_AGENT.size:
            raise AdmissionError(AdmissionCode.MALFORMED_ENCODING, "RevokeAgent body length")
        owner, agent = _REVOKE_AGENT.unpack(body)
        action = RevokeAgent(owner, agent)
    else:
        raise AdmissionError(AdmissionCode.MALFORMED_ENCODING, f"kind {kind}")
    return SignedTransaction(action, nonce_ms, signature)


def _decode_register_agent(body: bytes) -> RegisterAgent:
    if len(body) != _REGISTER_AGENT.size:
        raise AdmissionError(AdmissionCode.MALFORMED_ENCODING, "RegisterAgent body length")
    owner, every, subaccount, agent, expiry_ms = _REGISTER_AGENT.unpack(body)
    if every not in (0, 1) or (every == 1 and subaccount != 0):
        raise AdmissionError(AdmissionCode.MALFORMED_ENCODING, "RegisterAgent scope")
    return RegisterAgent(owner, agent, expiry_ms, None if every else subaccount)


def signed_transaction_id(signed: SignedTransaction) -> bytes:
    """keccak256 of the canonical bytes: a stable id for logs and acknowledgements."""
    return keccak256(encode_signed_transaction(signed))


# compiled (mypyc), a frozen dataclass cannot be unpickled attribute by attribute: pickle these
# by their fields in both builds (as rollbook.execution does for its own)
register_frozen_classes(SignedTransaction, VerifiedTransaction)
