"""Reading a batch from the chain: the calldata of the ``submit_batch`` transaction.

The settlement contract does not store batch bytes; it logs ``BatchSubmitted`` (index, roots,
``data_hash``, counters, length) and the bytes live only in the calldata of the transaction
that emitted the event. The verifier fetches that transaction by the event's hash and
ABI-decodes its input as ``submit_batch(uint256, bytes32, bytes32, bytes32, uint256, uint256,
bytes)``.

Invariants:
- a call is accepted only if the transaction was sent *to the settlement contract* and its
  input is exactly the canonical ABI encoding of ``submit_batch`` (selector, then the encoded
  arguments, nothing after): the batch has one spelling, so the data cannot be smuggled in a
  second form;
- every argument of the call must equal the event's; otherwise the bytes are not the bytes the
  contract accepted, which is a data-availability failure like missing calldata.

Limits: only top-level calls are read. An operator that submits through another contract
(a multisig, a relayer) leaves no top-level ``submit_batch`` input, and the verifier reports
the batch's data as unavailable (and disputes it). The node calls the contract directly.
Reading a transaction by hash needs a node that indexes it (geth keeps about a year of
transaction lookups by default; archive nodes keep all).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_canonical_address
from hexbytes import HexBytes
from web3.exceptions import ProviderConnectionError, TransactionNotFound

from rollbook.execution.crypto import keccak256
from rollbook.settlement.chain import Chain, ChainUnavailableError, RetryPolicy

__all__ = [
    "SUBMIT_BATCH_SELECTOR",
    "SUBMIT_BATCH_SIGNATURE",
    "CalldataError",
    "SubmitBatchCall",
    "decode_submit_batch",
    "encode_submit_batch",
    "read_transaction",
]

SUBMIT_BATCH_SIGNATURE = "submit_batch(uint256,bytes32,bytes32,bytes32,uint256,uint256,bytes)"
SUBMIT_BATCH_SELECTOR = keccak256(SUBMIT_BATCH_SIGNATURE.encode())[:4]
_ARGUMENT_TYPES = ("uint256", "bytes32", "bytes32", "bytes32", "uint256", "uint256", "bytes")

_T = TypeVar("_T")


class CalldataError(ValueError):
    """A transaction that is not a readable ``submit_batch`` call to the settlement contract."""


@dataclass(frozen=True, slots=True)
class SubmitBatchCall:
    """The arguments of one ``submit_batch`` call."""

    batch_index: int
    prev_root: bytes
    new_root: bytes
    data_hash: bytes
    deposit_count: int
    forced_count: int
    data: bytes


def encode_submit_batch(call: SubmitBatchCall) -> bytes:
    """The canonical transaction input of ``call`` (selector + ABI arguments)."""
    return SUBMIT_BATCH_SELECTOR + abi_encode(list(_ARGUMENT_TYPES), [
        call.batch_index, call.prev_root, call.new_root, call.data_hash, call.deposit_count,
        call.forced_count, call.data])


def decode_submit_batch(data: bytes) -> SubmitBatchCall:
    """Strict: the selector, the arguments, and the canonical encoding (re-encoded to check)."""
    if data[:4] != SUBMIT_BATCH_SELECTOR:
        raise CalldataError(f"selector 0x{data[:4].hex()} is not submit_batch")
    try:
        values = abi_decode(list(_ARGUMENT_TYPES), data[4:], strict=True)
    except Exception as error:  # eth-abi raises several decoding error types
        raise CalldataError(f"submit_batch arguments do not decode: {error}") from error
    call = SubmitBatchCall(int(values[0]), bytes(values[1]), bytes(values[2]), bytes(values[3]),
                           int(values[4]), int(values[5]), bytes(values[6]))
    if encode_submit_batch(call) != bytes(data):
        raise CalldataError("submit_batch input is not the canonical ABI encoding")
    return call


def read_transaction(chain: Chain, transaction_hash: bytes, settlement_address: bytes,
                     retry: RetryPolicy | None = None,
                     sleep: Callable[[float], None] = time.sleep) -> SubmitBatchCall:
    """Fetch a transaction by hash and decode it as a ``submit_batch`` to the contract.

    Raises ``CalldataError`` for a transaction that is missing or is something else, and
    ``ChainUnavailableError`` when the node stays unreachable through the retry policy.
    """

    def fetch() -> Any:
        try:
            return chain.web3.eth.get_transaction(HexBytes(transaction_hash))
        except TransactionNotFound:
            return None

    transaction = _retrying(f"eth_getTransactionByHash 0x{transaction_hash.hex()}", fetch,
                            retry or RetryPolicy(), sleep)
    if transaction is None:
        raise CalldataError(f"transaction 0x{transaction_hash.hex()} not found")
    to = transaction.get("to")
    if to is None or to_canonical_address(to) != settlement_address:
        raise CalldataError(f"transaction 0x{transaction_hash.hex()} was not sent to the "
                            "settlement contract (an indirect call leaves no readable calldata)")
    return decode_submit_batch(bytes(transaction["input"]))


def _retrying(what: str, operation: Callable[[], _T], retry: RetryPolicy,
              sleep: Callable[[float], None]) -> _T:
    # Chain retries its own calls; this one reaches web3 directly (Chain has no method for a
    # transaction by hash), so it applies the same policy to the same transient failures
    delays = retry.delays()
    while True:
        try:
            return operation()
        except (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError,
                ProviderConnectionError) as error:
            delay = next(delays, None)
            if delay is None:
                raise ChainUnavailableError(f"{what}: unreachable: {error}") from error
            sleep(delay)
