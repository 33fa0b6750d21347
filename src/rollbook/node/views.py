"""What the node answers with: acknowledgements, query views and subscription messages.

Frozen, slotted dataclasses of ints, bools, strings, bytes and tuples (and the STF's own
``Receipt`` and events: dataclasses and NamedTuples), so the gateway can serialise them
without knowing the STF. Units are in the names, as everywhere in rollbook; addresses are 20
raw bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from rollbook.execution.errors import ErrorCode
from rollbook.execution.events import Event, Receipt

__all__ = [
    "BATCH_STATUSES",
    "AccountEvent",
    "AccountRiskView",
    "AccountView",
    "Ack",
    "BatchView",
    "BookDelta",
    "BookLevel",
    "BookView",
    "FillView",
    "GreeksView",
    "GroupView",
    "MarketView",
    "NodeStatus",
    "OrderView",
    "PortfolioRiskView",
    "PositionView",
    "RiskGroupView",
    "RiskPositionView",
    "ScenarioView",
    "TradeView",
]

BATCH_STATUSES = ("pending", "submitted", "final", "disputed")


@dataclass(frozen=True, slots=True)
class Ack:
    """A sequenced action: durable when the caller sees it."""

    tx_id: bytes  # keccak256 of the canonical signed (or system) transaction bytes
    signer: bytes  # the recovered address (zero for system transactions)
    sequence: int  # WAL sequence of the entry
    batch_index: int
    receipt: Receipt  # the STF's: code, message, events, cost_units

    @property
    def ok(self) -> bool:
        return self.receipt.code == ErrorCode.OK


@dataclass(frozen=True, slots=True)
class MarketView:
    market_id: int
    symbol: str
    kind: str  # "perpetual" or "option"
    index_id: int
    tick_size_quantums: int
    lot_size_nanounits: int
    mark_price_quantums: int  # the committed mark (the oracle index for a perpetual)
    open_interest_lots: int
    open_interest_lots_max: int
    order_size_lots_max: int
    initial_ppm: int  # of the first margin tier
    maintenance_ppm: int
    maker_fee_ppm: int
    taker_fee_ppm: int
    price_band_ppm: int
    cumulative_funding_ppm: int
    best_bid_ticks: int | None
    best_ask_ticks: int | None


class BookLevel(NamedTuple):
    price_ticks: int
    size_lots: int
    order_count: int


@dataclass(frozen=True, slots=True)
class BookView:
    """An L2 snapshot; ``sequence`` is the market's book-delta sequence it corresponds to."""

    market_id: int
    sequence: int
    batch_index: int
    bids: tuple[BookLevel, ...]  # best first
    asks: tuple[BookLevel, ...]


@dataclass(frozen=True, slots=True)
class BookDelta:
    """Levels changed by one entry: ``(price_ticks, size_lots)``, size 0 = the level is gone.

    ``sequence`` is consecutive per market, starting after the snapshot's."""

    market_id: int
    sequence: int
    batch_index: int
    bids: tuple[tuple[int, int], ...]
    asks: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class TradeView:
    market_id: int
    sequence: int  # WAL sequence of the entry that traded
    batch_index: int
    timestamp_ms: int  # the batch's
    price_ticks: int
    size_lots: int
    taker_is_buy: bool
    maker_order_id: int
    taker_order_id: int


@dataclass(frozen=True, slots=True)
class FillView:
    """A fill seen from one side."""

    market_id: int
    sequence: int
    batch_index: int
    order_id: int
    is_maker: bool
    is_buy: bool
    price_ticks: int
    size_lots: int
    fee_quantums: int


@dataclass(frozen=True, slots=True)
class OrderView:
    order_id: int
    market_id: int
    is_buy: bool
    price_ticks: int
    size_lots: int  # remaining
    client_order_id: int
    post_only: bool


@dataclass(frozen=True, slots=True)
class PositionView:
    owner: bytes
    subaccount: int
    group: int  # 0: cross margin; otherwise the isolated market's id
    market_id: int
    size_lots: int  # signed: positive is long
    entry_notional_quantums: int  # signed, what the position cost
    mark_price_quantums: int
    value_quantums: int  # signed, at the mark (rounded down)
    unrealised_pnl_quantums: int  # value - entry notional
    open_bid_lots: int
    open_ask_lots: int


@dataclass(frozen=True, slots=True)
class GroupView:
    group: int
    collateral_quantums: int
    equity_quantums: int
    initial_quantums: int
    maintenance_quantums: int
    positions: tuple[PositionView, ...]


