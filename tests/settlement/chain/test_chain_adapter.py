"""The chain adapter on both backends: deploy, transact, views, events, watch, time, reverts."""

from __future__ import annotations

import pytest

from rollbook.settlement import Chain, EventWatcher, RevertError
from rollbook.settlement.client import TokenClient, TransferEvent

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


@pytest.fixture
def token(chain: Chain) -> TokenClient:
    return TokenClient.deploy(chain, sender=chain.dev_accounts[0])


def test_deploy_gives_a_contract_with_code(chain: Chain, token: TokenClient) -> None:
    assert len(chain.web3.eth.get_code(token.address)) > 0
    assert token.decimals() == 6
    assert token.total_supply() == 0
    assert chain.head_block() >= 1
    assert len(chain.dev_accounts) == 10
    assert chain.balance_wei(chain.dev_accounts[0].address) > 10**18


def test_transact_returns_gas_block_and_decoded_events(chain: Chain, token: TokenClient) -> None:
    alice, bob = chain.dev_accounts[0], chain.dev_accounts[1]
    receipt = chain.transact(token.handle, "mint", alice.address, 5_000_000, sender=alice)
    assert receipt.block_number == chain.head_block()
    assert 21_000 < receipt.gas_used < 100_000
    minted = TransferEvent.from_receipt(receipt)
    assert (minted.sender, minted.receiver, minted.value) == (ZERO_ADDRESS, alice.address,
                                                              5_000_000)
    assert minted.block_number == receipt.block_number
    moved = token.transfer(bob.address, 1_500_000, sender=alice)
    assert (moved.sender, moved.receiver, moved.value) == (alice.address, bob.address, 1_500_000)
    assert token.balance_of(alice.address) == 3_500_000
    assert token.balance_of(bob.address) == 1_500_000
    approval = token.approve(bob.address, 7, sender=alice).event("Approval")
    assert (approval["owner"], approval["spender"], approval["value"]) == (alice.address,
                                                                          bob.address, 7)
    assert token.allowance(alice.address, bob.address) == 7


def test_a_revert_surfaces_its_reason_before_sending(chain: Chain, token: TokenClient) -> None:
    alice, bob = chain.dev_accounts[0], chain.dev_accounts[1]
    head = chain.head_block()
    with pytest.raises(RevertError) as caught:
        token.transfer(bob.address, 1, sender=alice)
    assert caught.value.reason == "TestUSDC: transfer amount exceeds balance"
    assert caught.value.transaction_hash is None
    assert chain.head_block() == head  # nothing was sent


def test_a_mined_revert_surfaces_its_reason(chain: Chain, token: TokenClient) -> None:
    alice, bob = chain.dev_accounts[0], chain.dev_accounts[1]
    with pytest.raises(RevertError) as caught:
        # an explicit gas limit skips the estimate: the transaction is mined and fails
        chain.transact(token.handle, "transfer", bob.address, 1, sender=alice, gas=100_000)
    assert caught.value.reason == "TestUSDC: transfer amount exceeds balance"
    assert caught.value.transaction_hash is not None
    receipt = chain.web3.eth.get_transaction_receipt(caught.value.transaction_hash)
    assert receipt["status"] == 0


def test_a_revert_without_reason_is_an_empty_string(chain: Chain, token: TokenClient) -> None:
    alice = chain.dev_accounts[0]
    token.mint(alice.address, 1, sender=alice)
    with pytest.raises(RevertError) as caught:  # checked arithmetic: the supply overflows
        token.mint(alice.address, 2**256 - 1, sender=alice)
    assert caught.value.reason == ""


def test_events_over_a_range_filtered_by_name(chain: Chain, token: TokenClient) -> None:
    alice, bob = chain.dev_accounts[0], chain.dev_accounts[1]
    first = token.mint(alice.address, 10, sender=alice).block_number
    token.approve(bob.address, 3, sender=alice)
    last = token.mint(bob.address, 20, sender=alice).block_number
    everything = chain.events(token.handle, first, last)
    assert [event.name for event in everything] == ["Transfer", "Approval", "Transfer"]
    assert [transfer.value for transfer in token.transfers(first, last)] == [10, 20]
    assert chain.events(token.handle, last + 1, last) == []
    with pytest.raises(ValueError, match="no such events"):
        chain.events(token.handle, first, last, ("Deposited",))


def test_watch_honours_the_confirmation_depth(chain: Chain, token: TokenClient) -> None:
    alice = chain.dev_accounts[0]
    depth = 3
    cursor = chain.head_block() + 1
    mined_in = token.mint(alice.address, 42, sender=alice).block_number
    seen = []
    for extra_blocks in range(depth):
        result = chain.watch(token.handle, cursor, depth)
        assert result.events == (), f"visible after only {extra_blocks} blocks on top"
        assert result.cursor <= mined_in
        cursor = result.cursor
        chain.mine(1)
    result = chain.watch(token.handle, cursor, depth)
    seen.extend(result.events)
    assert [(event.name, event["value"], event.block_number) for event in seen] == [
        ("Transfer", 42, mined_in)]
    assert result.cursor == chain.head_block() - depth + 1
    # resumed from the returned cursor: nothing twice, however many blocks follow
    chain.mine(5)
    assert chain.watch(token.handle, result.cursor, depth).events == ()


def test_watcher_resumes_from_a_cursor_without_duplicates(chain: Chain,
                                                          token: TokenClient) -> None:
    alice = chain.dev_accounts[0]
    start = chain.head_block() + 1
    watcher = EventWatcher(chain, token.handle, confirmations=1, start_block=start,
                           names=("Transfer",))
    token.mint(alice.address, 1, sender=alice)
    token.mint(alice.address, 2, sender=alice)
    first = watcher.poll()  # the second mint is not 1 block deep yet
    assert [event["value"] for event in first] == [1]
    saved = watcher.cursor
    token.mint(alice.address, 3, sender=alice)
    chain.mine(1)
    resumed = EventWatcher(chain, token.handle, confirmations=1, start_block=saved)
    resumed_events = resumed.poll()
    assert [event["value"] for event in resumed_events] == [2, 3]
    assert watcher.poll() == resumed_events  # the live watcher agrees with the resumed one
    assert watcher.poll() == [] and resumed.poll() == []  # each event once


def test_increase_time_and_mine(chain: Chain) -> None:
    before_block = chain.head_block()
    before_time = chain.block_timestamp()
    chain.increase_time(3_600)
    assert chain.block_timestamp() >= before_time + 3_600
    assert chain.head_block() > before_block
    after_travel = chain.head_block()
    chain.mine(4)
    assert chain.head_block() == after_travel + 4
    assert chain.block_timestamp() >= before_time + 3_600
    with pytest.raises(ValueError):
        chain.mine(0)
