"""The embedded chain in a child process (``Chain.embedded_child``): its lifetime and failures.

The adapter's behaviour on it (deploy, transact, reverts, events, watch, time) is covered by the
other tests of this directory, which run on every backend (conftest.BACKENDS).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from rollbook.settlement import Chain
from rollbook.settlement.chain import ChainError, RevertError
from rollbook.settlement.client import TokenClient
from rollbook.settlement.embedded import EmbeddedChainError

EXIT_WAIT_S = 10.0


def _child_pid(chain: Chain) -> int:
    pid: int = chain.web3.provider.pid  # type: ignore[attr-defined]
    return pid


def _gone(pid: int) -> bool:
    """Whether ``pid`` exited (reaped, or a zombie nobody reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _wait_gone(pid: int) -> bool:
    deadline = time.monotonic() + EXIT_WAIT_S
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.05)
    return False


def test_close_ends_the_child_and_later_calls_fail_as_chain_errors() -> None:
    chain = Chain.embedded_child()
    pid = _child_pid(chain)
    assert chain.head_block() == 0 and not _gone(pid)
    chain.close()
    chain.close()  # idempotent
    assert _wait_gone(pid)
    with pytest.raises(EmbeddedChainError, match="closed") as caught:
        chain.head_block()
    assert isinstance(caught.value, ChainError)


def test_a_killed_child_surfaces_as_a_chain_error() -> None:
    chain = Chain.embedded_child()
    pid = _child_pid(chain)
    try:
        os.kill(pid, signal.SIGKILL)
        assert _wait_gone(pid)
        with pytest.raises(EmbeddedChainError, match="gone"):
            chain.head_block()
    finally:
        chain.close()


def test_the_child_ends_when_its_parent_is_killed() -> None:
    program = ("import os, sys, time\n"
               "from rollbook.settlement import Chain\n"
               "chain = Chain.embedded_child()\n"
               "print(chain.web3.provider.pid, flush=True)\n"
               "time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert not _gone(child)
        parent.kill()  # SIGKILL: no cleanup runs; the child sees its input end
        parent.wait()
        assert _wait_gone(child), f"embedded chain process {child} outlived its parent"
    finally:
        parent.kill()
        parent.wait()


def test_contract_work_in_the_child_keeps_reasons_and_receipts() -> None:
    chain = Chain.embedded_child()
    try:
        alice, bob = chain.dev_accounts[:2]
        token = TokenClient.deploy(chain, sender=alice)
        receipt = chain.transact(token.handle, "mint", bob.address, 5, sender=bob)
        transfer = receipt.event("Transfer")
        assert transfer["receiver"] == bob.address and transfer["value"] == 5
        assert token.balance_of(bob.address) == 5
        # mined with a given gas limit (no estimate): the revert comes from the receipt, with
        # the contract's reason and the failed transaction's hash
        with pytest.raises(RevertError, match="exceeds balance") as caught:
            chain.transact(token.handle, "transfer", alice.address, 6, sender=bob,
                           gas=200_000)
        assert caught.value.transaction_hash is not None
    finally:
        chain.close()


def test_the_child_runs_as_background_work() -> None:
    """Linux: the child is in the SCHED_IDLE class, so the caller's threads preempt the EVM."""
    if not hasattr(os, "sched_getscheduler"):
        pytest.skip("no scheduling classes on this platform")
    chain = Chain.embedded_child()
    try:
        pid = chain.child_pid
        assert pid is not None and pid == _child_pid(chain)
        assert os.sched_getscheduler(pid) == os.SCHED_IDLE
    finally:
        chain.close()
    assert Chain.embedded().child_pid is None
