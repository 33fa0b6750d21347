"""Typed clients for the settlement contract and its collateral token.

``TokenClient`` wraps an ERC-20 (``TestUSDC`` on local chains) and ``SettlementClient`` wraps
``Settlement.vy``: one method per contract function and view of docs/settlement.md, plain
Python values in and out (addresses as checksummed strings, roots and hashes as 32-byte
``bytes``), and typed event records (``DepositEvent``, ``BatchSubmittedEvent``, ...) decoded
from receipts and logs. Everything goes through one ``Chain`` (rollbook.settlement.chain), so
the same code runs on the embedded EVM and on any JSON-RPC node.

Invariants: a method that sends a transaction returns only once it is mined and succeeded; a
revert raises ``RevertError`` carrying the contract's reason. Amounts are integers in the
token's smallest unit (quantums: 10**-6 USDC). Nothing here caches chain state: every view
is read from the chain when asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypeVar

from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils.crypto import keccak

from rollbook.settlement.chain import Chain, ContractHandle, Event, Receipt

__all__ = [
    "HASH_BYTES",
    "SETTLEMENT_CONTRACT",
    "SETTLEMENT_EVENT_TYPES",
    "TOKEN_CONTRACT",
    "TREE_DEPTH",
    "BatchDisputedEvent",
    "BatchInfo",
    "BatchSubmittedEvent",
    "ChainEvent",
    "DepositEvent",
    "DepositRefundedEvent",
    "EscapeMarketInfo",
    "EscapeMarketRegisteredEvent",
    "EscapePaidEvent",
    "EscapeRegisteredEvent",
    "ForcedWithdrawalRequestedEvent",
    "FrozenEvent",
    "L1Inputs",
    "SettlementClient",
    "SettlementParams",
    "TokenClient",
    "TransferEvent",
    "WithdrawalClaimedEvent",
    "typed_event",
]

TOKEN_CONTRACT = "TestUSDC"
SETTLEMENT_CONTRACT = "Settlement"
TREE_DEPTH = 32  # siblings per proof (docs/settlement.md; the contract's TREE_DEPTH)
HASH_BYTES = 32

_E = TypeVar("_E", bound="ChainEvent")


@dataclass(frozen=True, slots=True)
class ChainEvent:
    """Base of the typed event records: where the event happened.

    Subclasses name their contract event in ``EVENT_NAME`` and declare its arguments as
    fields of the same names, after these two.
    """

    EVENT_NAME: ClassVar[str] = ""
    block_number: int
    transaction_hash: bytes

    @classmethod
    def from_event(cls: type[_E], event: Event) -> _E:
        if event.name != cls.EVENT_NAME:
            raise ValueError(f"expected a {cls.EVENT_NAME} event, got {event.name}")
        values: dict[str, Any] = {"block_number": event.block_number,
                                  "transaction_hash": event.transaction_hash}
        for item in fields(cls):
            if item.name not in values:
                values[item.name] = event.args[item.name]
        return cls(**values)

    @classmethod
    def from_receipt(cls: type[_E], receipt: Receipt) -> _E:
        """The receipt's one event of this type (``LookupError`` if not exactly one)."""
        return cls.from_event(receipt.event(cls.EVENT_NAME))


@dataclass(frozen=True, slots=True)
class TransferEvent(ChainEvent):
    """ERC-20 ``Transfer``: ``value`` moved from ``sender`` (zero address: a mint)."""

    EVENT_NAME: ClassVar[str] = "Transfer"
    sender: ChecksumAddress
    receiver: ChecksumAddress
    value: int


@dataclass(frozen=True, slots=True)
class DepositEvent(ChainEvent):
    """``Deposited``: the STF credits it as the ``Deposit`` transaction ``deposit_id``."""

    EVENT_NAME: ClassVar[str] = "Deposited"
    deposit_id: int
    owner: ChecksumAddress
    subaccount: int
    amount: int


@dataclass(frozen=True, slots=True)
class BatchSubmittedEvent(ChainEvent):
    EVENT_NAME: ClassVar[str] = "BatchSubmitted"
    batch_index: int
    prev_root: bytes
    new_root: bytes
    data_hash: bytes
    deposit_count: int
    forced_count: int
    data_bytes: int


