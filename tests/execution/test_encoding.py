"""Canonical encoding: round trips, strict decoding, and golden vectors.

Golden vectors live in ``tests/golden/``: the hex of the canonical encoding of one fixed,
hand-constructed transaction of every kind plus one batch (``encoding_vectors.json``), and the
state roots after each batch of a fixed scenario (``root_vectors.json``: the live root, whose
slots follow the batch history, and the history-independent canonical root). A change to
either is a protocol change. To regenerate them deliberately, run this module with
``ROLLBOOK_REGENERATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import json
import os
import pathlib
import struct
import typing

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import (
    ALICE,
    BOB,
    BTC,
    CAROL,
    DAVE,
    INDEX_100K_QUANTUMS,
    PRICE_100K_TICKS,
    USDC,
    Venue,
)
from rollbook.commitment import canonical_root
from rollbook.execution import (
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
from rollbook.execution.encoding import (
    ENCODING_VERSION,
    TRANSACTION_BYTES_MAX,
    DecodeError,
    decode_batch,
    decode_transaction,
    encode_batch,
    encode_transaction,
)
from rollbook.execution.events import FundingPaid
from rollbook.execution.options.protection import MASS_QUOTE_QUOTES_MAX
from rollbook.execution.options.volatility import VOLATILITY_SMILES_MAX
from rollbook.execution.oracle import ORACLE_PRICES_MAX, ORACLE_SIGNATURES_MAX

GOLDEN_DIR = pathlib.Path(__file__).resolve().parent.parent / "golden"
ENCODING_VECTORS = GOLDEN_DIR / "encoding_vectors.json"
ROOT_VECTORS = GOLDEN_DIR / "root_vectors.json"
REGENERATE = os.environ.get("ROLLBOOK_REGENERATE_GOLDEN") == "1"

P = PRICE_100K_TICKS
SIGNATURE_A = bytes(range(65))
SIGNATURE_B = bytes(range(100, 165))
ROOT = bytes(range(32, 64))


# --- strategies --------------------------------------------------------------------------------

addresses = st.binary(min_size=20, max_size=20)
u16 = st.integers(0, 2**16 - 1)
u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
i64 = st.integers(-(2**63), 2**63 - 1)
u128 = st.integers(0, 2**128 - 1)
i128 = st.integers(-(2**127), 2**127 - 1)
signatures = st.binary(min_size=65, max_size=65)
smiles = st.builds(SviParameters, u32, u64, i128, u128, i128, i128, u128)
quotes = st.builds(Quote, u16, st.sampled_from(Side), u64, u64)

STRATEGIES: dict[type, st.SearchStrategy[typing.Any]] = {
    Deposit: st.builds(Deposit, u64, addresses, u16, u64),
    Withdraw: st.builds(Withdraw, addresses, u16, u64),
    Transfer: st.builds(Transfer, addresses, u16, addresses, u16, u64),
    PlaceOrder: st.builds(PlaceOrder, addresses, u16, u16, st.sampled_from(Side), u64, u64,
                          st.sampled_from(OrderType), st.sampled_from(TimeInForce),
                          st.booleans(), u64, st.sampled_from(SelfTradePrevention)),
    CancelOrder: st.builds(CancelOrder, addresses, u16, u64),
    CancelOrderByClientId: st.builds(CancelOrderByClientId, addresses, u16, u64),
    CancelAll: st.builds(CancelAll, addresses, u16, u16),
    ModifyOrder: st.builds(ModifyOrder, addresses, u16, u64, u64, u64),
    OracleUpdate: st.builds(
        OracleUpdate, u64,
        st.lists(st.builds(OraclePrice, u32, u128), max_size=8).map(tuple),
        st.lists(signatures, max_size=8).map(tuple)),
    FundingTick: st.just(FundingTick()),
    ProcessLiquidations: st.just(ProcessLiquidations()),
    SetMarginMode: st.builds(SetMarginMode, addresses, u16, u16, st.booleans()),
    MoveIsolatedMargin: st.builds(MoveIsolatedMargin, addresses, u16, u16, i64),
    ForcedWithdrawal: st.builds(ForcedWithdrawal, u64, addresses, u16, u64),
    ListOption: st.builds(ListOption, u16, u32, u64, u128, st.sampled_from(OptionType)),
    DelistOption: st.builds(DelistOption, u16),
    VolatilityUpdate: st.builds(VolatilityUpdate, u64,
                                st.lists(smiles, max_size=6).map(tuple),
                                st.lists(signatures, max_size=4).map(tuple)),
    ExpireOptions: st.builds(ExpireOptions, u32, u64),
    SetPortfolioMargin: st.builds(SetPortfolioMargin, addresses, u16, st.booleans()),
    SetMmp: st.builds(SetMmp, addresses, u16, u32, u32, u32, u64, u64, u64),
    MassQuote: st.builds(MassQuote, addresses, u16, u32,
                         st.lists(quotes, max_size=8).map(tuple)),
}
transactions = st.one_of(*STRATEGIES.values())
batches = st.builds(Batch, u64, u64, st.binary(min_size=32, max_size=32),
                    st.lists(transactions, max_size=12).map(tuple))


def test_strategies_cover_every_transaction_kind() -> None:
    assert set(STRATEGIES) == set(typing.get_args(Transaction))


@pytest.mark.parametrize("kind", list(STRATEGIES), ids=lambda kind: kind.__name__)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_transaction_round_trip(kind: type, data: st.DataObject) -> None:
    tx = data.draw(STRATEGIES[kind])
    encoded = encode_transaction(tx)
    assert encoded[0] == ENCODING_VERSION
    decoded = decode_transaction(encoded)
    assert type(decoded) is kind
    assert decoded == tx
    assert encode_transaction(decoded) == encoded


@settings(max_examples=100, deadline=None)
@given(batch=batches)
def test_batch_round_trip(batch: Batch) -> None:
    encoded = encode_batch(batch)
    decoded = decode_batch(encoded)
    assert decoded == batch
    assert [type(t) for t in decoded.transactions] == [type(t) for t in batch.transactions]
    assert encode_batch(decoded) == encoded


# --- hand-constructed vectors ------------------------------------------------------------------


def golden_transactions() -> dict[str, Transaction]:
    return {
        "deposit": Deposit(7, ALICE, 3, 5 * USDC),
        "withdraw": Withdraw(ALICE, 0, 1_234_567),
        "transfer": Transfer(ALICE, 0, BOB, 65_535, 2**64 - 1),
        "place_order": PlaceOrder(ALICE, 1, BTC, Side.BUY, P, 1_000, client_order_id=42),
        "place_order_all_flags": PlaceOrder(BOB, 2, 513, Side.SELL, 2**48, 10_000_000,
                                            OrderType.MARKET, TimeInForce.FOK, True,
                                            2**64 - 1, SelfTradePrevention.EXPIRE_BOTH),
        "cancel_order": CancelOrder(ALICE, 0, 99),
        "cancel_order_by_client_id": CancelOrderByClientId(BOB, 4, 42),
        "cancel_all": CancelAll(CAROL, 0),
        "cancel_all_one_market": CancelAll(CAROL, 0, BTC),
        "modify_order": ModifyOrder(ALICE, 0, 12, P - 5, 300),
        "oracle_update": OracleUpdate(
            1_700_000_000_000,
            (OraclePrice(BTC, INDEX_100K_QUANTUMS), OraclePrice(2, 2**128 - 1)),
            (SIGNATURE_A, SIGNATURE_B)),
        "oracle_update_unsigned": OracleUpdate(0, (OraclePrice(BTC, 1),), ()),
        "funding_tick": FundingTick(),
        "process_liquidations": ProcessLiquidations(),
        "set_margin_mode": SetMarginMode(DAVE, 9, BTC, True),
        "set_margin_mode_cross": SetMarginMode(DAVE, 9, BTC, False),
        "move_isolated_margin_in": MoveIsolatedMargin(ALICE, 0, BTC, 250 * USDC),
        "move_isolated_margin_out": MoveIsolatedMargin(ALICE, 0, BTC, -(2**63)),
        "forced_withdrawal": ForcedWithdrawal(7, ALICE, 3, 2_500 * USDC),
        "list_option": ListOption(100, BTC, 1_700_086_400_000, 95_000 * USDC, OptionType.PUT),
        "list_option_max": ListOption(65_535, 2**32 - 1, 2**64 - 1, 2**128 - 1,
                                      OptionType.CALL),
        "delist_option": DelistOption(100),
        "volatility_update": VolatilityUpdate(
            1_700_000_000_000,
            (SviParameters(BTC, 1_700_086_400_000, 4 * 10**15, 5 * 10**16, -3 * 10**17,
                           -10**16, 10**17),
             SviParameters(2, 2**64 - 1, -(2**127), 2**128 - 1, 2**127 - 1, -(2**127),
                           2**128 - 1)),
            (SIGNATURE_A,)),
        "volatility_update_unsigned": VolatilityUpdate(0, (), ()),
        "expire_options": ExpireOptions(BTC, 1_700_086_400_000),
        "set_portfolio_margin": SetPortfolioMargin(CAROL, 2, True),
        "set_portfolio_margin_off": SetPortfolioMargin(CAROL, 2, False),
        "set_mmp": SetMmp(DAVE, 1, BTC, 10_000, 60_000, 10**9, 5 * 10**8, 2_000 * USDC),
        "mass_quote": MassQuote(DAVE, 0, BTC, (Quote(100, Side.BUY, 3_250, 20),
                                               Quote(100, Side.SELL, 3_350, 20),
                                               Quote(101, Side.SELL, 2**64 - 1, 2**64 - 1))),
        "mass_quote_pull": MassQuote(DAVE, 0, BTC, ()),
    }


def golden_batch() -> Batch:
    txs = golden_transactions()
    return Batch(42, 1_700_000_000_123, ROOT, (txs["deposit"], txs["oracle_update"],
                                                txs["place_order"], txs["funding_tick"],
                                                txs["move_isolated_margin_out"]))


def _encoding_vectors() -> dict[str, str]:
    vectors = {name: encode_transaction(tx).hex() for name, tx in golden_transactions().items()}
    vectors["batch"] = encode_batch(golden_batch()).hex()
    return vectors


def _write_json(path: pathlib.Path, content: dict[str, typing.Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2) + "\n")


def test_golden_encoding_vectors() -> None:
    if REGENERATE:
        _write_json(ENCODING_VECTORS, _encoding_vectors())
    pinned = json.loads(ENCODING_VECTORS.read_text())
    txs = golden_transactions()
    assert set(pinned) == {*txs, "batch"}
    assert {type(tx) for tx in txs.values()} == set(typing.get_args(Transaction))
    for name, tx in txs.items():
        assert encode_transaction(tx).hex() == pinned[name], name
        assert decode_transaction(bytes.fromhex(pinned[name])) == tx, name
    assert encode_batch(golden_batch()).hex() == pinned["batch"]
    assert decode_batch(bytes.fromhex(pinned["batch"])) == golden_batch()


def test_layouts_spelled_out_by_hand() -> None:
    """The documented layouts, built without the encoder (fixed width, big-endian)."""
    deposit = bytes([ENCODING_VERSION, 1]) + (7).to_bytes(8, "big") + ALICE + (3).to_bytes(
        2, "big") + (5 * USDC).to_bytes(8, "big")
    assert encode_transaction(golden_transactions()["deposit"]) == deposit
    place = (bytes([ENCODING_VERSION, 4]) + ALICE + (1).to_bytes(2, "big")
             + BTC.to_bytes(2, "big") + bytes([Side.BUY]) + P.to_bytes(8, "big")
             + (1_000).to_bytes(8, "big") + bytes([OrderType.LIMIT, TimeInForce.GTC, 0])
             + (42).to_bytes(8, "big") + bytes([SelfTradePrevention.EXPIRE_MAKER]))
    assert encode_transaction(golden_transactions()["place_order"]) == place
    move = (bytes([ENCODING_VERSION, 13]) + ALICE + bytes(2) + BTC.to_bytes(2, "big")
            + (-(2**63)).to_bytes(8, "big", signed=True))
    assert encode_transaction(golden_transactions()["move_isolated_margin_out"]) == move
    oracle = golden_transactions()["oracle_update_unsigned"]
    assert encode_transaction(oracle) == (bytes([ENCODING_VERSION, 9]) + bytes(8)
                                          + (1).to_bytes(2, "big") + BTC.to_bytes(4, "big")
                                          + (1).to_bytes(16, "big") + bytes([0]))
    listing = (bytes([ENCODING_VERSION, 15]) + (100).to_bytes(2, "big") + BTC.to_bytes(4, "big")
               + (1_700_086_400_000).to_bytes(8, "big") + (95_000 * USDC).to_bytes(16, "big")
               + bytes([OptionType.PUT]))
    assert encode_transaction(golden_transactions()["list_option"]) == listing
    quote = (bytes([ENCODING_VERSION, 21]) + DAVE + bytes(2) + BTC.to_bytes(4, "big")
             + bytes([1]) + (100).to_bytes(2, "big") + bytes([Side.BUY])
             + (3_250).to_bytes(8, "big") + (20).to_bytes(8, "big"))
    assert encode_transaction(MassQuote(DAVE, 0, BTC, (Quote(100, Side.BUY, 3_250, 20),))) == (
        quote)
    smile = SviParameters(BTC, 5, -1, 2, -3, 4, 6)
    assert encode_transaction(VolatilityUpdate(9, (smile,), ())) == (
        bytes([ENCODING_VERSION, 17]) + (9).to_bytes(8, "big") + (1).to_bytes(2, "big")
        + BTC.to_bytes(4, "big") + (5).to_bytes(8, "big")
        + b"".join(v.to_bytes(16, "big", signed=True) for v in (-1, 2, -3, 4, 6)) + bytes([0]))
    batch = Batch(1, 2, ROOT, (FundingTick(),))
    assert encode_batch(batch) == (b"RBB" + bytes([ENCODING_VERSION]) + (1).to_bytes(8, "big")
                                   + (2).to_bytes(8, "big") + ROOT + (1).to_bytes(4, "big")
                                   + (2).to_bytes(4, "big") + bytes([ENCODING_VERSION, 10]))


# --- strict decoding ---------------------------------------------------------------------------

ENCODED = {name: encode_transaction(tx) for name, tx in golden_transactions().items()}


@pytest.mark.parametrize("name", list(ENCODED))
def test_wrong_version_is_rejected(name: str) -> None:
    data = ENCODED[name]
    for version in (0, ENCODING_VERSION + 1, 255):
        with pytest.raises(DecodeError, match="version"):
            decode_transaction(bytes([version]) + data[1:])


@pytest.mark.parametrize("tag", [0, 22, 99, 255])
def test_unknown_tag_is_rejected(tag: int) -> None:
    body = ENCODED["deposit"][2:]
    with pytest.raises(DecodeError, match="unknown transaction tag"):
        decode_transaction(bytes([ENCODING_VERSION, tag]) + body)


@pytest.mark.parametrize("name", list(ENCODED))
def test_trailing_bytes_are_rejected(name: str) -> None:
    for extra in (b"\x00", b"\x01\x02\x03"):
        with pytest.raises(DecodeError):
            decode_transaction(ENCODED[name] + extra)


@pytest.mark.parametrize("name", list(ENCODED))
def test_every_truncation_is_rejected(name: str) -> None:
    data = ENCODED[name]
    for length in range(len(data)):
        with pytest.raises(DecodeError):
            decode_transaction(data[:length])


def _place_bytes(**overrides: int) -> bytes:
    """A PlaceOrder encoding with single-byte fields replaced (offsets after version and tag)."""
    offsets = {"side": 24, "order_type": 41, "time_in_force": 42, "reduce_only": 43,
               "self_trade": 52}
    data = bytearray(ENCODED["place_order"])
    for field, value in overrides.items():
        data[2 + offsets[field]] = value
    return bytes(data)


def test_place_offsets_match_the_layout() -> None:
    assert decode_transaction(_place_bytes(side=Side.SELL)).side == Side.SELL
    assert decode_transaction(_place_bytes(reduce_only=1)).reduce_only is True
    decoded = decode_transaction(_place_bytes(time_in_force=TimeInForce.IOC,
                                              self_trade=SelfTradePrevention.EXPIRE_TAKER,
                                              order_type=OrderType.MARKET))
    assert isinstance(decoded, PlaceOrder)
    assert decoded.time_in_force == TimeInForce.IOC
    assert decoded.self_trade == SelfTradePrevention.EXPIRE_TAKER
    assert decoded.order_type == OrderType.MARKET


@pytest.mark.parametrize(
    ("field", "value"),
    [("side", 0), ("side", 3), ("order_type", 0), ("order_type", 3), ("time_in_force", 0),
     ("time_in_force", 5), ("self_trade", 0), ("self_trade", 4)],
)
def test_out_of_range_enums_are_rejected(field: str, value: int) -> None:
    with pytest.raises(DecodeError, match="invalid"):
        decode_transaction(_place_bytes(**{field: value}))


@pytest.mark.parametrize("value", [2, 0x80, 0xFF])
def test_non_canonical_bools_are_rejected(value: int) -> None:
    """Regression: struct's '?' read any non-zero byte as True, so 0x02 decoded like 0x01."""
    with pytest.raises(DecodeError, match="bool"):
        decode_transaction(_place_bytes(reduce_only=value))
    for name in ("set_margin_mode", "set_portfolio_margin"):
        encoded = bytearray(ENCODED[name])
        encoded[-1] = value
        with pytest.raises(DecodeError, match="bool"):
            decode_transaction(bytes(encoded))


