"""rollbook's execution layer: the deterministic state transition function (the venue's spec).

This package imports nothing that does I/O and nothing from the layers around it (sequencer,
commitment, settlement, feeds): it can be read, tested and replayed alone. Its public surface:
``genesis_state`` / ``State``, the transaction types, ``apply_batch`` / ``apply_transaction``,
receipts and events, and the configuration types.
"""

from rollbook.execution.config import (
    InstrumentKind,
    MarginTier,
    MarketConfig,
    VenueConfig,
    default_venue_config,
    perpetual_market,
)
from rollbook.execution.errors import ErrorCode, TxRejected
from rollbook.execution.events import Receipt
from rollbook.execution.state import State, genesis_state
from rollbook.execution.stf import apply_batch, apply_transaction, cost_bound_units
from rollbook.execution.txs import (
    Batch,
    CancelAll,
    CancelOrder,
    CancelOrderByClientId,
    Deposit,
    ForcedWithdrawal,
    FundingTick,
    ModifyOrder,
    MoveIsolatedMargin,
    OraclePrice,
    OracleUpdate,
    OrderType,
    PlaceOrder,
    ProcessLiquidations,
    SelfTradePrevention,
    SetMarginMode,
    Side,
    TimeInForce,
    Transaction,
    Transfer,
    Withdraw,
)

__all__ = [
    "Batch",
    "CancelAll",
    "CancelOrder",
    "CancelOrderByClientId",
    "Deposit",
    "ErrorCode",
    "ForcedWithdrawal",
    "FundingTick",
    "InstrumentKind",
    "MarginTier",
    "MarketConfig",
    "ModifyOrder",
    "MoveIsolatedMargin",
    "OraclePrice",
    "OracleUpdate",
    "OrderType",
    "PlaceOrder",
    "ProcessLiquidations",
    "Receipt",
    "SelfTradePrevention",
    "SetMarginMode",
    "Side",
    "State",
    "TimeInForce",
    "Transaction",
    "Transfer",
    "TxRejected",
    "VenueConfig",
    "Withdraw",
    "apply_batch",
    "apply_transaction",
    "cost_bound_units",
    "default_venue_config",
    "genesis_state",
    "perpetual_market",
]
