"""Gas of the settlement contract's operations, for the commit benchmark.

``measure_settlement_gas()`` deploys the token and ``Settlement.vy`` on a fresh embedded chain
(py-evm, Prague rules) and runs one deterministic venue life through every costed operation,
returning each transaction's ``gasUsed``: what the sender pays for, the 21,000 intrinsic gas
and the calldata included (EIP-2028 16/4 gas per non-zero/zero byte, or the EIP-7623 floor of
40/10 for data-heavy transactions, which is what a batch submission pays under Prague).

The scenario, chosen to be realistic rather than flattering:

- ``deposit``: a second depositor's deposit (the contract's counters are already non-zero, the
  depositor keeps a token balance, the allowance is set beforehand): the steady state. The
  very first deposit of a contract costs about 17,000 more (two zero-to-non-zero writes).
- ``submit_batch``: consecutive batches of ``SUBMIT_BATCH_BYTES`` of incompressible data
  (nearly every byte non-zero: the per-byte figures are upper bounds). A batch pays the larger
  of two lines, so both are returned: ``submit_batch_gas_fixed + submit_batch_gas_per_byte *
  n`` (the standard price: execution, about 100,000 gas of storage writes, plus 16 gas per
  byte; fitted on 1 and 2 KiB) and ``submit_batch_floor_gas_fixed +
  submit_batch_floor_gas_per_byte * n`` (the EIP-7623 floor: 21,000 plus 40 gas per non-zero
  calldata byte, execution free; fitted on 16 and 32 KiB). The floor wins above a few KiB, so
  a large batch costs about 40 gas per byte, not 16. ``submit_batch_gas_1kib`` and
  ``submit_batch_gas_32kib`` are two of the measured points.
- ``claim_withdrawal``: a withdrawal leaf proven with a full depth-32 proof in a tree holding
  ``FILLER_LEAVES`` other records besides markets and accounts (so the low siblings are real
  hashes, not default ones), paying an owner who already holds tokens.
- ``escape_register_account``: a subaccount leaf with ``ESCAPE_COLLATERALS`` collateral groups
  and ``ESCAPE_POSITIONS`` positions in registered markets; ``escape_withdraw_account`` pays it
  in full after the escape period.
- also ``request_forced_withdrawal``, ``freeze`` and ``escape_register_market``.

Invariants: deterministic (no randomness, no wall clock in the inputs; the chain's timestamps
only gate the contract's windows), so two runs return the same numbers on the same py-evm.
Limits: takes about a second after the contract is compiled (the first compilation of
Settlement.vy takes a few seconds and is cached). Leaves are encoded with ``eth_abi`` exactly
as docs/settlement.md specifies.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi.abi import encode
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from rollbook.commitment.merkle import MerkleTree, empty_root
from rollbook.settlement.chain import Chain
from rollbook.settlement.client import (
    TREE_DEPTH,
    SettlementClient,
    SettlementParams,
    TokenClient,
)

__all__ = [
    "ESCAPE_COLLATERALS",
    "ESCAPE_POSITIONS",
    "FILLER_LEAVES",
    "SUBMIT_BATCH_BYTES",
    "measure_settlement_gas",
]

# two batch sizes where execution dominates the price, two where the EIP-7623 floor does
SUBMIT_BATCH_BYTES = (1_024, 2_048, 16 * 1_024, 32 * 1_024)
FILLER_LEAVES = 4_096  # order leaves filling the tree's low levels
ESCAPE_COLLATERALS = 2  # the cross group and one isolated group
ESCAPE_POSITIONS = 4  # one market each, all registered before the account

_WINDOW_S = 60
_FORCED_DEADLINE_S = 120
_ESCAPE_PERIOD_S = 600
_USDC = 10**6  # quantums per USDC
_MINTED = 1_000_000 * _USDC
_DEPOSITED = 100_000 * _USDC
_WITHDRAWN = 1_000 * _USDC
_PRICE_QUANTUMS = 100_000 * _USDC  # $100,000 index price
_LOT_NANOUNITS = 100_000  # 0.0001 units per lot

# ABI layouts of docs/settlement.md (the kind first)
_GLOBALS = ["uint256"] * 5 + ["int256"] + ["uint256"] * 7
_MARKET = ["uint256"] * 8 + ["int256", "int256", "uint256", "uint256", "int256"]
_SUBACCOUNT = ["uint256", "address", "uint256", "(uint256,int256)[]",
               "(uint256,uint256,int256,int256,uint256,uint256)[]"]
_ORDER = ["uint256", "uint256", "uint256", "address"] + ["uint256"] * 7
_WITHDRAWAL = ["uint256", "uint256", "address", "uint256", "uint256", "uint256"]
_KIND_GLOBALS, _KIND_MARKET, _KIND_SUBACCOUNT, _KIND_ORDER, _KIND_WITHDRAWAL = 1, 3, 4, 5, 6


@dataclass(frozen=True, slots=True)
class _Slots:
    """Where the scenario's records sit in the tree."""

    markets: tuple[int, ...]
    accounts: tuple[int, ...]
    withdrawal: int