@pytest.mark.parametrize(("name", "offset", "value"),
                         [("list_option", -1, 0), ("list_option", -1, 3),
                          ("mass_quote", 2 + 27 + 2, 0), ("mass_quote", 2 + 27 + 2, 3)])
def test_option_enums_are_checked(name: str, offset: int, value: int) -> None:
    data = bytearray(ENCODED[name])
    data[offset] = value
    with pytest.raises(DecodeError, match="invalid"):
        decode_transaction(bytes(data))


def test_counts_must_match_what_follows() -> None:
    data = ENCODED["mass_quote"]
    for count in (2, 4):  # three quotes are present
        with pytest.raises(DecodeError):
            decode_transaction(data[:28] + bytes([count]) + data[29:])
    smiles = ENCODED["volatility_update"]
    with pytest.raises(DecodeError):  # claims three smiles, carries two
        decode_transaction(smiles[:10] + (3).to_bytes(2, "big") + smiles[12:])


def test_oracle_signature_count_must_match() -> None:
    data = ENCODED["oracle_update"]
    with pytest.raises(DecodeError):  # claims three signatures, carries two
        decode_transaction(data[:-131] + bytes([3]) + data[-130:])
    with pytest.raises(DecodeError):  # claims one, carries two
        decode_transaction(data[:-131] + bytes([1]) + data[-130:])


