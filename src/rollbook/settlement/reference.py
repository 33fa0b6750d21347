"""Bit-exact Python model of the settlement contract's integer arithmetic and leaf layouts.

``contracts/Settlement.vy`` computes a handful of integers that decide who gets paid what; this
module computes the same integers the same way, so that tests can compare the two over
generated inputs and off-chain code (the node, the verifier, a user's wallet) can predict the
contract without calling it. It is also the one Python source of the contract's constants.

Invariants (each one a property the contract tests check):

- Leaves are the ABI encodings of docs/settlement.md; ``encode_*`` and ``decode_*`` are
  inverse, and a canonical encoding decodes to the same values here and in the contract's
  ``abi_decode``. ``decode_*`` rejects (``ValueError``) another kind's leaf, a static leaf of
  the wrong length, non-zero padding and arrays beyond the contract's bounds, as the contract
  does; the two decoders may differ on other non-canonical encodings (trailing bytes, unusual
  offsets), which no valid tree holds, since a leaf reaches the decoder only through a proof.
- ``div_floor_signed`` is the contract's ``_div_floor``: truncate toward zero (EVM ``SDIV``),
  then step down when a negative quotient was truncated; it always equals Python's ``//``.
- ``escape_equity`` is the contract's ``_equity_quantums``: the sum of the collaterals, then of
  ``rollbook.execution.margin.position_value_quantums`` (the STF's own formula) over the
  positions, in leaf order. Wherever the contract's checked int256 arithmetic would revert,
  it raises ``OverflowError``, at the same step; a position in a market without registered
  prices raises ``KeyError``.
- A registered claim is ``escape_claim(equity) = max(0, equity)`` (zero claims are not
  registered); ``escape_payout`` pays it in full when the registered total fits in the pool,
  otherwise ``claim * pool // total``, so the payouts never sum above the pool.
- The escape pool is the token balance minus the deposits the escape root has not credited
  (``uncredited_deposits``), floored at zero; those deposits are refunded in full.

Integers only; no floats anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode

from rollbook.execution.config import DEPOSIT_QUANTUMS_MAX as _STF_DEPOSIT_QUANTUMS_MAX
from rollbook.execution.config import (
    GROUPS_PER_SUBACCOUNT_MAX,
    POSITIONS_PER_SUBACCOUNT_MAX,
    SUBACCOUNT_NUMBER_MAX,
)
from rollbook.execution.margin import position_value_quantums
from rollbook.execution.units import NANOUNITS_PER_UNIT

__all__ = [
    "ADDRESS_BYTES",
    "BATCH_DATA_BYTES_MAX",
    "CHALLENGERS_MAX",
    "DEPOSIT_QUANTUMS_MAX",
    "DEPOSIT_QUANTUMS_MIN",
    "DURATION_S_MAX",
    "FORCED_WITHDRAWAL_QUANTUMS_MAX",
    "FORCED_WITHDRAWAL_QUANTUMS_MIN",
    "GROUPS_PER_SUBACCOUNT_MAX",
    "INT256_MAX",
    "INT256_MIN",
    "LEAF_KIND_MARKET",
    "LEAF_KIND_SUBACCOUNT",
    "LEAF_KIND_WITHDRAWAL",
    "MARKET_LEAF_BYTES",
    "NANOUNITS_PER_UNIT",
    "POSITIONS_PER_SUBACCOUNT_MAX",
    "SUBACCOUNT_LEAF_BYTES_MAX",
    "SUBACCOUNT_NUMBER_MAX",
    "TREE_DEPTH",
    "UINT256_MAX",
    "WITHDRAWAL_LEAF_BYTES",
    "Collateral",
    "EscapeMarket",
    "MarketLeaf",
    "Position",
    "SubaccountLeaf",
    "WithdrawalLeaf",
    "cumulative_deposits",
    "decode_market_leaf",
    "decode_subaccount_leaf",
    "decode_withdrawal_leaf",
    "div_floor_signed",
    "encode_market_leaf",
    "encode_subaccount_leaf",
    "encode_withdrawal_leaf",
    "escape_claim",
    "escape_equity",
    "escape_payout",
    "escape_pool",
    "leaf_kind",
    "uncredited_deposits",
]

# --- the contract's constants (Settlement.vy; tests compare them with the compiled contract)

TREE_DEPTH: Final = 32  # rollbook.commitment.merkle: 32 siblings per proof

LEAF_KIND_MARKET: Final = 3
LEAF_KIND_SUBACCOUNT: Final = 4
LEAF_KIND_WITHDRAWAL: Final = 6

WORD_BYTES: Final = 32
ADDRESS_BYTES: Final = 20
MARKET_LEAF_BYTES: Final = 13 * WORD_BYTES  # kind + 12 static fields
WITHDRAWAL_LEAF_BYTES: Final = 6 * WORD_BYTES  # kind + 5 static fields
# 5 head words (kind, owner, number, two array offsets), then each array's length word and its
# elements (2 and 6 words) at the STF's bounds
SUBACCOUNT_LEAF_BYTES_MAX: Final = (
    5 * WORD_BYTES
    + (1 + 2 * GROUPS_PER_SUBACCOUNT_MAX) * WORD_BYTES
    + (1 + 6 * POSITIONS_PER_SUBACCOUNT_MAX) * WORD_BYTES
)

# the STF's deposit bounds (execution.config.DEPOSIT_QUANTUMS_MAX, SUBACCOUNT_NUMBER_MAX), so
# that every deposit the contract accepts is creditable
DEPOSIT_QUANTUMS_MIN: Final = 1
DEPOSIT_QUANTUMS_MAX: Final = _STF_DEPOSIT_QUANTUMS_MAX
# a forced withdrawal asks for min(amount, what margin lets go): bounded by the STF's 64-bit
# amount fields
FORCED_WITHDRAWAL_QUANTUMS_MIN: Final = 1
FORCED_WITHDRAWAL_QUANTUMS_MAX: Final = 2**64 - 1
# every submission pays memory expansion to this bound (about 14,400 gas at 64 KiB)
BATCH_DATA_BYTES_MAX: Final = 65_536
CHALLENGERS_MAX: Final = 16
DURATION_S_MAX: Final = 10 * 365 * 86_400  # longer is a unit mistake (ms passed as s)

INT256_MIN: Final = -(2**255)
INT256_MAX: Final = 2**255 - 1
UINT256_MAX: Final = 2**256 - 1

# --- leaf layouts: ABI types in field order (docs/settlement.md)

_MARKET_TYPES: Final = (
    "uint256", "uint256", "uint256", "uint256", "uint256", "uint256", "uint256", "uint256",
    "int256", "int256", "uint256", "uint256", "int256",
)
_COLLATERAL_TYPE: Final = "(uint256,int256)"
_POSITION_TYPE: Final = "(uint256,uint256,int256,int256,uint256,uint256)"
_SUBACCOUNT_TYPES: Final = (
    "uint256", "address", "uint256", f"{_COLLATERAL_TYPE}[]", f"{_POSITION_TYPE}[]",
)
_WITHDRAWAL_TYPES: Final = ("uint256", "uint256", "address", "uint256", "uint256", "uint256")
_STATIC_LEAF_BYTES: Final = {
    LEAF_KIND_MARKET: MARKET_LEAF_BYTES, LEAF_KIND_WITHDRAWAL: WITHDRAWAL_LEAF_BYTES,
}


@dataclass(frozen=True, slots=True)
class MarketLeaf:
    """Leaf kind 3 (the kind itself is implied)."""

    market_id: int
    instrument_kind: int
    index_id: int
    index_price_quantums: int
    lot_size_nanounits: int
    tick_size_quantums: int
    open_interest_lots: int
    cumulative_funding_ppm: int
    premium_sum_ppm: int
    premium_sample_count: int
    last_sample_ms: int
    last_funding_ms: int


@dataclass(frozen=True, slots=True)
class Collateral:
    group: int
    collateral_quantums: int


@dataclass(frozen=True, slots=True)
class Position:
    group: int
    market_id: int
    size_lots: int
    entry_notional_quantums: int
    open_bid_lots: int
    open_ask_lots: int


@dataclass(frozen=True, slots=True)
class SubaccountLeaf:
    """Leaf kind 4. ``owner`` is the 20-byte address (zero: the insurance fund)."""

    owner: bytes
    number: int
    collaterals: tuple[Collateral, ...]
    positions: tuple[Position, ...]


@dataclass(frozen=True, slots=True)
class WithdrawalLeaf:
    """Leaf kind 6."""

    withdrawal_id: int
    owner: bytes
    subaccount: int
    amount_quantums: int
    batch_index: int


@dataclass(frozen=True, slots=True)
class EscapeMarket:
    """A market's prices as ``escape_register_market`` stores them."""

    index_price_quantums: int
    lot_size_nanounits: int


