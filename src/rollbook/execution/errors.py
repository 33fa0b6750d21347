"""Stable rejection codes of the state transition function.

A rejected transaction produces a receipt carrying one of these codes and its message, and
changes no state. Codes are part of the protocol: they appear in receipts, in the canonical
encoding of receipts and in client SDKs, so a code is never renumbered or reused; new codes are
appended.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ERROR_MESSAGES", "ErrorCode", "TxRejected"]


class ErrorCode(IntEnum):
    OK = 0
    # --- envelope and metering ---
    BATCH_COST_LIMIT = 1
    MALFORMED_TRANSACTION = 2
    # --- accounts and collateral ---
    ACCOUNT_NOT_FOUND = 10
    INVALID_ADDRESS = 11
    INVALID_SUBACCOUNT = 12
    INVALID_AMOUNT = 13
    DEPOSIT_ALREADY_CREDITED = 14
    DEPOSIT_OUT_OF_ORDER = 15
    INSUFFICIENT_MARGIN = 16
    WITHDRAWAL_EXCEEDS_FREE_COLLATERAL = 17
    ACCOUNT_IN_LIQUIDATION = 18
    TRANSFER_TO_SELF = 19
    ACCOUNTS_LIMIT = 20
    MARGIN_MODE_BUSY = 21
    NOT_ISOLATED = 22
    POSITIONS_LIMIT = 23
    ISOLATED_GROUPS_LIMIT = 24
    FORCED_WITHDRAWAL_ALREADY_PROCESSED = 25
    FORCED_WITHDRAWAL_OUT_OF_ORDER = 26
    # --- markets and orders ---
    UNKNOWN_MARKET = 30
    MARKET_NOT_ACTIVE = 31
    ORACLE_PRICE_MISSING = 32
    INVALID_PRICE = 33
    INVALID_SIZE = 34
    ORDER_SIZE_ABOVE_MAX = 35
    PRICE_OUTSIDE_BAND = 36
    POST_ONLY_WOULD_CROSS = 37
    FOK_NOT_FILLED = 38
    REDUCE_ONLY_WOULD_INCREASE = 39
    REDUCE_ONLY_NOT_IOC = 40
    OPEN_ORDERS_LIMIT = 41
    DUPLICATE_CLIENT_ORDER_ID = 42
    ORDER_NOT_FOUND = 43
    OPEN_INTEREST_CAP = 44
    INVALID_ORDER_TYPE = 45
    MODIFY_NOTHING = 46
    # --- options, quotes and market-maker protection ---
    NOT_AN_OPTION_MARKET = 47
    MARKET_ID_TAKEN = 48
    OPTION_CLASS_UNKNOWN = 49
    OPTION_TERMS_INVALID = 50
    OPTION_LISTING_LIMIT = 51
    MARKET_HAS_OPEN_INTEREST = 52
    MASS_QUOTE_INVALID = 53
    MMP_FROZEN = 54
    MMP_CONFIG_INVALID = 55
    # --- oracle and operator ---
    ORACLE_SIGNATURES_INSUFFICIENT = 60
    ORACLE_SIGNATURE_INVALID = 61
    ORACLE_STALE = 62
    ORACLE_UNKNOWN_INDEX = 63
    VOLATILITY_INVALID = 64
    VOLATILITY_UNKNOWN_EXPIRY = 65
    EXPIRY_UNKNOWN = 66
    EXPIRY_NOT_REACHED = 67
    EXPIRY_ALREADY_SETTLED = 68


ERROR_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.OK: "ok",
    ErrorCode.BATCH_COST_LIMIT: "transaction does not fit in the batch cost limit",
    ErrorCode.MALFORMED_TRANSACTION: "transaction fields are out of range",
    ErrorCode.ACCOUNT_NOT_FOUND: "subaccount has never been funded",
    ErrorCode.INVALID_ADDRESS: "address must be 20 bytes and not the zero address",
    ErrorCode.INVALID_SUBACCOUNT: "subaccount number is out of range",
    ErrorCode.INVALID_AMOUNT: "amount must be positive and within limits",
    ErrorCode.DEPOSIT_ALREADY_CREDITED: "deposit id was already credited",
    ErrorCode.DEPOSIT_OUT_OF_ORDER: "deposit id skips an uncredited deposit",
    ErrorCode.INSUFFICIENT_MARGIN: "account would not meet its initial margin requirement",
    ErrorCode.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL: (
        "amount exceeds free collateral (unrealised profit is not withdrawable)"
    ),
    ErrorCode.ACCOUNT_IN_LIQUIDATION: "account is being liquidated",
    ErrorCode.TRANSFER_TO_SELF: "transfer source and destination are the same",
    ErrorCode.ACCOUNTS_LIMIT: "the venue holds the maximum number of subaccounts",
    ErrorCode.MARGIN_MODE_BUSY: "margin mode can change only with no position and no open orders",
    ErrorCode.NOT_ISOLATED: "the position is not in isolated margin mode",
    ErrorCode.POSITIONS_LIMIT: (
        "subaccount holds the maximum number of markets (positions or open orders)"),
    ErrorCode.ISOLATED_GROUPS_LIMIT: "subaccount holds the maximum number of isolated positions",
    ErrorCode.FORCED_WITHDRAWAL_ALREADY_PROCESSED: (
        "forced withdrawal request was already processed"),
    ErrorCode.FORCED_WITHDRAWAL_OUT_OF_ORDER: "forced withdrawal request skips an earlier one",
    ErrorCode.UNKNOWN_MARKET: "unknown market",
    ErrorCode.MARKET_NOT_ACTIVE: "market is not active",
    ErrorCode.ORACLE_PRICE_MISSING: "market has no oracle price yet",
    ErrorCode.INVALID_PRICE: "price must be a positive number of ticks",
    ErrorCode.INVALID_SIZE: "size must be a positive number of lots",
    ErrorCode.ORDER_SIZE_ABOVE_MAX: "order size exceeds the market maximum",
    ErrorCode.PRICE_OUTSIDE_BAND: "limit price is too far from the oracle price",
    ErrorCode.POST_ONLY_WOULD_CROSS: "post-only order would take liquidity",
    ErrorCode.FOK_NOT_FILLED: "fill-or-kill order could not be filled completely",
    ErrorCode.REDUCE_ONLY_WOULD_INCREASE: "reduce-only order would increase the position",
    ErrorCode.REDUCE_ONLY_NOT_IOC: "reduce-only orders must be IOC, FOK or market",
    ErrorCode.OPEN_ORDERS_LIMIT: "too many open orders for this subaccount",
    ErrorCode.DUPLICATE_CLIENT_ORDER_ID: "client order id is already used by an open order",
    ErrorCode.ORDER_NOT_FOUND: "no such open order for this subaccount",
    ErrorCode.OPEN_INTEREST_CAP: "market open interest cap reached",
    ErrorCode.INVALID_ORDER_TYPE: "invalid combination of order type and time in force",
    ErrorCode.MODIFY_NOTHING: "modify changes neither price nor size",
    ErrorCode.NOT_AN_OPTION_MARKET: "market is not an option market",
    ErrorCode.MARKET_ID_TAKEN: "market id is already in use",
    ErrorCode.OPTION_CLASS_UNKNOWN: "no option class is configured for this index",
    ErrorCode.OPTION_TERMS_INVALID: "option expiry, strike or type is invalid or already listed",
    ErrorCode.OPTION_LISTING_LIMIT: "the venue lists the maximum number of options",
    ErrorCode.MARKET_HAS_OPEN_INTEREST: "market has open positions and cannot be delisted",
    ErrorCode.MASS_QUOTE_INVALID: "mass quote is malformed or quotes another underlying",
    ErrorCode.MMP_FROZEN: "market-maker protection froze quoting on this underlying",
    ErrorCode.MMP_CONFIG_INVALID: "market-maker protection settings are out of range",
    ErrorCode.ORACLE_SIGNATURES_INSUFFICIENT: "oracle update lacks the signature threshold",
    ErrorCode.ORACLE_SIGNATURE_INVALID: "oracle signature is malformed, high-s or not a signer",
    ErrorCode.ORACLE_STALE: (
        "oracle update is older than the current one or too far from batch time"),
    ErrorCode.ORACLE_UNKNOWN_INDEX: "oracle update names an unknown index",
    ErrorCode.VOLATILITY_INVALID: "volatility smile fails the SVI no-arbitrage checks",
    ErrorCode.VOLATILITY_UNKNOWN_EXPIRY: "volatility update names an expiry with no live option",
    ErrorCode.EXPIRY_UNKNOWN: "no option is listed on this index and expiry",
    ErrorCode.EXPIRY_NOT_REACHED: "the options cannot expire yet",
    ErrorCode.EXPIRY_ALREADY_SETTLED: "the options of this expiry are already settled",
}

assert set(ERROR_MESSAGES) == set(ErrorCode), "every error code needs a message"


class TxRejected(Exception):
    """Raised inside a transaction handler before any state is mutated."""

    def __init__(self, code: ErrorCode, detail: str = "") -> None:
        self.code = code
        self.detail = detail
        message = ERROR_MESSAGES[code]
        super().__init__(f"{code.name}: {message}" + (f" ({detail})" if detail else ""))

    @property
    def message(self) -> str:
        base = ERROR_MESSAGES[self.code]
        return f"{base} ({self.detail})" if self.detail else base
