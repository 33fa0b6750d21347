"""Transactions: the only way the venue's state changes.

Each transaction is a frozen, slotted dataclass with integer fields whose unit is in the name.
User transactions name the subaccount they act for (``owner`` address + ``subaccount`` number);
the sequencer has already authenticated them (signature, nonce, agent rights) before they reach
the STF, and keeps the signatures beside the payload in the batch for replay. L1-origin
transactions (deposits) and operator transactions (funding ticks, liquidation processing) carry
no user signature; oracle updates carry their own signatures, which the STF checks against the
configured oracle key set because prices must be verifiable by every replica. Volatility updates
(SVI smiles) are signed by the same key set under their own domain tag.

Options: ``ListOption``/``DelistOption``/``ExpireOptions`` are operator transactions (no user
signature: the sequencer admits them from the operator only, like ``FundingTick``);
``SetPortfolioMargin``, ``SetMmp`` and ``MassQuote`` are user transactions.

Construction: the classes on the order path (``PlaceOrder``, ``CancelOrder``,
``CancelOrderByClientId``, ``CancelAll``, ``ModifyOrder``, ``Quote``), which the node and the
verifier build once per decoded transaction, declare their ``__init__`` (the same parameters,
order and defaults as the one ``dataclass`` would generate, which then keeps it; pinned by
``tests/execution/test_txs.py``). Compiled (mypyc), it writes each field's slot directly, as
every native constructor does: a ``PlaceOrder`` costs about 700 instructions instead of about
16,000 through the generated ``__init__``, an interpreted function that sets each field with
``object.__setattr__``. Interpreted, it sets each field through ``object.__setattr__``, exactly
as the generated one does. Either way the instances stay frozen (assignment raises
``FrozenInstanceError``), hashable, equal-comparable and pickled alike (``pickling``); the
compiled build checks the arguments' declared types, as its field setters always did. The
other classes keep the generated ``__init__``.

Known limits: one market per order; modify replaces price and/or the *remaining* size.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from types import FunctionType
from typing import Final

from rollbook.execution.options.instruments import OptionType

__all__ = [
    "Batch",
    "CancelAll",
    "CancelOrder",
    "CancelOrderByClientId",
    "DelistOption",
    "Deposit",
    "ExpireOptions",
    "ForcedWithdrawal",
    "FundingTick",
    "ListOption",
    "MassQuote",
    "ModifyOrder",
    "MoveIsolatedMargin",
    "OptionType",
    "OraclePrice",
    "OracleUpdate",
    "OrderType",
    "PlaceOrder",
    "ProcessLiquidations",
    "Quote",
    "SelfTradePrevention",
    "SetMarginMode",
    "SetMmp",
    "SetPortfolioMargin",
    "Side",
    "SviParameters",
    "TimeInForce",
    "Transaction",
    "Transfer",
    "VolatilityUpdate",
    "Withdraw",
]

ALL_MARKETS = 0  # market id meaning "every market" for CancelAll


def _probe() -> None:
    """Never called: what kind of object it is tells which build runs this module."""


# mypyc compiles a module's functions into built-in functions: not ``FunctionType``
_COMPILED: Final = not isinstance(_probe, FunctionType)
# the explicit ``__init__``s' interpreted path: frozen classes set fields as dataclass does
_set: Final = object.__setattr__


class Side(IntEnum):
    BUY = 1
    SELL = 2


class OrderType(IntEnum):
    LIMIT = 1
    MARKET = 2  # IOC with a mandatory worst-price bound in ``price_ticks``


class TimeInForce(IntEnum):
    GTC = 1
    IOC = 2
    FOK = 3
    POST_ONLY = 4  # add-liquidity-only: rejected if it would take


class SelfTradePrevention(IntEnum):
    EXPIRE_MAKER = 1
    EXPIRE_TAKER = 2
    EXPIRE_BOTH = 3


@dataclass(frozen=True, slots=True)
class Deposit:
    """L1-origin credit; ``deposit_id`` comes from the settlement contract's event, in order."""

    deposit_id: int
    owner: bytes
    subaccount: int
    amount_quantums: int


@dataclass(frozen=True, slots=True)
class Withdraw:
    owner: bytes
    subaccount: int
    amount_quantums: int


@dataclass(frozen=True, slots=True)
class ForcedWithdrawal:
    """L1-origin: a withdrawal the owner requested on the settlement contract, which the
    operator must include (in ``request_id`` order) before the contract's deadline.

    It never fails for lack of margin: it withdraws ``min(amount, what the margin rules let the
    cross group release)``, possibly zero, so including it always settles the request.
    """

    request_id: int
    owner: bytes
    subaccount: int
    amount_quantums: int


