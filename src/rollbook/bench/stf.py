"""``rollbook bench stf``: the STF's throughput on the standard workload, beside a peer.

Method: record the seeded standard workload (see ``workload``), then time ``apply_batch`` over
its batches on a fresh genesis state (one core, with the garbage-collector policy the runtime
uses: ``rollbook.runtime.tune_gc_for_throughput``). Full
semantics are on: margin checks for takers and makers, fees and rebates, events and receipts.
The state root is committed after every batch, as the node does, and timed separately:
``orders_per_s`` is the STF alone, ``orders_per_s_with_commit`` adds the incremental Merkle
commitment; the final root is reported (identical for identical seeds).

The same operation stream is replayed on the pure-Python peer ``matching-engine`` in its own
virtual environment (it needs Python >= 3.12), in the same run, and the ratio is reported.
Both replays run ``repeats`` times, interleaved (ours, the peer's, ours, ...), and each side's
best round is its figure: on a shared machine a single pair of timings can land in different
moments of contention (measured here: single-run ratios from 0.80 to 1.22 for the same build
within minutes). Every round is reported (``rounds_orders_per_s``, the peer's
``rounds_orders_per_s``), and every round of ours must reach the same root.

Memory: a separate child process rests ``resting_orders`` non-crossing orders from 1,000
accounts and reports its peak RSS, so the figure is not polluted by the rest of the run.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from typing import Any

from rollbook._pure import is_compiled
from rollbook.bench.peers import run_matching_engine_peer
from rollbook.bench.workload import (
    MARKET_ID,
    MID_PRICE_TICKS,
    Workload,
    account_address,
    bench_venue_config,
    record_standard_workload,
    setup_batches,
)
from rollbook.commitment import StateCommitment, apply_and_commit, genesis_commitment
from rollbook.execution import Batch, PlaceOrder, Side, State, apply_batch, genesis_state
from rollbook.execution.events import Fill
from rollbook.runtime import tune_gc_for_throughput

__all__ = ["measure_resting_memory", "run_stf_bench"]

RESTING_ACCOUNTS = 1_000
RESTING_BATCH_TXS = 10_000
RESTING_PRICE_LEVELS = 50_000  # per side: within the 10% oracle band
MEMORY_CHILD_TIMEOUT_S = 900
KIB = 1024
REPEATS_DEFAULT = 3  # interleaved rounds of ours and the peer's; each side's best is reported
REPEATS_MAX = 20


def _time_replay(workload: Workload) -> tuple[float, float, str, int, int]:
    """Seconds in the STF, seconds committing, the final root, fills, resting orders."""
    state = genesis_state(workload.config)
    commitment = genesis_commitment(state)
    for batch in workload.setup:
        _apply(state, commitment, batch)
    tune_gc_for_throughput()  # as the node runs: the loaded state frozen out of the GC's view
    stf_s = 0.0
    commit_s = 0.0
    fills = 0
    for recorded in workload.batches:
        batch = _extending(recorded, commitment)
        started = time.perf_counter()
        receipts = apply_batch(state, batch)
        committed = time.perf_counter()
        commitment.commit(state)
        stf_s += committed - started
        commit_s += time.perf_counter() - committed
        # consumed outside the timer and then dropped, as the node hands receipts to feeds
        fills += sum(isinstance(event, Fill) for receipt in receipts for event in receipt.events)
    return stf_s, commit_s, commitment.root.hex(), fills, len(state.orders)


def _extending(batch: Batch, commitment: StateCommitment) -> Batch:
    """The recorded batch, re-headed onto the current root (recording does not commit)."""
    return Batch(batch.index, batch.timestamp_ms, commitment.root, batch.transactions)


def _apply(state: State, commitment: StateCommitment, batch: Batch) -> None:
    apply_and_commit(state, commitment, _extending(batch, commitment))


def run_stf_bench(seed: int, ops: int, resting_orders: int, with_peer: bool,
                  progress: Any = None, repeats: int = REPEATS_DEFAULT) -> dict[str, Any]:
    if not 1 <= repeats <= REPEATS_MAX:
        raise ValueError(f"repeats={repeats} must be in [1, {REPEATS_MAX}]")
    say = progress or (lambda message: None)
    say(f"recording the standard workload: {ops:,} operations, seed {seed}")
    workload = record_standard_workload(seed, ops)
    replays: list[tuple[float, float, str, int, int]] = []
    peer_rounds: list[dict[str, object]] = []
    for round_number in range(1, repeats + 1):
        say(f"round {round_number}/{repeats}: replaying it through the STF (timed)")
        replays.append(_time_replay(workload))
        if with_peer:
            say(f"round {round_number}/{repeats}: the same stream on the peer matching-engine")
            peer_rounds.append(run_matching_engine_peer(workload.peer_ops))
    roots = {replay[2] for replay in replays}
    assert len(roots) == 1, f"replays of one workload reached different roots: {roots}"
    elapsed, commit_s, root, fills, resting_end = min(replays, key=lambda replay: replay[0])
    orders_per_s = workload.ops / elapsed
    result: dict[str, Any] = {
        "bench": "stf",
        "seed": seed,
        "ops": workload.ops,
        "batches": len(workload.batches),
        "elapsed_s": round(elapsed, 4),
        "orders_per_s": round(orders_per_s, 1),
        "fills": fills,
        "resting_orders_end": resting_end,
        "commit_s": round(commit_s, 4),
        "orders_per_s_with_commit": round(workload.ops / (elapsed + commit_s), 1),
        "state_root": root,
        "repeats": repeats,
        "rounds_orders_per_s": [round(workload.ops / replay[0], 1) for replay in replays],
        "python": sys.version.split()[0],
        "compiled": is_compiled(),  # mypyc-compiled rollbook.execution (see rollbook._pure)
    }
    if with_peer:
        peer = _best_peer_round(peer_rounds)
        result["peers"] = [peer]
        peer_rate = peer.get("orders_per_s")
        if isinstance(peer_rate, (int, float)) and peer_rate > 0:
            result["ratio_to_peer"] = round(orders_per_s / peer_rate, 3)
    if resting_orders:
        say(f"resting {resting_orders:,} orders in a child process for peak RSS")
        result["memory"] = _memory_in_child(resting_orders)
    return result


def _best_peer_round(rounds: list[dict[str, object]]) -> dict[str, object]:
    """The peer's fastest round, with every round's rate; a skipped round if none ran."""
    timed = [peer for peer in rounds if isinstance(peer.get("orders_per_s"), int | float)]
    if not timed:
        return rounds[-1]
    best = dict(max(timed, key=lambda peer: float(peer["orders_per_s"])))  # type: ignore[arg-type]
    best["rounds_orders_per_s"] = [peer["orders_per_s"] for peer in timed]
    return best


def _memory_in_child(resting_orders: int) -> dict[str, Any]:
    code = ("import json,sys; from rollbook.bench.stf import measure_resting_memory; "
            f"print(json.dumps(measure_resting_memory({resting_orders})))")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               timeout=MEMORY_CHILD_TIMEOUT_S, check=False)
    if completed.returncode != 0:
        return {"error": completed.stderr.strip()[-2000:]}
    parsed: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return parsed


def measure_resting_memory(resting_orders: int) -> dict[str, Any]:
    """Rest ``resting_orders`` orders (none cross) and report peak RSS of this process."""
    config = bench_venue_config(open_orders_per_subaccount_max=resting_orders)
    state = genesis_state(config)
    setup = setup_batches(config, RESTING_ACCOUNTS)
    for batch in setup:
        apply_batch(state, batch)
    baseline_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    index = setup[-1].index + 1
    clock = setup[-1].timestamp_ms
    placed = 0
    pending: list[PlaceOrder] = []
    while placed < resting_orders:
        is_buy = placed % 2 == 0
        level = (placed // 2) % RESTING_PRICE_LEVELS + 1
        price = MID_PRICE_TICKS - level if is_buy else MID_PRICE_TICKS + level
        owner = account_address(placed % RESTING_ACCOUNTS)
        pending.append(PlaceOrder(owner, 0, MARKET_ID, Side.BUY if is_buy else Side.SELL,
                                  price, 1 + placed % 7))
        placed += 1
        if len(pending) == RESTING_BATCH_TXS or placed == resting_orders:
            clock += 100
            receipts = apply_batch(state, Batch(index, clock, bytes(32), tuple(pending)))
            assert all(r.ok for r in receipts), next(r.message for r in receipts if not r.ok)
            index += 1
            pending = []
    assert len(state.orders) == resting_orders
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "resting_orders": resting_orders,
        "peak_rss_mib": round(peak_kib / KIB, 1),
        "baseline_rss_mib": round(baseline_kib / KIB, 1),
        "bytes_per_resting_order": round((peak_kib - baseline_kib) * KIB / resting_orders, 1),
        "under_1_gib": peak_kib < KIB * KIB,
    }
