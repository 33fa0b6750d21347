"""The chain adapter: one small API over web3.py for the embedded EVM and any JSON-RPC node.

``Chain`` wraps a ``Web3`` and is the only place in rollbook that talks to an EVM chain. Two
factories pick the transport (the one seam, so tests need no network): ``Chain.embedded()``
runs py-evm in-process through eth-tester (funded dev accounts, nothing to start), and
``Chain.connect(url)`` speaks HTTP JSON-RPC to any EVM node (anvil locally, a testnet, mainnet).
``Chain.embedded_child()`` is the embedded chain executing in a child process
(``rollbook.settlement.embedded``, reached over a pipe; ``close()`` ends it), for a caller whose
own GIL must stay free, such as the node: there, deployments, views and transactions are run
whole by a ``Chain`` in the child (``RemoteExecution``: ABI encoding, signing and receipt
decoding cost about 5 ms of CPU per 64 KiB batch submission in web3), and the other calls
travel as raw JSON-RPC requests. Everything above the transport is the same code path
on all of them, but one: on the embedded chain (in process, and in the child) a transaction is
sent to eth-tester's py-evm chain directly (``_DirectTester``), not through web3's request
formatting and eth-tester's validators, which cost more CPU than py-evm's own work on a batch.

What it does: deploy a compiled contract (``deploy`` returns a ``ContractHandle``), send a
transaction and wait for its receipt (``transact`` returns a ``Receipt`` with gas used, block
number and the decoded events of every contract this chain knows), read views (``call``),
``head_block``, decoded ``events`` over a block range, and ``watch`` / ``EventWatcher``: events
only once they are ``confirmations`` blocks deep, resumable from a cursor. Test-only:
``increase_time`` and ``mine`` on both backends (eth-tester's ``time_travel``/``mine_blocks``,
anvil's ``evm_setNextBlockTimestamp``/``evm_mine``).

Invariants:

- Transactions are signed here with eth-account keys (``eth_sendRawTransaction``), never by
  the node: that is what a real chain needs. The embedded chain signs the same transaction
  (EIP-1559, the fee fields web3 would fill in, the same bytes and hash) with the same key
  through py-evm's transaction builder, and hands it to the chain without the RPC layers.
- A revert never passes silently: gas is estimated before sending (a revert there raises
  ``RevertError`` with the contract's reason string, and nothing is sent), and a mined
  transaction with status 0 also raises ``RevertError`` (its reason recovered by replaying it
  as a call on the parent block's state).
- Transient transport failures (connection refused or reset, timeouts, HTTP 429/502/503/504)
  are retried with bounded exponential backoff (``RetryPolicy``: ``RPC_ATTEMPTS`` attempts,
  then ``ChainUnavailableError``); every other error surfaces at once, as a ``ChainError``
  subclass where it is ours to classify. A signed transaction is resent on retry as the same
  bytes, so a retry can never send a second transaction: a node that already has it answers
  "already known" or "nonce too low" and we wait for the receipt by its hash.
- ``watch`` with a cursor returns every event of a block exactly once over successive calls:
  a call covers whole blocks ``cursor .. head - confirmations`` and returns the next cursor.
  An event in block ``b`` is returned once ``head >= b + confirmations`` (``confirmations``
  blocks mined on top of it; 0 means as soon as it is mined).

Limits and assumptions:

- One writer per sender key: the nonce is read from the node (``pending``) for each
  transaction, so two processes sending from one key at once can collide.
- Reorganisations deeper than ``confirmations`` are not handled (events already returned are
  not retracted); pick the depth for the chain.
- ``eth_getLogs`` is asked for at most ``LOG_BLOCK_RANGE_MAX`` blocks at a time (public nodes
  cap the range) and one ``watch`` call scans at most ``WATCH_BLOCKS_PER_CALL_MAX`` blocks; a
  cursor far behind catches up over several calls.
- Anonymous events are not decoded; indexed dynamic values (strings, bytes, arrays, tuples)
  come back as their 32-byte topic hash, as the EVM stores them.
- Not thread-safe: one ``Chain`` per thread.
"""

from __future__ import annotations

import ast
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

import requests
from eth_abi.abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_keys.datatypes import PrivateKey
from eth_typing import ChecksumAddress
from eth_utils.address import is_checksum_address
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.exceptions import (
    ContractLogicError,
    ProviderConnectionError,
    TimeExhausted,
    Web3RPCError,
)
from web3.providers.eth_tester import EthereumTesterProvider  # imports eth-tester lazily
from web3.types import BlockIdentifier, RPCEndpoint

from rollbook.settlement._compile import CompiledContract, compile_contract

__all__ = [
    "CONFIRMATIONS_MAX",
    "EMBEDDED_DEV_ACCOUNTS",
    "GAS_MARGIN_PERCENT",
    "LOG_BLOCK_RANGE_MAX",
    "MINE_BLOCKS_MAX",
    "RECEIPT_POLL_S",
    "RECEIPT_TIMEOUT_S",
    "RPC_ATTEMPTS",
    "RPC_BACKOFF_FIRST_S",
    "RPC_BACKOFF_MAX_S",
    "RPC_TIMEOUT_S",
    "WATCH_BLOCKS_PER_CALL_MAX",
    "Chain",
    "ChainError",
    "ChainUnavailableError",
    "ContractHandle",
    "Event",
    "EventWatcher",
    "Receipt",
    "RemoteExecution",
    "RetryPolicy",
    "RevertError",
    "TransactionTimeoutError",
    "WatchResult",
]

