"""The node: sequencer, execution, durability, settlement and feeds wired together.

See docs/node.md for the architecture and the interface; ``core`` holds ``Node``.
"""

from rollbook.node.config import (
    DEMO_ORACLE_KEY,
    ConfigError,
    NodeConfig,
    config_from_dict,
    load_config,
    parse_config,
)
from rollbook.node.core import ManualPriceFeed, Node, NodeError, NodeUnavailable, PriceFeed
from rollbook.node.feeds import SUBSCRIBER_QUEUE_DEFAULT, Subscription, SubscriptionLagged
from rollbook.node.views import (
    AccountEvent,
    AccountRiskView,
    AccountView,
    Ack,
    BatchView,
    BookDelta,
    BookLevel,
    BookView,
    FillView,
    GroupView,
    MarketView,
    NodeStatus,
    OrderView,
    PositionView,
    TradeView,
)

__all__ = [
    "DEMO_ORACLE_KEY",
    "SUBSCRIBER_QUEUE_DEFAULT",
    "AccountEvent",
    "AccountRiskView",
    "AccountView",
    "Ack",
    "BatchView",
    "BookDelta",
    "BookLevel",
    "BookView",
    "ConfigError",
    "FillView",
    "GroupView",
    "ManualPriceFeed",
    "MarketView",
    "Node",
    "NodeConfig",
    "NodeError",
    "NodeStatus",
    "NodeUnavailable",
    "OrderView",
    "PositionView",
    "PriceFeed",
    "Subscription",
    "SubscriptionLagged",
    "TradeView",
    "config_from_dict",
    "load_config",
    "parse_config",
]
