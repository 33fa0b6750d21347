"""The embedded chain's direct transaction path (``_DirectTester``) against the RPC path.

``Chain.embedded()`` (and the child of ``embedded_child``, which runs the same code) sends
transactions to py-evm without web3's and eth-tester's request layers. It must be invisible:
the same signed transaction (hash), the same receipts and decoded events, reverts raised as
``RevertError`` with the contract's reason, the same errors for an invalid transaction, and
eth-tester's filters still fed. The RPC path is the same eth-tester behind a ``Chain`` that is
not ``embedded`` (so it sends with ``eth_sendRawTransaction``).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from eth_tester import EthereumTester, PyEVMBackend
from eth_utils.crypto import keccak
from eth_utils.exceptions import ValidationError
from web3 import Web3
from web3.exceptions import InvalidAddress
from web3.providers.eth_tester import EthereumTesterProvider

from rollbook.settlement import Chain, Receipt, RevertError
from rollbook.settlement.client import SettlementClient, SettlementParams, TokenClient

GENESIS_ROOT = b"\x11" * 32
BATCH_GAS = 4_000_000  # the node's EMBEDDED_SUBMIT_BATCH_GAS
BATCH_BYTES = 20_000


def rpc_path_chain() -> Chain:
    """eth-tester in process, driven through web3's JSON-RPC methods only."""
    tester = EthereumTester(PyEVMBackend())
    keys = tuple(key.to_bytes() for key in tester.backend.account_keys)
    return Chain(Web3(EthereumTesterProvider(tester)), dev_keys=keys)


def settle(chain: Chain) -> tuple[TokenClient, SettlementClient]:
    operator = chain.dev_accounts[0]
    token = TokenClient.deploy(chain, sender=operator)
    params = SettlementParams(operator.address, GENESIS_ROOT, 3_600, 3_600, 86_400, ())
    return token, SettlementClient.deploy(chain, token, params, sender=operator)