RPC_TIMEOUT_S = 10.0  # one HTTP request; a healthy node answers in milliseconds
RPC_ATTEMPTS = 5  # attempts per operation (the first included) before ChainUnavailableError
RPC_BACKOFF_FIRST_S = 0.1  # sleep after the first failure, doubled after each next one
RPC_BACKOFF_MAX_S = 2.0  # so the worst case waits 0.1 + 0.2 + 0.4 + 0.8 s between 5 attempts
RECEIPT_TIMEOUT_S = 120.0  # ten mainnet blocks; an automining dev node answers at once
RECEIPT_POLL_S = 0.05
GAS_MARGIN_PERCENT = 20  # over the estimate: state can move between estimate and inclusion
LOG_BLOCK_RANGE_MAX = 2_000  # blocks per eth_getLogs; public RPC endpoints cap the range
WATCH_BLOCKS_PER_CALL_MAX = 50_000  # bounds one watch call's work; the cursor resumes
CONFIRMATIONS_MAX = 10_000  # far beyond finality on any EVM chain: a larger value is a bug
MINE_BLOCKS_MAX = 10_000  # mine() is for tests; a huge count would stall the node
EMBEDDED_DEV_ACCOUNTS = 10  # eth-tester's funded accounts (1,000,000 ether each)

# revert data layouts (Solidity/Vyper ABI): Error(string) and Panic(uint256) selectors
_ERROR_SELECTOR = bytes.fromhex("08c379a0")
_PANIC_SELECTOR = bytes.fromhex("4e487b71")
_REVERT_PREFIX = "execution reverted"
# what a node says when it already has the signed transaction we resend after a dropped reply
# (geth and anvil; the last is eth-tester's, whose in-process transport only drops replies in
# tests)
_ALREADY_SENT_MARKERS = ("already known", "nonce too low", "already imported",
                         "invalid transaction nonce")
_TRANSIENT_HTTP_STATUSES = frozenset({429, 502, 503, 504})

_T = TypeVar("_T")


class ChainError(Exception):
    """Base of the errors this adapter raises."""


class ChainUnavailableError(ChainError):
    """The node stayed unreachable through every retry (``RetryPolicy``)."""


class TransactionTimeoutError(ChainError):
    """A sent transaction had no receipt within ``RECEIPT_TIMEOUT_S``."""

    def __init__(self, message: str, transaction_hash: bytes) -> None:
        super().__init__(message)
        self.transaction_hash = transaction_hash

    def __reduce__(self) -> tuple[Any, ...]:  # crosses the embedded chain's process boundary
        return (type(self), (str(self), self.transaction_hash))


