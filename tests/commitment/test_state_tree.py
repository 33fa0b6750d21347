"""The state root: ABI leaves, the slot map, incremental updates, proofs and golden vectors.

The leaves must be exactly what Solidity/Vyper ``abi.encode`` produce (the settlement contract
decodes them), so every leaf kind is compared with ``eth_abi.encode`` over generated records.
The slot map must be a function of the batch history (lowest free slot, frees before
placements, new records in key order); proofs must verify with the contract's algorithm.
"""

from __future__ import annotations

import json
import os
import pathlib

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ALICE, BOB, BTC, CAROL, PRICE_100K_TICKS, USDC, Venue
from rollbook.commitment import (
    TREE_DEPTH,
    RootMismatch,
    StateCommitment,
    apply_and_commit,
    canonical_root,
    genesis_commitment,
    hash_leaf,
    verify_proof,
)
from rollbook.commitment.leaves import (
    LEAF_GLOBALS,
    LEAF_MARKET,
    LEAF_ORDER,
    LEAF_SUBACCOUNT,
    LEAF_WITHDRAWAL,
    STATE_ENCODING_VERSION,
    globals_leaf,
    index_price_leaf,
    liquidation_leaf,
    market_leaf,
    order_leaf,
    subaccount_leaf,
    withdrawal_leaf,
)
from rollbook.execution import (
    Batch,
    CancelOrder,
    PlaceOrder,
    Side,
    Withdraw,
)
from rollbook.execution.state import (
    MarginGroup,
    Order,
    PendingWithdrawal,
    Position,
    Subaccount,
)

P = PRICE_100K_TICKS
FUNDS_DEFAULT = 100_000 * USDC
GOLDEN = pathlib.Path(__file__).resolve().parent.parent / "golden" / "leaf_vectors.json"
REGENERATE = os.environ.get("ROLLBOOK_REGENERATE_GOLDEN") == "1"

SUBACCOUNT_TYPES = ["uint256", "address", "uint256", "(uint256,int256)[]",
                    "(uint256,uint256,int256,int256,uint256,uint256)[]"]
ORDER_TYPES = ["uint256", "uint256", "uint256", "address"] + ["uint256"] * 7
WITHDRAWAL_TYPES = ["uint256", "uint256", "address", "uint256", "uint256", "uint256"]
MARKET_TYPES = (["uint256"] * 8 + ["int256", "int256", "uint256", "uint256", "int256"])
GLOBALS_TYPES = (["uint256"] * 5 + ["int256"] + ["uint256"] * 7)


def _checksum(address: bytes) -> str:
    return "0x" + address.hex()


u64 = st.integers(0, 2**64 - 1)
i128 = st.integers(-(2**127), 2**127 - 1)
# signed fields: the int64 range (leaves' one-call fast path), its edges, and beyond it
signed_fields = st.one_of(
    i128, st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([-(2**63) - 1, -(2**63), -(2**62), -(2**62) + 1, -1, 0, 1, 2**62 - 1,
                     2**62, 2**63 - 1, 2**63]))
addresses = st.binary(min_size=20, max_size=20)


@st.composite
def subaccounts(draw: st.DrawFn) -> Subaccount:
    sub = Subaccount(draw(addresses), draw(st.integers(0, 0xFFFF)))
    sub.cross.collateral_quantums = draw(signed_fields)
    for market_id in draw(st.lists(st.integers(1, 200), max_size=4, unique=True)):
        group = MarginGroup(sub, market_id)
        group.collateral_quantums = draw(signed_fields)
        sub.isolated[market_id] = group
    for group in sub.groups():
        markets = [group.isolated_market_id] if group.isolated_market_id else draw(
            st.lists(st.integers(1, 300), max_size=5, unique=True))
        for market_id in markets:
            position = Position(market_id, group)
            position.size_lots = draw(signed_fields)
            position.entry_notional_quantums = draw(signed_fields)
            position.open_bid_lots = draw(u64)
            position.open_ask_lots = draw(u64)
            group.positions[market_id] = position
    return sub


@settings(max_examples=300, deadline=None)
@given(sub=subaccounts())
def test_subaccount_leaf_is_abi_encode(sub: Subaccount) -> None:
    collaterals = [(g.isolated_market_id, g.collateral_quantums) for g in sub.groups()]
    positions = [
        (g.isolated_market_id, m, p.size_lots, p.entry_notional_quantums, p.open_bid_lots,
         p.open_ask_lots)
        for g in sub.groups() for m, p in sorted(g.positions.items()) if not p.is_empty()]
    expected = abi_encode(SUBACCOUNT_TYPES, [LEAF_SUBACCOUNT, _checksum(sub.owner), sub.number,
                                             collaterals, positions])
    assert subaccount_leaf(sub) == expected


