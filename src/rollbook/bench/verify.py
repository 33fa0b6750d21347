"""``rollbook bench verify``: how fast the verifier replays a chain of batches, against the
signature-recovery ceiling measured on the same cores in the same run.

The chain is recorded in-process first: ``accounts`` keys sign orders (60 % limit orders around
the mid, 10 % crossing IOC and market orders, 20 % cancels, 10 % modifies), and an honest
sequencer executes them live (``BatchExecution``, as the node does: admission, the STF, one
root per batch), cutting a batch every ``batch_entries`` signed actions plus an oracle update
and a funding tick. The batches are kept as the verifier receives them from the chain:
``Submission`` records with the ``submit_batch`` calldata (batch bytes, data hash, roots,
counters) and the L1 book of deposits.

Measured, interleaved ``repeats`` times (best of each), with the garbage-collector policy
``rollbook verify`` sets (``rollbook.runtime.tune_gc_for_throughput``):
- ``txs_per_s``: signed transactions verified per second by the verifier's own path
  (``check_batch`` from a fresh genesis replica: keccak of the data, strict decoding, the L1
  checks, ``replay_batch`` with signatures recovered on a ``RecoveryPipeline`` of ``processes``
  worker processes, as ``rollbook verify`` runs it, or of ``threads`` threads with
  ``processes`` 0; the next batches' recovery (``PREFETCH_AHEAD_BATCHES``) started while this
  one executes, counters and root);
- ``sig_limit_per_s``: the faster of two ways to do nothing but recover the same signatures
  (the EIP-712 digest and coincurve recovery, the verifier's recovery path alone):
  ``recover_signers`` on a thread pool of ``threads`` (``sig_limit_threads_per_s``), and
  ``RecoveryProcesses`` with ``processes`` workers (``sig_limit_processes_per_s``);
- ``ratio_to_limit`` = the first over the second.

What bounds the ratio: the verifier does everything the limit does plus decoding, admission,
the STF and the root; with 2 cores it is at most R / (R + D + S) where R is the CPU time of a
recovery and D + S that of decoding and executing one transaction (``breakdown_us_per_tx``
reports each, measured single-threaded), and only if both cores stay busy. With worker
processes (the default, as ``rollbook verify`` runs) this process decodes, packs the EIP-712
struct words and executes while the workers hash the digests and do the curve work; nothing
waits on another interpreter's GIL. With threads (``--processes 0``) each coincurve call must
take the GIL back from a main thread that never yields it, which CPython allows once per switch
interval, so the ``RecoveryPipeline`` lowers that interval while it is open (see
``rollbook.verifier.pipeline``); on the 2-core machine that path reached 0.61-0.67 of the limit
with both cores free.
The machine's own parallelism is reported too (``parallelism``: CPU time over wall time of two
threads of GIL-free work): on a busy shared machine both figures drop together, and with one
core free the ratio is R / (R + D + S) as well, so judge changes by ``breakdown_us_per_tx``.
"""

from __future__ import annotations

import os
import platform
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import coincurve

from rollbook._pure import is_compiled
from rollbook.commitment.batches import genesis_commitment
from rollbook.execution.config import VenueConfig, default_venue_config
from rollbook.execution.crypto import address_of_public_key, keccak256, sign_digest
from rollbook.execution.oracle import oracle_message_digest
from rollbook.execution.state import genesis_state
from rollbook.execution.txs import (
    CancelOrder,
    Deposit,
    FundingTick,
    ModifyOrder,
    OraclePrice,
    OracleUpdate,
    OrderType,
    PlaceOrder,
    Side,
    TimeInForce,
)
from rollbook.runtime import tune_gc_for_throughput
from rollbook.sequencer.admission import AdmissionState
from rollbook.sequencer.batch_data import (
    BatchData,
    BatchExecution,
    Entry,
    SignedEntry,
    decode_batch_data,
    encode_batch_data,
    signed_entry,
    system_entry,
)
from rollbook.sequencer.eip712 import Eip712Domain
from rollbook.sequencer.recovery_processes import PendingRecovery, RecoveryProcesses
from rollbook.sequencer.signatures import (
    RECOVERY_CHUNK_MAX,
    SignedTransaction,
    recover_signer,
    recover_signers,
    sign_action,
)
from rollbook.verifier.calldata import SubmitBatchCall
from rollbook.verifier.checks import CheckRules, L1Book, L1Deposit, Submission, check_batch
from rollbook.verifier.pipeline import PREFETCH_AHEAD_BATCHES, RecoveryPipeline
from rollbook.verifier.replica import Replica