class RevertError(ChainError):
    """A call or transaction reverted; ``reason`` is the contract's revert string.

    ``reason`` is ``""`` for a revert without data, ``"Panic(0x11)"`` for a panic code, and
    the raw data in hex for a custom error. ``transaction_hash`` is set when the transaction was
    mined (and failed), ``None`` when the revert was caught before sending.
    """

    def __init__(self, what: str, reason: str, transaction_hash: bytes | None = None) -> None:
        super().__init__(f"{what} reverted: {reason!r}")
        self.what = what
        self.reason = reason
        self.transaction_hash = transaction_hash

    def __reduce__(self) -> tuple[Any, ...]:  # crosses the embedded chain's process boundary
        return (type(self), (self.what, self.reason, self.transaction_hash))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded exponential backoff for transient transport failures."""

    attempts: int = RPC_ATTEMPTS
    backoff_first_s: float = RPC_BACKOFF_FIRST_S
    backoff_max_s: float = RPC_BACKOFF_MAX_S

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.backoff_first_s < 0 or self.backoff_max_s < 0:
            raise ValueError(f"invalid retry policy {self}")

    def delays(self) -> Iterator[float]:
        """The sleeps between attempts: ``attempts - 1`` of them."""
        delay = self.backoff_first_s
        for _ in range(self.attempts - 1):
            yield min(delay, self.backoff_max_s)
            delay *= 2


@dataclass(frozen=True, slots=True)
class Event:
    """One decoded contract event (log), with where it happened."""

    name: str
    args: Mapping[str, Any]  # in ABI order; addresses checksummed, tuples as tuples
    address: ChecksumAddress
    block_number: int
    log_index: int
    transaction_hash: bytes

    def __getitem__(self, key: str) -> Any:
        return self.args[key]

    def __reduce__(self) -> tuple[Any, ...]:  # ``args`` is a read-only view: not picklable
        return (_event, (self.name, dict(self.args), self.address, self.block_number,
                         self.log_index, self.transaction_hash))


def _event(name: str, args: dict[str, Any], address: ChecksumAddress, block_number: int,
           log_index: int, transaction_hash: bytes) -> Event:
    return Event(name, MappingProxyType(args), address, block_number, log_index,
                 transaction_hash)


@dataclass(frozen=True, slots=True)
class Receipt:
    """A mined, successful transaction."""

    transaction_hash: bytes
    block_number: int
    gas_used: int
    events: tuple[Event, ...]  # of every contract this chain knows, in log order
    contract_address: ChecksumAddress | None  # the new contract, for a deployment

    def events_named(self, name: str) -> tuple[Event, ...]:
        return tuple(event for event in self.events if event.name == name)

    def event(self, name: str) -> Event:
        """The one event called ``name``; ``LookupError`` if there is none or several."""
        found = self.events_named(name)
        if len(found) != 1:
            raise LookupError(f"expected exactly one {name} event in the receipt, "
                              f"found {len(found)}")
        return found[0]


@dataclass(frozen=True, slots=True)
class WatchResult:
    """Events of blocks ``[first_block, cursor)``, all at least the asked depth."""

    events: tuple[Event, ...]
    cursor: int  # the next block to scan: pass it to the next ``watch`` call
    head: int  # the chain head when the call was made


@dataclass(frozen=True, slots=True)
class _Param:
    name: str
    abi_type: str  # canonical: "uint256", "(uint256,int256)[]", ...

    @property
    def dynamic(self) -> bool:
        """Hashed when indexed: the topic holds keccak256 of the value, not the value."""
        kind = self.abi_type
        return kind in ("string", "bytes") or kind.endswith("]") or kind.startswith("(")


@dataclass(frozen=True, slots=True)
class _EventSpec:
    name: str
    topic: bytes
    params: tuple[tuple[_Param, bool], ...]  # (param, indexed) in ABI order


class _EventDecoder:
    """Decodes the logs of one contract from its ABI (non-anonymous events)."""

    __slots__ = ("_by_name", "_by_topic")

    def __init__(self, abi: Sequence[Mapping[str, Any]]) -> None:
        self._by_topic: dict[bytes, _EventSpec] = {}
        self._by_name: dict[str, _EventSpec] = {}
        for entry in abi:
            if entry.get("type") != "event" or entry.get("anonymous"):
                continue
            params = tuple((_Param(item["name"], _canonical_type(item)), bool(item["indexed"]))
                           for item in entry["inputs"])
            signature = f"{entry['name']}({','.join(p.abi_type for p, _ in params)})"
            spec = _EventSpec(entry["name"], keccak(text=signature), params)
            self._by_topic[spec.topic] = spec
            self._by_name[spec.name] = spec

    def topics_of(self, names: Collection[str]) -> list[str]:
        unknown = sorted(set(names) - self._by_name.keys())
        if unknown:
            raise ValueError(f"no such events in the ABI: {unknown}")
        return ["0x" + self._by_name[name].topic.hex() for name in names]

    def decode(self, log: Mapping[str, Any]) -> Event | None:
        """The event, or None for a log this ABI does not describe."""
        topics = [bytes(topic) for topic in log["topics"]]
        spec = self._by_topic.get(topics[0]) if topics else None
        if spec is None:
            return None
        indexed = [param for param, is_indexed in spec.params if is_indexed]
        unindexed = [param for param, is_indexed in spec.params if not is_indexed]
        if len(topics) != 1 + len(indexed):
            return None  # same signature, different indexing: not this contract's event
        values: dict[str, Any] = {}
        for param, topic in zip(indexed, topics[1:], strict=True):
            values[param.name] = (topic if param.dynamic
                                  else abi_decode([param.abi_type], topic)[0])
        decoded = abi_decode([param.abi_type for param in unindexed], bytes(log["data"]))
        for param, value in zip(unindexed, decoded, strict=True):
            values[param.name] = value
        args = {param.name: _normalise(values[param.name]) for param, _ in spec.params}
        return Event(
            name=spec.name,
            args=MappingProxyType(args),
            address=Web3.to_checksum_address(log["address"]),
            block_number=int(log["blockNumber"]),
            log_index=int(log["logIndex"]),
            transaction_hash=bytes(log["transactionHash"]),
        )


def _canonical_type(param: Mapping[str, Any]) -> str:
    kind: str = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(_canonical_type(component) for component in param["components"])
        return f"({inner}){kind.removeprefix('tuple')}"
    return kind


def _normalise(value: Any) -> Any:
    """eth-abi returns lower-case addresses and lists/tuples; make them canonical."""
    if isinstance(value, str) and len(value) == 42 and value.startswith("0x"):
        return Web3.to_checksum_address(value)
    if isinstance(value, list | tuple):
        return tuple(_normalise(item) for item in value)
    return value


@dataclass(frozen=True, slots=True)
class ContractHandle:
    """A deployed contract: its address and ABI, bound to one ``Chain``."""

    name: str
    address: ChecksumAddress
    abi: tuple[Mapping[str, Any], ...] = field(repr=False)
    _contract: Contract = field(repr=False, compare=False)
    _decoder: _EventDecoder = field(repr=False, compare=False)


class RemoteExecution(Protocol):
    """Where a ``Chain`` sends its contract work instead of doing it here: deployments, views
    and transactions run whole (ABI encoding, signing, execution, receipt decoding) by another
    ``Chain`` on the same EVM, in another process (``rollbook.settlement.embedded``)."""

    def attach(self, compiled: CompiledContract, address: ChecksumAddress) -> None: ...

    def deploy(self, compiled: CompiledContract, args: tuple[Any, ...],
               sender: LocalAccount) -> ChecksumAddress: ...

    def call(self, address: ChecksumAddress, function: str, args: tuple[Any, ...],
             block: int | None) -> Any: ...

    def transact(self, address: ChecksumAddress, function: str, args: tuple[Any, ...],
                 sender: LocalAccount, gas: int | None) -> Receipt: ...


class _TimeControl(Protocol):
    """Moves a dev chain's clock and block height (tests only)."""

    def set_next_timestamp_and_mine(self, timestamp: int) -> None: ...

    def mine(self, blocks: int) -> None: ...


class _TesterTime:
    """eth-tester's own API: ``time_travel`` (mines one block) and ``mine_blocks``."""

    def __init__(self, tester: Any) -> None:
        self._tester = tester

    def set_next_timestamp_and_mine(self, timestamp: int) -> None:
        self._tester.time_travel(timestamp)
        # eth-tester 0.14 stamps the block it mines one second before the requested time
        # (measured); travel again by the shortfall, which stays right if that is ever fixed
        shortfall = timestamp - int(self._tester.get_block_by_number("latest")["timestamp"])
        if shortfall > 0:
            self._tester.time_travel(timestamp + shortfall)

    def mine(self, blocks: int) -> None:
        self._tester.mine_blocks(blocks)