def measure_settlement_gas(chain: Chain | None = None) -> dict[str, int | float]:
    """Gas used by each settlement operation (see the module docstring for the scenario).

    ``chain`` defaults to a fresh embedded chain; pass another (anvil) to compare rules. It
    needs three funded dev accounts and a clock that ``increase_time`` can move.
    """
    chain = chain or Chain.embedded()
    if len(chain.dev_accounts) < 3:
        raise ValueError("measuring gas needs three funded dev accounts")
    operator, alice, bob = chain.dev_accounts[:3]
    token = TokenClient.deploy(chain, sender=operator)
    params = SettlementParams(operator=operator.address, genesis_root=empty_root(TREE_DEPTH),
                              challenge_window_s=_WINDOW_S, forced_deadline_s=_FORCED_DEADLINE_S,
                              escape_period_s=_ESCAPE_PERIOD_S)
    settlement = SettlementClient.deploy(chain, token, params, sender=operator)
    gas: dict[str, int | float] = {}

    for user in (alice, bob):
        token.mint(user.address, _MINTED, sender=operator)
        token.approve(settlement.address, _DEPOSITED, sender=user)
    settlement.deposit(0, _DEPOSITED, sender=alice)  # the contract's first: warms its counters
    gas["deposit_gas"] = _gas(chain, settlement, "deposit", 0, _DEPOSITED, sender=bob)

    tree = MerkleTree(TREE_DEPTH)
    slots = _fill_tree(tree, (alice, bob))
    root = tree.root()
    submitted: dict[int, int] = {}
    # batch 1 warms the contract (latest_batch goes from zero to non-zero once, about 17,000
    # gas that no later batch pays); the measured batches follow it
    settlement.submit_batch(1, params.genesis_root, root, 2, 0, b"warm-up", sender=operator)
    prev_root = root
    for batch_index, length in enumerate(SUBMIT_BATCH_BYTES, start=2):
        data = _data(length, batch_index)
        submitted[length] = _gas(chain, settlement, "submit_batch", batch_index, prev_root,
                                 root, keccak(data), 2, 0, data, sender=operator)
        prev_root = root
    small, small2, large2, large = (submitted[length] for length in SUBMIT_BATCH_BYTES)
    per_byte = (small2 - small) / (SUBMIT_BATCH_BYTES[1] - SUBMIT_BATCH_BYTES[0])
    floor_per_byte = (large - large2) / (SUBMIT_BATCH_BYTES[3] - SUBMIT_BATCH_BYTES[2])
    gas["submit_batch_gas_1kib"] = small
    gas["submit_batch_gas_32kib"] = large
    gas["submit_batch_gas_fixed"] = round(small - per_byte * SUBMIT_BATCH_BYTES[0])
    gas["submit_batch_gas_per_byte"] = per_byte
    gas["submit_batch_floor_gas_fixed"] = round(large - floor_per_byte * SUBMIT_BATCH_BYTES[3])
    gas["submit_batch_floor_gas_per_byte"] = floor_per_byte

    chain.increase_time(_WINDOW_S)
    gas["claim_withdrawal_gas"] = _gas(
        chain, settlement, "claim_withdrawal", len(SUBMIT_BATCH_BYTES) + 1, slots.withdrawal,
        _withdrawal_leaf(alice.address), list(tree.proof(slots.withdrawal)), sender=bob)

    gas["request_forced_withdrawal_gas"] = _gas(chain, settlement, "request_forced_withdrawal",
                                                0, _USDC, sender=bob)
    chain.increase_time(_FORCED_DEADLINE_S + 1)
    gas["freeze_gas"] = _gas(chain, settlement, "freeze", sender=bob)

    market_gas = [_gas(chain, settlement, "escape_register_market", slot,
                       _market_leaf(number + 1), list(tree.proof(slot)), sender=bob)
                  for number, slot in enumerate(slots.markets)]
    gas["escape_register_market_gas"] = market_gas[0]
    account_gas = [_gas(chain, settlement, "escape_register_account", slot,
                        _subaccount_leaf(owner.address, index), list(tree.proof(slot)),
                        sender=bob)
                   for index, (owner, slot) in enumerate(zip((alice, bob), slots.accounts,
                                                             strict=True))]
    gas["escape_register_account_gas"] = account_gas[0]
    chain.increase_time(_ESCAPE_PERIOD_S)
    gas["escape_withdraw_account_gas"] = _gas(chain, settlement, "escape_withdraw_account",
                                              alice.address, 0, sender=bob)
    return gas