__all__ = ["RecordedChain", "record_chain", "run_verify_bench"]

BENCH_CHAIN_ID = 31337
BENCH_CONTRACT = bytes.fromhex("00000000000000000000000000000000bE4C11f1")
BENCH_ORACLE_KEY = (0xB3_0C_1E).to_bytes(32, "big")
GENESIS_MS = 1_700_000_000_000
BATCH_INTERVAL_MS = 200  # the node's default cadence
MID_TICKS = 1_000_000  # $100,000 at $0.1 ticks
INDEX_PRICE_QUANTUMS = 100_000 * 10**6
ACCOUNT_COLLATERAL_QUANTUMS = 10**14  # 100M USDC: margin never binds in this workload
PRICE_SIGMA_TICKS = 20
CROSS_TICKS = 60
ORDER_LOTS_MAX = 100
OPEN_ORDERS_MAX = 10_000
SHARE_LIMIT, SHARE_CROSS, SHARE_CANCEL = 0.60, 0.10, 0.20  # the rest: modifies
L1_BLOCK_TIME_S = 2_000_000_000  # every batch is stamped before it: the time check passes
FORCED_DEADLINE_S = 86_400
PARALLELISM_PROBE_BYTES = 1 << 20
PARALLELISM_PROBE_ROUNDS = 40
LIMIT_CHUNKS_IN_FLIGHT_PER_WORKER = 4


@dataclass(frozen=True, slots=True)
class RecordedChain:
    """What the verifier would read from a chain: the venue, the submissions, the deposits."""

    venue: VenueConfig
    domain: Eip712Domain
    submissions: tuple[Submission, ...]
    book: L1Book
    signed: int  # signed transactions in all batches
    final_root: bytes


def _bench_venue() -> VenueConfig:
    oracle = address_of_public_key(
        coincurve.PrivateKey(BENCH_ORACLE_KEY).public_key.format(compressed=False))
    return replace(default_venue_config((oracle,), chain_id=BENCH_CHAIN_ID),
                   open_orders_per_subaccount_max=OPEN_ORDERS_MAX, batch_cost_max=10**9)


def _oracle(timestamp_ms: int) -> OracleUpdate:
    prices = (OraclePrice(1, INDEX_PRICE_QUANTUMS),)
    digest = oracle_message_digest(BENCH_CHAIN_ID, timestamp_ms, prices)
    return OracleUpdate(timestamp_ms, prices, (sign_digest(BENCH_ORACLE_KEY, digest),))