# --- encoding and decoding


def leaf_kind(leaf: bytes) -> int:
    """The first ABI word of a leaf (the contract's ``extract32(leaf, 0)``)."""
    if len(leaf) < WORD_BYTES:
        raise ValueError(f"a leaf is at least {WORD_BYTES} bytes, got {len(leaf)}")
    return int.from_bytes(leaf[:WORD_BYTES], "big")


def encode_market_leaf(market: MarketLeaf) -> bytes:
    return _encode(_MARKET_TYPES, (
        LEAF_KIND_MARKET, market.market_id, market.instrument_kind, market.index_id,
        market.index_price_quantums, market.lot_size_nanounits, market.tick_size_quantums,
        market.open_interest_lots, market.cumulative_funding_ppm, market.premium_sum_ppm,
        market.premium_sample_count, market.last_sample_ms, market.last_funding_ms,
    ))


def decode_market_leaf(leaf: bytes) -> MarketLeaf:
    """Raises ``ValueError`` for another kind, a wrong length or a malformed encoding."""
    fields = _decode(_MARKET_TYPES, leaf, LEAF_KIND_MARKET, "market")
    return MarketLeaf(*(int(value) for value in fields[1:]))


def encode_subaccount_leaf(account: SubaccountLeaf) -> bytes:
    if len(account.collaterals) > GROUPS_PER_SUBACCOUNT_MAX:
        raise ValueError(f"more than {GROUPS_PER_SUBACCOUNT_MAX} groups")
    if len(account.positions) > POSITIONS_PER_SUBACCOUNT_MAX:
        raise ValueError(f"more than {POSITIONS_PER_SUBACCOUNT_MAX} position records")
    return _encode(_SUBACCOUNT_TYPES, (
        LEAF_KIND_SUBACCOUNT, _address(account.owner), account.number,
        [(c.group, c.collateral_quantums) for c in account.collaterals],
        [(p.group, p.market_id, p.size_lots, p.entry_notional_quantums, p.open_bid_lots,
          p.open_ask_lots) for p in account.positions],
    ))


