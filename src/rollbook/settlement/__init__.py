"""Settlement: the contracts on an EVM chain, and the adapter that talks to them.

``chain`` is the one adapter over web3.py (an embedded py-evm chain by default, any JSON-RPC
node by URL); ``client`` gives the settlement contract and its test token typed methods and
events; ``anvil`` starts a local anvil node for tests; ``gas`` measures the contract's costs.
The contracts themselves live in ``contracts/`` and are compiled on the machine (``_compile``);
``reference`` is the bit-exact Python model of the settlement contract's integer arithmetic and
leaf layouts, and the one Python source of its constants.
See docs/settlement.md for the contract's specification.
"""

from rollbook.settlement._compile import CompiledContract, compile_contract
from rollbook.settlement.chain import (
    Chain,
    ChainError,
    ChainUnavailableError,
    ContractHandle,
    Event,
    EventWatcher,
    Receipt,
    RetryPolicy,
    RevertError,
    TransactionTimeoutError,
    WatchResult,
)
from rollbook.settlement.reference import (
    EscapeMarket,
    escape_claim,
    escape_equity,
    escape_payout,
)

__all__ = [
    "Chain",
    "ChainError",
    "ChainUnavailableError",
    "CompiledContract",
    "ContractHandle",
    "EscapeMarket",
    "Event",
    "EventWatcher",
    "Receipt",
    "RetryPolicy",
    "RevertError",
    "TransactionTimeoutError",
    "WatchResult",
    "compile_contract",
    "escape_claim",
    "escape_equity",
    "escape_payout",
]
