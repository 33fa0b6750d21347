"""Every error code a transaction can produce, each with its stable message and no state change.

A rejected transaction is applied with ``apply_transaction`` directly, and the state digest
(which covers every canonical leaf) is compared before and after. The batch cost limit is a
batch-level rejection, so there the batch carrying it is compared with a batch without it.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any, cast

import coincurve
import pytest

import rollbook.execution
from conftest import (
    ALICE,
    BOB,
    BTC,
    CAROL,
    INDEX_100K_QUANTUMS,
    ORACLE_KEY,
    PRICE_100K_TICKS,
    USDC,
    Venue,
    assert_rejected,
    signed_oracle,
    venue_config,
)
from rollbook.commitment import canonical_root
from rollbook.execution import (
    Batch,
    CancelAll,
    CancelOrder,
    CancelOrderByClientId,
    Deposit,
    ErrorCode,
    FundingTick,
    ModifyOrder,
    MoveIsolatedMargin,
    OraclePrice,
    OracleUpdate,
    OrderType,
    PlaceOrder,
    SelfTradePrevention,
    SetMarginMode,
    Side,
    TimeInForce,
    Transfer,
    Withdraw,
    apply_batch,
    apply_transaction,
    default_venue_config,
)
from rollbook.execution.config import HEARTBEAT_COST_BOUND_UNITS
from rollbook.execution.crypto import SECP256K1_N, address_of_public_key, sign_digest
from rollbook.execution.errors import ERROR_MESSAGES
from rollbook.execution.oracle import oracle_message_digest
from rollbook.execution.state import INSURANCE_OWNER, State

P = PRICE_100K_TICKS
FUNDS = 100_000 * USDC
OTHER_KEY = (0xB0B).to_bytes(32, "big")


@pytest.fixture
def funded(venue: Venue) -> Venue:
    venue.fund([ALICE, BOB], FUNDS)
    return venue


def order(owner: bytes = ALICE, side: Side = Side.BUY, price: int = P - 10, size: int = 10,
          **kwargs: object) -> PlaceOrder:
    return PlaceOrder(owner, 0, BTC, side, price, size, **kwargs)  # type: ignore[arg-type]


# --- envelope and metering -------------------------------------------------------------------


def test_batch_cost_limit() -> None:
    # the smallest valid limit carries exactly one heartbeat (oracle update) and nothing else
    config = dataclasses.replace(venue_config(), batch_cost_max=HEARTBEAT_COST_BOUND_UNITS)
    with_rejected = Venue(config)
    without = Venue(config)
    deposit = Deposit(1, ALICE, 0, FUNDS)
    oracle = with_rejected.oracle(INDEX_100K_QUANTUMS)
    receipts = with_rejected.run(deposit, oracle)  # 12 used + a 200,000 bound > 200,000
    without.run(deposit)
    assert receipts[0].ok
    rejected = receipts[1]
    assert rejected.code == ErrorCode.BATCH_COST_LIMIT
    assert rejected.message == ERROR_MESSAGES[ErrorCode.BATCH_COST_LIMIT]
    assert rejected.events == () and rejected.cost_units == 0
    assert canonical_root(with_rejected.state) == canonical_root(without.state)


def test_batch_cost_limit_counts_what_was_used() -> None:
    config = dataclasses.replace(venue_config(), batch_cost_max=HEARTBEAT_COST_BOUND_UNITS + 30)
    v = Venue(config)
    oracle = v.oracle(INDEX_100K_QUANTUMS)
    # the oracle update is bounded by 200,000 but costs 100; then deposits bounded by 12 each:
    # 100 + 12 + 12 fits in 200,030 only while the next bound still fits after actual use
    receipts = v.run(oracle, *(v.deposit(owner, USDC) for owner in (ALICE, BOB)),
                     FundingTick())
    assert [r.code for r in receipts] == [ErrorCode.OK, ErrorCode.OK, ErrorCode.OK,
                                          ErrorCode.BATCH_COST_LIMIT]
    assert receipts[0].cost_units == 100 and receipts[1].cost_units == 12


def test_genesis_refuses_a_batch_limit_that_cannot_carry_a_heartbeat() -> None:
    config = dataclasses.replace(venue_config(), batch_cost_max=HEARTBEAT_COST_BOUND_UNITS - 1)
    with pytest.raises(AssertionError, match="heartbeat"):
        Venue(config)


# the transactions are built in the test, not at collection: compiled (mypyc), a non-enum value
# for an enum field raises TypeError in the constructor (tests/execution/test_compiled_types.py)
@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ({"client_order_id": 2**64}, "client order id"),
        pytest.param({"side": cast(Side, 3)}, None, marks=pytest.mark.pure_only),
        pytest.param({"self_trade": cast(SelfTradePrevention, 0)}, None,
                     marks=pytest.mark.pure_only),
        pytest.param({"time_in_force": cast(TimeInForce, 9)}, None, marks=pytest.mark.pure_only),
    ],
    ids=["client-order-id", "side", "self-trade", "time-in-force"],
)
def test_malformed_order(funded: Venue, fields: dict[str, Any], detail: str | None) -> None:
    assert_rejected(funded.state, order(**fields), ErrorCode.MALFORMED_TRANSACTION, detail)


@pytest.mark.pure_only
def test_malformed_unknown_transaction_kind(funded: Venue) -> None:
    assert_rejected(funded.state, object(), ErrorCode.MALFORMED_TRANSACTION,
                    "unknown transaction kind")


def _oracle(state: State, timestamp_ms: int, prices: tuple[OraclePrice, ...],
            keys: tuple[bytes, ...] = (ORACLE_KEY,)) -> OracleUpdate:
    digest = oracle_message_digest(state.config.chain_id, timestamp_ms, prices)
    return OracleUpdate(timestamp_ms, prices, tuple(sign_digest(k, digest) for k in keys))


@pytest.mark.parametrize(
    ("prices", "signature_count", "detail"),
    [
        ((), 1, "price or signature count"),
        (tuple(OraclePrice(BTC, 1) for _ in range(257)), 1, "price or signature count"),
        ((OraclePrice(BTC, 1),), 33, "price or signature count"),
        ((OraclePrice(BTC, 1), OraclePrice(BTC, 2)), 1, "duplicate index"),
        ((OraclePrice(BTC, 0),), 1, "price out of range"),
        ((OraclePrice(BTC, 10**24 + 1),), 1, "price out of range"),
    ],
    ids=["no-prices", "too-many-prices", "too-many-signatures", "duplicate-index",
         "zero-price", "price-too-large"],
)
def test_malformed_oracle_update(venue: Venue, prices: tuple[OraclePrice, ...],
                                 signature_count: int, detail: str) -> None:
    state = venue.state
    timestamp_ms = state.timestamp_ms + 1
    good = _oracle(state, timestamp_ms, prices)
    tx = OracleUpdate(timestamp_ms, prices, good.signatures * signature_count)
    assert_rejected(state, tx, ErrorCode.MALFORMED_TRANSACTION, detail)


# --- accounts and collateral ------------------------------------------------------------------


def test_account_not_found(funded: Venue) -> None:
    state = funded.state
    assert_rejected(state, Withdraw(CAROL, 0, 1), ErrorCode.ACCOUNT_NOT_FOUND)
    assert_rejected(state, Withdraw(ALICE, 1, 1), ErrorCode.ACCOUNT_NOT_FOUND)
    assert_rejected(state, order(owner=CAROL), ErrorCode.ACCOUNT_NOT_FOUND)
    assert_rejected(state, CancelAll(CAROL, 0), ErrorCode.ACCOUNT_NOT_FOUND)
    assert_rejected(state, Transfer(CAROL, 0, ALICE, 0, 1), ErrorCode.ACCOUNT_NOT_FOUND)
    # the insurance fund exists as a subaccount but no transaction may act for it
    assert INSURANCE_OWNER in {owner for owner, _ in state.subaccounts}
    assert_rejected(state, Withdraw(INSURANCE_OWNER, 0, 1), ErrorCode.ACCOUNT_NOT_FOUND)
    assert_rejected(state, order(owner=INSURANCE_OWNER), ErrorCode.ACCOUNT_NOT_FOUND)


@pytest.mark.parametrize(
    ("owner", "number"),
    # the zero address is the insurance fund's: a transfer may top up the fund (its subaccount
    # 0, see test_liquidation), so the rejected destination is any other subaccount of it
    [(INSURANCE_OWNER, 1), (b"\x01" * 19, 0), (b"\x01" * 21, 0), (b"", 0)],
    ids=["zero", "short", "long", "empty"])
def test_invalid_address(funded: Venue, owner: bytes, number: int) -> None:
    state = funded.state
    for deposit_number in {0, number}:  # nobody deposits to the zero address, the fund included
        assert_rejected(state, Deposit(state.next_deposit_id, owner, deposit_number, USDC),
                        ErrorCode.INVALID_ADDRESS)
    assert_rejected(state, Transfer(ALICE, 0, owner, number, USDC), ErrorCode.INVALID_ADDRESS)


def test_a_transfer_topping_up_the_insurance_fund_is_still_checked(funded: Venue) -> None:
    """Only the address rule is lifted for the fund's subaccount: amount and free collateral
    are checked as for any transfer."""
    state = funded.state
    assert_rejected(state, Transfer(ALICE, 0, INSURANCE_OWNER, 0, 0), ErrorCode.INVALID_AMOUNT)
    assert_rejected(state, Transfer(ALICE, 0, INSURANCE_OWNER, 0, FUNDS + 1),
                    ErrorCode.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL)
    assert_rejected(state, Transfer(CAROL, 0, INSURANCE_OWNER, 0, 1),
                    ErrorCode.ACCOUNT_NOT_FOUND)


@pytest.mark.parametrize("number", [-1, 0x10000])
def test_invalid_subaccount(funded: Venue, number: int) -> None:
    state = funded.state
    assert_rejected(state, Deposit(state.next_deposit_id, ALICE, number, USDC),
                    ErrorCode.INVALID_SUBACCOUNT, str(number))
    assert_rejected(state, Transfer(ALICE, 0, BOB, number, USDC), ErrorCode.INVALID_SUBACCOUNT)


@pytest.mark.parametrize("amount", [0, -1, 10**15 + 1])
def test_invalid_amount(funded: Venue, amount: int) -> None:
    state = funded.state
    assert_rejected(state, Deposit(state.next_deposit_id, ALICE, 0, amount),
                    ErrorCode.INVALID_AMOUNT, str(amount))
    assert_rejected(state, Withdraw(ALICE, 0, amount), ErrorCode.INVALID_AMOUNT)
    assert_rejected(state, Transfer(ALICE, 0, BOB, 0, amount), ErrorCode.INVALID_AMOUNT)


def test_invalid_amount_of_an_isolated_move(funded: Venue) -> None:
    funded.run_ok(SetMarginMode(ALICE, 0, BTC, True))
    state = funded.state
    assert_rejected(state, MoveIsolatedMargin(ALICE, 0, BTC, 0), ErrorCode.INVALID_AMOUNT, "0")
    assert_rejected(state, MoveIsolatedMargin(ALICE, 0, BTC, -(10**15) - 1),
                    ErrorCode.INVALID_AMOUNT)


def test_deposit_maximum_is_accepted(venue: Venue) -> None:
    (receipt,) = venue.run(Deposit(1, ALICE, 0xFFFF, 10**15))
    assert receipt.ok


def test_deposit_already_credited(funded: Venue) -> None:
    state = funded.state
    assert state.next_deposit_id == 3
    assert_rejected(state, Deposit(1, ALICE, 0, USDC), ErrorCode.DEPOSIT_ALREADY_CREDITED,
                    "deposit 1")
    assert_rejected(state, Deposit(2, CAROL, 0, USDC), ErrorCode.DEPOSIT_ALREADY_CREDITED)


def test_deposit_out_of_order(funded: Venue) -> None:
    assert_rejected(funded.state, Deposit(4, CAROL, 0, USDC), ErrorCode.DEPOSIT_OUT_OF_ORDER,
                    "expected 3, got 4")


def test_insufficient_margin(funded: Venue) -> None:
    funded.run_ok(Deposit(3, CAROL, 0, 100 * USDC))
    state = funded.state
    # 100 USDC carries 10% of $1,000 = 100 lots at $100,000, and not one lot more
    assert_rejected(state, order(owner=CAROL, price=P, size=101), ErrorCode.INSUFFICIENT_MARGIN)
    assert_rejected(state, order(owner=CAROL, side=Side.SELL, price=P, size=101),
                    ErrorCode.INSUFFICIENT_MARGIN)
    funded.run_ok(order(owner=CAROL, price=P, size=100))
    assert_rejected(state, order(owner=CAROL, side=Side.SELL, price=P + 5, size=101),
                    ErrorCode.INSUFFICIENT_MARGIN)
    # a taker order whose fill would leave the account under initial margin
    funded.run_ok(CancelAll(CAROL, 0), order(owner=BOB, side=Side.SELL, price=P, size=200))
    assert_rejected(state, order(owner=CAROL, price=P, size=101,
                                 time_in_force=TimeInForce.IOC), ErrorCode.INSUFFICIENT_MARGIN)


def test_withdrawal_above_free_collateral(funded: Venue) -> None:
    state = funded.state
    assert_rejected(state, Withdraw(ALICE, 0, FUNDS + 1),
                    ErrorCode.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL)
    assert_rejected(state, Transfer(ALICE, 0, BOB, 0, FUNDS + 1),
                    ErrorCode.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL)
    # resting orders reserve initial margin: 1,000 lots at $100,000 reserve 1,000 USDC
    funded.run_ok(order(price=P, size=1_000))
    assert_rejected(state, Withdraw(ALICE, 0, FUNDS - 1_000 * USDC + 1),
                    ErrorCode.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL)
    (receipt,) = funded.run(Withdraw(ALICE, 0, FUNDS - 1_000 * USDC))
    assert receipt.ok


def test_unrealised_profit_cannot_be_withdrawn(venue: Venue) -> None:
    venue.fund([ALICE, BOB], 10_000 * USDC)
    venue.run_ok(order(owner=BOB, side=Side.SELL, price=P, size=1_000))
    venue.run_ok(order(owner=ALICE, price=P, size=1_000, time_in_force=TimeInForce.IOC))
    venue.run_ok(venue.oracle(110_000 * USDC))  # ALICE's $10,000 long is up $1,000
    state = venue.state
    alice = state.subaccounts[(ALICE, 0)].cross
    assert alice.collateral_quantums == -5 * USDC  # paid $10,000 and a $5 fee
    # equity is $10,995; without the profit $9,995, and the floor (20% of $11,000) stays behind
    free_without_profit = 9_995 * USDC - 2_200 * USDC
    assert_rejected(state, Withdraw(ALICE, 0, free_without_profit + 1),
                    ErrorCode.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL)
    assert_rejected(state, Transfer(ALICE, 0, CAROL, 0, free_without_profit + 1),
                    ErrorCode.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL)
    (receipt,) = venue.run(Withdraw(ALICE, 0, free_without_profit))
    assert receipt.ok


def test_account_in_liquidation() -> None:
    config = dataclasses.replace(venue_config(), liquidations_per_tx_max=1)
    v = Venue(config)
    v.run_ok(v.oracle(INDEX_100K_QUANTUMS))
    v.fund([ALICE, CAROL], 1_100 * USDC)
    v.fund([BOB], FUNDS)
    v.run_ok(order(owner=BOB, side=Side.SELL, price=P, size=2_000))
    v.run_ok(order(owner=ALICE, price=P, size=1_000, time_in_force=TimeInForce.IOC),
             order(owner=CAROL, price=P, size=1_000, time_in_force=TimeInForce.IOC))
    # at $93,000 both longs are under maintenance; one liquidation per transaction leaves
    # CAROL (the later key) waiting in the queue
    v.run_ok(v.oracle(93_000 * USDC))
    state = v.state
    assert list(state.liquidation_queue) == [(CAROL, 0, 0)]
    assert_rejected(state, Withdraw(CAROL, 0, 1), ErrorCode.ACCOUNT_IN_LIQUIDATION)
    assert_rejected(state, Transfer(CAROL, 0, ALICE, 0, 1), ErrorCode.ACCOUNT_IN_LIQUIDATION)


def test_transfer_to_self(funded: Venue) -> None:
    assert_rejected(funded.state, Transfer(ALICE, 0, ALICE, 0, USDC), ErrorCode.TRANSFER_TO_SELF)
    (receipt,) = funded.run(Transfer(ALICE, 0, ALICE, 1, USDC))  # another subaccount is fine
    assert receipt.ok


def test_accounts_limit() -> None:
    # the insurance fund is one of the two subaccounts allowed
    v = Venue(dataclasses.replace(venue_config(), subaccounts_max=2))
    v.run_ok(Deposit(1, ALICE, 0, FUNDS))
    state = v.state
    assert_rejected(state, Transfer(ALICE, 0, ALICE, 1, USDC), ErrorCode.ACCOUNTS_LIMIT)
    (receipt,) = v.run(Deposit(2, ALICE, 0, USDC))  # an existing subaccount is fine
    assert receipt.ok
    # an L1 deposit is always credited, even to a new subaccount past the limit: refusing it
    # would block every later deposit, which are credited in id order
    (receipt,) = v.run(Deposit(3, BOB, 0, USDC))
    assert receipt.ok and len(v.state.subaccounts) == 3


def test_deposit_bound_is_the_settlement_contracts() -> None:
    from rollbook.execution.config import DEPOSIT_QUANTUMS_MAX
    from rollbook.settlement import reference

    assert reference.DEPOSIT_QUANTUMS_MAX == DEPOSIT_QUANTUMS_MAX
    v = Venue(dataclasses.replace(venue_config(), deposit_quantums_max=USDC))
    (receipt,) = v.run(Deposit(1, ALICE, 0, DEPOSIT_QUANTUMS_MAX))  # the venue cap is for L2
    assert receipt.ok
    assert_rejected(v.state, Deposit(2, ALICE, 0, DEPOSIT_QUANTUMS_MAX + 1),
                    ErrorCode.INVALID_AMOUNT, f"{DEPOSIT_QUANTUMS_MAX + 1}")


def test_margin_mode_busy(funded: Venue) -> None:
    funded.run_ok(order())
    assert_rejected(funded.state, SetMarginMode(ALICE, 0, BTC, True), ErrorCode.MARGIN_MODE_BUSY)
    funded.run_ok(CancelAll(ALICE, 0), order(owner=BOB, side=Side.SELL, price=P, size=5),
                  order(price=P, size=5, time_in_force=TimeInForce.IOC))
    assert_rejected(funded.state, SetMarginMode(ALICE, 0, BTC, True), ErrorCode.MARGIN_MODE_BUSY)


def test_margin_mode_busy_in_an_isolated_market(funded: Venue) -> None:
    funded.run_ok(SetMarginMode(ALICE, 0, BTC, True), MoveIsolatedMargin(ALICE, 0, BTC, FUNDS // 2),
                  order())
    assert_rejected(funded.state, SetMarginMode(ALICE, 0, BTC, False), ErrorCode.MARGIN_MODE_BUSY)


def test_not_isolated(funded: Venue) -> None:
    assert_rejected(funded.state, MoveIsolatedMargin(ALICE, 0, BTC, USDC), ErrorCode.NOT_ISOLATED,
                    f"market {BTC}")
    assert_rejected(funded.state, MoveIsolatedMargin(ALICE, 0, 7, USDC), ErrorCode.NOT_ISOLATED)


# --- markets and orders ------------------------------------------------------------------------


def test_unknown_market(funded: Venue) -> None:
    state = funded.state
    assert_rejected(state, PlaceOrder(ALICE, 0, 7, Side.BUY, P, 1), ErrorCode.UNKNOWN_MARKET,
                    "market 7")
    assert_rejected(state, CancelAll(ALICE, 0, 7), ErrorCode.UNKNOWN_MARKET)
    assert_rejected(state, SetMarginMode(ALICE, 0, 7, True), ErrorCode.UNKNOWN_MARKET)


def test_oracle_price_missing() -> None:
    v = Venue()
    v.fund([ALICE], FUNDS)
    assert_rejected(v.state, order(), ErrorCode.ORACLE_PRICE_MISSING, f"market {BTC}")


@pytest.mark.parametrize("price", [0, -1, 2**48 + 1])
def test_invalid_price(funded: Venue, price: int) -> None:
    assert_rejected(funded.state, order(price=price), ErrorCode.INVALID_PRICE)
    assert_rejected(funded.state, order(price=price, order_type=OrderType.MARKET,
                                        time_in_force=TimeInForce.IOC), ErrorCode.INVALID_PRICE)


@pytest.mark.parametrize("size", [0, -5])
def test_invalid_size(funded: Venue, size: int) -> None:
    assert_rejected(funded.state, order(size=size), ErrorCode.INVALID_SIZE)


def test_order_size_above_max(funded: Venue) -> None:
    assert_rejected(funded.state, order(size=10_000_001), ErrorCode.ORDER_SIZE_ABOVE_MAX,
                    "10000001 > 10000000 lots")


@pytest.mark.parametrize("price", [P + P // 10 + 1, P - P // 10 - 1])
def test_price_outside_band(funded: Venue, price: int) -> None:
    assert_rejected(funded.state, order(price=price), ErrorCode.PRICE_OUTSIDE_BAND)


def test_post_only_would_cross(funded: Venue) -> None:
    funded.run_ok(order(owner=BOB, side=Side.SELL, price=P, size=5))
    assert_rejected(funded.state, order(price=P, time_in_force=TimeInForce.POST_ONLY),
                    ErrorCode.POST_ONLY_WOULD_CROSS)


def test_fok_not_filled(funded: Venue) -> None:
    funded.run_ok(order(owner=BOB, side=Side.SELL, price=P, size=5))
    assert_rejected(funded.state, order(price=P, size=6, time_in_force=TimeInForce.FOK),
                    ErrorCode.FOK_NOT_FILLED, "5 of 6 lots available")


def test_reduce_only_would_increase(funded: Venue) -> None:
    assert_rejected(funded.state, order(reduce_only=True, time_in_force=TimeInForce.IOC),
                    ErrorCode.REDUCE_ONLY_WOULD_INCREASE)


@pytest.mark.parametrize("tif", [TimeInForce.GTC, TimeInForce.POST_ONLY])
def test_reduce_only_not_ioc(funded: Venue, tif: TimeInForce) -> None:
    assert_rejected(funded.state, order(reduce_only=True, time_in_force=tif),
                    ErrorCode.REDUCE_ONLY_NOT_IOC)


def test_open_orders_limit() -> None:
    v = Venue(dataclasses.replace(venue_config(), open_orders_per_subaccount_max=1))
    v.run_ok(v.oracle(INDEX_100K_QUANTUMS))
    v.fund([ALICE], FUNDS)
    v.run_ok(order())
    assert_rejected(v.state, order(price=P - 20), ErrorCode.OPEN_ORDERS_LIMIT)


def test_duplicate_client_order_id(funded: Venue) -> None:
    funded.run_ok(order(client_order_id=77))
    assert_rejected(funded.state, order(price=P - 20, client_order_id=77),
                    ErrorCode.DUPLICATE_CLIENT_ORDER_ID)


def test_order_not_found(funded: Venue) -> None:
    funded.run_ok(order(owner=BOB, client_order_id=5))
    state = funded.state
    assert_rejected(state, CancelOrder(ALICE, 0, 1), ErrorCode.ORDER_NOT_FOUND, "order 1")
    assert_rejected(state, CancelOrder(ALICE, 0, 999), ErrorCode.ORDER_NOT_FOUND)
    assert_rejected(state, CancelOrderByClientId(ALICE, 0, 5), ErrorCode.ORDER_NOT_FOUND,
                    "client order 5")
    assert_rejected(state, CancelOrderByClientId(BOB, 0, 0), ErrorCode.ORDER_NOT_FOUND)
    assert_rejected(state, ModifyOrder(ALICE, 0, 1, P - 20, 10), ErrorCode.ORDER_NOT_FOUND)


@pytest.mark.parametrize(
    ("order_type", "tif"),
    [(OrderType.MARKET, TimeInForce.GTC), (OrderType.MARKET, TimeInForce.POST_ONLY),
     pytest.param(cast(OrderType, 3), TimeInForce.GTC, marks=pytest.mark.pure_only)],
    ids=["market-gtc", "market-post-only", "unknown-type"],
)
def test_invalid_order_type(funded: Venue, order_type: OrderType, tif: TimeInForce) -> None:
    assert_rejected(funded.state, order(order_type=order_type, time_in_force=tif),
                    ErrorCode.INVALID_ORDER_TYPE)


def test_modify_nothing(funded: Venue) -> None:
    funded.run_ok(order())
    assert_rejected(funded.state, ModifyOrder(ALICE, 0, 1, P - 10, 10), ErrorCode.MODIFY_NOTHING)


# --- oracle -----------------------------------------------------------------------------------


def _three_signer_venue() -> tuple[Venue, tuple[bytes, ...]]:
    keys = tuple((0xC0DE + i).to_bytes(32, "big") for i in range(3))
    signers = tuple(address_of_public_key(
        coincurve.PrivateKey(k).public_key.format(compressed=False)) for k in keys)
    v = Venue(default_venue_config(signers))  # threshold: 2 of 3
    v.run_ok()
    return v, keys


def test_oracle_signatures_insufficient() -> None:
    v, keys = _three_signer_venue()
    state = v.state
    prices = (OraclePrice(BTC, INDEX_100K_QUANTUMS),)
    timestamp_ms = state.timestamp_ms
    assert_rejected(state, _oracle(state, timestamp_ms, prices, keys[:1]),
                    ErrorCode.ORACLE_SIGNATURES_INSUFFICIENT, "1 of 2")
    assert_rejected(state, _oracle(state, timestamp_ms, prices, ()),
                    ErrorCode.ORACLE_SIGNATURES_INSUFFICIENT, "0 of 2")
    receipt = apply_transaction(state, _oracle(state, timestamp_ms, prices, keys[1:]))
    assert receipt.ok and state.index_prices == {BTC: INDEX_100K_QUANTUMS}


def test_oracle_signature_high_s(venue: Venue) -> None:
    state = venue.state
    good = signed_oracle(state, state.timestamp_ms + 1, INDEX_100K_QUANTUMS + 1)
    signature = good.signatures[0]
    s = int.from_bytes(signature[32:64], "big")
    high_s = signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes(
        [55 - signature[64]])  # 27 <-> 28
    # the malleated signature is mathematically valid for the same signer ...
    digest = oracle_message_digest(state.config.chain_id, good.timestamp_ms, good.prices)
    recovered = coincurve.PublicKey.from_signature_and_message(
        high_s[:64] + bytes([high_s[64] - 27]), digest, hasher=None)
    signer = address_of_public_key(recovered.format(compressed=False))
    assert signer == state.config.oracle_signers[0]
    # ... but only the low-s encoding is accepted
    assert_rejected(state, OracleUpdate(good.timestamp_ms, good.prices, (high_s,)),
                    ErrorCode.ORACLE_SIGNATURE_INVALID)
    assert apply_transaction(state, good).ok


@pytest.mark.parametrize("case", ["unknown-signer", "duplicate-signer", "short", "bad-v",
                                  "other-message"])
def test_oracle_signature_invalid(venue: Venue, case: str) -> None:
    state = venue.state
    timestamp_ms = state.timestamp_ms + 1
    good = signed_oracle(state, timestamp_ms, INDEX_100K_QUANTUMS + 1)
    signature = good.signatures[0]
    signatures = {
        "unknown-signer": signed_oracle(state, timestamp_ms, INDEX_100K_QUANTUMS + 1,
                                        key=OTHER_KEY).signatures,
        "duplicate-signer": (signature, signature),
        "short": (signature[:64],),
        "bad-v": (signature[:64] + bytes([29]),),
        "other-message": signed_oracle(state, timestamp_ms, INDEX_100K_QUANTUMS + 2).signatures,
    }[case]
    assert_rejected(state, OracleUpdate(timestamp_ms, good.prices, signatures),
                    ErrorCode.ORACLE_SIGNATURE_INVALID)


def test_oracle_stale(venue: Venue) -> None:
    state = venue.state
    current = state.oracle_timestamp_ms
    assert current == state.timestamp_ms
    for timestamp_ms in (current, current - 1, state.timestamp_ms + 5_001):
        assert_rejected(state, signed_oracle(state, timestamp_ms, INDEX_100K_QUANTUMS + 1),
                        ErrorCode.ORACLE_STALE)
    assert apply_transaction(state, signed_oracle(state, state.timestamp_ms + 5_000,
                                                  INDEX_100K_QUANTUMS + 1)).ok
    # newer than the current update but older than the batch time allows
    venue.run_ok(advance_ms=120_000)
    too_old = signed_oracle(state, state.timestamp_ms - 60_001, INDEX_100K_QUANTUMS + 2)
    assert too_old.timestamp_ms > state.oracle_timestamp_ms
    assert_rejected(state, too_old, ErrorCode.ORACLE_STALE)
    assert apply_transaction(state, signed_oracle(state, state.timestamp_ms - 60_000,
                                                  INDEX_100K_QUANTUMS + 2)).ok


def test_oracle_unknown_index(venue: Venue) -> None:
    state = venue.state
    tx = signed_oracle(state, state.timestamp_ms + 1, INDEX_100K_QUANTUMS, index_id=99)
    assert_rejected(state, tx, ErrorCode.ORACLE_UNKNOWN_INDEX, "index 99")


def test_rejections_are_identical_inside_a_batch(funded: Venue) -> None:
    """A receipt from ``apply_batch`` carries the same code and message as a direct apply."""
    twin = Venue()
    twin.run_ok(twin.oracle(INDEX_100K_QUANTUMS))
    twin.fund([ALICE, BOB], FUNDS)
    txs = (Withdraw(CAROL, 0, 1), order(size=0), Deposit(9, ALICE, 0, 1))
    direct = [apply_transaction(twin.state, tx) for tx in txs]
    batch = Batch(funded.state.batch_index + 1, funded.state.timestamp_ms, bytes(32), txs)
    assert apply_batch(funded.state, batch) == direct


# --- coverage of the code table ---------------------------------------------------------------

# codes that exist in the protocol table but that no transaction can produce today
UNREACHABLE = {ErrorCode.OPEN_INTEREST_CAP}
COVERED = {
    ErrorCode.BATCH_COST_LIMIT, ErrorCode.MALFORMED_TRANSACTION, ErrorCode.ACCOUNT_NOT_FOUND,
    ErrorCode.INVALID_ADDRESS, ErrorCode.INVALID_SUBACCOUNT, ErrorCode.INVALID_AMOUNT,
    ErrorCode.DEPOSIT_ALREADY_CREDITED, ErrorCode.DEPOSIT_OUT_OF_ORDER,
    ErrorCode.INSUFFICIENT_MARGIN, ErrorCode.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL,
    ErrorCode.ACCOUNT_IN_LIQUIDATION, ErrorCode.TRANSFER_TO_SELF, ErrorCode.ACCOUNTS_LIMIT,
    ErrorCode.MARGIN_MODE_BUSY, ErrorCode.NOT_ISOLATED, ErrorCode.UNKNOWN_MARKET,
    ErrorCode.ORACLE_PRICE_MISSING, ErrorCode.INVALID_PRICE, ErrorCode.INVALID_SIZE,
    ErrorCode.ORDER_SIZE_ABOVE_MAX, ErrorCode.PRICE_OUTSIDE_BAND, ErrorCode.POST_ONLY_WOULD_CROSS,
    ErrorCode.FOK_NOT_FILLED, ErrorCode.REDUCE_ONLY_WOULD_INCREASE, ErrorCode.REDUCE_ONLY_NOT_IOC,
    ErrorCode.OPEN_ORDERS_LIMIT, ErrorCode.DUPLICATE_CLIENT_ORDER_ID, ErrorCode.ORDER_NOT_FOUND,
    ErrorCode.INVALID_ORDER_TYPE, ErrorCode.MODIFY_NOTHING,
    ErrorCode.ORACLE_SIGNATURES_INSUFFICIENT, ErrorCode.ORACLE_SIGNATURE_INVALID,
    ErrorCode.ORACLE_STALE, ErrorCode.ORACLE_UNKNOWN_INDEX,
    # tested in test_forced_withdrawal.py
    ErrorCode.POSITIONS_LIMIT, ErrorCode.ISOLATED_GROUPS_LIMIT,
    ErrorCode.FORCED_WITHDRAWAL_ALREADY_PROCESSED, ErrorCode.FORCED_WITHDRAWAL_OUT_OF_ORDER,
    # tested in tests/options/test_option_transactions.py
    ErrorCode.MARKET_NOT_ACTIVE, ErrorCode.NOT_AN_OPTION_MARKET, ErrorCode.MARKET_ID_TAKEN,
    ErrorCode.OPTION_CLASS_UNKNOWN, ErrorCode.OPTION_TERMS_INVALID,
    ErrorCode.OPTION_LISTING_LIMIT, ErrorCode.MARKET_HAS_OPEN_INTEREST,
    ErrorCode.MASS_QUOTE_INVALID, ErrorCode.MMP_CONFIG_INVALID, ErrorCode.VOLATILITY_INVALID,
    ErrorCode.VOLATILITY_UNKNOWN_EXPIRY, ErrorCode.EXPIRY_UNKNOWN, ErrorCode.EXPIRY_NOT_REACHED,
    ErrorCode.EXPIRY_ALREADY_SETTLED,
    # tested in tests/options/test_mmp_venue.py
    ErrorCode.MMP_FROZEN,
}


def test_every_error_code_is_covered_or_known_unreachable() -> None:
    assert COVERED | UNREACHABLE | {ErrorCode.OK} == set(ErrorCode)
    assert not COVERED & UNREACHABLE


def test_unreachable_codes_are_not_raised_anywhere() -> None:
    """When one of them gets raised, move it to COVERED and give it a test above."""
    package = pathlib.Path(rollbook.execution.__file__).parent
    source = "\n".join(p.read_text() for p in sorted(package.rglob("*.py"))
                       if p.name != "errors.py")
    for code in UNREACHABLE:
        assert f"ErrorCode.{code.name}" not in source
