"""The same API end to end with the node on anvil (a real JSON-RPC chain) instead of the
embedded EVM: deposits on chain, SDK trading, a withdrawal proven and claimed once final."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from eth_account import Account

from live_venue import USDC, LiveVenue, quick_config
from rollbook.client import Client, Signer
from rollbook.settlement import Chain
from rollbook.settlement.anvil import Anvil, AnvilNotFoundError, find_anvil
from rollbook.settlement.client import SettlementClient

pytestmark = pytest.mark.slow

BTC = 1
WINDOW_S = 60


@pytest.fixture(scope="module")
def anvil() -> Iterator[Anvil]:
    try:
        binary = find_anvil()
    except AnvilNotFoundError as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{error}\n(CI=true: the anvil backend is required, not skipped)")
        pytest.skip(str(error))
    with Anvil(binary) as node:
        yield node


def test_api_on_anvil(anvil: Anvil) -> None:
    operator_key = anvil.dev_keys[0]
    config = quick_config(url=anvil.url, operator_key=operator_key,
                          challenge_window_s=WINDOW_S)
    live = LiveVenue(config).start()
    try:
        chain = Chain.connect(anvil.url, dev_keys=anvil.dev_keys)
        settlement = SettlementClient.at(chain, "0x" + live.node.link.metadata
                                         .settlement_address.hex())
        trader = Account.from_key(anvil.dev_keys[1])
        settlement.token.mint(trader.address, 50_000 * USDC, sender=trader)
        settlement.deposit(0, 50_000 * USDC, sender=trader)
        live.wait_credited(trader)
        with Client(live.url, Signer.from_account(trader)) as client:
            info = client.info()
            assert info.domain.chain_id == chain.chain_id
            assert info.status.chain == anvil.url
            ack = client.place_order(BTC, "buy", "0.01", "99000", time_in_force="post_only")
            assert ack.ok and client.cancel_order(ack.order_id or 0).ok
            withdrawal = client.withdraw(100)
            [queued] = [e for e in withdrawal.events if type(e).__name__ == "WithdrawalQueued"]
            deadline = time.monotonic() + 60
            while client.status().batch_index < withdrawal.batch_index:  # still open
                assert time.monotonic() < deadline
                time.sleep(0.05)
            while client.batch(withdrawal.batch_index).status == "pending":
                assert time.monotonic() < deadline
                time.sleep(0.1)
            chain.increase_time(WINDOW_S + 1)
            while client.batch(withdrawal.batch_index).status != "final":
                assert time.monotonic() < deadline
                time.sleep(0.1)
            proof = client.withdrawal_proof(queued.withdrawal_id)
            before = settlement.token.balance_of(trader.address)
            settlement.claim_withdrawal(
                proof.batch_index, proof.proof.leaf_index, bytes.fromhex(proof.proof.leaf[2:]),
                [bytes.fromhex(s[2:]) for s in proof.proof.siblings], sender=trader)
            assert settlement.token.balance_of(trader.address) == before + 100 * USDC
    finally:
        live.stop()