@dataclass(frozen=True, slots=True)
class BatchDisputedEvent(ChainEvent):
    """``batch_index`` and every later batch were discarded."""

    EVENT_NAME: ClassVar[str] = "BatchDisputed"
    batch_index: int
    challenger: ChecksumAddress


@dataclass(frozen=True, slots=True)
class WithdrawalClaimedEvent(ChainEvent):
    EVENT_NAME: ClassVar[str] = "WithdrawalClaimed"
    withdrawal_id: int
    owner: ChecksumAddress
    amount: int
    batch_index: int


@dataclass(frozen=True, slots=True)
class ForcedWithdrawalRequestedEvent(ChainEvent):
    """The STF must process it, in ``request_id`` order, before the deadline."""

    EVENT_NAME: ClassVar[str] = "ForcedWithdrawalRequested"
    request_id: int
    owner: ChecksumAddress
    subaccount: int
    amount: int
    requested_at: int  # block timestamp, seconds


@dataclass(frozen=True, slots=True)
class FrozenEvent(ChainEvent):
    EVENT_NAME: ClassVar[str] = "Frozen"
    escape_batch: int
    escape_root: bytes
    escape_pool: int


@dataclass(frozen=True, slots=True)
class EscapeMarketRegisteredEvent(ChainEvent):
    EVENT_NAME: ClassVar[str] = "EscapeMarketRegistered"
    market_id: int
    index_price_quantums: int
    lot_size_nanounits: int


@dataclass(frozen=True, slots=True)
class EscapeRegisteredEvent(ChainEvent):
    """A claim on the escape pool: a subaccount (``kind`` 4, ``key`` = its number) or an
    unpaid withdrawal leaf (``kind`` 6, ``key`` = the withdrawal id)."""

    EVENT_NAME: ClassVar[str] = "EscapeRegistered"
    owner: ChecksumAddress
    kind: int
    key: int
    claim: int


@dataclass(frozen=True, slots=True)
class EscapePaidEvent(ChainEvent):
    EVENT_NAME: ClassVar[str] = "EscapePaid"
    owner: ChecksumAddress
    kind: int
    key: int
    claim: int
    amount: int  # the claim after the pro-rata haircut


@dataclass(frozen=True, slots=True)
class DepositRefundedEvent(ChainEvent):
    EVENT_NAME: ClassVar[str] = "DepositRefunded"
    deposit_id: int
    owner: ChecksumAddress
    amount: int


SETTLEMENT_EVENT_TYPES: dict[str, type[ChainEvent]] = {
    record.EVENT_NAME: record for record in (
        DepositEvent, BatchSubmittedEvent, BatchDisputedEvent, WithdrawalClaimedEvent,
        ForcedWithdrawalRequestedEvent, FrozenEvent, EscapeMarketRegisteredEvent,
        EscapeRegisteredEvent, EscapePaidEvent, DepositRefundedEvent)
}


def typed_event(event: Event) -> ChainEvent:
    """The typed record of a settlement contract event (``KeyError`` for another event)."""
    return SETTLEMENT_EVENT_TYPES[event.name].from_event(event)


@dataclass(frozen=True, slots=True)
class BatchInfo:
    """A batch of the current chain of roots (the ``batch`` view)."""

    root: bytes
    data_hash: bytes
    deposit_count: int
    forced_count: int
    submitted_at: int  # block timestamp, seconds


@dataclass(frozen=True, slots=True)
class EscapeMarketInfo:
    index_price_quantums: int
    lot_size_nanounits: int
    registered: bool


@dataclass(frozen=True, slots=True)
class SettlementParams:
    """The settlement contract's constructor arguments (besides the token)."""

    operator: str
    genesis_root: bytes
    challenge_window_s: int
    forced_deadline_s: int
    escape_period_s: int
    challengers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class L1Inputs:
    """What the sequencer takes from the chain: deposits and forced-withdrawal requests, each
    ``confirmations`` blocks deep, in id order; ``cursor`` resumes the scan."""

    deposits: tuple[DepositEvent, ...]
    forced_requests: tuple[ForcedWithdrawalRequestedEvent, ...]
    cursor: int