def test_overlong_transaction_is_rejected_by_both_sides() -> None:
    with pytest.raises(DecodeError, match="length"):
        decode_transaction(ENCODED["funding_tick"] + bytes(TRANSACTION_BYTES_MAX))
    # regression: the encoder produced oracle updates the decoder refuses; now the largest
    # update the STF accepts (ORACLE_PRICES_MAX prices, ORACLE_SIGNATURES_MAX signatures) fits
    prices = tuple(OraclePrice(i, 1) for i in range(1, ORACLE_PRICES_MAX + 1))
    largest = OracleUpdate(1, prices, (SIGNATURE_A,) * ORACLE_SIGNATURES_MAX)
    encoded = encode_transaction(largest)
    assert len(encoded) <= TRANSACTION_BYTES_MAX
    assert decode_transaction(encoded) == largest
    with pytest.raises(ValueError, match="signatures"):
        encode_transaction(OracleUpdate(1, prices, (SIGNATURE_A,) * 256))
    # the largest smile update and mass quote the STF accepts fit as well
    smiles = tuple(SviParameters(i, 2**64 - 1, -(2**127), 2**128 - 1, -(2**127), -(2**127),
                                 2**128 - 1) for i in range(VOLATILITY_SMILES_MAX))
    largest_smiles = VolatilityUpdate(1, smiles, (SIGNATURE_A,) * ORACLE_SIGNATURES_MAX)
    assert decode_transaction(encode_transaction(largest_smiles)) == largest_smiles
    ladder = MassQuote(ALICE, 0, BTC, (Quote(1, Side.SELL, 1, 1),) * MASS_QUOTE_QUOTES_MAX)
    assert decode_transaction(encode_transaction(ladder)) == ladder
    with pytest.raises(ValueError, match="255"):
        encode_transaction(MassQuote(ALICE, 0, BTC, (Quote(1, Side.SELL, 1, 1),) * 256))


