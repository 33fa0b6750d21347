"""SDK units: tick/lot rounding with stated directions, nonces, and EIP-712 signatures that
eth-account agrees with."""

from __future__ import annotations

from decimal import Decimal

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given
from hypothesis import strategies as st

from rollbook.client import MarketRounding, NonceSource, Signer
from rollbook.execution.txs import PlaceOrder, Side, Withdraw
from rollbook.gateway.actions import from_signed, to_signed
from rollbook.sequencer.eip712 import Eip712Domain, typed_data
from rollbook.sequencer.signatures import recover_signer

BTC = MarketRounding(1, tick_size_quantums=100_000, lot_size_nanounits=100_000)  # $0.1, 1e-4
DOMAIN = Eip712Domain(31337, bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"))


def test_prices_round_toward_the_passive_side() -> None:
    assert BTC.price_ticks("99950.07", Side.BUY) == 999_500  # down: never pay more
    assert BTC.price_ticks("99950.07", Side.SELL) == 999_501  # up: never sell cheaper
    assert BTC.price_ticks("99950.1", Side.BUY) == BTC.price_ticks("99950.1", Side.SELL)
    assert BTC.price_ticks(100_000, Side.SELL) == 1_000_000
    assert BTC.price_ticks(0.3, Side.BUY) == 3  # floats through their shortest repr
    with pytest.raises(ValueError):
        BTC.price_ticks("0.05", Side.BUY)  # below one tick


def test_sizes_round_down_and_never_to_zero() -> None:
    assert BTC.size_lots("0.01") == 100
    assert BTC.size_lots("0.012345") == 123  # down: never trade more than asked
    assert BTC.size_lots(Decimal("1")) == 10_000
    with pytest.raises(ValueError):
        BTC.size_lots("0.00009")
    with pytest.raises(ValueError):
        BTC.size_lots("nan")


@given(st.decimals(min_value=Decimal("0.1"), max_value=Decimal("1e7"), places=6,
                   allow_nan=False, allow_infinity=False))
def test_rounding_brackets_the_price(price: Decimal) -> None:
    buy = BTC.price_ticks(price, Side.BUY)
    sell = BTC.price_ticks(price, Side.SELL)
    assert BTC.price(buy) <= price <= BTC.price(sell)
    assert sell - buy in (0, 1)


def test_nonces_strictly_increase_even_when_the_clock_steps_back() -> None:
    clock = iter([1_000, 1_000, 999, 2_000, 1_500])
    source = NonceSource(lambda: next(clock))
    assert [source.next() for _ in range(5)] == [1_000, 1_001, 1_002, 2_000, 2_001]


def test_signatures_match_eth_account_and_recover() -> None:
    account = Account.create()
    signer = Signer.from_account(account)
    action = PlaceOrder(signer.owner, 0, 1, Side.SELL, 1_000_001, 250, client_order_id=9)
    signed = signer.sign(DOMAIN, action, nonce_ms=1_700_000_000_000)
    reference = account.sign_message(encode_typed_data(
        full_message=typed_data(DOMAIN, action, signed.nonce_ms)))
    assert signed.signature == reference.signature  # RFC 6979: both sign deterministically
    assert recover_signer(DOMAIN, signed).signer == signer.owner
    assert to_signed(from_signed(signed)) == signed  # the wire form round-trips


def test_agent_signer_signs_for_its_owner() -> None:
    owner = Account.create()
    agent = Signer.agent(Account.create(), owner.address)
    assert agent.is_agent and agent.owner == bytes.fromhex(owner.address[2:])
    signed = agent.sign(DOMAIN, Withdraw(agent.owner, 0, 5))
    assert recover_signer(DOMAIN, signed).signer == agent.address != agent.owner