class TokenClient:
    """An ERC-20 collateral token (``TestUSDC`` locally: anyone may ``mint``)."""

    def __init__(self, chain: Chain, handle: ContractHandle) -> None:
        self.chain = chain
        self.handle = handle

    @classmethod
    def deploy(cls, chain: Chain, *, sender: LocalAccount) -> TokenClient:
        """Deploy a fresh ``TestUSDC`` (6 decimals, no supply)."""
        return cls(chain, chain.deploy(TOKEN_CONTRACT, sender=sender))

    @classmethod
    def at(cls, chain: Chain, address: str) -> TokenClient:
        return cls(chain, chain.attach(TOKEN_CONTRACT, address))

    @property
    def address(self) -> ChecksumAddress:
        return self.handle.address

    def mint(self, to: str, amount: int, *, sender: LocalAccount) -> TransferEvent:
        """Test token only: create ``amount`` for ``to``."""
        receipt = self.chain.transact(self.handle, "mint", to, amount, sender=sender)
        return TransferEvent.from_receipt(receipt)

    def approve(self, spender: str, amount: int, *, sender: LocalAccount) -> Receipt:
        return self.chain.transact(self.handle, "approve", spender, amount, sender=sender)

    def transfer(self, to: str, amount: int, *, sender: LocalAccount) -> TransferEvent:
        receipt = self.chain.transact(self.handle, "transfer", to, amount, sender=sender)
        return TransferEvent.from_receipt(receipt)

    def balance_of(self, owner: str) -> int:
        return int(self.chain.call(self.handle, "balanceOf", owner))

    def allowance(self, owner: str, spender: str) -> int:
        return int(self.chain.call(self.handle, "allowance", owner, spender))

    def total_supply(self) -> int:
        return int(self.chain.call(self.handle, "totalSupply"))

    def decimals(self) -> int:
        return int(self.chain.call(self.handle, "decimals"))

    def transfers(self, from_block: int, to_block: int) -> list[TransferEvent]:
        return [TransferEvent.from_event(event) for event in
                self.chain.events(self.handle, from_block, to_block, ("Transfer",))]


