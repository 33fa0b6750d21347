"""Receipts and the events a transaction emits.

A receipt's ``code`` is ``ErrorCode.OK`` or the stable rejection code; a rejected transaction has
no events and changed no state. Events are immutable records, encodable in a fixed field order.
The receipt and the order path's events (``OrderPlaced``, ``OrderCancelled``, ``OrderReduced``,
``Fill``: nearly every event the venue emits) are frozen dataclasses that the compiled build
constructs natively, defined in ``receipts`` and re-exported here; the rarer events are
NamedTuples, in this module (left interpreted in the compiled build: the gateway's wire schema
reads their generic annotations, which mypyc would erase; see ``setup.py``).
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

from rollbook.execution.receipts import Fill, OrderCancelled, OrderPlaced, OrderReduced, Receipt

__all__ = [
    "CancelReason",
    "DepositCredited",
    "Event",
    "ExpirySettled",
    "Fill",
    "ForcedWithdrawalProcessed",
    "FundingPaid",
    "Liquidated",
    "MmpTriggered",
    "OptionDelisted",
    "OptionListed",
    "OptionSettled",
    "OrderCancelled",
    "OrderPlaced",
    "OrderReduced",
    "PortfolioMarginSet",
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
    QUOTE_REPLACED = 9  # a mass quote replaced the ladder it belonged to
    EXPIRED = 10  # the option expired: its book closed
    DELISTED = 11


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


class OptionListed(NamedTuple):
    market_id: int
    index_id: int
    expiry_ms: int
    strike_quantums: int
    option_type: int


class OptionDelisted(NamedTuple):
    market_id: int


class OptionSettled(NamedTuple):
    """One position settled at expiry; ``cashflow_quantums`` is credited (negative: paid)."""

    market_id: int
    owner: bytes
    subaccount: int
    size_lots: int
    cashflow_quantums: int


class ExpirySettled(NamedTuple):
    """Every option of one (index, expiry) settled.

    Longs receive their payoff rounded down and shorts pay theirs rounded up; the difference
    (``residual_quantums``) goes to the insurance fund. A flat group left with negative equity
    is made whole (``shortfall_quantums``): by the insurance fund down to its maintenance
    margin (``insurance_quantums``), then pro rata by the groups that received a payoff, within
    what they received and their equity (``haircut_quantums``); anything left is the insurance
    fund's (``uncovered_quantums``).
    """

    index_id: int
    expiry_ms: int
    settlement_price_quantums: int
    markets: int
    residual_quantums: int
    shortfall_quantums: int
    insurance_quantums: int
    haircut_quantums: int
    uncovered_quantums: int


class MmpTriggered(NamedTuple):
    """Market-maker protection fired: the maker's quotes on the index are cancelled (one event
    for the whole ladder, listing the order ids) and new quotes wait for the freeze to end."""

    owner: bytes
    subaccount: int
    index_id: int
    cancelled_order_ids: tuple[int, ...]
    frozen_until_ms: int  # -1: until the maker resets it with SetMmp


class PortfolioMarginSet(NamedTuple):
    owner: bytes
    subaccount: int
    enabled: bool


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
    | OptionListed
    | OptionDelisted
    | OptionSettled
    | ExpirySettled
    | MmpTriggered
    | PortfolioMarginSet
)