@dataclass(frozen=True, slots=True)
class Transfer:
    owner: bytes
    subaccount: int
    to_owner: bytes
    to_subaccount: int
    amount_quantums: int


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    owner: bytes
    subaccount: int
    market_id: int
    side: Side
    price_ticks: int
    size_lots: int
    order_type: OrderType = OrderType.LIMIT
    time_in_force: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False
    client_order_id: int = 0  # 0 means none
    self_trade: SelfTradePrevention = SelfTradePrevention.EXPIRE_MAKER

    def __init__(self, owner: bytes, subaccount: int, market_id: int, side: Side, price_ticks: int,
                 size_lots: int, order_type: OrderType = OrderType.LIMIT,
                 time_in_force: TimeInForce = TimeInForce.GTC, reduce_only: bool = False,
                 client_order_id: int = 0,
                 self_trade: SelfTradePrevention = SelfTradePrevention.EXPIRE_MAKER) -> None:
        if _COMPILED:  # native slot writes (no __setattr__): see the module docstring
            self.owner = owner  # type: ignore[misc]
            self.subaccount = subaccount  # type: ignore[misc]
            self.market_id = market_id  # type: ignore[misc]
            self.side = side  # type: ignore[misc]
            self.price_ticks = price_ticks  # type: ignore[misc]
            self.size_lots = size_lots  # type: ignore[misc]
            self.order_type = order_type  # type: ignore[misc]
            self.time_in_force = time_in_force  # type: ignore[misc]
            self.reduce_only = reduce_only  # type: ignore[misc]
            self.client_order_id = client_order_id  # type: ignore[misc]
            self.self_trade = self_trade  # type: ignore[misc]
        else:
            _set(self, "owner", owner)
            _set(self, "subaccount", subaccount)
            _set(self, "market_id", market_id)
            _set(self, "side", side)
            _set(self, "price_ticks", price_ticks)
            _set(self, "size_lots", size_lots)
            _set(self, "order_type", order_type)
            _set(self, "time_in_force", time_in_force)
            _set(self, "reduce_only", reduce_only)
            _set(self, "client_order_id", client_order_id)
            _set(self, "self_trade", self_trade)


@dataclass(frozen=True, slots=True)
class CancelOrder:
    owner: bytes
    subaccount: int
    order_id: int

    def __init__(self, owner: bytes, subaccount: int, order_id: int) -> None:
        if _COMPILED:  # native slot writes (no __setattr__): see the module docstring
            self.owner = owner  # type: ignore[misc]
            self.subaccount = subaccount  # type: ignore[misc]
            self.order_id = order_id  # type: ignore[misc]
        else:
            _set(self, "owner", owner)
            _set(self, "subaccount", subaccount)
            _set(self, "order_id", order_id)


@dataclass(frozen=True, slots=True)
class CancelOrderByClientId:
    owner: bytes
    subaccount: int
    client_order_id: int

    def __init__(self, owner: bytes, subaccount: int, client_order_id: int) -> None:
        if _COMPILED:  # native slot writes (no __setattr__): see the module docstring
            self.owner = owner  # type: ignore[misc]
            self.subaccount = subaccount  # type: ignore[misc]
            self.client_order_id = client_order_id  # type: ignore[misc]
        else:
            _set(self, "owner", owner)
            _set(self, "subaccount", subaccount)
            _set(self, "client_order_id", client_order_id)


@dataclass(frozen=True, slots=True)
class CancelAll:
    owner: bytes
    subaccount: int
    market_id: int = ALL_MARKETS

    def __init__(self, owner: bytes, subaccount: int, market_id: int = ALL_MARKETS) -> None:
        if _COMPILED:  # native slot writes (no __setattr__): see the module docstring
            self.owner = owner  # type: ignore[misc]
            self.subaccount = subaccount  # type: ignore[misc]
            self.market_id = market_id  # type: ignore[misc]
        else:
            _set(self, "owner", owner)
            _set(self, "subaccount", subaccount)
            _set(self, "market_id", market_id)


@dataclass(frozen=True, slots=True)
class ModifyOrder:
    """Cancel-replace. Priority is kept only when the price is unchanged and size decreases."""

    owner: bytes
    subaccount: int
    order_id: int
    price_ticks: int
    size_lots: int  # the new remaining size

    def __init__(self, owner: bytes, subaccount: int, order_id: int, price_ticks: int,
                 size_lots: int) -> None:
        if _COMPILED:  # native slot writes (no __setattr__): see the module docstring
            self.owner = owner  # type: ignore[misc]
            self.subaccount = subaccount  # type: ignore[misc]
            self.order_id = order_id  # type: ignore[misc]
            self.price_ticks = price_ticks  # type: ignore[misc]
            self.size_lots = size_lots  # type: ignore[misc]
        else:
            _set(self, "owner", owner)
            _set(self, "subaccount", subaccount)
            _set(self, "order_id", order_id)
            _set(self, "price_ticks", price_ticks)
            _set(self, "size_lots", size_lots)