def _gas(chain: Chain, settlement: SettlementClient, function: str, *args: object,
         sender: LocalAccount) -> int:
    return chain.transact(settlement.handle, function, *args, sender=sender).gas_used


def _fill_tree(tree: MerkleTree, owners: tuple[LocalAccount, LocalAccount]) -> _Slots:
    """Globals at slot 0, then markets, accounts, a withdrawal, and filler orders."""
    leaves: dict[int, bytes | None] = {0: _globals_leaf()}
    markets = tuple(range(1, 1 + ESCAPE_POSITIONS))
    for number, slot in enumerate(markets):
        leaves[slot] = _market_leaf(number + 1)
    accounts = (markets[-1] + 1, markets[-1] + 2)
    for index, (owner, slot) in enumerate(zip(owners, accounts, strict=True)):
        leaves[slot] = _subaccount_leaf(owner.address, index)
    withdrawal = accounts[-1] + 1
    leaves[withdrawal] = _withdrawal_leaf(owners[0].address)
    for order_id in range(1, FILLER_LEAVES + 1):
        leaves[withdrawal + order_id] = _order_leaf(order_id, owners[order_id % 2].address)
    tree.set_leaves(leaves)
    return _Slots(markets, accounts, withdrawal)


def _data(length: int, seed: int) -> bytes:
    """Deterministic incompressible bytes (a keccak stream)."""
    blocks = []
    state = seed.to_bytes(32, "big")
    for _ in range(-(-length // 32)):  # ceiling division
        state = keccak(state)
        blocks.append(state)
    return b"".join(blocks)[:length]


def _globals_leaf() -> bytes:
    return encode(_GLOBALS, [_KIND_GLOBALS, 1, 2, 1_700_000_000_000, 1_700_000_000_000,
                             5 * _USDC, 2 * _DEPOSITED, _WITHDRAWN, 2, 0, FILLER_LEAVES + 1,
                             2, 0])


def _market_leaf(market_id: int) -> bytes:
    return encode(_MARKET, [_KIND_MARKET, market_id, 0, market_id, _PRICE_QUANTUMS,
                            _LOT_NANOUNITS, 100_000, 1_000, -1_234, 56, 12, 1_700_000_000_000,
                            1_700_000_000_000])


def _subaccount_leaf(owner: str, index: int) -> bytes:
    """Equity about 50,000 USDC minus 10,000 per index: positions are worth tens of USDC."""
    collaterals = [(0, (40_000 - 10_000 * index) * _USDC), (1, 10_000 * _USDC)]
    positions = [(1 if market_id == 1 else 0, market_id, 10 if market_id % 2 else -10,
                  (10 if market_id % 2 else -10) * _PRICE_QUANTUMS // 10_000, 0, 0)
                 for market_id in range(1, ESCAPE_POSITIONS + 1)]
    assert len(collaterals) == ESCAPE_COLLATERALS
    return encode(_SUBACCOUNT, [_KIND_SUBACCOUNT, owner, 0, collaterals, positions])


def _withdrawal_leaf(owner: str) -> bytes:
    return encode(_WITHDRAWAL, [_KIND_WITHDRAWAL, 1, owner, 0, _WITHDRAWN, 1])


def _order_leaf(order_id: int, owner: str) -> bytes:
    return encode(_ORDER, [_KIND_ORDER, order_id, 1 + order_id % ESCAPE_POSITIONS, owner, 0,
                           order_id % 2, 1_000_000 + order_id, 10, order_id, 0, 0])
