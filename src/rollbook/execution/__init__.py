"""rollbook's execution layer: the deterministic state transition function (the venue's spec).

This package imports nothing that does I/O and nothing from the layers around it (sequencer,
commitment, settlement, feeds): it can be read, tested and replayed alone. Its public surface:
``genesis_state`` / ``State``, the transaction types, ``apply_batch`` / ``apply_transaction``,
receipts and events, and the configuration types.
"""

from rollbook.execution import config as _config
from rollbook.execution import receipts as _receipts
from rollbook.execution import txs as _txs
from rollbook.execution.config import (
    InstrumentKind,
    MarginTier,
    MarketConfig,
    OptionClassConfig,
    OptionTerms,
    VenueConfig,
    default_venue_config,
    option_class,
    option_market,
    options_venue_config,
    perpetual_market,
)
from rollbook.execution.errors import ErrorCode, TxRejected
from rollbook.execution.events import Receipt
from rollbook.execution.options import black76 as _black76
from rollbook.execution.options import instruments as _instruments
from rollbook.execution.options import mmp as _mmp
from rollbook.execution.options import portfolio as _portfolio
from rollbook.execution.options import smile as _smile
from rollbook.execution.options import views as _views
from rollbook.execution.pickling import register_frozen_dataclasses
from rollbook.execution.state import State, genesis_state
from rollbook.execution.stf import apply_batch, apply_transaction, cost_bound_units
from rollbook.execution.txs import (
    Batch,
    CancelAll,
    CancelOrder,
    CancelOrderByClientId,
    DelistOption,
    Deposit,
    ExpireOptions,
    ForcedWithdrawal,
    FundingTick,
    ListOption,
    MassQuote,
    ModifyOrder,
    MoveIsolatedMargin,
    OptionType,
    OraclePrice,
    OracleUpdate,
    OrderType,
    PlaceOrder,
    ProcessLiquidations,
    Quote,
    SelfTradePrevention,
    SetMarginMode,
    SetMmp,
    SetPortfolioMargin,
    Side,
    SviParameters,
    TimeInForce,
    Transaction,
    Transfer,
    VolatilityUpdate,
    Withdraw,
)

register_frozen_dataclasses(_config, _receipts, _txs, _black76, _instruments, _mmp, _portfolio,
                            _smile, _views)

__all__ = [
    "Batch",
    "CancelAll",
    "CancelOrder",
    "CancelOrderByClientId",
    "DelistOption",
    "Deposit",
    "ErrorCode",
    "ExpireOptions",
    "ForcedWithdrawal",
    "FundingTick",
    "InstrumentKind",
    "ListOption",
    "MarginTier",
    "MarketConfig",
    "MassQuote",
    "ModifyOrder",
    "MoveIsolatedMargin",
    "OptionClassConfig",
    "OptionTerms",
    "OptionType",
    "OraclePrice",
    "OracleUpdate",
    "OrderType",
    "PlaceOrder",
    "ProcessLiquidations",
    "Quote",
    "Receipt",
    "SelfTradePrevention",
    "SetMarginMode",
    "SetMmp",
    "SetPortfolioMargin",
    "Side",
    "State",
    "SviParameters",
    "TimeInForce",
    "Transaction",
    "Transfer",
    "TxRejected",
    "VenueConfig",
    "VolatilityUpdate",
    "Withdraw",
    "apply_batch",
    "apply_transaction",
    "cost_bound_units",
    "default_venue_config",
    "genesis_state",
    "option_class",
    "option_market",
    "options_venue_config",
    "perpetual_market",
]
