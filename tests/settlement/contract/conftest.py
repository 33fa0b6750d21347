"""Fixtures for the settlement contract's titanoboa tests.

Every test runs inside ``boa.env.anchor()``: whatever it deploys, mines or time-travels is
rolled back afterwards, so tests are independent and may run in any order. The contracts are
compiled once per session (``boa.load_partial``) and deployed per test (milliseconds).

Helpers build state trees with ``rollbook.commitment.merkle.MerkleTree`` and ABI leaves with
``rollbook.settlement.reference`` (which uses ``eth_abi.encode``), so the tests exercise the same
byte layout as the commitment.
"""

from __future__ import annotations

import contextlib
import functools
import pathlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import boa
import eth_abi
import pytest
from boa.contracts.vyper.vyper_contract import VyperContract

from rollbook.commitment.merkle import MerkleTree
from rollbook.settlement import reference as ref

CONTRACTS_DIR = pathlib.Path(ref.__file__).parent / "contracts"

WINDOW_S = 3_600
FORCED_DEADLINE_S = 86_400
ESCAPE_PERIOD_S = 7 * 86_400
USER_FUNDS = 10**18  # minted to every user; far above any deposit a test makes
INTRINSIC_GAS = 21_000
CALLDATA_ZERO_BYTE_GAS = 4
CALLDATA_NONZERO_BYTE_GAS = 16
CALLDATA_FLOOR_GAS_PER_TOKEN = 10  # EIP-7623 (Prague): data-heavy transactions pay a floor
CALLDATA_NONZERO_BYTE_TOKENS = 4
GLOBALS_SLOT = 0  # the tree's slot 0 holds the globals leaf (docs/settlement.md)
LEAF_KIND_GLOBALS = 1

# the views that describe the whole contract: a revert must leave every one unchanged
SCALAR_VIEWS = (
    "latest_batch", "deposit_count", "forced_request_count", "frozen", "frozen_at",
    "escape_batch", "escape_root", "escape_deposit_count", "escape_pool", "escape_total_claims",
    "escape_paid_total",
)


def owner_bytes(address: Any) -> bytes:
    """A boa address (a checksummed hex string) as the 20 bytes a leaf carries."""
    return bytes.fromhex(str(address)[2:])


def globals_leaf(nonce: int = 0) -> bytes:
    """A stand-in globals leaf (kind 1); ``nonce`` makes roots unique."""
    return eth_abi.encode(["uint256"] * 13, [LEAF_KIND_GLOBALS, 1, nonce] + [0] * 10)


def market_leaf(market_id: int, price_quantums: int, lot_size_nanounits: int) -> bytes:
    return ref.encode_market_leaf(ref.MarketLeaf(
        market_id=market_id, instrument_kind=1, index_id=market_id,
        index_price_quantums=price_quantums, lot_size_nanounits=lot_size_nanounits,
        tick_size_quantums=100_000, open_interest_lots=0, cumulative_funding_ppm=-3,
        premium_sum_ppm=5, premium_sample_count=1, last_sample_ms=1_000, last_funding_ms=-1))


def account_leaf(owner: Any, number: int = 0, collaterals: tuple[int, ...] = (0,),
                 positions: tuple[tuple[int, int], ...] = ()) -> bytes:
    """A subaccount leaf: ``collaterals`` per group (cross first), ``positions`` as
    (market id, size in lots), all in the cross group."""
    return ref.encode_subaccount_leaf(ref.SubaccountLeaf(
        owner=owner if isinstance(owner, bytes) else owner_bytes(owner), number=number,
        collaterals=tuple(ref.Collateral(group, amount)
                          for group, amount in enumerate(collaterals)),
        positions=tuple(ref.Position(0, market_id, size, 0, 0, 0)
                        for market_id, size in positions)))


def withdrawal_leaf(withdrawal_id: int, owner: Any, amount: int, subaccount: int = 0,
                    batch_index: int = 1) -> bytes:
    return ref.encode_withdrawal_leaf(ref.WithdrawalLeaf(
        withdrawal_id=withdrawal_id,
        owner=owner if isinstance(owner, bytes) else owner_bytes(owner),
        subaccount=subaccount, amount_quantums=amount, batch_index=batch_index))