class _RpcTime:
    """The dev-node JSON-RPC extensions that anvil and hardhat share."""

    def __init__(self, w3: Web3) -> None:
        self._w3 = w3

    def set_next_timestamp_and_mine(self, timestamp: int) -> None:
        self._request("evm_setNextBlockTimestamp", [timestamp])
        self._request("evm_mine", [])

    def mine(self, blocks: int) -> None:
        for _ in range(blocks):  # evm_mine is the portable one (anvil_mine is anvil's own)
            self._request("evm_mine", [])

    def _request(self, method: str, params: list[Any]) -> None:
        try:
            self._w3.manager.request_blocking(RPCEndpoint(method), params)
        except Web3RPCError as error:
            raise ChainError(f"{method} failed: the node is not a dev chain "
                             f"(anvil, hardhat) or refused it: {error}") from error


# where eth-tester keeps the filters its own ``send_raw_transaction`` path feeds
_TESTER_FILTER_ATTRIBUTES = ("_log_filters", "_block_filters", "_pending_transaction_filters")


@dataclass(frozen=True, slots=True)
class _Mined:
    """A transaction ``_DirectTester`` sent and mined, as its raw receipt (web3's field names,
    what ``Chain._receipt`` decodes)."""

    status: int
    block_number: int
    raw: Mapping[str, Any]


class _DirectTester:
    """Sends transactions to eth-tester's py-evm chain without the RPC layers around it.

    Why: per published 55 KB batch, web3's request and result formatting, eth-tester's input
    and output validators and normalisers, and eth-account's dictionary checks cost the chain
    process about as much CPU as py-evm's execution and mining together (each batch is one
    transaction in one block). Here each step goes straight to the backend, doing what those
    layers did and nothing else:

    - nonce: the sender's in the pending block's state (``eth_getTransactionCount`` "pending");
    - fees: an EIP-1559 transaction with web3's defaults for it, ``maxPriorityFeePerGas`` as
      eth-tester answers ``eth_maxPriorityFeePerGas`` and ``maxFeePerGas`` = that + twice the
      latest block's base fee, so the signed bytes and hash are the ones web3 and eth-account
      produce (tested);
    - signing: py-evm's builder with the sender's key (the same deterministic ECDSA);
    - sending: ``apply_transaction`` on the chain (what eth-tester's ``send_raw_transaction``
      does after decoding the bytes) and one block mined on it (its auto-mining), whose
      receipt is the one ``apply_transaction`` returns, so nothing is read back and decoded.

    Only while eth-tester auto-mines (it always does for ``Chain``) and has no filters
    (``eth_newFilter`` and friends, which its own path feeds): otherwise ``usable`` is false and
    ``Chain`` takes the RPC path, which keeps them exact. Deployments (a few per venue) and the
    estimate before a transaction without a gas limit keep the RPC path too. Measured on the
    child's request path, 55 KB ``submit_batch`` with a fixed gas limit: 108.6 million
    instructions a batch through the RPC layers, 67.0 million here, of which py-evm's applying
    and mining are about 64.
    """

    __slots__ = ("_backend", "_keys", "_read_tip", "_tester", "_tip")

    def __init__(self, tester: Any, priority_fee: Callable[[], int]) -> None:
        self._tester = tester
        self._backend = tester.backend
        self._read_tip = priority_fee
        self._tip: int | None = None  # read at the first send: a constant of eth-tester's
        self._keys: dict[bytes, PrivateKey] = {}  # the signers' keys, parsed once

    @classmethod
    def of(cls, provider: Any, priority_fee: Callable[[], int]) -> _DirectTester | None:
        """The direct path for an eth-tester provider over py-evm, else None."""
        tester = getattr(provider, "ethereum_tester", None)
        if tester is None or not hasattr(getattr(tester, "backend", None), "chain"):
            return None
        return cls(tester, priority_fee)

    def usable(self) -> bool:
        # eth-tester's filter registries are private: a release that renames them makes this
        # path unusable (the RPC path then runs, exact), never wrong
        tester = self._tester
        filters = [getattr(tester, name, None) for name in _TESTER_FILTER_ATTRIBUTES]
        return bool(getattr(tester, "auto_mine_transactions", False)) and all(
            registry is not None and not registry for registry in filters)

    def send(self, to: bytes, data: bytes, sender: LocalAccount, gas: int,
             chain_id: int) -> _Mined:
        """Sign, apply and mine ``to.call(data)`` from ``sender``; py-evm's exceptions for an
        invalid transaction (nonce, funds, gas over the block's limit) propagate, as through
        eth-tester, and then nothing was sent."""
        tip = self._tip
        if tip is None:
            tip = self._tip = self._read_tip()
        chain = self._backend.chain
        vm = chain.get_vm()
        nonce = vm.state.get_nonce(bytes.fromhex(sender.address[2:]))
        base_fee = chain.get_canonical_head().base_fee_per_gas
        unsigned = vm.get_transaction_builder().new_unsigned_dynamic_fee_transaction(
            chain_id=chain_id, nonce=nonce, max_priority_fee_per_gas=tip,
            max_fee_per_gas=tip + 2 * base_fee, gas=gas, to=to, value=0, data=data,
            access_list=())
        transaction = unsigned.as_signed_transaction(self._private_key(sender))
        gas_before = chain.header.gas_used  # of the pending block's earlier transactions: 0
        block, receipt, _ = chain.apply_transaction(transaction)
        self._backend.mine_blocks(1)
        tx_hash = bytes(transaction.hash)
        number = int(block.number)
        # eth-tester's receipt: log indices count within the transaction; status from the
        # receipt's state root field (1 success, 0 failure); contract address only on creation
        logs = [{"address": "0x" + bytes(log.address).hex(),
                 "topics": [topic.to_bytes(32, "big") for topic in log.topics],
                 "data": bytes(log.data), "blockNumber": number, "logIndex": index,
                 "transactionHash": tx_hash}
                for index, log in enumerate(receipt.logs)]
        status = int.from_bytes(receipt.state_root, "big")
        raw = {"transactionHash": tx_hash, "blockNumber": number, "status": status,
               "gasUsed": int(receipt.gas_used) - int(gas_before), "logs": logs,
               "contractAddress": None}
        return _Mined(status, number, raw)

    def _private_key(self, sender: LocalAccount) -> PrivateKey:
        key = bytes(sender.key)
        private = self._keys.get(key)
        if private is None:
            private = self._keys[key] = PrivateKey(key)  # eth-account's own key type
        return private