@pytest.mark.parametrize(
    "tx",
    [Deposit(-1, ALICE, 0, 1), Withdraw(ALICE, 2**16, 1), Transfer(ALICE, 0, BOB, 0, 2**64),
     MoveIsolatedMargin(ALICE, 0, BTC, 2**63), CancelAll(ALICE, 0, 2**16),
     OracleUpdate(0, (OraclePrice(1, 1),), (b"short",)),
     ListOption(1, BTC, 1, 2**128, OptionType.CALL),
     SetMmp(ALICE, 0, BTC, 2**32, 0, 1, 0, 0),
     VolatilityUpdate(0, (SviParameters(1, 1, 2**127, 0, 0, 0, 1),), ()),
     VolatilityUpdate(0, (SviParameters(1, 1, 0, -1, 0, 0, 1),), ()),
     MassQuote(ALICE, 0, BTC, (Quote(2**16, Side.BUY, 1, 1),))],
    ids=["negative-id", "subaccount", "amount", "signed-amount", "market", "signature",
         "strike", "mmp-window", "svi-a", "svi-b", "quote-market"],
)
def test_out_of_range_values_cannot_be_encoded(tx: Transaction) -> None:
    with pytest.raises((struct.error, ValueError, OverflowError)):
        encode_transaction(tx)


