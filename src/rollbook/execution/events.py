"""Receipts and the events a transaction emits.

Events are NamedTuples: cheap to create on the matching hot path, immutable, and encodable in a
fixed field order. A receipt's ``code`` is ``ErrorCode.OK`` or the stable rejection code; a
rejected transaction has no events and changed no state.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

from rollbook.execution.errors import ErrorCode

__all__ = [
    "CancelReason",
    "DepositCredited",
    "Event",
    "Fill",
    "ForcedWithdrawalProcessed",
    "FundingPaid",
    "Liquidated",
    "OrderCancelled",
    "OrderPlaced",
    "OrderReduced",
    "PositionDeleveraged",
    "Receipt",
    "TransferDone",
    "WithdrawalQueued",
]


class CancelReason(IntEnum):
    """Why an order left the book without filling (stable codes)."""

    USER = 1
    SELF_TRADE = 2
    MAKER_MARGIN = 3
    IOC_REMAINDER = 4
    LIQUIDATION = 5
    MODIFIED = 6
    FILL_LIMIT = 7
    OPEN_INTEREST_CAP = 8


class OrderPlaced(NamedTuple):
    order_id: int
    market_id: int
    owner: bytes
    subaccount: int
    is_buy: bool
    price_ticks: int
    size_lots: int
    client_order_id: int


class OrderReduced(NamedTuple):
    """A modify shrank a resting order in place; it stays live and keeps its priority."""

    order_id: int
    market_id: int
    removed_lots: int
    remaining_lots: int


class Fill(NamedTuple):
    market_id: int
    maker_order_id: int
    taker_order_id: int  # 0 for liquidation fills that never rest
    maker_owner: bytes
    maker_subaccount: int
    taker_owner: bytes
    taker_subaccount: int
    taker_is_buy: bool
    price_ticks: int
    size_lots: int
    maker_fee_quantums: int  # negative is a rebate paid to the maker
    taker_fee_quantums: int  # for liquidations, the penalty paid to the insurance fund


class OrderCancelled(NamedTuple):
    order_id: int
    market_id: int
    size_lots: int  # the remaining size removed
    reason: int


class DepositCredited(NamedTuple):
    deposit_id: int
    owner: bytes
    subaccount: int
    amount_quantums: int


class WithdrawalQueued(NamedTuple):
    withdrawal_id: int
    owner: bytes
    subaccount: int
    amount_quantums: int


class ForcedWithdrawalProcessed(NamedTuple):
    request_id: int
    owner: bytes
    subaccount: int
    requested_quantums: int
    withdrawn_quantums: int  # what the margin rules let go; 0 means nothing was withdrawable
    withdrawal_id: int  # the pending withdrawal it created, 0 when nothing was withdrawn


class TransferDone(NamedTuple):
    owner: bytes
    subaccount: int
    to_owner: bytes
    to_subaccount: int
    amount_quantums: int


class FundingPaid(NamedTuple):
    market_id: int
    rate_ppm: int
    paid_quantums: int
    received_quantums: int
    residual_quantums: int  # paid - received, credited to the insurance fund


class Liquidated(NamedTuple):
    owner: bytes
    subaccount: int
    market_id: int
    size_lots_book: int
    size_lots_backstop: int
    size_lots_deleveraged: int
    penalty_quantums: int


class PositionDeleveraged(NamedTuple):
    market_id: int
    owner: bytes
    subaccount: int
    size_lots: int  # signed change of the counterparty's position
    quote_quantums: int  # collateral paid (negative) or received by the counterparty


Event = (
    OrderPlaced
    | Fill
    | OrderCancelled
    | OrderReduced
    | DepositCredited
    | WithdrawalQueued
    | TransferDone
    | FundingPaid
    | Liquidated
    | PositionDeleveraged
    | ForcedWithdrawalProcessed
)


class Receipt(NamedTuple):
    code: ErrorCode
    message: str
    events: tuple[Event, ...]
    cost_units: int

    @property
    def ok(self) -> bool:
        return self.code == ErrorCode.OK
