"""The in-process verifier beside a real node on the node's embedded chain.

The node (sequencer, WAL, publisher) publishes its batches; a ``Verifier`` on the same embedded
chain, holding the node's chain lock around every chain call, replays them with the node's own
venue configuration and reaches the node's root at every batch. This pins the verifier to the
bytes the node actually publishes, not only to the test operator's.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from eth_utils.address import to_canonical_address

from rollbook.execution import PlaceOrder, Side, TimeInForce, Withdraw
from rollbook.node import Node, NodeConfig
from rollbook.node.config import BatchSettings, ChainSettings
from rollbook.sequencer import sign_action
from rollbook.verifier import Verifier, VerifierConfig

USDC = 10**6
PRICE_TICKS = 1_000_000  # the local venue's oracle price, $100,000 at $0.1 ticks
WAIT_S = 20.0


def _wait(predicate: object, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_the_verifier_follows_a_node_in_process(tmp_path: Path) -> None:
    config = dataclasses.replace(
        NodeConfig.local(tmp_path), batch=BatchSettings(interval_ms=100),
        chain=ChainSettings(url="embedded", challenge_window_s=600, poll_interval_ms=50))
    with Node(config) as node:
        link = node.link
        assert link is not None and node.domain is not None and node.venue is not None
        with node.chain_lock:
            maker, taker = link.chain.dev_accounts[1:3]
            for account in (maker, taker):
                link.token.mint(account.address, 1_000_000 * USDC, sender=account)
                link.settlement.deposit(0, 500_000 * USDC, sender=account)
        m, t = to_canonical_address(maker.address), to_canonical_address(taker.address)
        _wait(lambda: node.account_sync(m) and node.account_sync(t))
        nonce = int(time.time() * 1_000)
        acks = node.submit_many_sync([
            sign_action(bytes(maker.key), node.domain,
                        PlaceOrder(m, 0, 1, Side.SELL, PRICE_TICKS + 10, 1_000), nonce),
            sign_action(bytes(taker.key), node.domain,
                        PlaceOrder(t, 0, 1, Side.BUY, PRICE_TICKS + 10, 400,
                                   time_in_force=TimeInForce.IOC), nonce + 1),
            sign_action(bytes(taker.key), node.domain, Withdraw(t, 0, 1_000 * USDC),
                        nonce + 2)])
        assert all(getattr(ack, "ok", False) for ack in acks), acks
        closed = node.close_batch_sync()
        assert closed is not None
        node.wait_for_batch(closed.index, "submitted")
        verifier = Verifier(link.chain, link.settlement.address,
                            VerifierConfig(venue=node.venue), lock=node.chain_lock)
        report = verifier.sync()
        assert not report.divergences and report.roots_matched >= closed.index
        roots = {view.index: view.root for view in node.batches(start=1, limit=1_000)}
        assert dict(verifier.root_log).items() <= roots.items()
        assert report.transactions >= len(acks)
        verifier.close()