class SettlementClient:
    """``Settlement.vy``: one method per function and view of docs/settlement.md.

    Sending methods take the signer as ``sender`` and return the event the call emits. Leaves
    are ABI-encoded bytes and proofs ``TREE_DEPTH`` 32-byte siblings, bottom-up
    (rollbook.commitment.merkle).
    """

    def __init__(self, chain: Chain, handle: ContractHandle, token: TokenClient) -> None:
        self.chain = chain
        self.handle = handle
        self.token = token

    @classmethod
    def deploy(cls, chain: Chain, token: TokenClient, params: SettlementParams, *,
               sender: LocalAccount) -> SettlementClient:
        handle = chain.deploy(
            SETTLEMENT_CONTRACT, token.address, params.operator, list(params.challengers),
            _bytes32(params.genesis_root), params.challenge_window_s, params.forced_deadline_s,
            params.escape_period_s, sender=sender)
        return cls(chain, handle, token)

    @classmethod
    def at(cls, chain: Chain, address: str) -> SettlementClient:
        """A client for a deployed settlement contract (and its token, read from it)."""
        handle = chain.attach(SETTLEMENT_CONTRACT, address)
        token_address = chain.call(handle, "token")
        return cls(chain, handle, TokenClient.at(chain, token_address))

    @property
    def address(self) -> ChecksumAddress:
        return self.handle.address

    # transactions

    def deposit(self, subaccount: int, amount: int, *, sender: LocalAccount) -> DepositEvent:
        """Approve the contract for ``amount`` if needed, then deposit; the event carries the
        deposit id."""
        if self.token.allowance(sender.address, self.address) < amount:
            self.token.approve(self.address, amount, sender=sender)
        return DepositEvent.from_receipt(self._send("deposit", subaccount, amount,
                                                    sender=sender))

    def submit_batch(self, batch_index: int, prev_root: bytes, new_root: bytes,
                     deposit_count: int, forced_count: int, data: bytes, *,
                     sender: LocalAccount, data_hash: bytes | None = None) -> BatchSubmittedEvent:
        """Operator only. ``data_hash`` defaults to ``keccak256(data)`` (the honest value)."""
        committed = keccak(data) if data_hash is None else data_hash
        receipt = self._send("submit_batch", batch_index, _bytes32(prev_root),
                             _bytes32(new_root), _bytes32(committed), deposit_count,
                             forced_count, data, sender=sender)
        return BatchSubmittedEvent.from_receipt(receipt)

    def dispute(self, batch_index: int, *, sender: LocalAccount) -> BatchDisputedEvent:
        return BatchDisputedEvent.from_receipt(self._send("dispute", batch_index, sender=sender))

    def claim_withdrawal(self, batch_index: int, leaf_index: int, leaf: bytes,
                         proof: Sequence[bytes], *,
                         sender: LocalAccount) -> WithdrawalClaimedEvent:
        receipt = self._send("claim_withdrawal", batch_index, leaf_index, leaf,
                             _proof(proof), sender=sender)
        return WithdrawalClaimedEvent.from_receipt(receipt)

    def request_forced_withdrawal(self, subaccount: int, amount: int, *,
                                  sender: LocalAccount) -> ForcedWithdrawalRequestedEvent:
        receipt = self._send("request_forced_withdrawal", subaccount, amount, sender=sender)
        return ForcedWithdrawalRequestedEvent.from_receipt(receipt)

    def freeze(self, *, sender: LocalAccount) -> FrozenEvent:
        return FrozenEvent.from_receipt(self._send("freeze", sender=sender))

    def escape_register_market(self, leaf_index: int, leaf: bytes, proof: Sequence[bytes], *,
                               sender: LocalAccount) -> EscapeMarketRegisteredEvent:
        receipt = self._send("escape_register_market", leaf_index, leaf, _proof(proof),
                             sender=sender)
        return EscapeMarketRegisteredEvent.from_receipt(receipt)

    def escape_register_account(self, leaf_index: int, leaf: bytes, proof: Sequence[bytes], *,
                                sender: LocalAccount) -> EscapeRegisteredEvent:
        receipt = self._send("escape_register_account", leaf_index, leaf, _proof(proof),
                             sender=sender)
        return EscapeRegisteredEvent.from_receipt(receipt)

    def escape_register_withdrawal(self, leaf_index: int, leaf: bytes, proof: Sequence[bytes],
                                   *, sender: LocalAccount) -> EscapeRegisteredEvent:
        receipt = self._send("escape_register_withdrawal", leaf_index, leaf, _proof(proof),
                             sender=sender)
        return EscapeRegisteredEvent.from_receipt(receipt)

    def escape_withdraw_account(self, owner: str, subaccount: int, *,
                                sender: LocalAccount) -> EscapePaidEvent:
        receipt = self._send("escape_withdraw_account", owner, subaccount, sender=sender)
        return EscapePaidEvent.from_receipt(receipt)

    def escape_withdraw_withdrawal(self, withdrawal_id: int, *,
                                   sender: LocalAccount) -> EscapePaidEvent:
        receipt = self._send("escape_withdraw_withdrawal", withdrawal_id, sender=sender)
        return EscapePaidEvent.from_receipt(receipt)

    def refund_deposit(self, deposit_id: int, *, sender: LocalAccount) -> DepositRefundedEvent:
        receipt = self._send("refund_deposit", deposit_id, sender=sender)
        return DepositRefundedEvent.from_receipt(receipt)

    # events

    def l1_inputs(self, cursor: int, confirmations: int) -> L1Inputs:
        """Deposits and forced-withdrawal requests of blocks ``cursor ..`` that are
        ``confirmations`` deep (see ``Chain.watch``); pass the returned cursor next time."""
        result = self.chain.watch(self.handle, cursor, confirmations,
                                  (DepositEvent.EVENT_NAME,
                                   ForcedWithdrawalRequestedEvent.EVENT_NAME))
        deposits = tuple(DepositEvent.from_event(event) for event in result.events
                         if event.name == DepositEvent.EVENT_NAME)
        forced = tuple(ForcedWithdrawalRequestedEvent.from_event(event)
                       for event in result.events
                       if event.name == ForcedWithdrawalRequestedEvent.EVENT_NAME)
        return L1Inputs(deposits, forced, result.cursor)

    def events(self, from_block: int, to_block: int) -> list[ChainEvent]:
        """Every settlement event of the block range, typed, in chain order."""
        return [typed_event(event)
                for event in self.chain.events(self.handle, from_block, to_block)]

    # views

    def operator(self) -> ChecksumAddress:
        return self._view("operator")  # type: ignore[no-any-return]

    def genesis_root(self) -> bytes:
        return bytes(self._view("genesis_root"))

    def challenge_window_s(self) -> int:
        return int(self._view("challenge_window_s"))

    def forced_deadline_s(self) -> int:
        return int(self._view("forced_deadline_s"))

    def escape_period_s(self) -> int:
        return int(self._view("escape_period_s"))

    def is_challenger(self, account: str) -> bool:
        return bool(self._view("is_challenger", account))

    def latest_batch(self) -> int:
        return int(self._view("latest_batch"))

    def latest_finalized_batch(self) -> int:
        return int(self._view("latest_finalized_batch"))

    def is_finalized(self, batch_index: int) -> bool:
        return bool(self._view("is_finalized", batch_index))

    def batch(self, batch_index: int) -> BatchInfo:
        root, data_hash, deposit_count, forced_count, submitted_at = self._view("batch",
                                                                                 batch_index)
        return BatchInfo(bytes(root), bytes(data_hash), int(deposit_count), int(forced_count),
                         int(submitted_at))

    def deposit_count(self) -> int:
        return int(self._view("deposit_count"))

    def deposit_info(self, deposit_id: int) -> tuple[ChecksumAddress, int]:
        """The depositor and the amount of a deposit."""
        depositor, amount = self._view("deposit_info", deposit_id)
        return depositor, int(amount)

    def cumulative_deposited(self, deposit_id: int) -> int:
        return int(self._view("cumulative_deposited", deposit_id))

    def deposit_refunded(self, deposit_id: int) -> bool:
        return bool(self._view("deposit_refunded", deposit_id))

    def forced_request_count(self) -> int:
        return int(self._view("forced_request_count"))

    def forced_requested_at(self, request_id: int) -> int:
        return int(self._view("forced_requested_at", request_id))

    def withdrawal_paid(self, withdrawal_id: int) -> bool:
        return bool(self._view("withdrawal_paid", withdrawal_id))

    def freezable(self) -> bool:
        return bool(self._view("freezable"))

    def frozen(self) -> bool:
        return bool(self._view("frozen"))

    def frozen_at(self) -> int:
        return int(self._view("frozen_at"))

    def escape_batch(self) -> int:
        return int(self._view("escape_batch"))

    def escape_root(self) -> bytes:
        return bytes(self._view("escape_root"))

    def escape_deposit_count(self) -> int:
        return int(self._view("escape_deposit_count"))

    def escape_pool(self) -> int:
        return int(self._view("escape_pool"))

    def escape_total_claims(self) -> int:
        return int(self._view("escape_total_claims"))

    def escape_paid_total(self) -> int:
        return int(self._view("escape_paid_total"))

    def escape_ends_at(self) -> int:
        return int(self._view("escape_ends_at"))

    def escape_market(self, market_id: int) -> EscapeMarketInfo:
        price, lot, registered = self._view("escape_markets", market_id)
        return EscapeMarketInfo(int(price), int(lot), bool(registered))

    def escape_account_claim(self, owner: str, subaccount: int) -> int:
        return int(self._view("escape_account_claim", owner, subaccount))

    def escape_account_paid(self, owner: str, subaccount: int) -> bool:
        return bool(self._view("escape_account_paid", owner, subaccount))

    def escape_withdrawal_claim(self, withdrawal_id: int) -> int:
        return int(self._view("escape_withdrawal_claim", withdrawal_id))

    def escape_withdrawal_owner(self, withdrawal_id: int) -> ChecksumAddress:
        return self._view("escape_withdrawal_owner", withdrawal_id)  # type: ignore[no-any-return]

    def escape_equity(self, leaf: bytes) -> int:
        """A subaccount leaf's equity at the registered escape prices (signed quantums)."""
        return int(self._view("escape_equity", leaf))

    def escape_payout(self, claim: int) -> int:
        return int(self._view("escape_payout", claim))

    def _send(self, function: str, *args: Any, sender: LocalAccount) -> Receipt:
        return self.chain.transact(self.handle, function, *args, sender=sender)

    def _view(self, function: str, *args: Any) -> Any:
        return self.chain.call(self.handle, function, *args)


def _bytes32(value: bytes) -> bytes:
    if len(value) != HASH_BYTES:
        raise ValueError(f"expected {HASH_BYTES} bytes, got {len(value)}")
    return bytes(value)


def _proof(proof: Sequence[bytes]) -> list[bytes]:
    if len(proof) != TREE_DEPTH:
        raise ValueError(f"a proof is exactly {TREE_DEPTH} siblings, got {len(proof)}")
    return [_bytes32(sibling) for sibling in proof]