@dataclass(frozen=True, slots=True)
class AccountView:
    owner: bytes
    subaccount: int
    batch_index: int
    equity_quantums: int  # summed over groups
    groups: tuple[GroupView, ...]  # cross first, then isolated by market id
    open_orders: tuple[OrderView, ...]
    recent_fills: tuple[FillView, ...]  # newest last


@dataclass(frozen=True, slots=True)
class AccountEvent:
    """``kind``: order_placed, order_cancelled, order_reduced, fill, deposit, withdrawal,
    forced_withdrawal, transfer, liquidated, deleveraged, position."""

    owner: bytes
    subaccount: int
    sequence: int
    batch_index: int
    kind: str
    event: Event | PositionView


@dataclass(frozen=True, slots=True)
class BatchView:
    index: int
    root: bytes
    previous_root: bytes
    timestamp_ms: int
    entries: int
    data_bytes: int
    status: str  # BATCH_STATUSES
    l1_transaction_hash: bytes | None
    deposit_count: int
    forced_count: int


@dataclass(frozen=True, slots=True)
class NodeStatus:
    running: bool
    chain: str  # "embedded", "none" or the URL
    chain_id: int
    settlement_address: bytes | None
    batch_index: int  # the last closed batch
    root: bytes
    open_batch_index: int | None
    durable_sequence: int
    submitted_batch: int  # the last batch the contract accepted from this node
    final_batch: int
    publisher_error: str | None


# --- risk (``Node.account_risk``: ``rollbook.execution.options.views.account_risk``) ------------

@dataclass(frozen=True, slots=True)
class GreeksView:
    """Sensitivities, rounded half up: delta in nanounits of the underlying, gamma in nanounits
    per USD of index move, vega in quantums per volatility point (0.01 of sigma), theta in
    quantums per calendar day. A perpetual's delta is its exposure."""

    delta_nanounits: int
    gamma_nanounits_per_usd: int
    vega_quantums_per_vol_point: int
    theta_quantums_per_day: int


@dataclass(frozen=True, slots=True)
class ScenarioView:
    """An index move and a relative volatility shift (ppm), and its loss weight (ppm)."""

    move_ppm: int
    vol_shift_ppm: int
    weight_ppm: int


@dataclass(frozen=True, slots=True)
class PortfolioRiskView:
    """Portfolio margin of one index: every scenario's weighted loss (negative is a gain), the
    worst one, and the charges that make up the requirement."""

    index_id: int
    initial_quantums: int
    maintenance_quantums: int
    worst_loss_quantums: int
    worst_scenario_index: int  # -1: no positions
    worst_scenario: ScenarioView | None
    scenario_losses_quantums: tuple[int, ...]
    delta_charge_quantums: int
    short_option_charge_quantums: int
    valuation_allowance_quantums: int
    options_value_quantums: int
    greeks: GreeksView


@dataclass(frozen=True, slots=True)
class RiskPositionView:
    """A position at its committed mark with its Greeks; option terms are null for a
    perpetual; initial/maintenance are the position's own in standard mode (null in portfolio
    mode, where the group's portfolios carry the requirement)."""

    market_id: int
    symbol: str
    kind: str  # "perpetual" or "option"
    option_type: str | None  # "call" or "put"
    strike_quantums: int | None
    expiry_ms: int | None
    contract_size_nanounits: int | None
    size_lots: int
    open_bid_lots: int
    open_ask_lots: int
    mark_price_quantums: int
    value_quantums: int
    entry_notional_quantums: int
    greeks: GreeksView
    initial_quantums: int | None
    maintenance_quantums: int | None


@dataclass(frozen=True, slots=True)
class RiskGroupView:
    group: int  # 0: cross margin; otherwise the isolated market's id
    portfolio_margin: bool
    in_liquidation: bool
    collateral_quantums: int
    equity_quantums: int
    initial_quantums: int
    maintenance_quantums: int
    greeks: GreeksView
    positions: tuple[RiskPositionView, ...]
    portfolios: tuple[PortfolioRiskView, ...]  # portfolio mode: one per index


@dataclass(frozen=True, slots=True)
class AccountRiskView:
    """Greeks per position, group and account, and the margin breakdown (worst scenario per
    index in portfolio mode) of one subaccount; the numbers the STF margins with."""

    owner: bytes
    subaccount: int
    batch_index: int
    portfolio_margin: bool
    equity_quantums: int
    initial_quantums: int
    maintenance_quantums: int
    greeks: GreeksView
    groups: tuple[RiskGroupView, ...]
