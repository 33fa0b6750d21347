"""The custody guarantee end to end, on the embedded EVM and on anvil, with the real STF.

Deposits on chain are credited by the STF through the bridge; traders trade; a withdrawal's
leaf is proven against its batch's root once final and paid on chain exactly once. Then the
operator ignores a forced withdrawal: after the deadline anyone freezes the contract, and every
account leaves through the escape hatch with the equity of the last final root — checked
against the STF's own equity and the Python reference model, and the payouts never exceed the
escape pool.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import coincurve
import pytest
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_canonical_address

from rollbook.commitment import StateCommitment, apply_and_commit, genesis_commitment
from rollbook.commitment.leaves import LEAF_MARKET, LEAF_SUBACCOUNT, LEAF_WITHDRAWAL
from rollbook.execution import (
    Batch,
    Deposit,
    OraclePrice,
    OracleUpdate,
    OrderType,
    PlaceOrder,
    Side,
    State,
    TimeInForce,
    Transaction,
    Withdraw,
    default_venue_config,
    genesis_state,
)
from rollbook.execution.crypto import address_of_public_key, sign_digest
from rollbook.execution.margin import group_risk
from rollbook.execution.oracle import oracle_message_digest
from rollbook.settlement import Chain
from rollbook.settlement import reference as ref
from rollbook.settlement.bridge import SettlementBridge
from rollbook.settlement.chain import RevertError
from rollbook.settlement.client import SettlementClient, SettlementParams, TokenClient

USDC = 10**6
BTC = 1
WINDOW_S = 600
FORCED_DEADLINE_S = 3_600
ESCAPE_PERIOD_S = 1_800
CONFIRMATIONS = 2
PRICE = 100_000 * USDC
TICKS = 1_000_000  # $100,000 at $0.1 ticks
ORACLE_KEY = (0x0A11CE).to_bytes(32, "big")
ORACLE_ADDRESS = address_of_public_key(
    coincurve.PrivateKey(ORACLE_KEY).public_key.format(compressed=False))


@dataclass
class Venue:
    """The operator's side: STF state, commitment, bridge, and a snapshot per batch."""

    chain: Chain
    token: TokenClient
    settlement: SettlementClient
    bridge: SettlementBridge
    state: State
    commitment: StateCommitment
    clock_ms: int = 1_700_000_000_000
    snapshots: dict[int, tuple[State, StateCommitment]] = field(default_factory=dict)

    def run(self, *txs: Transaction, include_l1: bool = True) -> None:
        l1 = self.bridge.l1_transactions() if include_l1 else []
        self.clock_ms += 1_000
        batch = Batch(self.state.batch_index + 1, self.clock_ms, self.commitment.root,
                      (*l1, *txs))
        first_withdrawal = self.state.next_withdrawal_id
        receipts, root = apply_and_commit(self.state, self.commitment, batch)
        for receipt in receipts:
            assert receipt.ok, receipt.message
        self.bridge.record_withdrawal_proofs(self.commitment, self.state, first_withdrawal)
        self.snapshots[batch.index] = (copy.deepcopy(self.state), self.commitment.copy())
        self.bridge.publish(batch, root, self.state)

    def oracle(self, price_quantums: int) -> OracleUpdate:
        prices = (OraclePrice(BTC, price_quantums),)
        timestamp = self.clock_ms + 1_000
        digest = oracle_message_digest(self.state.config.chain_id, timestamp, prices)
        return OracleUpdate(timestamp, prices, (sign_digest(ORACLE_KEY, digest),))