@settings(max_examples=150, deadline=None)
@given(order_id=u64, market_id=st.integers(0, 0xFFFF), owner=addresses,
       number=st.integers(0, 0xFFFF), is_buy=st.booleans(), price=u64, size=u64, cid=u64,
       post_only=st.booleans(), stp=st.integers(1, 3))
def test_order_leaf_is_abi_encode(order_id: int, market_id: int, owner: bytes, number: int,
                                  is_buy: bool, price: int, size: int, cid: int,
                                  post_only: bool, stp: int) -> None:
    sub = Subaccount(owner, number)
    order = Order(order_id, sub, Position(market_id, sub.cross), market_id, is_buy, price,
                  size, cid, post_only, stp)
    expected = abi_encode(ORDER_TYPES, [LEAF_ORDER, order_id, market_id, _checksum(owner),
                                        number, int(is_buy), price, size, cid, int(post_only),
                                        stp])
    assert order_leaf(order) == expected


@settings(max_examples=100, deadline=None)
@given(wid=u64, owner=addresses, number=st.integers(0, 0xFFFF), amount=u64, batch=u64)
def test_withdrawal_and_small_leaves_are_abi_encode(wid: int, owner: bytes, number: int,
                                                    amount: int, batch: int) -> None:
    w = PendingWithdrawal(wid, owner, number, amount, batch)
    assert withdrawal_leaf(w) == abi_encode(
        WITHDRAWAL_TYPES, [LEAF_WITHDRAWAL, wid, _checksum(owner), number, amount, batch])
    assert index_price_leaf(number, amount) == abi_encode(["uint256"] * 3, [2, number, amount])
    assert liquidation_leaf(wid, owner, number, 7) == abi_encode(
        ["uint256", "uint256", "address", "uint256", "uint256"],
        [7, wid, _checksum(owner), number, 7])


def test_market_and_globals_leaves_decode(venue: Venue) -> None:
    venue.fund([ALICE], FUNDS_DEFAULT)
    market = abi_decode(MARKET_TYPES, market_leaf(venue.state, BTC))
    assert market[:2] == (LEAF_MARKET, BTC)
    assert market[4] == venue.state.markets[BTC].index_price_quantums
    assert market[5] == venue.state.markets[BTC].config.lot_size_nanounits
    assert market[12] == -1  # no funding tick yet
    globals_ = abi_decode(GLOBALS_TYPES, globals_leaf(venue.state))
    assert globals_[:3] == (LEAF_GLOBALS, STATE_ENCODING_VERSION, venue.state.batch_index)
    assert globals_[8] == 1  # one deposit credited
    assert globals_[9] == 0  # no forced withdrawal processed


def _traded_venue() -> Venue:
    v = Venue()
    v.run_ok(v.oracle(100_000 * USDC))
    v.fund([ALICE, BOB, CAROL], FUNDS_DEFAULT)
    v.run_ok(PlaceOrder(BOB, 0, BTC, Side.SELL, P, 300),
             PlaceOrder(BOB, 0, BTC, Side.SELL, P + 1, 300),
             PlaceOrder(CAROL, 0, BTC, Side.BUY, P - 1, 200))
    v.run_ok(PlaceOrder(ALICE, 0, BTC, Side.BUY, P, 100))
    v.run_ok(Withdraw(CAROL, 0, 1_000 * USDC))
    return v


def test_every_leaf_proof_verifies_with_the_contract_algorithm() -> None:
    v = _traded_venue()
    root = v.commitment.root
    keys = [(0,), (LEAF_SUBACCOUNT, ALICE, 0), (LEAF_SUBACCOUNT, BOB, 0), (LEAF_MARKET, BTC),
            (LEAF_WITHDRAWAL, 1), *((LEAF_ORDER, order_id) for order_id in v.state.orders)]
    for key in keys:
        proof = v.commitment.proof(key)
        assert proof.root == root
        assert len(proof.siblings) == TREE_DEPTH
        assert verify_proof(root, TREE_DEPTH, proof.leaf_index, hash_leaf(proof.leaf),
                            proof.siblings)
        # the same proof at another index, or for another leaf, does not verify
        assert not verify_proof(root, TREE_DEPTH, proof.leaf_index ^ 1, hash_leaf(proof.leaf),
                                proof.siblings)
        assert not verify_proof(root, TREE_DEPTH, proof.leaf_index,
                                hash_leaf(proof.leaf + b"\x00"), proof.siblings)