class Chain:
    """An EVM chain reached through web3.py; see the module docstring for the contract."""

    def __init__(self, w3: Web3, *, dev_keys: Sequence[bytes] = (), description: str = "chain",
                 retry: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep, embedded: bool = False,
                 remote: RemoteExecution | None = None) -> None:
        """Wrap any ``Web3`` (the transport seam); ``embedded`` and ``connect`` are the usual
        ways in. ``sleep`` is injectable so that tests of the retry policy need not wait.
        ``remote`` (``embedded_child``) runs deployments, views and transactions elsewhere."""
        self._w3 = w3
        self._embedded = embedded
        self._remote = remote
        self._description = description
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        provider = w3.provider
        # eth-tester has no evm_* RPC methods: its clock is moved through its own API
        self._time: _TimeControl = (
            _TesterTime(provider.ethereum_tester)
            if isinstance(provider, EthereumTesterProvider) else _RpcTime(w3))
        self._dev_accounts = tuple(Account.from_key(key) for key in dev_keys)
        # our own in-process eth-tester (not a wrapper a test put around it, nor a node)
        self._direct = (
            _DirectTester.of(provider, lambda: int(w3.eth.max_priority_fee))
            if embedded and isinstance(provider, EthereumTesterProvider) else None)
        self._decoders: dict[str, _EventDecoder] = {}  # address -> decoder of known contracts
        self._chain_id: int | None = None

    @classmethod
    def embedded(cls) -> Chain:
        """A fresh in-process py-evm chain with ``EMBEDDED_DEV_ACCOUNTS`` funded accounts.

        Every transaction is mined at once in its own block; nothing is shared between two
        embedded chains.
        """
        # imported here: eth-tester and py-evm take about a second to import, and a node
        # connected to a real chain never needs them
        from eth_tester import EthereumTester, PyEVMBackend

        backend = PyEVMBackend()
        tester = EthereumTester(backend)
        keys = tuple(key.to_bytes() for key in backend.account_keys)
        if len(keys) != EMBEDDED_DEV_ACCOUNTS:
            raise ChainError(f"eth-tester made {len(keys)} dev accounts, "
                             f"expected {EMBEDDED_DEV_ACCOUNTS}")
        return cls(Web3(EthereumTesterProvider(tester)), dev_keys=keys,
                   description="embedded py-evm chain", embedded=True)

    @classmethod
    def embedded_child(cls) -> Chain:
        """A fresh embedded py-evm chain like ``embedded()``, executing in a child process
        (``rollbook.settlement.embedded``): its EVM work runs off this process's GIL. Call
        ``close()`` to end the child (it also ends with this process)."""
        from rollbook.settlement.embedded import start_embedded_chain

        provider, keys = start_embedded_chain()
        if len(keys) != EMBEDDED_DEV_ACCOUNTS:
            provider.close()
            raise ChainError(f"eth-tester made {len(keys)} dev accounts, "
                             f"expected {EMBEDDED_DEV_ACCOUNTS}")
        return cls(Web3(provider), dev_keys=keys,
                   description=f"embedded py-evm chain (process {provider.pid})", embedded=True,
                   remote=provider)

    @classmethod
    def connect(cls, url: str, *, dev_keys: Sequence[bytes] = (),
                timeout_s: float = RPC_TIMEOUT_S, retry: RetryPolicy | None = None,
                sleep: Callable[[float], None] = time.sleep) -> Chain:
        """A chain behind an HTTP JSON-RPC endpoint; ``dev_keys`` are the signers to offer.

        Nothing is sent until the first call, so this never fails for an unreachable node.
        """
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"only HTTP(S) JSON-RPC endpoints are supported, got {url!r}")
        # web3's own retry is switched off: one bounded policy (ours) for every call
        provider = HTTPProvider(url, request_kwargs={"timeout": timeout_s},
                                exception_retry_configuration=None)
        return cls(Web3(provider), dev_keys=dev_keys, description=f"JSON-RPC node at {url}",
                   retry=retry, sleep=sleep)

    def __repr__(self) -> str:
        return f"Chain({self._description})"

    def close(self) -> None:
        """Release what this chain owns: the child process of ``embedded_child()`` (other
        transports hold nothing to release). Idempotent."""
        close = getattr(self._w3.provider, "close", None)
        if callable(close):
            close()

    @property
    def web3(self) -> Web3:
        """The underlying client, for what this adapter does not cover."""
        return self._w3

    @property
    def is_embedded(self) -> bool:
        """A py-evm dev chain of ``embedded()`` or ``embedded_child()`` (free gas, no peers)."""
        return self._embedded

    @property
    def child_pid(self) -> int | None:
        """The process executing ``embedded_child()``'s EVM; None for the other transports."""
        pid = getattr(self._w3.provider, "pid", None)
        return pid if self._remote is not None and isinstance(pid, int) else None

    @property
    def dev_accounts(self) -> tuple[LocalAccount, ...]:
        """Funded signers of a dev chain (empty for a real chain unless keys were given)."""
        return self._dev_accounts

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = self._rpc("eth_chainId", lambda: self._w3.eth.chain_id)
        return self._chain_id

    def head_block(self) -> int:
        """The number of the latest block."""
        return self._rpc("eth_blockNumber", lambda: int(self._w3.eth.block_number))

    def block_timestamp(self, block: int | None = None) -> int:
        """A block's timestamp in seconds (the latest block's by default)."""
        identifier: BlockIdentifier = "latest" if block is None else block
        header = self._rpc("eth_getBlockByNumber", lambda: self._w3.eth.get_block(identifier))
        return int(header["timestamp"])

    def balance_wei(self, address: str) -> int:
        checksum = Web3.to_checksum_address(address)
        return self._rpc("eth_getBalance", lambda: int(self._w3.eth.get_balance(checksum)))

    # contracts

    def deploy(self, contract: str | CompiledContract, *args: Any,
               sender: LocalAccount) -> ContractHandle:
        """Deploy ``contract`` (a name under ``settlement/contracts`` or a compiled one)."""
        compiled = compile_contract(contract) if isinstance(contract, str) else contract
        if self._remote is not None:
            return self.attach(compiled, self._remote.deploy(compiled, args, sender))
        factory = self._w3.eth.contract(abi=_abi_list(compiled),
                                        bytecode="0x" + compiled.bytecode.hex())
        receipt = self._send(f"{compiled.name} deployment", factory.constructor(*args), sender)
        if receipt.contract_address is None:
            raise ChainError(f"{compiled.name} deployment: the receipt has no contract address")
        return self.attach(compiled, receipt.contract_address)

    def attach(self, contract: str | CompiledContract, address: str) -> ContractHandle:
        """A handle on an already deployed contract (its events are decoded from now on)."""
        compiled = compile_contract(contract) if isinstance(contract, str) else contract
        checksum = Web3.to_checksum_address(address)
        decoder = _EventDecoder(compiled.abi)
        self._decoders[checksum] = decoder
        if self._remote is not None:
            self._remote.attach(compiled, checksum)
        return ContractHandle(
            name=compiled.name,
            address=checksum,
            abi=compiled.abi,
            _contract=self._w3.eth.contract(address=checksum, abi=_abi_list(compiled)),
            _decoder=decoder,
        )

    def transact(self, contract: ContractHandle, function: str, *args: Any,
                 sender: LocalAccount, gas: int | None = None) -> Receipt:
        """Sign and send ``contract.function(*args)`` from ``sender``; wait for the receipt.

        ``gas`` skips the estimate (and so the early revert check); a mined revert still
        raises ``RevertError``.
        """
        if self._remote is not None:
            return self._remote.transact(contract.address, function, args, sender, gas)
        call = contract._contract.functions[function](*args)
        what = f"{contract.name}.{function}"
        if self._direct is not None and self._direct.usable():
            return self._send_direct(what, contract, call, sender, gas)
        return self._send(what, call, sender, gas=gas)

    def call(self, contract: ContractHandle, function: str, *args: Any,
             block: int | None = None) -> Any:
        """The value of a view (``eth_call``) at ``block`` (the latest by default)."""
        if self._remote is not None:
            return self._remote.call(contract.address, function, args, block)
        bound = contract._contract.functions[function](*args)
        identifier: BlockIdentifier = "latest" if block is None else block
        what = f"{contract.name}.{function}"
        return self._rpc("eth_call", lambda: _reverts_as(what, lambda: bound.call(
            block_identifier=identifier)))

    def events(self, contract: ContractHandle, from_block: int, to_block: int,
               names: Collection[str] = ()) -> list[Event]:
        """``contract``'s events in blocks ``from_block .. to_block`` (both included), in
        chain order; only those in ``names`` when given."""
        if from_block < 0 or to_block < from_block - 1:
            raise ValueError(f"bad block range {from_block}..{to_block}")
        topics = [contract._decoder.topics_of(names)] if names else []
        events: list[Event] = []
        for start in range(from_block, to_block + 1, LOG_BLOCK_RANGE_MAX):
            query: Any = {"fromBlock": start,
                          "toBlock": min(start + LOG_BLOCK_RANGE_MAX - 1, to_block),
                          "address": contract.address, "topics": topics}
            for log in self._get_logs(query):
                event = contract._decoder.decode(log)
                if event is not None:
                    events.append(event)
        return events

    def watch(self, contract: ContractHandle, cursor: int, confirmations: int,
              names: Collection[str] = ()) -> WatchResult:
        """Events of blocks ``cursor ..`` that are ``confirmations`` blocks deep, and the next
        cursor. Successive calls, each with the cursor the last returned, see each event once.
        """
        if cursor < 0:
            raise ValueError(f"cursor={cursor} must be a block number")
        if not 0 <= confirmations <= CONFIRMATIONS_MAX:
            raise ValueError(f"confirmations={confirmations} must be in [0, {CONFIRMATIONS_MAX}]")
        head = self.head_block()
        last = min(head - confirmations, cursor + WATCH_BLOCKS_PER_CALL_MAX - 1)
        if last < cursor:
            return WatchResult((), cursor, head)
        return WatchResult(tuple(self.events(contract, cursor, last, names)), last + 1, head)

    # dev-chain controls (tests)

    def increase_time(self, seconds: int) -> None:
        """Move the clock: mine a block stamped at least ``seconds`` after the latest one.

        Dev chains only. Exactly ``seconds`` later on anvil; eth-tester may mine a second block
        to get there (see ``_TesterTime``), so count on the time, not on the block count.
        """
        if seconds < 1:
            raise ValueError(f"seconds={seconds} must be >= 1")
        target = self.block_timestamp() + seconds
        self._rpc("time travel", lambda: self._time.set_next_timestamp_and_mine(target))
        stamped = self.block_timestamp()
        if stamped < target:
            raise ChainError(f"time travel to {target} produced a block stamped {stamped}")

    def mine(self, blocks: int = 1) -> None:
        """Mine ``blocks`` empty blocks (dev chains only)."""
        if not 1 <= blocks <= MINE_BLOCKS_MAX:
            raise ValueError(f"blocks={blocks} must be in [1, {MINE_BLOCKS_MAX}]")
        self._rpc("mine", lambda: self._time.mine(blocks))

    # internals

    def _send(self, what: str, call: Any, sender: LocalAccount,
              gas: int | None = None) -> Receipt:
        """Estimate (revert check), sign, send once (resending the same bytes on transient
        errors), wait for the receipt, decode its events."""
        gas = self._gas_limit(what, call, sender, gas)
        nonce = self._rpc("eth_getTransactionCount", lambda: self._w3.eth.get_transaction_count(
            sender.address, "pending"))
        params = {"from": sender.address, "nonce": nonce, "gas": gas, "chainId": self.chain_id}
        transaction = self._rpc("build transaction", lambda: call.build_transaction(params))
        signed = sender.sign_transaction(transaction)
        tx_hash = bytes(signed.hash)
        attempt = [0]

        def send() -> None:
            attempt[0] += 1
            try:
                self._w3.eth.send_raw_transaction(signed.raw_transaction)
            except Exception as error:
                # a resend after a lost reply: the node has it (or has mined it) already; the
                # receipt wait below tells which (and times out if another transaction took
                # the nonce)
                already = any(marker in str(error).lower() for marker in _ALREADY_SENT_MARKERS)
                if not (attempt[0] > 1 and already):
                    raise

        self._rpc("eth_sendRawTransaction", send)
        raw = self._wait_for_receipt(what, tx_hash)
        if int(raw["status"]) != 1:
            reason = self._replay_reason(transaction, int(raw["blockNumber"]))
            raise RevertError(what, reason, tx_hash)
        return self._receipt(raw)

    def _send_direct(self, what: str, contract: ContractHandle, call: Any,
                     sender: LocalAccount, gas: int | None) -> Receipt:
        """``_send`` on our in-process eth-tester (``_DirectTester``): the same estimate, the
        same signed transaction, one block mined, the same receipt or ``RevertError``. No
        retries: there is no transport to fail."""
        assert self._direct is not None
        data = _plain_calldata(self._w3.codec, call)
        if data is None:  # arguments web3 normalises before encoding: let it
            data = bytes.fromhex(contract._contract.encode_abi(
                call.abi_element_identifier, args=call.args, kwargs=call.kwargs)[2:])
        gas = self._gas_limit(what, call, sender, gas)
        mined = self._direct.send(bytes.fromhex(contract.address[2:]), data, sender, gas,
                                  self.chain_id)
        if mined.status != 1:
            replay = {"from": sender.address, "to": contract.address, "data": "0x" + data.hex(),
                      "value": 0, "gas": gas}
            raise RevertError(what, self._replay_reason(replay, mined.block_number),
                              mined.raw["transactionHash"])
        return self._receipt(mined.raw)

    def _gas_limit(self, what: str, call: Any, sender: LocalAccount, gas: int | None) -> int:
        """``gas``, or the estimate plus ``GAS_MARGIN_PERCENT`` (a revert raises here)."""
        if gas is not None:
            return gas
        estimate = self._rpc("eth_estimateGas", lambda: _reverts_as(
            what, lambda: int(call.estimate_gas({"from": sender.address}))))
        return estimate + estimate * GAS_MARGIN_PERCENT // 100

    def _get_logs(self, query: Any) -> list[Any]:
        return self._rpc("eth_getLogs", lambda: list(self._w3.eth.get_logs(query)))

    def _wait_for_receipt(self, what: str, tx_hash: bytes) -> Any:
        try:
            return self._rpc("eth_getTransactionReceipt",
                             lambda: self._w3.eth.wait_for_transaction_receipt(
                                 HexBytes(tx_hash), timeout=RECEIPT_TIMEOUT_S,
                                 poll_latency=RECEIPT_POLL_S))
        except TimeExhausted as error:
            raise TransactionTimeoutError(
                f"{what}: no receipt for 0x{tx_hash.hex()} within {RECEIPT_TIMEOUT_S} s",
                tx_hash) from error

    def _replay_reason(self, transaction: Mapping[str, Any], block: int) -> str:
        """Why a mined transaction failed: replayed as a call on its parent block's state
        (earlier transactions of the same block are not replayed, so this is best effort)."""
        replay = {key: transaction[key] for key in ("from", "to", "data", "value", "gas")
                  if key in transaction}
        try:
            self._rpc("eth_call", lambda: _reverts_as("replay", lambda: self._w3.eth.call(
                replay, block_identifier=max(block - 1, 0))))  # type: ignore[arg-type]
        except RevertError as error:
            return error.reason
        return "(reverted on chain; the replay succeeded, so the reason is unknown)"

    def _receipt(self, raw: Mapping[str, Any]) -> Receipt:
        events = []
        for log in raw["logs"]:
            decoder = self._decoders.get(Web3.to_checksum_address(log["address"]))
            event = decoder.decode(log) if decoder is not None else None
            if event is not None:
                events.append(event)
        address = raw.get("contractAddress")
        return Receipt(
            transaction_hash=bytes(raw["transactionHash"]),
            block_number=int(raw["blockNumber"]),
            gas_used=int(raw["gasUsed"]),
            events=tuple(events),
            contract_address=Web3.to_checksum_address(address) if address else None,
        )

    def _rpc(self, what: str, operation: Callable[[], _T]) -> _T:
        """Run ``operation``, retrying transient transport failures per the policy."""
        delays = self._retry.delays()
        attempt = 1
        while True:
            try:
                return operation()
            except Exception as error:
                if not _is_transient(error):
                    raise
                delay = next(delays, None)
                if delay is None:
                    raise ChainUnavailableError(
                        f"{what}: {self._description} unreachable after {attempt} attempts: "
                        f"{error}") from error
                attempt += 1
                self._sleep(delay)


