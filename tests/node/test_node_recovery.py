"""The node's signer recovery: worker processes (the default) and recovery threads agree, and
the node's stop (or a worker's death) leaves nothing behind and loses no answer."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from pathlib import Path

import pytest
from node_helpers import (
    BTC,
    CHAIN_ID,
    CONTRACT,
    PRICE_TICKS,
    fund,
    offline_config,
    offline_domain,
    owner,
    sign,
)

from rollbook.execution import PlaceOrder, Side
from rollbook.execution.crypto import SECP256K1_N
from rollbook.node import Node
from rollbook.node.recovery import ROUND_SIGNATURES_MAX, prepare, prepare_round
from rollbook.node.views import Ack
from rollbook.sequencer import Eip712Domain, SignedTransaction
from rollbook.sequencer.errors import AdmissionCode, AdmissionError
from rollbook.sequencer.recovery_processes import RecoveryProcesses


def _place(n: int, price_ticks: int, domain: Eip712Domain) -> SignedTransaction:
    return sign(n, PlaceOrder(owner(n), 0, BTC, Side.BUY, price_ticks, 1), domain)


def _high_s(signed: SignedTransaction) -> SignedTransaction:
    s = int.from_bytes(signed.signature[32:64], "big")
    return dataclasses.replace(signed, signature=signed.signature[:32] + (
        SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - signed.signature[64]]))


def _mixed(domain: Eip712Domain, count: int) -> list[SignedTransaction]:
    """Valid orders with every kind of refusal among them."""
    signed = [_place(1 + i % 4, PRICE_TICKS - 10 - i, domain) for i in range(count)]
    signed[1] = _high_s(signed[1])
    signed[2] = dataclasses.replace(signed[2], signature=signed[2].signature + b"\0")
    signed[3] = SignedTransaction(PlaceOrder(owner(1), 0, BTC, Side.BUY, PRICE_TICKS, 1 << 64),
                                  signed[3].nonce_ms, signed[3].signature)  # no encoding
    signed[4] = _place(2, PRICE_TICKS, Eip712Domain(CHAIN_ID + 1, CONTRACT))  # another signer
    return signed


def _same(a: list[tuple[object, ...]], b: list[tuple[object, ...]]) -> bool:
    def key(item: tuple[object, ...]) -> tuple[object, ...]:
        _entry, data, tx_id, verified = item
        if isinstance(verified, AdmissionError):
            return (None, verified.code, verified.detail)
        return (data, tx_id, verified)

    return [key(x) for x in a] == [key(x) for x in b]


def test_a_round_on_the_workers_equals_recovery_on_this_thread() -> None:
    domain = offline_domain()
    signed = _mixed(domain, 40)
    chunks = [signed[:1], signed[1:7], signed[7:8], signed[8:]]
    recovery = RecoveryProcesses(2)
    try:
        rounds = prepare_round(recovery, domain, chunks)
        assert len(rounds) == len(chunks)
        for chunk, prepared in zip(chunks, rounds, strict=True):
            assert _same(prepared, prepare(domain, chunk))
        assert isinstance(rounds[1][0][3], AdmissionError)  # the high-s one
        assert rounds[1][3][3].signer != owner(2)  # signed in another domain
        # a full round, and an empty one
        many = [_place(1, PRICE_TICKS - i, domain) for i in range(ROUND_SIGNATURES_MAX)]
        assert _same(prepare_round(recovery, domain, [many])[0], prepare(domain, many))
        assert prepare_round(recovery, domain, [[]]) == [[]]
    finally:
        recovery.close()
    # once the workers are gone, the same answers come from this process
    assert _same(prepare_round(recovery, domain, chunks)[3], prepare(domain, chunks[3]))


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


@pytest.mark.parametrize("processes", [0, 1, 2])
def test_the_node_admits_the_same_way_on_threads_and_processes(tmp_path: Path,
                                                               processes: int) -> None:
    config = offline_config(tmp_path)
    config = dataclasses.replace(config, storage=dataclasses.replace(
        config.storage, recovery_processes=processes))
    with Node(config) as node:
        fund(node, [owner(i) for i in range(1, 5)])
        domain = node.domain
        assert domain is not None
        signed = _mixed(domain, 30)
        results = node.submit_many_sync(signed)
        expected = prepare(domain, signed)
        for position, (result, (_, _, tx_id, verified)) in enumerate(
                zip(results, expected, strict=True)):
            if isinstance(verified, AdmissionError):
                assert isinstance(result, AdmissionError) and result.code == verified.code
            elif position == 4:  # signed in another domain: recovers to a stranger
                assert isinstance(result, AdmissionError)
                assert result.code == AdmissionCode.SIGNER_NOT_AUTHORISED
            else:
                assert isinstance(result, Ack) and result.tx_id == tx_id
                assert result.signer == verified.signer
        workers = node.recovery_worker_pids
        assert len(workers) == processes
    if os.path.isdir("/proc"):
        assert all(_gone(pid) for pid in workers)


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_a_killed_worker_loses_no_answer_and_stop_leaves_no_process(tmp_path: Path) -> None:
    with Node(offline_config(tmp_path)) as node:
        fund(node, [owner(1)])
        domain = node.domain
        assert domain is not None
        workers = list(node.recovery_worker_pids)
        assert len(workers) == node.config.storage.recovery_processes == 2
        first = node.submit_many_sync([_place(1, PRICE_TICKS - 10 - i, domain)
                                       for i in range(20)])
        assert all(isinstance(a, Ack) and a.ok for a in first)
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 5
        while not _gone(workers[0]) and time.monotonic() < deadline:
            time.sleep(0.01)
        for round_number in range(5):  # both workers get requests in turn
            acks = node.submit_many_sync([_place(1, PRICE_TICKS - 100 - i - 20 * round_number,
                                                 domain) for i in range(20)])
            assert all(isinstance(a, Ack) and a.ok and a.signer == owner(1) for a in acks)
    deadline = time.monotonic() + 5
    while not all(_gone(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert all(_gone(p) for p in workers)