def test_slots_are_reused_lowest_first_and_follow_history() -> None:
    v = Venue()
    v.run_ok(v.oracle(100_000 * USDC))
    v.fund([ALICE], FUNDS_DEFAULT)
    v.run_ok(*(PlaceOrder(ALICE, 0, BTC, Side.BUY, P - 10 - i, 10) for i in range(4)))
    order_ids = sorted(v.state.orders)
    slots = [v.commitment.slot_of((LEAF_ORDER, order_id)) for order_id in order_ids]
    assert slots == sorted(slots) and len(set(slots)) == 4  # placed in key order
    v.run_ok(CancelOrder(ALICE, 0, order_ids[1]), CancelOrder(ALICE, 0, order_ids[2]))
    assert v.commitment.slot_of((LEAF_ORDER, order_ids[1])) is None
    v.run_ok(PlaceOrder(ALICE, 0, BTC, Side.BUY, P - 50, 10),
             PlaceOrder(ALICE, 0, BTC, Side.BUY, P - 51, 10))
    new_ids = sorted(set(v.state.orders) - set(order_ids))
    assert [v.commitment.slot_of((LEAF_ORDER, i)) for i in new_ids] == [slots[1], slots[2]]


def test_an_order_placed_and_cancelled_in_one_batch_takes_no_slot(venue: Venue) -> None:
    venue.fund([ALICE], FUNDS_DEFAULT)
    leaves_before = venue.commitment.leaf_count
    next_id = venue.state.next_order_id
    venue.run_ok(PlaceOrder(ALICE, 0, BTC, Side.BUY, P - 10, 10), CancelOrder(ALICE, 0, next_id))
    assert venue.commitment.slot_of((LEAF_ORDER, next_id)) is None
    assert venue.commitment.leaf_count == leaves_before


def test_live_root_depends_on_history_and_canonical_root_does_not() -> None:
    """The same transactions cut into batches differently reach the same state (the same
    canonical root) but may place records in different slots (different live roots)."""
    split = Venue()
    joined = Venue()
    for v in (split, joined):
        v.run_ok(v.oracle(100_000 * USDC))
        v.fund([ALICE], FUNDS_DEFAULT)
    first = split.state.next_order_id
    place = [PlaceOrder(ALICE, 0, BTC, Side.BUY, P - 10 - i, 10) for i in range(3)]
    split.run_ok(place[0], place[1])
    split.run_ok(CancelOrder(ALICE, 0, first), place[2])  # the third order reuses a freed slot
    joined.run_ok(place[0], place[1], CancelOrder(ALICE, 0, first), place[2])
    joined.run_ok()  # the same batch count and clock: only the cut differs
    assert canonical_root(split.state) == canonical_root(joined.state)
    assert split.commitment.root != joined.commitment.root
    # split: the first order took a slot, and the third reused it; joined: the first never did
    assert split.commitment.slot_of((LEAF_ORDER, first + 2)) == (
        joined.commitment.slot_of((LEAF_ORDER, first + 1)))
    assert split.commitment.slot_of((LEAF_ORDER, first + 1)) == (
        joined.commitment.slot_of((LEAF_ORDER, first + 2)))
    replay = Venue()  # the same history gives the same live root
    replay.run_ok(replay.oracle(100_000 * USDC))
    replay.fund([ALICE], FUNDS_DEFAULT)
    replay.run_ok(place[0], place[1])
    replay.run_ok(CancelOrder(ALICE, 0, first), place[2])
    assert replay.commitment.root == split.commitment.root


def test_batch_must_extend_the_committed_root(venue: Venue) -> None:
    stale = Batch(venue.state.batch_index + 1, venue.clock_ms + 1_000, bytes(32), ())
    before = venue.commitment.root
    with pytest.raises(RootMismatch):
        apply_and_commit(venue.state, venue.commitment, stale)
    assert venue.commitment.root == before and venue.state.batch_index == stale.index - 1