def _setup(chain: Chain) -> tuple[Venue, tuple[LocalAccount, ...]]:
    operator, maker, taker, risky, stranger = chain.dev_accounts[:5]
    state = genesis_state(default_venue_config((ORACLE_ADDRESS,), chain_id=chain.chain_id))
    commitment = genesis_commitment(state)
    token = TokenClient.deploy(chain, sender=operator)
    settlement = SettlementClient.deploy(
        chain, token, SettlementParams(operator.address, commitment.root, WINDOW_S,
                                       FORCED_DEADLINE_S, ESCAPE_PERIOD_S),
        sender=operator)
    bridge = SettlementBridge(settlement, operator, CONFIRMATIONS)
    venue = Venue(chain, token, settlement, bridge, state, commitment)
    return venue, (maker, taker, risky, stranger)


def _address(account: LocalAccount) -> bytes:
    return to_canonical_address(account.address)


def _equity(state: State, owner: bytes, number: int = 0) -> int:
    sub = state.subaccounts[(owner, number)]
    return sum(group_risk(state.markets, group).equity_quantums for group in sub.groups())


def test_deposit_trade_withdraw_claim_then_escape(chain: Chain) -> None:
    venue, (maker, taker, risky, stranger) = _setup(chain)
    settlement, token = venue.settlement, venue.token
    deposits = {maker: 1_000_000 * USDC, taker: 100_000 * USDC, risky: 20_000 * USDC}
    for account, amount in deposits.items():
        token.mint(account.address, amount, sender=account)
        settlement.deposit(0, amount, sender=account)
    chain.mine(CONFIRMATIONS)

    # batch 1: the bridge credits the three deposits; the oracle prices BTC
    venue.run(venue.oracle(PRICE))
    assert venue.state.next_deposit_id == 4
    for account, amount in deposits.items():
        assert venue.state.subaccounts[(_address(account), 0)].cross.collateral_quantums == amount
    # batch 2: the maker quotes, the taker and the risky trader buy
    m, t, r = _address(maker), _address(taker), _address(risky)
    venue.run(PlaceOrder(m, 0, BTC, Side.SELL, TICKS + 10, 20_000),
              PlaceOrder(m, 0, BTC, Side.BUY, TICKS - 10, 20_000),
              PlaceOrder(t, 0, BTC, Side.BUY, TICKS + 20, 3_000, time_in_force=TimeInForce.IOC),
              PlaceOrder(r, 0, BTC, Side.BUY, TICKS + 20, 10_000, order_type=OrderType.MARKET,
                         time_in_force=TimeInForce.IOC))
    assert venue.state.markets[BTC].open_interest_lots == 13_000
    # batch 3: the taker withdraws 10,000 USDC
    venue.run(Withdraw(t, 0, 10_000 * USDC))
    claim = venue.bridge.withdrawal_claim(1)
    assert claim.batch_index == 3

    # not final yet: the claim reverts and nothing moves
    before = token.balance_of(taker.address)
    with pytest.raises(RevertError):
        venue.bridge.claim(1, sender=stranger)
    chain.increase_time(WINDOW_S + 1)
    assert settlement.is_finalized(3)
    assert venue.bridge.claim(1, sender=stranger) == 10_000 * USDC  # anyone sends; owner paid
    assert token.balance_of(taker.address) == before + 10_000 * USDC
    with pytest.raises(RevertError):
        venue.bridge.claim(1, sender=taker)  # never twice
    assert token.balance_of(taker.address) == before + 10_000 * USDC

    # batch 4: the price moves
    venue.run(venue.oracle(PRICE - 3_000 * USDC))
    # the risky trader asks to leave on chain; the operator never includes it
    settlement.request_forced_withdrawal(0, 5_000 * USDC, sender=risky)
    chain.mine(CONFIRMATIONS)
    assert not settlement.freezable()  # the deadline has not passed
    chain.increase_time(FORCED_DEADLINE_S + 1)
    venue.run(include_l1=False)  # batch 5 leaves the request out; it is inside its window
    assert settlement.freezable()
    frozen = settlement.freeze(sender=stranger)
    # every batch before the deadline passed its window, batch 5 did not: it is discarded
    assert frozen.escape_batch == 4
    escape_state, escape_commitment = venue.snapshots[4]
    assert frozen.escape_root == escape_commitment.root

    # the escape hatch: markets, then every account with its equity at the escape root
    proof = escape_commitment.proof((LEAF_MARKET, BTC))
    settlement.escape_register_market(proof.leaf_index, proof.leaf, proof.siblings,
                                      sender=stranger)
    markets = {BTC: ref.EscapeMarket(escape_state.markets[BTC].index_price_quantums,
                                     escape_state.markets[BTC].config.lot_size_nanounits)}
    claims: dict[bytes, int] = {}
    for account in (maker, taker, risky):
        owner = _address(account)
        proof = escape_commitment.proof((LEAF_SUBACCOUNT, owner, 0))
        equity = _equity(escape_state, owner)
        assert ref.escape_equity(ref.decode_subaccount_leaf(proof.leaf), markets) == equity
        registered = settlement.escape_register_account(proof.leaf_index, proof.leaf,
                                                        proof.siblings, sender=account)
        assert registered.claim == max(0, equity)
        claims[owner] = registered.claim
        with pytest.raises(RevertError):  # once per account
            settlement.escape_register_account(proof.leaf_index, proof.leaf, proof.siblings,
                                               sender=stranger)
    with pytest.raises(RevertError):  # the withdrawal was paid already: no second claim
        paid = escape_commitment.proof((LEAF_WITHDRAWAL, 1))
        settlement.escape_register_withdrawal(paid.leaf_index, paid.leaf, paid.siblings,
                                              sender=stranger)
    with pytest.raises(RevertError):  # payouts wait for the end of the escape period
        settlement.escape_withdraw_account(maker.address, 0, sender=maker)
    chain.increase_time(ESCAPE_PERIOD_S + 1)
    pool = settlement.escape_pool()
    total = settlement.escape_total_claims()
    assert total == sum(claims.values())
    paid_total = 0
    for account in (maker, taker, risky):
        before = token.balance_of(account.address)
        event = settlement.escape_withdraw_account(account.address, 0, sender=stranger)
        expected = ref.escape_payout(claims[_address(account)], pool, total)
        assert event.amount == expected
        assert token.balance_of(account.address) == before + expected
        paid_total += expected
        with pytest.raises(RevertError):
            settlement.escape_withdraw_account(account.address, 0, sender=stranger)
    assert paid_total <= pool
    # no bad debt here: everyone is paid in full, and the fee pool and insurance fund (which
    # have no claim) are what is left
    assert paid_total == total
    assert token.balance_of(settlement.address) == pool - paid_total
    assert pool - paid_total == (escape_state.fee_pool_quantums
                                 + escape_state.insurance.cross.collateral_quantums)


def test_the_bridge_credits_each_l1_input_once_in_order(chain: Chain) -> None:
    venue, (maker, taker, _, _) = _setup(chain)
    for account in (maker, taker):
        venue.token.mint(account.address, 10 * USDC, sender=account)
        venue.token.approve(venue.settlement.address, 10 * USDC, sender=account)
    venue.settlement.deposit(3, 5 * USDC, sender=maker)
    venue.settlement.deposit(4, 5 * USDC, sender=taker)
    assert venue.bridge.l1_transactions() == []  # the last deposit is not deep enough yet
    chain.mine(CONFIRMATIONS)
    txs = venue.bridge.l1_transactions()
    assert [(tx.deposit_id, tx.subaccount) for tx in txs if isinstance(tx, Deposit)] == [
        (1, 3), (2, 4)]
    assert len(txs) == 2
    venue.settlement.request_forced_withdrawal(3, USDC, sender=maker)
    venue.settlement.deposit(3, 5 * USDC, sender=maker)
    chain.mine(CONFIRMATIONS)
    txs = venue.bridge.l1_transactions()
    assert [type(tx).__name__ for tx in txs] == ["Deposit", "ForcedWithdrawal"]
    assert venue.bridge.l1_transactions() == []  # a rescan never repeats one