def test_batch_strictness() -> None:
    data = encode_batch(golden_batch())
    for length in range(len(data)):
        with pytest.raises(DecodeError):
            decode_batch(data[:length])
    with pytest.raises(DecodeError, match="trailing"):
        decode_batch(data + b"\x00")
    with pytest.raises(DecodeError, match="rollbook batch"):
        decode_batch(b"RBX" + data[3:])
    with pytest.raises(DecodeError, match="rollbook batch"):
        decode_batch(data[:3] + bytes([ENCODING_VERSION + 1]) + data[4:])
    with pytest.raises(ValueError, match="root"):
        encode_batch(Batch(1, 1, bytes(31), ()))


def test_batch_rejects_a_bad_inner_transaction() -> None:
    empty = encode_batch(Batch(1, 2, ROOT, ()))
    inner = bytes([ENCODING_VERSION, 99])
    body = empty[:-4] + (1).to_bytes(4, "big") + len(inner).to_bytes(4, "big") + inner
    with pytest.raises(DecodeError, match="tag"):
        decode_batch(body)
    # a length prefix of zero names no transaction at all
    zero = empty[:-4] + (1).to_bytes(4, "big") + bytes(4)
    with pytest.raises(DecodeError):
        decode_batch(zero)
    # the count says two, one is present
    one = encode_batch(Batch(1, 2, ROOT, (FundingTick(),)))
    two = one[:len(empty) - 4] + (2).to_bytes(4, "big") + one[len(empty):]
    with pytest.raises(DecodeError, match="truncated"):
        decode_batch(two)


