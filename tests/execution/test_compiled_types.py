"""The mypyc-compiled build on deliberately ill-typed in-process input (skipped when pure).

Interpreted, the STF's own checks reject these (an int where an enum is declared, an
``object()`` for a transaction, a perpetual where an option is declared): the tests marked
``pure_only`` assert that. Compiled, every call boundary checks the declared types, so the same
input raises ``TypeError`` before the STF runs: here each must raise it and leave the state
(its canonical root and id counters) exactly as it was. Neither can happen with decoded input:
the decoders build only well-typed transactions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import pytest

from conftest import ALICE, BTC, PRICE_100K_TICKS, USDC, Venue
from rollbook._pure import is_compiled
from rollbook.commitment import canonical_root
from rollbook.execution import (
    ListOption,
    MassQuote,
    OptionType,
    OrderType,
    PlaceOrder,
    Quote,
    SelfTradePrevention,
    Side,
    State,
    TimeInForce,
    Transaction,
    apply_transaction,
)
from rollbook.execution.options.instruments import OptionSpec, PerpetualSpec
from rollbook.execution.options.portfolio import (
    PortfolioMarginConfig,
    ScenarioCache,
    standard_margin,
)

pytestmark = pytest.mark.skipif(not is_compiled(), reason="needs the mypyc-compiled build")


def _order(**fields: Any) -> PlaceOrder:
    return PlaceOrder(ALICE, 0, BTC, fields.pop("side", Side.BUY), PRICE_100K_TICKS - 10, 10,
                      **fields)


ILL_TYPED: dict[str, Callable[[], object]] = {
    "side": lambda: _order(side=cast(Side, 3)),
    "self-trade": lambda: _order(self_trade=cast(SelfTradePrevention, 0)),
    "time-in-force": lambda: _order(time_in_force=cast(TimeInForce, 9)),
    "order-type": lambda: _order(order_type=cast(OrderType, 3)),
    "list-option-type": lambda: ListOption(500, BTC, 10**12, 95_000 * USDC,
                                           cast(OptionType, 3)),
    "quote-side": lambda: MassQuote(ALICE, 0, BTC, (Quote(BTC, cast(Side, 3), 1, 1),)),
    "not-a-transaction": object,
}


def _snapshot(state: State) -> tuple[bytes, int, int, int]:
    return (canonical_root(state), state.next_order_id, state.next_deposit_id,
            state.next_withdrawal_id)


@pytest.mark.parametrize("make", ILL_TYPED.values(), ids=ILL_TYPED.keys())
def test_ill_typed_transactions_raise_type_error_and_change_nothing(
        venue: Venue, make: Callable[[], object]) -> None:
    venue.fund([ALICE], 100_000 * USDC)
    before = _snapshot(venue.state)
    with pytest.raises(TypeError):
        apply_transaction(venue.state, cast(Transaction, make()))
    assert _snapshot(venue.state) == before


def test_an_option_spec_with_an_int_type_raises_type_error() -> None:
    with pytest.raises(TypeError):
        OptionSpec(BTC, 10**12, 95_000 * USDC, cast(OptionType, 3), 10**7)


def test_standard_margin_of_a_perpetual_raises_type_error() -> None:
    cache = ScenarioCache(PortfolioMarginConfig(), 0, {2: 100 * 10**6}, {})
    with pytest.raises(TypeError):
        standard_margin([(PerpetualSpec(2, 10**9), -1)], cache)  # type: ignore[list-item]