def test_copy_is_a_snapshot() -> None:
    v = _traded_venue()
    snapshot = v.commitment.copy()
    root = v.commitment.root
    proof = snapshot.proof((LEAF_WITHDRAWAL, 1))
    v.run_ok(PlaceOrder(ALICE, 0, BTC, Side.BUY, P - 100, 10),
             PlaceOrder(BOB, 0, BTC, Side.SELL, P + 100, 10))
    assert v.commitment.root != root
    assert snapshot.root == root
    assert verify_proof(root, TREE_DEPTH, proof.leaf_index, hash_leaf(proof.leaf),
                        proof.siblings)


def test_check_catches_a_missed_touch_mark(venue: Venue) -> None:
    venue.fund([ALICE], FUNDS_DEFAULT)
    venue.state.subaccounts[(ALICE, 0)].cross.collateral_quantums += 1  # unmarked mutation
    venue.commitment.commit(venue.state)
    with pytest.raises(AssertionError, match="stale leaf"):
        venue.commitment.check(venue.state)


def test_genesis_commitment_holds_markets_insurance_and_globals() -> None:
    v = Venue()
    commitment = genesis_commitment(v.state)
    assert commitment.leaf_count == 1 + len(v.state.markets) + 1
    assert commitment.root == v.commitment.root
    assert isinstance(StateCommitment().root, bytes)


def test_golden_leaves_and_proofs() -> None:
    """Leaf bytes, slots, proofs and roots of a fixed scenario, pinned byte for byte."""
    v = _traded_venue()
    vectors: dict[str, object] = {"root": v.commitment.root.hex(), "leaves": {}}
    keys = {"globals": (0,), "alice": (LEAF_SUBACCOUNT, ALICE, 0),
            "market": (LEAF_MARKET, BTC), "withdrawal": (LEAF_WITHDRAWAL, 1),
            "first_order": (LEAF_ORDER, min(v.state.orders))}
    leaves: dict[str, object] = {}
    for name, key in keys.items():
        proof = v.commitment.proof(key)
        leaves[name] = {"index": proof.leaf_index, "leaf": proof.leaf.hex(),
                        "proof": [s.hex() for s in proof.siblings]}
    vectors["leaves"] = leaves
    if REGENERATE:
        GOLDEN.write_text(json.dumps(vectors, indent=2) + "\n")
    assert vectors == json.loads(GOLDEN.read_text())


# --- option leaves -------------------------------------------------------------------------------

QUOTES_TYPES = ["uint256", "address", "uint256", "uint256"] + ["uint256"] * 6 + [
    "int256", "uint256", "(uint256,int256,int256,int256)[]", "uint256[]"]
EXPIRY_TYPES = ["uint256"] * 6 + ["int256"] + ["uint256"] * 4
VOLATILITY_TYPES = ["uint256"] * 4 + ["int256", "uint256", "int256", "int256", "uint256"]
i256 = st.integers(-(2**200), 2**200)


@settings(max_examples=100, deadline=None)
@given(owner=addresses, number=st.integers(0, 0xFFFF), index_id=st.integers(0, 2**32 - 1),
       window=st.integers(1, 3_600_000), frozen=st.integers(0, 86_400_000),
       limits=st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1),
                        st.integers(0, 2**64 - 1)),
       fills=st.lists(st.tuples(st.integers(0, 2**40), i128, i128, i128), max_size=5),
       ids=st.lists(u64, max_size=6), enabled=st.booleans())
def test_quotes_leaf_is_abi_encode(owner: bytes, number: int, index_id: int, window: int,
                                   frozen: int, limits: tuple[int, int, int],
                                   fills: list[tuple[int, int, int, int]], ids: list[int],
                                   enabled: bool) -> None:
    from rollbook.commitment.leaves import LEAF_QUOTES, quotes_leaf
    from rollbook.execution.options.mmp import MmpConfig, MmpFill, MmpWindow
    from rollbook.execution.state import QuoteLadder

    ladder = QuoteLadder((owner, number, index_id))
    ladder.quote_order_ids = ids
    config_words = [0] * 6
    frozen_until, last_ms = -1, 0
    if enabled and any(limits):
        config = MmpConfig(window, frozen, limits[0] or None, limits[1] or None,
                           limits[2] or None)
        window_state = MmpWindow(config)
        ladder.mmp = window_state
        timestamp = 0
        for fill_ms, quantity, delta, vega in sorted(fills):  # a window holding these fills
            timestamp = fill_ms
            window_state._fills.append(MmpFill(fill_ms, quantity, delta, vega))
        window_state._last_ms = timestamp
        config_words = [1, window, frozen, *limits]
        frozen_until, last_ms, state_fills = window_state.state()
        fills_expected = [list(f) for f in state_fills]
    else:
        fills_expected = []
    expected = abi_encode(QUOTES_TYPES, [LEAF_QUOTES, _checksum(owner), number, index_id,
                                         *config_words, frozen_until, last_ms, fills_expected,
                                         ids])
    assert quotes_leaf(ladder) == expected