@dataclass(frozen=True, slots=True)
class OraclePrice:
    index_id: int
    price_quantums: int  # quantums per whole base unit


@dataclass(frozen=True, slots=True)
class OracleUpdate:
    timestamp_ms: int
    prices: tuple[OraclePrice, ...]
    signatures: tuple[bytes, ...]  # 65-byte r || s || v over ``oracle_message_digest``


@dataclass(frozen=True, slots=True)
class FundingTick:
    """Operator heartbeat: samples premiums and pays funding when an interval has elapsed."""


@dataclass(frozen=True, slots=True)
class ProcessLiquidations:
    """Operator heartbeat: works through the liquidation queue (bounded per transaction)."""


@dataclass(frozen=True, slots=True)
class SetMarginMode:
    owner: bytes
    subaccount: int
    market_id: int
    isolated: bool


@dataclass(frozen=True, slots=True)
class MoveIsolatedMargin:
    """Positive moves collateral from cross into the isolated position, negative moves it out."""

    owner: bytes
    subaccount: int
    market_id: int
    amount_quantums: int


@dataclass(frozen=True, slots=True)
class ListOption:
    """Operator: list a European option on ``index_id`` under the index's option class."""

    market_id: int
    index_id: int
    expiry_ms: int
    strike_quantums: int
    option_type: OptionType


@dataclass(frozen=True, slots=True)
class DelistOption:
    """Operator: remove an option market without open interest (its orders are cancelled)."""

    market_id: int


@dataclass(frozen=True, slots=True)
class SviParameters:
    """One raw-SVI slice (``options.smile``): WAD integers, observed at the update's time."""

    index_id: int
    expiry_ms: int
    a_wad: int
    b_wad: int
    rho_wad: int
    m_wad: int
    sigma_svi_wad: int


@dataclass(frozen=True, slots=True)
class VolatilityUpdate:
    """Signed smiles per (index, expiry); verified like ``OracleUpdate`` (own domain tag)."""

    timestamp_ms: int
    smiles: tuple[SviParameters, ...]
    signatures: tuple[bytes, ...]  # 65-byte r || s || v over ``volatility_message_digest``


@dataclass(frozen=True, slots=True)
class ExpireOptions:
    """Operator: close the books of an expired (index, expiry), then settle it once the
    oracle has moved past expiry (so the settlement window's samples are final)."""

    index_id: int
    expiry_ms: int


@dataclass(frozen=True, slots=True)
class SetPortfolioMargin:
    """Portfolio margin (True) or standard per-position margin (False) for the cross group."""

    owner: bytes
    subaccount: int
    enabled: bool


@dataclass(frozen=True, slots=True)
class SetMmp:
    """Market-maker protection for the subaccount's quotes on ``index_id``; a limit of 0 means
    none, and all three 0 turns protection off. Setting it again also lifts a freeze."""

    owner: bytes
    subaccount: int
    index_id: int
    window_ms: int
    frozen_ms: int  # 0: frozen until the next SetMmp
    quantity_limit_nanounits: int
    delta_limit_nanounits: int
    vega_limit_quantums: int


@dataclass(frozen=True, slots=True)
class Quote:
    market_id: int
    side: Side
    price_ticks: int
    size_lots: int

    def __init__(self, market_id: int, side: Side, price_ticks: int, size_lots: int) -> None:
        if _COMPILED:  # native slot writes (no __setattr__): see the module docstring
            self.market_id = market_id  # type: ignore[misc]
            self.side = side  # type: ignore[misc]
            self.price_ticks = price_ticks  # type: ignore[misc]
            self.size_lots = size_lots  # type: ignore[misc]
        else:
            _set(self, "market_id", market_id)
            _set(self, "side", side)
            _set(self, "price_ticks", price_ticks)
            _set(self, "size_lots", size_lots)


@dataclass(frozen=True, slots=True)
class MassQuote:
    """Replace the subaccount's quote ladder on ``index_id`` with ``quotes`` (post-only), all or
    nothing; no quotes pulls the ladder."""

    owner: bytes
    subaccount: int
    index_id: int
    quotes: tuple[Quote, ...]


Transaction = (
    Deposit
    | Withdraw
    | Transfer
    | PlaceOrder
    | CancelOrder
    | CancelOrderByClientId
    | CancelAll
    | ModifyOrder
    | OracleUpdate
    | FundingTick
    | ProcessLiquidations
    | SetMarginMode
    | MoveIsolatedMargin
    | ForcedWithdrawal
    | ListOption
    | DelistOption
    | VolatilityUpdate
    | ExpireOptions
    | SetPortfolioMargin
    | SetMmp
    | MassQuote
)


@dataclass(frozen=True, slots=True)
class Batch:
    """A sequenced batch: header (index, timestamp, previous root) and its transactions."""

    index: int
    timestamp_ms: int
    previous_root: bytes
    transactions: tuple[Transaction, ...]