class LeafTree:
    """A depth-32 state tree: slot -> ABI leaf, with roots and proofs as the contract wants."""

    def __init__(self, leaves: Mapping[int, bytes] | None = None, nonce: int = 0) -> None:
        self.tree = MerkleTree(ref.TREE_DEPTH)
        self.leaves: dict[int, bytes] = {GLOBALS_SLOT: globals_leaf(nonce)}
        self.leaves.update(leaves or {})
        self.tree.set_leaves(dict(self.leaves))

    def set(self, index: int, leaf: bytes) -> LeafTree:
        self.leaves[index] = leaf
        self.tree.set_leaves({index: leaf})
        return self

    @property
    def root(self) -> bytes:
        return self.tree.root()

    def proof(self, index: int) -> list[bytes]:
        return list(self.tree.proof(index))

    def args(self, index: int) -> tuple[int, bytes, list[bytes]]:
        """(leaf_index, leaf, proof) for an escape_register_* call."""
        return index, self.leaves[index], self.proof(index)


@dataclass
class System:
    """A deployed token + settlement with named actors, and the moves tests repeat."""

    token: Any
    settlement: Any
    operator: Any
    challenger: Any
    users: tuple[Any, ...]
    stranger: Any
    trees: dict[int, LeafTree] = field(default_factory=dict)

    @property
    def alice(self) -> Any:
        return self.users[0]

    @property
    def bob(self) -> Any:
        return self.users[1]

    @property
    def carol(self) -> Any:
        return self.users[2]

    def deposit(self, owner: Any, amount: int, subaccount: int = 0) -> int:
        with boa.env.prank(owner):
            deposit_id: int = self.settlement.deposit(subaccount, amount)
        return deposit_id

    def submit(self, tree: LeafTree, *, deposit_count: int | None = None,
               forced_count: int | None = None, data: bytes = b"\x01\x02") -> int:
        """Submits ``tree``'s root as the next batch; counters default to the chain's."""
        s = self.settlement
        index: int = s.latest_batch() + 1
        previous = s.batch(index - 1)
        with boa.env.prank(self.operator):
            s.submit_batch(index, previous[0], tree.root, boa.eval(f"keccak256({data!r})"),
                           s.deposit_count() if deposit_count is None else deposit_count,
                           s.forced_request_count() if forced_count is None else forced_count,
                           data)
        self.trees[index] = tree
        return index

    def finalize(self) -> None:
        boa.env.time_travel(seconds=WINDOW_S)

    def request_forced(self, owner: Any, amount: int = 1, subaccount: int = 0) -> int:
        with boa.env.prank(owner):
            request_id: int = self.settlement.request_forced_withdrawal(subaccount, amount)
        return request_id

    def freeze(self) -> None:
        """Makes a forced withdrawal overdue (nobody processes it) and freezes."""
        self.request_forced(self.stranger)
        boa.env.time_travel(seconds=FORCED_DEADLINE_S + 1)
        self.settlement.freeze()

    def end_escape_period(self) -> None:
        boa.env.timestamp = self.settlement.escape_ends_at()

    def escape_with(self, tree: LeafTree, deposits: tuple[tuple[Any, int], ...] = ()) -> None:
        """Deposits, commits ``tree`` crediting them, finalises it and freezes on it."""
        for owner, amount in deposits:
            self.deposit(owner, amount)
        self.submit(tree)
        self.finalize()
        self.freeze()
        assert self.settlement.escape_root() == tree.root

    def balances(self) -> tuple[int, ...]:
        actors = (self.settlement, self.operator, self.challenger, self.stranger, *self.users)
        return tuple(self.token.balanceOf(actor) for actor in actors)

    def fingerprint(self) -> tuple[Any, ...]:
        """Balances and every scalar view: equal before and after a revert."""
        return self.balances() + tuple(getattr(self.settlement, view)()
                                       for view in SCALAR_VIEWS)

    def assert_reverts(self, reason: str, call: Callable[[], Any],
                       *watched: Callable[[], Any]) -> None:
        """``call`` reverts with ``reason`` and moves nothing: balances, the scalar views and
        the ``watched`` views (mapping entries the call would have written) are unchanged."""
        before = self.fingerprint(), tuple(view() for view in watched)
        with boa.reverts(reason):
            call()
        assert (self.fingerprint(), tuple(view() for view in watched)) == before


def events(contract: Any, name: str) -> list[Any]:
    """The last call's logs of event ``name`` (boa decodes every contract's logs)."""
    return [log for log in contract.get_logs() if type(log).__name__ == name]