def test_option_leaves_are_abi_encode_and_prove() -> None:
    import sys

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "options"))
    from option_venue import option_venue

    from rollbook.commitment.leaves import (
        LEAF_OPTION_EXPIRY,
        LEAF_OPTION_MARKET,
        LEAF_PORTFOLIO_MARGIN,
        LEAF_VOLATILITY,
        option_expiry_leaf,
        option_market_leaf,
        portfolio_margin_leaf,
        volatility_leaf,
    )
    from rollbook.execution import SetPortfolioMargin

    v = option_venue()
    v.fund([ALICE], FUNDS_DEFAULT)
    v.run_ok(SetPortfolioMargin(ALICE, 0, True))
    state = v.state
    market_id = min(m for m, market in state.markets.items() if market.option is not None)
    market = state.markets[market_id]
    spec = market.option.spec  # type: ignore[union-attr]
    assert option_market_leaf(market) == abi_encode(
        ["uint256"] * 6, [LEAF_OPTION_MARKET, market_id, spec.index_id, spec.expiry_ms,
                          spec.strike_quantums, int(spec.option_type)])
    (key, expiry), = state.expiries.items()
    assert option_expiry_leaf(expiry) == abi_encode(EXPIRY_TYPES, [
        LEAF_OPTION_EXPIRY, key[0], key[1], expiry.status, expiry.window_ms, expiry.sample_count,
        expiry.last_sample_ms, expiry.last_sample_price_quantums, expiry.weighted_quantums_ms,
        expiry.covered_ms, expiry.settlement_price_quantums])
    smile = state.smiles[key]
    assert volatility_leaf(smile) == abi_encode(VOLATILITY_TYPES, [
        LEAF_VOLATILITY, smile.index_id, smile.expiry_ms, smile.observed_ms, smile.a_wad,
        smile.b_wad, smile.rho_wad, smile.m_wad, smile.sigma_svi_wad])
    assert portfolio_margin_leaf(ALICE, 0) == abi_encode(
        ["uint256", "address", "uint256", "uint256"],
        [LEAF_PORTFOLIO_MARGIN, _checksum(ALICE), 0, 1])
    root = v.commitment.root
    for leaf_key in ((LEAF_OPTION_MARKET, market_id), (LEAF_OPTION_EXPIRY, *key),
                     (LEAF_VOLATILITY, *key), (LEAF_PORTFOLIO_MARGIN, ALICE, 0)):
        proof = v.commitment.proof(leaf_key)  # type: ignore[arg-type]
        assert verify_proof(root, TREE_DEPTH, proof.leaf_index, hash_leaf(proof.leaf),
                            proof.siblings)
    # the market leaf's fifth field is the committed mark, which the escape hatch values with
    fields = abi_decode(MARKET_TYPES, market_leaf(state, market_id))
    assert fields[2] == 2 and fields[4] == market.index_price_quantums > 0


@given(st.lists(st.one_of(
    st.tuples(st.sampled_from([2, 3, 6, 7, 8]), st.integers(min_value=0, max_value=2**64)),
    st.tuples(st.just(4), st.binary(min_size=20, max_size=20), st.integers(0, 9)),
    st.tuples(st.just(5), st.integers(min_value=0, max_value=2**64))), unique=True))
def test_new_keys_are_placed_in_leaf_key_order(keys: list[tuple[int, ...]]) -> None:
    from rollbook.commitment.changes import place_updates

    slots: dict[tuple[int, ...], int] = {}
    updates: dict[tuple[int, ...], bytes | None] = {key: b"leaf" for key in keys}
    placed, next_slot = place_updates(slots, [], 1, updates)  # type: ignore[arg-type]
    assert next_slot == 1 + len(keys)
    assert [key for key, _ in sorted(slots.items(), key=lambda item: item[1])] == sorted(keys)
    assert placed == dict.fromkeys(range(1, next_slot), b"leaf")
