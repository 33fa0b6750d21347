"""The recovery pipeline: ``recover`` answers exactly as ``recover_signers`` for every batch
size (small batches included), from prefetched work when it is the same objects; and the
interpreter's switch interval is lowered while a pipeline is open, and only then (nested
pipelines share it, the last one to shut down gives the previous value back)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import coincurve
import pytest

from rollbook.execution.crypto import SECP256K1_N, address_of_public_key
from rollbook.execution.txs import PlaceOrder, Side
from rollbook.sequencer.batch_data import BatchData, SignerRecovery, signed_entry
from rollbook.sequencer.eip712 import Eip712Domain
from rollbook.sequencer.signatures import (
    RECOVERY_CHUNK_MAX,
    SignedTransaction,
    recover_signers,
    sign_action,
)
from rollbook.verifier.pipeline import (
    PREFETCH_BATCHES_MAX,
    RECOVERY_SWITCH_INTERVAL_S,
    RecoveryPipeline,
)
from switch_interval import DEFAULT_INTERVAL_S, about, default_interval

DOMAIN = Eip712Domain(31337, bytes(20))
KEY = (0xA11CE5).to_bytes(32, "big")
OWNER = address_of_public_key(coincurve.PrivateKey(KEY).public_key.format(compressed=False))
T0_MS = 1_700_000_000_000
THREADS = 2
@pytest.fixture(autouse=True)
def default_switch_interval() -> Iterator[None]:
    with default_interval():
        yield


def test_the_interval_is_lowered_while_a_pipeline_is_open() -> None:
    pipeline = RecoveryPipeline(DOMAIN, 1)
    assert sys.getswitchinterval() == about(RECOVERY_SWITCH_INTERVAL_S)
    pipeline.shutdown()
    assert sys.getswitchinterval() == about(DEFAULT_INTERVAL_S)
    pipeline.shutdown()  # idempotent: nothing is given back twice
    assert sys.getswitchinterval() == about(DEFAULT_INTERVAL_S)


def test_nested_pipelines_restore_the_interval_once_all_are_shut() -> None:
    first = RecoveryPipeline(DOMAIN, 1)
    second = RecoveryPipeline(DOMAIN, 1)
    first.shutdown()
    assert sys.getswitchinterval() == about(RECOVERY_SWITCH_INTERVAL_S)
    second.shutdown()
    assert sys.getswitchinterval() == about(DEFAULT_INTERVAL_S)


def test_a_lower_interval_already_set_is_kept() -> None:
    sys.setswitchinterval(RECOVERY_SWITCH_INTERVAL_S / 2)
    lower = sys.getswitchinterval()  # as the interpreter stores it
    pipeline = RecoveryPipeline(DOMAIN, 1)
    assert sys.getswitchinterval() == lower
    pipeline.shutdown()
    assert sys.getswitchinterval() == about(lower)


def test_none_leaves_the_interval_alone() -> None:
    pipeline = RecoveryPipeline(DOMAIN, 1, switch_interval_s=None)
    assert sys.getswitchinterval() == about(DEFAULT_INTERVAL_S)
    pipeline.shutdown()
    assert sys.getswitchinterval() == about(DEFAULT_INTERVAL_S)


@pytest.mark.parametrize("interval_s", [0.0, -1.0])
def test_a_non_positive_interval_is_refused(interval_s: float) -> None:
    with pytest.raises(ValueError):
        RecoveryPipeline(DOMAIN, 1, switch_interval_s=interval_s)
    assert sys.getswitchinterval() == about(DEFAULT_INTERVAL_S)


def _signed(count: int) -> list[SignedTransaction]:
    signed = [sign_action(KEY, DOMAIN, PlaceOrder(OWNER, 0, 1, Side.BUY, 1_000 + n, 1), T0_MS + n)
              for n in range(count)]
    if count > 1:  # a refusal travels as a result too: s flipped to high-s, v to its twin
        bad = signed[1].signature
        flipped = (bad[:32] + (SECP256K1_N - int.from_bytes(bad[32:64], "big")).to_bytes(32, "big")
                   + bytes([55 - bad[64]]))
        signed[1] = SignedTransaction(signed[1].action, signed[1].nonce_ms, flipped)
    return signed


def _batch(signed: list[SignedTransaction]) -> BatchData:
    return BatchData(2, T0_MS, bytes(32), tuple(signed_entry(s) for s in signed))


@pytest.mark.parametrize("processes", [0, 2])
@pytest.mark.parametrize("count", [0, 1, 2, 3, RECOVERY_CHUNK_MAX, 2 * RECOVERY_CHUNK_MAX + 5])
def test_recover_answers_as_recover_signers_from_prefetched_work(count: int,
                                                                 processes: int) -> None:
    batch = _batch(_signed(count))
    same_objects = [entry.signed for entry in batch.entries]  # type: ignore[union-attr]
    expected = recover_signers(DOMAIN, same_objects)
    pipeline = RecoveryPipeline(DOMAIN, THREADS, processes=processes)
    try:
        recovery: SignerRecovery = pipeline  # what replay_batch takes (a structural type)
        pipeline.prefetch(batch)
        assert recovery.recover(DOMAIN, same_objects) == expected
        chunks = -(-count // pipeline.chunk_signatures(count)) if count else 0
        assert (pipeline.hits, pipeline.misses) == (chunks, 0)
    finally:
        pipeline.shutdown()


def test_a_pipeline_on_processes_leaves_the_interval_alone() -> None:
    """No recovery thread waits for this interpreter's GIL, so nothing needs lowering; work
    dropped by ``forget`` (a rollback) or left at shutdown is never asked for again."""
    pipeline = RecoveryPipeline(DOMAIN, THREADS, processes=2)
    try:
        assert pipeline.processes == 2 and pipeline.lanes == 2
        assert sys.getswitchinterval() == about(DEFAULT_INTERVAL_S)
        pipeline.wait_ready()
        dropped = _batch(_signed(9))
        pipeline.prefetch(dropped)
        pipeline.forget()
        signed = [entry.signed for entry in dropped.entries]  # type: ignore[union-attr]
        assert pipeline.recover(DOMAIN, signed) == recover_signers(DOMAIN, signed)
        assert pipeline.hits == 0
        pipeline.prefetch(_batch(_signed(5)))
    finally:
        pipeline.shutdown()
    assert sys.getswitchinterval() == about(DEFAULT_INTERVAL_S)


def test_small_batches_are_spread_over_the_threads() -> None:
    pipeline = RecoveryPipeline(DOMAIN, THREADS)
    try:
        assert pipeline.chunk_signatures(1) == 1
        assert pipeline.chunk_signatures(9) == 5
        assert pipeline.chunk_signatures(10 * RECOVERY_CHUNK_MAX) == RECOVERY_CHUNK_MAX
    finally:
        pipeline.shutdown()


def test_work_that_was_not_prefetched_is_computed_afresh() -> None:
    signed = _signed(7)
    expected = recover_signers(DOMAIN, signed)
    pipeline = RecoveryPipeline(DOMAIN, THREADS)
    try:
        pipeline.prefetch(_batch(signed))  # the entries hold ``signed``'s very objects
        equal_copies = [SignedTransaction(s.action, s.nonce_ms, s.signature) for s in signed]
        assert pipeline.recover(DOMAIN, equal_copies) == expected
        assert pipeline.hits == 0 and pipeline.misses == 2
        other = Eip712Domain(1, bytes(20))  # another domain is never the prefetched work
        assert pipeline.recover(other, signed) == recover_signers(other, signed)
    finally:
        pipeline.shutdown()


@pytest.mark.parametrize("processes", [0, 2])
def test_a_long_run_of_prefetched_batches_is_all_hits(processes: int) -> None:
    """As the verifier drives it: prefetch batch k + 1, then replay batch k, dropping each
    batch after it; freed objects' ids are reused, which must never evict fresher work."""
    pipeline = RecoveryPipeline(DOMAIN, THREADS, processes=processes)
    rounds = 3 * PREFETCH_BATCHES_MAX
    try:
        current = _batch(_signed(3))
        for _ in range(rounds):
            upcoming = _batch(_signed(3))
            pipeline.prefetch(upcoming)
            pipeline.prefetch(current)  # known after the first round: no new work
            signed = [entry.signed for entry in current.entries]  # type: ignore[union-attr]
            assert pipeline.recover(DOMAIN, signed) == recover_signers(DOMAIN, signed)
            current = upcoming
        chunks_per_batch = 2  # 3 signatures over 2 threads
        assert (pipeline.hits, pipeline.misses) == (rounds * chunks_per_batch, 0)
    finally:
        pipeline.shutdown()