class EventWatcher:
    """A ``watch`` cursor kept for you: ``poll()`` returns each confirmed event once.

    Persist ``cursor`` to resume after a restart without duplicates (pass it back as
    ``start_block``).
    """

    def __init__(self, chain: Chain, contract: ContractHandle, *, confirmations: int,
                 start_block: int = 0, names: Collection[str] = ()) -> None:
        self._chain = chain
        self._contract = contract
        self._confirmations = confirmations
        self._names = tuple(names)
        self.cursor = start_block

    def poll(self) -> list[Event]:
        """The confirmed events since the last poll (several calls' worth if far behind)."""
        events: list[Event] = []
        while True:
            result = self._chain.watch(self._contract, self.cursor, self._confirmations,
                                       self._names)
            events.extend(result.events)
            self.cursor = result.cursor
            if result.cursor > result.head - self._confirmations:
                return events


def _abi_list(compiled: CompiledContract) -> Any:
    # web3 types the ABI as a union of TypedDicts; vyper's JSON is that, unchecked
    return [dict(entry) for entry in compiled.abi]


def _plain_calldata(codec: Any, call: Any) -> bytes | None:
    """``call``'s calldata encoded here, or None when web3 must normalise its arguments first.

    web3 resolved the function and checked the arguments when ``call`` was made; its encoding
    then maps every argument through normalisers (hex strings to bytes, ENS names and raw
    addresses to checksummed ones) over ``map_abi_data``, about 0.4 ms for a 55 KB batch. For
    arguments those leave unchanged (integers, booleans, bytes for a bytes type, text, a
    checksummed address) the encoding is the codec's alone, done here in microseconds.
    """
    inputs = call.abi.get("inputs", ())
    arguments = call.arguments
    if len(inputs) != len(arguments):
        return None
    types = [_canonical_type(param) for param in inputs]
    if not all(_unnormalised(kind, value) for kind, value in zip(types, arguments, strict=True)):
        return None
    selector: str = call.selector
    return bytes.fromhex(selector.removeprefix("0x")) + bytes(codec.encode(types, arguments))


