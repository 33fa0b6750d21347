"""Transport failures, the compile cache and the anvil process: the adapter's edges."""

from __future__ import annotations

import json
import pathlib
import socket
from typing import Any

import pytest
import requests
from eth_tester import EthereumTester, PyEVMBackend
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider
from web3.types import RPCEndpoint, RPCResponse

from rollbook.settlement import (
    Chain,
    ChainUnavailableError,
    RetryPolicy,
    _compile,
    compile_contract,
)
from rollbook.settlement.anvil import ANVIL_ENV, Anvil, AnvilNotFoundError, find_anvil
from rollbook.settlement.client import TokenClient


class LossyProvider(EthereumTesterProvider):
    """eth-tester behind a transport that refuses or loses replies on demand."""

    def __init__(self) -> None:
        super().__init__(EthereumTester(PyEVMBackend()))
        self.refuse_next = 0  # requests refused before reaching the chain
        self.lose_next_send_reply = False  # a sent transaction arrives, its reply is lost
        self.methods: list[str] = []

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        self.methods.append(method)
        if self.refuse_next > 0:
            self.refuse_next -= 1
            raise requests.ConnectionError("connection refused (simulated)")
        response = super().make_request(method, params)
        if method == "eth_sendRawTransaction" and self.lose_next_send_reply:
            self.lose_next_send_reply = False
            raise requests.Timeout("reply lost (simulated)")
        return response


def lossy_chain(sleeps: list[float]) -> tuple[Chain, LossyProvider]:
    provider = LossyProvider()
    keys = tuple(key.to_bytes() for key in provider.ethereum_tester.backend.account_keys)
    return Chain(Web3(provider), dev_keys=keys, sleep=sleeps.append), provider


def test_transient_failures_are_retried_with_backoff() -> None:
    sleeps: list[float] = []
    chain, provider = lossy_chain(sleeps)
    provider.refuse_next = 3
    assert chain.head_block() == 0
    assert sleeps == [0.1, 0.2, 0.4]


def test_a_lost_send_reply_does_not_send_twice() -> None:
    sleeps: list[float] = []
    chain, provider = lossy_chain(sleeps)
    alice = chain.dev_accounts[0]
    token = TokenClient.deploy(chain, sender=alice)
    provider.lose_next_send_reply = True
    minted = token.mint(alice.address, 5, sender=alice)
    assert minted.value == 5
    assert provider.methods.count("eth_sendRawTransaction") == 3  # deploy, mint, resent mint
    assert token.total_supply() == 5  # minted once
    assert sleeps == [0.1]


def test_an_unreachable_node_fails_after_bounded_attempts() -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps: list[float] = []
    chain = Chain.connect(f"http://127.0.0.1:{port}", timeout_s=1.0,
                          retry=RetryPolicy(attempts=4, backoff_first_s=0.5, backoff_max_s=1.0),
                          sleep=sleeps.append)
    with pytest.raises(ChainUnavailableError, match="after 4 attempts"):
        chain.head_block()
    assert sleeps == [0.5, 1.0, 1.0]


def test_connect_rejects_a_non_http_url() -> None:
    with pytest.raises(ValueError, match="HTTP"):
        Chain.connect("ws://127.0.0.1:8545")


TRIVIAL = """# pragma version ~=0.4.3
value: public(uint256)

@deploy
def __init__(initial: uint256):
    self.value = initial
"""


def test_compile_cache_hits_in_memory_and_on_disk(tmp_path: pathlib.Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    (contracts / "Trivial.vy").write_text(TRIVIAL)
    first = compile_contract("Trivial", contracts)
    assert compile_contract("Trivial", contracts) is first  # memory
    [cached] = (tmp_path / "cache" / "rollbook" / "vyper").glob("*.json")
    assert json.loads(cached.read_text())["bytecode"] == "0x" + first.bytecode.hex()
    _compile._memory_cache.clear()
    assert compile_contract("Trivial", contracts) == first  # disk
    cached.write_text("{not json")  # a corrupt entry is recompiled, not an error
    _compile._memory_cache.clear()
    assert compile_contract("Trivial", contracts) == first
    # any edit of a source in the folder is a new key
    (contracts / "Trivial.vy").write_text(TRIVIAL + "# edited\n")
    assert len({path.name for path in cached.parent.glob("*.json")}) == 1
    compile_contract("Trivial", contracts)
    assert len(list(cached.parent.glob("*.json"))) == 2


def test_compile_rejects_bad_names(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="identifier"):
        compile_contract("../etc/passwd", tmp_path)
    with pytest.raises(FileNotFoundError):
        compile_contract("Missing", tmp_path)


def test_find_anvil_honours_the_environment(tmp_path: pathlib.Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ANVIL_ENV, str(tmp_path / "no-such-anvil"))
    with pytest.raises(AnvilNotFoundError, match=ANVIL_ENV):
        find_anvil()


@pytest.mark.slow
def test_anvil_starts_on_loopback_and_stops(anvil_node: Anvil) -> None:
    binary = find_anvil()  # anvil_node (unused) skips or fails this test as the fixtures do
    with Anvil(binary, accounts=2) as node:
        assert node.url.startswith("http://127.0.0.1:")
        assert node.running and len(node.dev_keys) == 2
        chain = Chain.connect(node.url, dev_keys=node.dev_keys)
        assert chain.head_block() == 0
        assert chain.balance_wei(chain.dev_accounts[1].address) > 0
    assert not node.running
    node.stop()  # idempotent


def test_anvil_that_cannot_start_reports_its_log(tmp_path: pathlib.Path) -> None:
    fake = tmp_path / "anvil"
    fake.write_text("#!/bin/sh\necho 'boom: no chain today'\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(Exception, match="boom: no chain today"):
        Anvil(fake).start()