# --- golden state roots -------------------------------------------------------------------------


def root_scenario() -> dict[str, str]:
    """A fixed scenario; the state roots (hex) after each batch, by step name."""
    v = Venue()
    steps: list[tuple[str, typing.Callable[[], tuple[Transaction, ...]], int]] = [
        ("oracle", lambda: (v.oracle(INDEX_100K_QUANTUMS),), 1_000),
        ("deposits", lambda: (v.deposit(ALICE, 100_000 * USDC), v.deposit(BOB, 50_000 * USDC),
                              v.deposit(CAROL, 20_000 * USDC, subaccount=1)), 1_000),
        ("resting", lambda: (
            PlaceOrder(BOB, 0, BTC, Side.SELL, P, 400, client_order_id=1),
            PlaceOrder(BOB, 0, BTC, Side.SELL, P + 5, 600, client_order_id=2),
            PlaceOrder(CAROL, 1, BTC, Side.BUY, P - 5, 300,
                       time_in_force=TimeInForce.POST_ONLY)), 1_000),
        ("trades", lambda: (
            PlaceOrder(ALICE, 0, BTC, Side.BUY, P + 5, 700, time_in_force=TimeInForce.IOC),
            PlaceOrder(ALICE, 0, BTC, Side.SELL, P - 5, 100, order_type=OrderType.MARKET,
                       time_in_force=TimeInForce.IOC)), 1_000),
        ("modify_and_cancel", lambda: (ModifyOrder(BOB, 0, 2, P + 4, 200),
                                       CancelOrderByClientId(BOB, 0, 2)), 1_000),
        ("funding_start", lambda: (FundingTick(),), 1_000),
        ("funding_sample", lambda: (FundingTick(),), 60_000),
        ("oracle_move", lambda: (v.oracle(101_000 * USDC),), 1_000),
        ("funding_payment", lambda: (FundingTick(),), 3_600_000),
        ("withdrawal", lambda: (Withdraw(ALICE, 0, 10_000 * USDC),
                                Transfer(BOB, 0, BOB, 1, 1_000 * USDC)), 1_000),
    ]
    roots: dict[str, dict[str, str]] = {}
    for name, make, advance_ms in steps:
        v.clock_ms += advance_ms - 1_000  # v.oracle stamps with the time of the next batch
        receipts = v.run_ok(*make())
        kinds = [type(e).__name__ for r in receipts for e in r.events]
        assert kinds == SCENARIO_EVENTS[name], name  # the scenario does what it says
        if name == "funding_payment":
            (paid,) = receipts[0].events
            assert isinstance(paid, FundingPaid) and paid.paid_quantums > 0
        roots[name] = {"root": v.commitment.root.hex(),
                       "canonical_root": canonical_root(v.state).hex()}
    return roots


SCENARIO_EVENTS = {
    "oracle": [],
    "deposits": ["DepositCredited"] * 3,
    "resting": ["OrderPlaced"] * 3,
    "trades": ["Fill"] * 3,
    "modify_and_cancel": ["OrderCancelled", "OrderPlaced", "OrderCancelled"],
    "funding_start": [],
    "funding_sample": [],
    "oracle_move": [],
    "funding_payment": ["FundingPaid"],
    "withdrawal": ["WithdrawalQueued", "TransferDone"],
}


def test_golden_state_roots() -> None:
    roots = root_scenario()
    if REGENERATE:
        _write_json(ROOT_VECTORS, roots)
    pinned = json.loads(ROOT_VECTORS.read_text())
    assert list(roots) == list(pinned)
    for name, pair in roots.items():
        assert pair == pinned[name], f"state root after {name!r} changed"
    live = [pair["root"] for pair in roots.values()]
    assert len(set(live)) == len(live)  # every batch changed the state