def scenario(chain: Chain) -> list[Receipt]:
    """Deposits and batches (with and without the estimate), as the node and users send them."""
    token, settlement = settle(chain)
    operator, alice = chain.dev_accounts[0], chain.dev_accounts[1]
    receipts = [chain.transact(token.handle, "mint", alice.address, 10**9, sender=operator),
                chain.transact(token.handle, "approve", settlement.address, 10**9, sender=alice),
                chain.transact(settlement.handle, "deposit", 7, 5 * 10**8, sender=alice)]
    data = bytes(range(256)) * (BATCH_BYTES // 256)
    previous = GENESIS_ROOT
    for index in (1, 2):
        root = index.to_bytes(32, "big")
        receipts.append(chain.transact(
            settlement.handle, "submit_batch", index, previous, root, keccak(data), 1, 0, data,
            sender=operator, gas=BATCH_GAS if index == 1 else None))
        previous = root
    return receipts


def test_the_embedded_chain_takes_the_direct_path() -> None:
    assert Chain.embedded()._direct is not None
    assert rpc_path_chain()._direct is None


def test_receipts_and_events_are_those_of_the_rpc_path() -> None:
    direct, rpc = scenario(Chain.embedded()), scenario(rpc_path_chain())
    assert direct == rpc  # hashes, blocks, gas used, every decoded event
    names = [[event.name for event in receipt.events] for receipt in direct]
    assert names == [["Transfer"], ["Approval"], ["Deposited", "Approval", "Transfer"],
                     ["BatchSubmitted"], ["BatchSubmitted"]]
    logs = [event.log_index for event in direct[2].events]
    assert logs == [0, 1, 2]


def test_the_signed_transaction_is_eth_accounts() -> None:
    chain = Chain.embedded()
    token, _ = settle(chain)
    operator = chain.dev_accounts[0]
    call = token.handle._contract.functions["mint"](operator.address, 5)
    nonce = chain.web3.eth.get_transaction_count(operator.address, "pending")
    transaction = call.build_transaction({"from": operator.address, "nonce": nonce,
                                          "gas": 100_000, "chainId": chain.chain_id})
    expected = operator.sign_transaction(transaction)
    receipt = chain.transact(token.handle, "mint", operator.address, 5, sender=operator,
                             gas=100_000)
    # the hash of the signed bytes: the same transaction, fees and signature included
    assert receipt.transaction_hash == bytes(expected.hash)


@pytest.mark.parametrize("make_chain", [Chain.embedded, rpc_path_chain],
                         ids=["direct", "rpc"])
def test_a_mined_revert_of_submit_batch_raises_the_contracts_reason(
        make_chain: Callable[[], Chain]) -> None:
    chain = make_chain()
    _, settlement = settle(chain)
    operator = chain.dev_accounts[0]
    data = os.urandom(1_000)
    head = chain.head_block()
    with pytest.raises(RevertError) as caught:  # batch 2 before batch 1
        chain.transact(settlement.handle, "submit_batch", 2, GENESIS_ROOT, b"\x22" * 32,
                       keccak(data), 0, 0, data, sender=operator, gas=BATCH_GAS)
    assert caught.value.reason == "Settlement: batch index is not latest + 1"
    assert caught.value.transaction_hash is not None
    assert chain.head_block() == head + 1  # mined, and failed
    receipt = chain.web3.eth.get_transaction_receipt(caught.value.transaction_hash)
    assert receipt["status"] == 0
    with pytest.raises(RevertError) as caught:  # the right index, another previous root
        chain.transact(settlement.handle, "submit_batch", 1, b"\x33" * 32, b"\x22" * 32,
                       keccak(data), 0, 0, data, sender=operator, gas=BATCH_GAS)
    assert caught.value.reason == "Settlement: prev_root is not the latest root"
    assert settlement.latest_batch() == 0


def test_an_invalid_transaction_raises_py_evms_error_and_sends_nothing() -> None:
    chain = Chain.embedded()
    token, _ = settle(chain)
    operator = chain.dev_accounts[0]
    head = chain.head_block()
    with pytest.raises(ValidationError, match="exceeds gas limit"):  # as through eth-tester
        chain.transact(token.handle, "mint", operator.address, 1, sender=operator,
                       gas=10**9)
    assert chain.head_block() == head
    token.mint(operator.address, 1, sender=operator)  # the nonce was not consumed


def test_arguments_web3_normalises_are_encoded_by_web3() -> None:
    receipts = []
    for chain in (Chain.embedded(), rpc_path_chain()):
        _, settlement = settle(chain)
        operator = chain.dev_accounts[0]
        data = b"\x01" * 100
        # roots as hex strings: web3 turns them into bytes before encoding
        receipts.append(chain.transact(
            settlement.handle, "submit_batch", 1, "0x" + GENESIS_ROOT.hex(),
            "0x" + "22" * 32, keccak(data), 0, 0, data, sender=operator, gas=BATCH_GAS))
        assert settlement.batch(1).root == b"\x22" * 32
        head = chain.head_block()
        lower = chain.dev_accounts[2].address.lower()  # web3 refuses a non-checksummed one
        with pytest.raises(InvalidAddress):
            chain.transact(settlement.token.handle, "mint", lower, 3, sender=operator)
        assert chain.head_block() == head
    assert receipts[0] == receipts[1]


def test_eth_testers_filters_are_still_fed() -> None:
    chain = Chain.embedded()
    token, _ = settle(chain)
    operator = chain.dev_accounts[0]
    log_filter = chain.web3.eth.filter({"address": token.address})
    block_filter = chain.web3.eth.filter("latest")
    minted = token.mint(operator.address, 4, sender=operator)
    assert [bytes(log["transactionHash"]) for log in log_filter.get_new_entries()] == [
        minted.transaction_hash]
    assert len(block_filter.get_new_entries()) == 1