def decode_subaccount_leaf(leaf: bytes) -> SubaccountLeaf:
    """Raises ``ValueError`` for another kind, a malformed encoding, or arrays beyond the
    contract's ``DynArray`` bounds (``GROUPS_PER_SUBACCOUNT_MAX``,
    ``POSITIONS_PER_SUBACCOUNT_MAX``)."""
    if len(leaf) > SUBACCOUNT_LEAF_BYTES_MAX:
        raise ValueError(f"a subaccount leaf is at most {SUBACCOUNT_LEAF_BYTES_MAX} bytes")
    fields = _decode(_SUBACCOUNT_TYPES, leaf, LEAF_KIND_SUBACCOUNT, "subaccount")
    collaterals = tuple(Collateral(int(group), int(amount)) for group, amount in fields[3])
    positions = tuple(Position(*(int(value) for value in record)) for record in fields[4])
    if len(collaterals) > GROUPS_PER_SUBACCOUNT_MAX:
        raise ValueError(f"more than {GROUPS_PER_SUBACCOUNT_MAX} groups")
    if len(positions) > POSITIONS_PER_SUBACCOUNT_MAX:
        raise ValueError(f"more than {POSITIONS_PER_SUBACCOUNT_MAX} position records")
    return SubaccountLeaf(bytes.fromhex(fields[1][2:]), int(fields[2]), collaterals, positions)


def encode_withdrawal_leaf(withdrawal: WithdrawalLeaf) -> bytes:
    return _encode(_WITHDRAWAL_TYPES, (
        LEAF_KIND_WITHDRAWAL, withdrawal.withdrawal_id, _address(withdrawal.owner),
        withdrawal.subaccount, withdrawal.amount_quantums, withdrawal.batch_index,
    ))


def decode_withdrawal_leaf(leaf: bytes) -> WithdrawalLeaf:
    """Raises ``ValueError`` for another kind, a wrong length or a malformed encoding."""
    fields = _decode(_WITHDRAWAL_TYPES, leaf, LEAF_KIND_WITHDRAWAL, "withdrawal")
    return WithdrawalLeaf(int(fields[1]), bytes.fromhex(fields[2][2:]), int(fields[3]),
                          int(fields[4]), int(fields[5]))


def _encode(types: Sequence[str], values: Sequence[Any]) -> bytes:
    return abi_encode(types, values)


def _decode(types: Sequence[str], leaf: bytes, kind: int, name: str) -> tuple[Any, ...]:
    if leaf_kind(leaf) != kind:
        raise ValueError(f"not a {name} leaf: kind {leaf_kind(leaf)}, expected {kind}")
    exact_bytes = _STATIC_LEAF_BYTES.get(kind)
    if exact_bytes is not None and len(leaf) != exact_bytes:
        # Vyper's abi_decode of a static tuple takes exactly its size
        raise ValueError(f"a {name} leaf is {exact_bytes} bytes, got {len(leaf)}")
    try:
        # strict: padding must be zero (an address's high bytes), as Vyper's clamps require
        return abi_decode(types, leaf, strict=True)
    except Exception as error:  # eth_abi raises several unrelated exception types
        raise ValueError(f"malformed {name} leaf: {error}") from error