def record_chain(seed: int, transactions: int, accounts: int = 64,
                 batch_entries: int = 450) -> RecordedChain:
    """Record ``transactions`` signed actions in batches of ``batch_entries`` (see module doc);
    deterministic for a seed."""
    rng = random.Random(seed)
    venue = _bench_venue()
    domain = Eip712Domain(BENCH_CHAIN_ID, BENCH_CONTRACT)
    keys = [keccak256(b"rollbook/bench-verify/%d" % number) for number in range(accounts)]
    owners = [address_of_public_key(coincurve.PrivateKey(key).public_key.format(
        compressed=False)) for key in keys]
    signer_of = {owner: number for number, owner in enumerate(owners)}
    state = genesis_state(venue)
    commitment = genesis_commitment(state)
    admission = AdmissionState()
    book = L1Book()
    submissions: list[Submission] = []
    nonce_ms = GENESIS_MS
    clock_ms = GENESIS_MS
    live: list[int] = []

    def close(entries: list[Entry], execution: BatchExecution, previous: bytes) -> None:
        root = commitment.commit(state)
        data = encode_batch_data(BatchData(execution.index, execution.timestamp_ms, previous,
                                           tuple(entries)))
        call = SubmitBatchCall(execution.index, previous, root, keccak256(data),
                               state.next_deposit_id - 1, state.next_forced_id - 1, data)
        submissions.append(Submission(
            call.batch_index, call.prev_root, call.new_root, call.data_hash, call.deposit_count,
            call.forced_count, len(data), execution.index, 0, L1_BLOCK_TIME_S,
            keccak256(b"tx %d" % execution.index), call))

    # batch 1: the deposits (L1 inputs, known to the book) and the first price
    clock_ms += BATCH_INTERVAL_MS
    execution = BatchExecution(state, admission, domain, 1, clock_ms)
    entries: list[Entry] = []
    for number, owner in enumerate(owners):
        deposit = Deposit(number + 1, owner, 0, ACCOUNT_COLLATERAL_QUANTUMS)
        book.add_deposit(L1Deposit(number + 1, owner, 0, ACCOUNT_COLLATERAL_QUANTUMS))
        entries.append(system_entry(deposit))
    entries.append(system_entry(_oracle(clock_ms)))
    for entry in entries:
        execution.execute(entry)
    close(entries, execution, genesis_commitment(genesis_state(venue)).root)

    signed_total = 0
    while signed_total < transactions:
        previous = commitment.root
        clock_ms += BATCH_INTERVAL_MS
        execution = BatchExecution(state, admission, domain, state.batch_index + 1, clock_ms)
        entries = [system_entry(_oracle(clock_ms)), system_entry(FundingTick())]
        for entry in entries:
            execution.execute(entry)
        count = min(batch_entries, transactions - signed_total)
        for _ in range(count):
            action = _next_action(rng, owners[rng.randrange(accounts)], state.orders, live)
            who = signer_of[action.owner]  # a cancel or modify is signed by the order's owner
            nonce_ms += 1
            entry = signed_entry(sign_action(keys[who], domain, action, nonce_ms))
            execution.execute(entry)
            entries.append(entry)
            if isinstance(action, PlaceOrder | ModifyOrder):
                live.append(state.next_order_id - 1)
        signed_total += count
        close(entries, execution, previous)
    return RecordedChain(venue, domain, tuple(submissions), book, signed_total,
                         commitment.root)


def _next_action(rng: random.Random, owner: bytes, orders: Any,
                 live: list[int]) -> PlaceOrder | CancelOrder | ModifyOrder:
    draw = rng.random()
    if draw < SHARE_LIMIT:
        offset = round(rng.gauss(0.0, PRICE_SIGMA_TICKS))
        is_buy = offset < 0 or (offset == 0 and rng.random() < 0.5)
        return PlaceOrder(owner, 0, 1, Side.BUY if is_buy else Side.SELL, MID_TICKS + offset,
                          rng.randint(1, ORDER_LOTS_MAX))
    if draw < SHARE_LIMIT + SHARE_CROSS:
        is_buy = rng.random() < 0.5
        return PlaceOrder(owner, 0, 1, Side.BUY if is_buy else Side.SELL,
                          MID_TICKS + (CROSS_TICKS if is_buy else -CROSS_TICKS),
                          rng.randint(1, ORDER_LOTS_MAX),
                          order_type=OrderType.MARKET if rng.random() < 0.5 else OrderType.LIMIT,
                          time_in_force=TimeInForce.IOC)
    # cancels and modifies act on a live order of anyone's; its owner signs
    while live:
        slot = rng.randrange(len(live))
        order = orders.get(live[slot])
        if order is None:
            live[slot] = live[-1]
            live.pop()
            continue
        owner = order.subaccount.owner
        if draw < SHARE_LIMIT + SHARE_CROSS + SHARE_CANCEL:
            return CancelOrder(owner, 0, order.order_id)
        return ModifyOrder(owner, 0, order.order_id, order.price_ticks,
                           max(1, order.size_lots - 1))
    return PlaceOrder(owner, 0, 1, Side.BUY, MID_TICKS - 1, 1)


