"""An honest operator: the verifier reaches the operator's root after every batch.

- on both chains, a short venue life with a verifier following it ``CONFIRMATIONS`` blocks
  deep, polled after every batch; a challenger disputes a *good* batch (challengers can be
  wrong), the operator resubmits, and the verifier rolls back and follows; a verifier started
  later from nothing reaches every root;
- on the embedded chain (slow), the same over more than 10,000 signed transactions with
  trading, funding, a liquidation, deposits and withdrawals;
- resuming from the verifier's own snapshot (and refusing anything else).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from verifier_helpers import (
    CHALLENGER,
    PRICE_QUANTUMS,
    USDC,
    WINDOW_S,
    Built,
    TestOperator,
    venue_life,
)

from rollbook.node.snapshot import SNAPSHOT_MAGIC as NODE_SNAPSHOT_MAGIC
from rollbook.node.snapshot import NodeSnapshot, dumps_snapshot
from rollbook.settlement import Chain
from rollbook.settlement.chain import ChainUnavailableError
from rollbook.verifier import Verifier
from rollbook.verifier.snapshot import list_snapshots

CONFIRMATIONS = 2
LONG_RUN_SIGNED = 10_000
LONG_RUN_SIGNED_PER_BATCH = 400  # ~53 KiB of calldata: under the contract's 64 KiB
LONG_RUN_SECONDS_MAX = 150.0


def _open(chain: Chain, *, big: bool = False) -> tuple[TestOperator, list[LocalAccount]]:
    accounts = chain.dev_accounts
    operator = TestOperator(chain, challengers=(accounts[CHALLENGER].address,))
    traders = list(accounts[2:10])
    operator.fund(traders[0], 5_000_000 * USDC)  # the market maker
    operator.fund(traders[1], 13_000 * USDC)  # the risky trader: about 9x after its buy
    for trader in traders[2:]:
        operator.fund(trader, (1_000_000 if big else 200_000) * USDC)
    operator.run(system=[operator.oracle(PRICE_QUANTUMS)])
    return operator, traders


def _follow(chain: Chain, follower: Verifier, built: Built) -> None:
    chain.mine(CONFIRMATIONS)
    follower.sync()
    assert follower.halted is None, follower.report.divergences
    assert (follower.batch_index, follower.root) == (built.index, built.root)


def test_a_verifier_follows_an_honest_operator_through_a_dispute(chain: Chain) -> None:
    operator, traders = _open(chain)
    follower = operator.verifier(confirmations=CONFIRMATIONS)
    snapshots = {1: operator.snapshot()}

    def after(built: Built) -> None:
        snapshots[built.index] = operator.snapshot()
        _follow(chain, follower, built)

    life = venue_life(operator, traders, batches=8, signed_per_batch=60, advance_ms=120_000,
                      crash_batch=4, after_batch=after)
    assert life.fills > 0 and life.liquidations > 0 and life.withdrawals > 0
    assert life.deposits > 0
    latest = operator.state.batch_index
    # a challenger disputes a good batch: the chain discards it and everything after
    disputed = latest - 1
    operator.settlement.dispute(disputed, sender=chain.dev_accounts[CHALLENGER])
    operator.restore(snapshots[disputed - 1])
    resubmitted = operator.run(system=[operator.oracle(PRICE_QUANTUMS - 1_000 * USDC)])
    _follow(chain, follower, resubmitted)
    report = follower.report
    assert report.rollbacks == 1 and report.disputes_sent == 0 and not report.divergences
    # a verifier started later from nothing reaches the same root after every batch
    late = operator.verifier()
    late_report = late.sync()
    assert not late_report.divergences and late_report.rollbacks == 1
    assert dict(late.root_log) == {i: r for i, r in operator.roots.items() if i > 0}
    assert late.root == operator.commitment.root == follower.root
    late.close()
    follower.close()


@pytest.mark.slow
def test_ten_thousand_transactions_embedded(embedded_chain: Chain) -> None:
    chain = embedded_chain
    started = time.monotonic()
    operator, traders = _open(chain, big=True)
    follower = operator.verifier(confirmations=1)
    batches = -(-LONG_RUN_SIGNED // LONG_RUN_SIGNED_PER_BATCH)

    def after(built: Built) -> None:
        chain.mine(1)
        follower.sync()
        assert follower.halted is None, follower.report.divergences
        assert follower.root == built.root

    life = venue_life(operator, traders, batches=batches,
                      signed_per_batch=LONG_RUN_SIGNED_PER_BATCH, after_batch=after)
    assert life.signed >= LONG_RUN_SIGNED
    assert life.fills > 0 and life.liquidations > 0 and life.funding_payments > 0
    assert life.withdrawals > 0 and life.deposits > 0
    late = operator.verifier()
    report = late.sync()
    assert not report.divergences and report.roots_matched == operator.state.batch_index
    assert dict(late.root_log) == {i: r for i, r in operator.roots.items() if i > 0}
    assert report.transactions >= LONG_RUN_SIGNED
    late.close()
    follower.close()
    assert time.monotonic() - started < LONG_RUN_SECONDS_MAX


def test_resume_from_its_own_snapshot(embedded_chain: Chain, tmp_path: Path) -> None:
    chain = embedded_chain
    operator, traders = _open(chain)
    venue_life(operator, traders, batches=4, signed_per_batch=30, advance_ms=60_000)
    directory = tmp_path / "verifier"
    first = operator.verifier(snapshot_dir=directory)
    first.sync()
    chain.increase_time(WINDOW_S + 1)  # everything final: the snapshot may cover it
    first.sync()
    first.close()
    written = list_snapshots(directory)
    assert [index for index, _ in written] == [operator.state.batch_index]
    # two more batches; a new process resumes from the snapshot and verifies only those
    venue_life(operator, traders, batches=2, signed_per_batch=30, advance_ms=60_000, seed=9)
    second = operator.verifier(snapshot_dir=directory)
    assert second.report.resumed_from == written[0][0]
    report = second.sync()
    assert report.roots_matched == 2 and not report.divergences
    assert second.root == operator.commitment.root
    chain.increase_time(WINDOW_S + 1)
    second.sync()
    second.close()
    assert [index for index, _ in list_snapshots(directory)] == [
        operator.state.batch_index, written[0][0]]
    # a damaged snapshot is skipped: the next older one is used
    newest = list_snapshots(directory)[0][1]
    raw = bytearray(newest.read_bytes())
    raw[-1] ^= 0xFF
    newest.write_bytes(bytes(raw))
    messages: list[str] = []
    third = Verifier(chain, operator.settlement.address, second.config, progress=messages.append)
    assert third.report.resumed_from == written[0][0]
    assert any("checksum mismatch" in line for line in messages)
    assert third.sync().roots_matched == 2 and third.root == operator.commitment.root
    third.close()


def test_an_operator_snapshot_is_never_resumed(embedded_chain: Chain, tmp_path: Path) -> None:
    chain = embedded_chain
    operator, _ = _open(chain)
    directory = tmp_path / "verifier"
    # the operator's own snapshot format, even placed under the verifier's file name
    payload = dumps_snapshot(NodeSnapshot("0.1.0", b"", operator.state.batch_index,
                                          operator.commitment.root, 0, operator.state,
                                          operator.commitment, operator.admission.snapshot()))
    directory.mkdir()
    (directory / f"verifier-{operator.state.batch_index:020d}.rvs").write_bytes(
        NODE_SNAPSHOT_MAGIC + payload)
    messages: list[str] = []
    verifier = operator.verifier(snapshot_dir=directory, progress=messages.append)
    assert verifier.report.resumed_from is None
    assert any("not a verifier snapshot" in line for line in messages)
    assert verifier.sync().roots_matched == 1
    verifier.close()


def test_following_survives_a_chain_outage(embedded_chain: Chain,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    operator, _ = _open(embedded_chain)
    messages: list[str] = []
    verifier = operator.verifier(poll_interval_ms=10, progress=messages.append)
    real_watch = embedded_chain.watch
    calls = {"watch": 0, "sleep": 0}

    def flaky_watch(*args: Any, **kwargs: Any) -> Any:
        calls["watch"] += 1
        if calls["watch"] == 1:
            raise ChainUnavailableError("the RPC endpoint is down")
        return real_watch(*args, **kwargs)

    def sleep(seconds: float) -> None:
        calls["sleep"] += 1

    monkeypatch.setattr(embedded_chain, "watch", flaky_watch)
    report = verifier.run(lambda: calls["sleep"] >= 2, sleep=sleep)
    assert any("chain unavailable" in line for line in messages)
    assert report.roots_matched == 1 and verifier.root == operator.commitment.root
    verifier.close()