def _address(owner: bytes) -> str:
    if len(owner) != ADDRESS_BYTES:
        raise ValueError(f"an owner is {ADDRESS_BYTES} bytes, got {len(owner)}")
    return "0x" + owner.hex()


# --- arithmetic


def div_floor_signed(numerator: int, denominator: int) -> int:
    """``floor(numerator / denominator)`` for a positive denominator, as the contract does it.

    The EVM's signed division truncates toward zero; a truncated negative quotient is one
    above the floor, so the contract subtracts one when the numerator is negative and the
    remainder is not zero. Equal to ``numerator // denominator`` (checked here).
    """
    if denominator <= 0:
        raise ValueError("the denominator must be positive")
    _check_int256(numerator)
    truncated = abs(numerator) // denominator
    quotient = truncated if numerator >= 0 else -truncated
    if numerator < 0 and numerator % denominator != 0:
        quotient -= 1
    assert quotient == numerator // denominator
    return quotient


def escape_equity(account: SubaccountLeaf, markets: Mapping[int, EscapeMarket]) -> int:
    """The contract's ``_equity_quantums``: signed equity in quantums at the escape prices.

    ``sum(collateral_quantums) + sum(position_value_quantums(size, price, lot))``, collaterals
    first, then positions, in leaf order. ``OverflowError`` where the contract's checked int256
    arithmetic reverts (a partial sum, ``size * price`` or ``size * price * lot`` outside
    int256, or a price or lot size above ``INT256_MAX``); ``KeyError`` for a position in a
    market without registered prices.
    """
    equity = 0
    for collateral in account.collaterals:
        equity = _check_int256(equity + _check_int256(collateral.collateral_quantums))
    for position in account.positions:
        market = markets[position.market_id]
        price = _check_int256(market.index_price_quantums)
        lot = _check_int256(market.lot_size_nanounits)
        size = _check_int256(position.size_lots)
        _check_int256(_check_int256(size * price) * lot)  # the contract's checked products
        value = position_value_quantums(size, price, lot)
        assert value == div_floor_signed(size * price * lot, NANOUNITS_PER_UNIT)
        equity = _check_int256(equity + value)
    return equity


def escape_claim(equity: int) -> int:
    """What a subaccount may claim: its equity if positive, else nothing (0 is not registered)."""
    return max(0, equity)


def escape_payout(claim: int, pool: int, total_claims: int) -> int:
    """A registered claim's payment: in full if all registered claims fit in the pool, else
    pro rata rounded down, ``claim * pool // total_claims`` (the sum never exceeds the pool).

    ``OverflowError`` where the contract's checked ``claim * pool`` exceeds uint256.
    """
    _check_uint256(claim)
    _check_uint256(pool)
    _check_uint256(total_claims)
    if total_claims <= pool:
        return claim
    return _check_uint256(claim * pool) // total_claims


def cumulative_deposits(amounts: Sequence[int]) -> tuple[int, ...]:
    """``cumulative[i]`` = the total of deposits 1 ..= i, with ``cumulative[0] = 0``: what the
    contract stores per deposit id (packed beside the depositor)."""
    totals = [0]
    for amount in amounts:
        if not DEPOSIT_QUANTUMS_MIN <= amount <= DEPOSIT_QUANTUMS_MAX:
            raise ValueError(f"deposit {amount} outside the contract's bounds")
        totals.append(totals[-1] + amount)
    return tuple(totals)


def uncredited_deposits(cumulative: Sequence[int], credited_count: int) -> int:
    """Deposits above the escape root's ``deposit_count``: ``cumulative[latest] -
    cumulative[credited_count]``, refunded in full after a freeze."""
    if not 0 <= credited_count < len(cumulative):
        raise ValueError(f"credited count {credited_count} outside [0, {len(cumulative) - 1}]")
    return cumulative[-1] - cumulative[credited_count]


def escape_pool(balance: int, uncredited: int) -> int:
    """The pool the escape claims share: the balance less the uncredited deposits, or 0 if a
    final root paid out more than was credited."""
    return max(0, balance - uncredited)


def _check_int256(value: int) -> int:
    if not INT256_MIN <= value <= INT256_MAX:
        raise OverflowError(f"{value} outside int256")
    return value


def _check_uint256(value: int) -> int:
    if not 0 <= value <= UINT256_MAX:
        raise OverflowError(f"{value} outside uint256")
    return value