def _verify_once(recorded: RecordedChain, threads: int,
                 processes: int) -> tuple[float, int, int]:
    """Seconds to verify every batch from genesis; pipeline hits and misses."""
    state = genesis_state(recorded.venue)
    replica = Replica(state, genesis_commitment(state), AdmissionState(), recorded.domain)
    rules = CheckRules(FORCED_DEADLINE_S)
    book = L1Book.restore(recorded.book.snapshot())
    pipeline = RecoveryPipeline(recorded.domain, threads, processes=processes)
    try:
        pipeline.wait_ready()  # the workers' start is not the verifier's speed
        submissions = recorded.submissions
        start = time.perf_counter()
        ahead: deque[Submission] = deque()  # decoded, their recovery started (as the verifier)
        read = 0
        for position in range(len(submissions)):
            while read < len(submissions) and read <= position + PREFETCH_AHEAD_BATCHES:
                upcoming = submissions[read].with_decoded()  # decoding is timed work
                if read > position and isinstance(upcoming.decoded, BatchData):
                    pipeline.prefetch(upcoming.decoded)  # recovered while earlier ones execute
                ahead.append(upcoming)
                read += 1
            outcome = check_batch(replica, ahead.popleft(), book, rules, pipeline)
            if outcome.divergence is not None:
                raise AssertionError(f"the recorded chain does not verify: {outcome.divergence}")
        elapsed = time.perf_counter() - start
    finally:
        pipeline.shutdown()
    assert replica.root == recorded.final_root
    return elapsed, pipeline.hits, pipeline.misses


def _limit_once(recorded: RecordedChain, signed: list[SignedTransaction], threads: int) -> float:
    with ThreadPoolExecutor(max_workers=threads) as pool:
        start = time.perf_counter()
        results = recover_signers(recorded.domain, signed, pool)
        elapsed = time.perf_counter() - start
    assert len(results) == len(signed)
    return elapsed


def _limit_processes_once(recorded: RecordedChain, signed: list[SignedTransaction],
                          processes: int) -> float:
    """Seconds for ``RecoveryProcesses`` to recover every signature, a few chunks in flight
    per worker (as the verifier's pipeline keeps them)."""
    workers = RecoveryProcesses(processes)
    try:
        workers.wait_ready()
        in_flight_max = LIMIT_CHUNKS_IN_FLIGHT_PER_WORKER * processes
        pending: deque[PendingRecovery] = deque()
        recovered = 0
        start = time.perf_counter()
        for first in range(0, len(signed), RECOVERY_CHUNK_MAX):
            if len(pending) >= in_flight_max:
                recovered += len(pending.popleft().result())
            pending.append(workers.start(recorded.domain, signed[first:first + RECOVERY_CHUNK_MAX]))
        while pending:
            recovered += len(pending.popleft().result())
        elapsed = time.perf_counter() - start
    finally:
        workers.close()
    assert recovered == len(signed)
    return elapsed


def _breakdown(recorded: RecordedChain, signed_count: int) -> dict[str, float]:
    """Single-threaded CPU time per signed transaction of each part of the verification."""
    state = genesis_state(recorded.venue)
    commitment = genesis_commitment(state)
    admission = AdmissionState()
    decode_s = recover_s = execute_s = commit_s = 0.0
    for submission in recorded.submissions:
        assert submission.call is not None
        start = time.perf_counter()
        keccak256(submission.call.data)
        batch = decode_batch_data(submission.call.data)
        decoded = time.perf_counter()
        verified = {position: recover_signer(recorded.domain, entry.signed)
                    for position, entry in enumerate(batch.entries)
                    if isinstance(entry, SignedEntry)}
        recovered = time.perf_counter()
        execution = BatchExecution(state, admission, recorded.domain, batch.index,
                                   batch.timestamp_ms)
        for position, entry in enumerate(batch.entries):
            execution.execute(entry, verified.get(position))
        executed = time.perf_counter()
        commitment.commit(state)
        committed = time.perf_counter()
        decode_s += decoded - start
        recover_s += recovered - decoded
        execute_s += executed - recovered
        commit_s += committed - executed
    scale = 1e6 / signed_count
    return {"decode": round(decode_s * scale, 2), "recover": round(recover_s * scale, 2),
            "admit_and_execute": round(execute_s * scale, 2),
            "commit": round(commit_s * scale, 2)}


