"""The node on the embedded EVM: deploy, deposit, trade, publish, finalise, withdraw, claim.

Every L1 call from the test holds ``node.chain_lock`` (``Chain`` is not thread-safe and the
node's publisher uses the same embedded chain).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_canonical_address, to_checksum_address
from test_node_offline import _wal_batches

from rollbook.execution import PlaceOrder, Side, TimeInForce, Withdraw
from rollbook.execution.crypto import keccak256
from rollbook.node import Node, NodeConfig
from rollbook.node.chain import EMBEDDED_SUBMIT_BATCH_GAS, ChainLink
from rollbook.node.config import BatchSettings, ChainSettings
from rollbook.node.engine import BatchRecord
from rollbook.sequencer import sign_action
from rollbook.sequencer.batch_data import encode_batch_data
from rollbook.settlement.anvil import Anvil, AnvilNotFoundError, find_anvil
from rollbook.settlement.chain import Chain, ChainError, ChainUnavailableError, RevertError
from rollbook.settlement.client import SettlementClient, TokenClient

USDC = 10**6
PRICE_TICKS = 1_000_000
WINDOW_S = 600


def _config(tmp_path: Path) -> NodeConfig:
    config = NodeConfig.local(tmp_path)
    return dataclasses.replace(
        config, batch=BatchSettings(interval_ms=100),
        chain=ChainSettings(url="embedded", challenge_window_s=WINDOW_S, poll_interval_ms=50))


def _wait(predicate: Any, timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _nonce() -> int:
    _nonce.last = max(time.time_ns() // 1_000_000, getattr(_nonce, "last", 0) + 1)  # type: ignore[attr-defined]
    return _nonce.last  # type: ignore[attr-defined,no-any-return]


def _signed(account: LocalAccount, node: Node, action: Any) -> Any:
    assert node.domain is not None
    return sign_action(bytes(account.key), node.domain, action, _nonce())


def test_lifecycle_on_the_embedded_chain(tmp_path: Path) -> None:
    with Node(_config(tmp_path)) as node:
        link = node.link
        assert node.domain is not None
        assert node.domain.verifying_contract == to_canonical_address(link.settlement.address)
        with node.chain_lock:
            maker, taker, stranger = link.chain.dev_accounts[1:4]
            for account in (maker, taker):
                link.token.mint(account.address, 1_000_000 * USDC, sender=account)
                link.settlement.deposit(0, 500_000 * USDC, sender=account)
        m, t = to_canonical_address(maker.address), to_canonical_address(taker.address)
        _wait(lambda: node.account_sync(m) and node.account_sync(t))
        assert node.account_sync(t).groups[0].collateral_quantums == 500_000 * USDC  # type: ignore[union-attr]

        async def trade() -> list[Any]:
            sell = await node.submit(_signed(maker, node, PlaceOrder(
                m, 0, 1, Side.SELL, PRICE_TICKS + 10, 1_000)))
            buys = await node.submit_many([_signed(taker, node, PlaceOrder(
                t, 0, 1, Side.BUY, PRICE_TICKS + 10, 400, time_in_force=TimeInForce.IOC))])
            withdraw = await node.submit(_signed(taker, node, Withdraw(t, 0, 10_000 * USDC)))
            return [sell, *buys, withdraw]

        sell, buy, withdraw = asyncio.run(trade())
        assert sell.ok and buy.ok and withdraw.ok
        fill = buy.receipt.events[0]
        assert type(fill).__name__ == "Fill" and fill.size_lots == 400
        withdrawal_id = withdraw.receipt.events[0].withdrawal_id
        node.close_batch_sync()  # (the cadence may have closed it already)
        closed = node.wait_for_batch(withdraw.batch_index)
        submitted = node.wait_for_batch(closed.index, "submitted")
        assert submitted.l1_transaction_hash is not None
        claim = node.withdrawal_claim(withdrawal_id)
        assert claim is not None and claim.batch_index == closed.index
        with node.chain_lock:
            for view in node.batches(start=1, limit=closed.index):
                assert link.settlement.batch(view.index).root == view.root
            with pytest.raises(RevertError):  # inside the challenge window: not final yet
                link.settlement.claim_withdrawal(claim.batch_index, claim.proof.leaf_index,
                                                 claim.proof.leaf, claim.proof.siblings,
                                                 sender=stranger)
            link.chain.increase_time(WINDOW_S + 1)
        assert node.wait_for_batch(closed.index, "final").status == "final"
        with node.chain_lock:
            before = link.token.balance_of(taker.address)
            paid = link.settlement.claim_withdrawal(claim.batch_index, claim.proof.leaf_index,
                                                    claim.proof.leaf, claim.proof.siblings,
                                                    sender=stranger)
            assert paid.amount == 10_000 * USDC
            assert link.token.balance_of(taker.address) == before + 10_000 * USDC
            with pytest.raises(RevertError):  # never twice
                link.settlement.claim_withdrawal(claim.batch_index, claim.proof.leaf_index,
                                                 claim.proof.leaf, claim.proof.siblings,
                                                 sender=taker)
            # a forced withdrawal requested on chain is processed by the node
            link.settlement.request_forced_withdrawal(0, 1_000 * USDC, sender=maker)
        _wait(lambda: node.engine.state.next_forced_id == 2)
        status = node.status_sync()
        assert status.final_batch >= closed.index and status.publisher_error is None
        with node.chain_lock:  # the embedded chain's process ends with the node
            latest = link.settlement.latest_batch()
            on_chain = {index: link.settlement.batch(index) for index in range(1, latest + 1)}
    with pytest.raises(ChainError):
        link.settlement.latest_batch()
    # the calldata commitment on chain is the hash of the bytes the log holds
    for batch, root in _wal_batches(tmp_path):
        if batch.index <= latest:
            assert on_chain[batch.index].root == root
            assert on_chain[batch.index].data_hash == keccak256(encode_batch_data(batch))


def test_the_publisher_retries_through_rpc_failures(tmp_path: Path) -> None:
    with Node(_config(tmp_path)) as node:
        real_publish = node.link.publish
        failures = {"left": 3}

        def flaky(record: Any) -> bytes:
            if failures["left"]:
                failures["left"] -= 1
                raise ChainUnavailableError("connection refused (simulated)")
            return real_publish(record)  # type: ignore[no-any-return]

        node.link.publish = flaky
        with node.chain_lock:
            account = node.link.chain.dev_accounts[1]
            node.link.token.mint(account.address, 10 * USDC, sender=account)
            node.link.settlement.deposit(0, 10 * USDC, sender=account)
        owner = to_canonical_address(account.address)
        _wait(lambda: node.account_sync(owner))
        node.close_batch_sync()  # (the cadence may have closed it already)
        closed = node.status_sync()
        _wait(lambda: node.status_sync().publisher_error is not None or failures["left"] == 0)
        assert node.wait_for_batch(closed.batch_index, "submitted").status == "submitted"
        assert failures["left"] == 0
        assert node.status_sync().publisher_error is None


@pytest.mark.slow
def test_a_venue_on_anvil_restarts_and_settles(tmp_path: Path) -> None:
    """JSON-RPC chain: the node deploys, stops, restarts on its data directory (attaching to
    its contract, reconciling roots, resuming the L1 scan), and a withdrawal from before the
    restart is claimed after finality."""
    try:
        binary = find_anvil()
    except AnvilNotFoundError as error:
        pytest.skip(str(error))
    with Anvil(binary) as anvil:
        config = dataclasses.replace(
            NodeConfig.local(tmp_path), batch=BatchSettings(interval_ms=100),
            chain=ChainSettings(url=anvil.url, operator_key=anvil.dev_keys[0],
                                challenge_window_s=WINDOW_S, poll_interval_ms=50))
        users = Chain.connect(anvil.url, dev_keys=anvil.dev_keys[1:3])
        trader = users.dev_accounts[0]
        owner = to_canonical_address(trader.address)
        with Node(config) as node:
            link = node.chain_link
            token = TokenClient.at(users, link.token.address)
            settlement = SettlementClient.at(users, link.settlement.address)
            token.mint(trader.address, 100_000 * USDC, sender=trader)
            settlement.deposit(0, 50_000 * USDC, sender=trader)
            _wait(lambda: node.account_sync(owner))
            withdraw = node.submit_sync(_signed(trader, node, Withdraw(owner, 0, 1_000 * USDC)))
            withdrawal_id = withdraw.receipt.events[0].withdrawal_id
            node.close_batch_sync()  # (the cadence may have closed it already)
            closed = node.wait_for_batch(withdraw.batch_index, "submitted")
            domain = node.domain
        settlement.deposit(0, 5_000 * USDC, sender=trader)  # while the node is down
        with Node(config) as node:
            assert node.domain == domain
            assert node.batch(closed.index).status == "submitted"  # type: ignore[union-attr]
            _wait(lambda: node.account_sync(owner).groups[0].collateral_quantums  # type: ignore[union-attr]
                  == 54_000 * USDC)
            users.increase_time(WINDOW_S + 1)
            users.mine()
            assert node.wait_for_batch(closed.index, "final").status == "final"
            claim = node.withdrawal_claim(withdrawal_id)
            assert claim is not None
            before = token.balance_of(trader.address)
            settlement.claim_withdrawal(claim.batch_index, claim.proof.leaf_index, claim.proof.leaf,
                                        claim.proof.siblings, sender=trader)
            assert token.balance_of(trader.address) == before + 1_000 * USDC
            # publishing goes on after the restart
            later = node.submit_sync(_signed(trader, node, Withdraw(owner, 0, USDC)))
            node.close_batch_sync()
            node.wait_for_batch(later.batch_index, "submitted")


def test_l1_deposits_wait_for_the_confirmation_depth(tmp_path: Path) -> None:
    config = dataclasses.replace(_config(tmp_path), chain=ChainSettings(
        url="embedded", confirmations=2, poll_interval_ms=20))
    with Node(config) as node:
        link = node.chain_link
        with node.chain_lock:
            account = link.chain.dev_accounts[1]
            link.token.mint(account.address, 10 * USDC, sender=account)
            link.settlement.deposit(0, 10 * USDC, sender=account)
        owner = to_canonical_address(account.address)
        time.sleep(0.3)  # many polls: the deposit is one block deep, not two
        assert node.account_sync(owner) is None
        with node.chain_lock:
            link.chain.mine(2)
        account_view = _wait(lambda: node.account_sync(owner))
        assert account_view.groups[0].collateral_quantums == 10 * USDC


def test_the_node_deploys_its_configured_challengers(tmp_path: Path) -> None:
    challenger = b"\x42" * 20
    config = _config(tmp_path)
    config = dataclasses.replace(config, chain=dataclasses.replace(config.chain,
                                                                   challengers=(challenger,)))
    with Node(config) as node, node.chain_lock:
        settlement = node.link.settlement
        assert settlement.is_challenger(to_checksum_address(challenger))
        assert not settlement.is_challenger(node.link.operator.address)


def test_embedded_publication_runs_once_with_gas_to_spare_and_still_sees_reverts() -> None:
    """On the embedded chain ``ChainLink.publish`` sends ``submit_batch`` with a fixed gas limit
    (no estimate, no pre-checks): the largest batch the contract takes fits it with room, and a
    batch that does not follow the contract's latest is refused, from the mined receipt."""
    genesis = keccak256(b"a venue's genesis root")
    link = ChainLink.open(ChainSettings(url="embedded"), None, genesis)
    try:
        data_max = link.batch_bytes_max()
        data = bytes((i % 255) + 1 for i in range(data_max))  # no zero byte: the costliest
        first = BatchRecord(1, 0, genesis, keccak256(b"root 1"), 1, len(data), 0, 0, 1, 2, data)
        transaction = link.publish(first)
        with link.lock:
            gas_used = int(link.chain.web3.eth.get_transaction_receipt(transaction)["gasUsed"])
            assert link.heads() == (1, 0)
        assert gas_used <= EMBEDDED_SUBMIT_BATCH_GAS * 3 // 4, gas_used
        with pytest.raises(RevertError, match="batch index is not latest"):
            link.publish(first)  # again
        stale = dataclasses.replace(first, index=2, previous_root=genesis)
        with pytest.raises(RevertError, match="prev_root is not the latest root"):
            link.publish(stale)
        assert link.heads() == (1, 0)
    finally:
        link.close()