@contextlib.contextmanager
def cold_access() -> Iterator[None]:
    """Every account and storage slot is cold for the calls inside, as at the start of a real
    transaction: boa runs all calls as one long transaction, so whatever an earlier call
    touched would stay warm and the gas would read low. (boa internals: py-evm's journal of
    accessed state is swapped for a fresh one and put back afterwards.)"""
    account_db = boa.env.evm.vm.state._account_db
    saved = account_db._journal_accessed_state
    account_db._reset_access_counters()
    try:
        yield
    finally:
        account_db._journal_accessed_state = saved


def tx_gas(contract: Any, function: str, *args: Any, sender: Any = None) -> int:
    """Calls ``contract.function(*args)`` from ``sender`` with cold storage and returns the gas
    a transaction would use: 21,000 + calldata (16 per non-zero byte, 4 per zero byte,
    EIP-2028) + execution, or the EIP-7623 floor (21,000 + 10 per calldata token, a non-zero
    byte being 4 tokens) if that is more.

    Within a few thousand gas of a real transaction, on either side: refunds are not
    subtracted, but a slot that an earlier call of the test already wrote costs 100 to write
    again instead of 2,900 (boa keeps one transaction's "original" storage values). The
    budgets in the tests leave room for both; the figures in their comments are receipts from
    the embedded py-evm chain (eth-tester, Prague), one transaction per block."""
    data = getattr(contract, function).prepare_calldata(*args)
    zero_bytes = data.count(0)
    nonzero_bytes = len(data) - zero_bytes
    with cold_access(), boa.env.prank(sender or boa.env.eoa):
        getattr(contract, function)(*args)
    execution: int = contract._computation.get_gas_used()
    standard = (INTRINSIC_GAS + CALLDATA_ZERO_BYTE_GAS * zero_bytes
                + CALLDATA_NONZERO_BYTE_GAS * nonzero_bytes + execution)
    floor = INTRINSIC_GAS + CALLDATA_FLOOR_GAS_PER_TOKEN * (
        zero_bytes + CALLDATA_NONZERO_BYTE_TOKENS * nonzero_bytes)
    return max(standard, floor)


@functools.cache
def partials() -> tuple[Any, Any]:
    """(Settlement, TestUSDC) compiled once per session, ready to deploy."""
    return (boa.load_partial(str(CONTRACTS_DIR / "Settlement.vy")),
            boa.load_partial(str(CONTRACTS_DIR / "TestUSDC.vy")))


def deploy_system(genesis: LeafTree | None = None, **overrides: Any) -> System:
    """Deploys token + settlement; keyword arguments override the constructor's defaults.
    Every user and the stranger hold USER_FUNDS and have approved the settlement."""
    settlement_partial, token_partial = partials()
    operator = boa.env.generate_address("operator")
    challenger = boa.env.generate_address("challenger")
    users = tuple(boa.env.generate_address(name) for name in ("alice", "bob", "carol"))
    stranger = boa.env.generate_address("stranger")
    token = token_partial.deploy()
    genesis = genesis or LeafTree()
    arguments: dict[str, Any] = {
        "token": token.address, "operator": operator, "challengers": [challenger],
        "genesis_root": genesis.root, "challenge_window_s": WINDOW_S,
        "forced_deadline_s": FORCED_DEADLINE_S, "escape_period_s": ESCAPE_PERIOD_S,
    }
    arguments.update(overrides)
    settlement = settlement_partial.deploy(*arguments.values())
    for user in (*users, stranger):
        token.mint(user, USER_FUNDS)
        with boa.env.prank(user):
            token.approve(settlement.address, 2**256 - 1)
    system = System(token, settlement, operator, challenger, users, stranger)
    system.trees[0] = genesis
    return system


@pytest.fixture(autouse=True, scope="session")
def _short_contract_repr() -> Iterator[None]:
    """boa writes a contract's whole storage into every revert's error message (its repr),
    which costs more than the call itself once storage grows: the tests need only the name
    and address (the revert's reason and source line stay in the error)."""
    original = VyperContract.__repr__

    def short(self: Any) -> str:
        return f"<{self.compiler_data.contract_path} at {self.address}>"

    VyperContract.__repr__ = short
    yield
    VyperContract.__repr__ = original


@pytest.fixture(autouse=True)
def _isolated() -> Iterator[None]:
    with boa.env.anchor():
        yield


@pytest.fixture
def make_system() -> Callable[..., System]:
    """``deploy_system`` as a fixture (each test is rolled back by ``_isolated``)."""
    return deploy_system


@pytest.fixture
def system(make_system: Callable[..., System]) -> System:
    return make_system()