def _parallelism() -> float:
    """CPU time over wall time of two threads hashing (hashlib releases the GIL on large
    inputs): about 2.0 on an idle 2-core machine, 1.0 when the second core is busy."""
    import hashlib

    payload = bytes(PARALLELISM_PROBE_BYTES)
    cpu = [0.0, 0.0]

    def work(slot: int) -> None:
        start = time.thread_time()
        for _ in range(PARALLELISM_PROBE_ROUNDS):
            hashlib.sha256(payload).digest()
        cpu[slot] = time.thread_time() - start

    threads = [threading.Thread(target=work, args=(slot,)) for slot in range(2)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    return round(sum(cpu) / wall, 2) if wall > 0 else 0.0


def run_verify_bench(seed: int = 1, transactions: int = 20_000, batch_entries: int = 450,
                     threads: int = 2, repeats: int = 3, processes: int = 2,
                     say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Record, then measure (see the module docstring); a JSON-ready dict."""
    progress = say or (lambda message: None)
    progress(f"recording {transactions:,} signed transactions in batches of {batch_entries} "
             "through an honest sequencer ...")
    start = time.perf_counter()
    recorded = record_chain(seed, transactions, batch_entries=batch_entries)
    record_s = time.perf_counter() - start
    signed = [entry.signed for submission in recorded.submissions if submission.call
              for entry in decode_batch_data(submission.call.data).entries
              if isinstance(entry, SignedEntry)]
    assert len(signed) == recorded.signed
    tune_gc_for_throughput()  # the policy `rollbook verify` runs with (verifier.command)
    progress(f"recorded {len(recorded.submissions)} batches in {record_s:.1f} s; measuring "
             f"({repeats} interleaved rounds, "
             + (f"{processes} recovery processes" if processes else f"{threads} recovery threads")
             + ") ...")
    verify_s: list[float] = []
    limit_s: list[float] = []
    limit_processes_s: list[float] = []
    hits = misses = 0
    parallelism = []
    for round_number in range(repeats):
        parallelism.append(_parallelism())
        elapsed, hits, misses = _verify_once(recorded, threads, processes)
        verify_s.append(elapsed)
        limit_s.append(_limit_once(recorded, signed, threads))
        if processes:
            limit_processes_s.append(_limit_processes_once(recorded, signed, processes))
        fastest_s = min([limit_s[-1], *limit_processes_s[-1:]])
        progress(f"  round {round_number + 1}: verify {len(signed) / elapsed:,.0f} tx/s, "
                 f"recovery limit {len(signed) / fastest_s:,.0f}/s")
    breakdown = _breakdown(recorded, len(signed))
    txs_per_s = len(signed) / min(verify_s)
    limit_threads_per_s = len(signed) / min(limit_s)
    limit_processes_per_s = len(signed) / min(limit_processes_s) if limit_processes_s else 0.0
    limit_per_s = max(limit_threads_per_s, limit_processes_per_s)
    single_s = _limit_once(recorded, signed, 1)
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "seed": seed,
        "transactions": len(signed),
        "batches": len(recorded.submissions),
        "batch_entries": batch_entries,
        "threads": threads,
        "processes": processes,
        "cores": affinity or os.cpu_count(),
        "python": platform.python_version(),
        "compiled": is_compiled(),  # mypyc-compiled rollbook.execution (see rollbook._pure)
        "txs_per_s": round(txs_per_s),
        "sig_limit_per_s": round(limit_per_s),
        "sig_limit_threads_per_s": round(limit_threads_per_s),
        "sig_limit_processes_per_s": round(limit_processes_per_s) if processes else None,
        "ratio_to_limit": round(txs_per_s / limit_per_s, 3),
        "sig_single_thread_per_s": round(len(signed) / single_s),
        "verify_rounds_txs_per_s": [round(len(signed) / s) for s in verify_s],
        "limit_rounds_per_s": [round(len(signed) / s) for s in limit_s],
        "limit_processes_rounds_per_s": [round(len(signed) / s) for s in limit_processes_s],
        "parallelism": parallelism,
        "prefetch_hits": hits,
        "prefetch_misses": misses,
        "breakdown_us_per_tx": breakdown,
        "record_s": round(record_s, 2),
        "final_root": "0x" + recorded.final_root.hex(),
    }