def _unnormalised(abi_type: str, value: Any) -> bool:
    """Whether web3's argument normalisers leave ``value`` as it is for ``abi_type``."""
    if isinstance(value, int):  # bool included
        return True
    if isinstance(value, bytes):
        return abi_type.startswith("bytes")
    if isinstance(value, str):
        return abi_type == "string" or (abi_type == "address" and is_checksum_address(value))
    return False  # arrays, tuples, anything else: web3's encoding


def _is_transient(error: BaseException) -> bool:
    if isinstance(error, requests.HTTPError):
        response = error.response
        return response is not None and response.status_code in _TRANSIENT_HTTP_STATUSES
    return isinstance(error, requests.ConnectionError | requests.Timeout | ConnectionError
                      | TimeoutError | ProviderConnectionError)


def _reverts_as(what: str, operation: Callable[[], _T]) -> _T:
    """Run ``operation``; a revert (from any backend) becomes ``RevertError``."""
    try:
        return operation()
    except ContractLogicError as error:
        raise RevertError(what, _reason_of_logic_error(error)) from error
    except Exception as error:
        # eth-tester raises its own TransactionFailed("execution reverted: <reason>"); matched
        # by name so that this module does not import eth-tester (the embedded chain does)
        if type(error).__name__ == "TransactionFailed" and \
                type(error).__module__.startswith("eth_tester"):
            raise RevertError(what, _reason_of_message(str(error.args[0]))) from error
        raise


def _reason_of_logic_error(error: ContractLogicError) -> str:
    data = error.data
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return _reason_of_data(bytes.fromhex(data[2:]))
        except ValueError:
            pass
    return _reason_of_message(error.message or "")


def _reason_of_message(message: str) -> str:
    reason = message.removeprefix(_REVERT_PREFIX).removeprefix(":").strip()
    if reason.startswith(("b'", 'b"')):
        # raw revert data printed as a bytes literal (eth-tester, for non-Error(string) data)
        try:
            data = ast.literal_eval(reason)
        except (ValueError, SyntaxError):
            return reason
        if isinstance(data, bytes):
            return _reason_of_data(data)
    return reason


def _reason_of_data(data: bytes) -> str:
    if data[:4] == _ERROR_SELECTOR:
        try:
            (reason,) = abi_decode(["string"], data[4:])
            return str(reason)
        except Exception:  # malformed Error(string): fall back to the raw bytes
            return "0x" + data.hex()
    if data[:4] == _PANIC_SELECTOR and len(data) == 36:
        return f"Panic(0x{int.from_bytes(data[4:], 'big'):02x})"
    return "0x" + data.hex() if data else ""
