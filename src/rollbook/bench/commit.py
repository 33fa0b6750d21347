"""``rollbook bench commit``: the state root's speed and memory, and the settlement gas.

Three parts, in one run:

- the venue's state commitment (``measure_state_commitment``): a state of ``accounts``
  funded subaccounts is built through the STF (deposits) and committed once; then, repeated
  ``ROOT_UPDATE_REPEATS`` times, a batch deposits into ``touched`` distinct random accounts
  (applied outside the timer) and ``StateCommitment.commit`` is timed: re-encoding the touched
  subaccount leaves (ABI, 288 bytes each), hashing them and rehashing every dirty path.
  ``root_update_ms`` is the median: the issue's target (<= 100 ms for 10,000 of 1,000,000);
- the bare tree (``measure_commitment``), for the tree's own share;
- the settlement contract's gas (``rollbook.settlement.gas``) on the embedded EVM.

The bare-tree method: build a tree of ``BENCH_DEPTH`` holding ``leaves`` dense leaves (seeded random
``PAYLOAD_BYTES``-byte payloads: one SHA-256 block), timed as
``build_s``. Then time ``ROOT_UPDATE_REPEATS`` batches, each writing fresh payloads to
``touched`` distinct random leaves in one ``set_leaves`` call (leaf hashing, checks and every
dirty path up to the root included); ``root_update_ms`` is their median and
``root_update_ms_min`` the fastest. ``leaf_updates_per_s`` times ``touched`` single-leaf
``set_leaves`` calls in a loop (each rehashes a whole path: 1 + depth hashes).

Both use the tree's C hashing loops where they are built (``native_hashing`` says whether they
were; see ``rollbook.commitment.merkle``); with them, the bare tree is measured once more on
the pure-Python reference loops (``tree_root_update_ms_reference``). For context it reports the
rate of hashlib's SHA-256 on a 64-byte node preimage called from Python on this machine and the
time the batch's hashes would take at that rate (``root_update_hash_floor_ms``): the floor of
the pure-Python loops, which the C loops go below.

Randomness is ``random.Random(seed)``, outside the STF; the garbage collector is left on (as in
the node) and run once before each timed section. Target (settlement issue): ``root_update_ms``
<= 100 for 10,000 touched leaves among 1,000,000.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import random
import statistics
import sys
import time
from typing import Any

from rollbook.commitment.batches import genesis_commitment
from rollbook.commitment.merkle import HASH_BYTES, NATIVE_AVAILABLE, MerkleTree
from rollbook.execution import (
    Deposit,
    VenueConfig,
    apply_transaction,
    default_venue_config,
    genesis_state,
)

__all__ = [
    "BENCH_DEPTH",
    "PAYLOAD_BYTES",
    "ROOT_UPDATE_REPEATS",
    "measure_commitment",
    "measure_state_commitment",
    "run_commit_bench",
]

BENCH_DEPTH = 32  # the account tree's expected depth: 2**32 account slots
PAYLOAD_BYTES = 32  # with the 0x00 prefix and padding: one 64-byte SHA-256 block
ROOT_UPDATE_REPEATS = 5  # odd: the median is one of the runs
HASH_SAMPLES = 200_000
MS_PER_S = 1_000
NODE_PREIMAGE = bytes(2 * HASH_BYTES)
DEPOSIT_QUANTUMS = 1_000 * 10**6
ORACLE_PLACEHOLDER = b"\x0a" * 20  # the bench never prices anything: no oracle is needed


def measure_commitment(leaves: int = 1_000_000, touched: int = 10_000,
                       seed: int = 1, native: bool | None = None) -> dict[str, float | int]:
    """Build, batch-update and single-update figures for a tree of ``leaves`` dense leaves.

    Returns ``depth``, ``leaves``, ``touched``, ``build_s``, ``storage_bytes``,
    ``root_update_ms`` (median of the batches), ``root_update_ms_min``,
    ``hashes_per_root_update`` (leaf + node hashes, the median over the batches),
    ``leaf_updates_per_s``, ``node_hashes_per_s`` and ``root_update_hash_floor_ms``.
    """
    if not 1 <= leaves <= 1 << BENCH_DEPTH:
        raise ValueError(f"leaves={leaves} must be in [1, 2**{BENCH_DEPTH}]")
    if not 1 <= touched <= leaves:
        raise ValueError(f"touched={touched} must be in [1, leaves={leaves}]")
    rng = random.Random(seed)
    tree = MerkleTree(BENCH_DEPTH, native=native)
    build_s = _time_build(tree, rng, leaves)
    root_update_ms, root_update_ms_min, hashes = _time_root_updates(tree, rng, leaves, touched)
    leaf_updates_per_s = _time_single_updates(tree, rng, leaves, touched)
    node_hashes_per_s = _node_hash_rate()
    return {
        "depth": BENCH_DEPTH,
        "leaves": leaves,
        "touched": touched,
        "build_s": build_s,
        "storage_bytes": tree.storage_bytes,
        "root_update_ms": root_update_ms,
        "root_update_ms_min": root_update_ms_min,
        "hashes_per_root_update": hashes,
        "leaf_updates_per_s": leaf_updates_per_s,
        "node_hashes_per_s": node_hashes_per_s,
        "root_update_hash_floor_ms": hashes / node_hashes_per_s * MS_PER_S,
    }


def _payloads(rng: random.Random, indices: list[int]) -> dict[int, bytes | None]:
    return {index: rng.randbytes(PAYLOAD_BYTES) for index in indices}


def _time_build(tree: MerkleTree, rng: random.Random, leaves: int) -> float:
    initial = _payloads(rng, list(range(leaves)))
    gc.collect()
    started = time.perf_counter()
    tree.set_leaves(initial)
    return time.perf_counter() - started


def _time_root_updates(tree: MerkleTree, rng: random.Random, leaves: int,
                       touched: int) -> tuple[float, float, int]:
    """(median ms, fastest ms, median hash count) over the repeated batches."""
    elapsed_ms: list[float] = []
    hashes: list[int] = []
    for _ in range(ROOT_UPDATE_REPEATS):
        batch = _payloads(rng, rng.sample(range(leaves), touched))
        gc.collect()
        started = time.perf_counter()
        hashes.append(tree.set_leaves(batch))
        elapsed_ms.append((time.perf_counter() - started) * MS_PER_S)
    return statistics.median(elapsed_ms), min(elapsed_ms), int(statistics.median(hashes))


def _time_single_updates(tree: MerkleTree, rng: random.Random, leaves: int,
                         updates: int) -> float:
    singles = [{index: rng.randbytes(PAYLOAD_BYTES)}
               for index in rng.sample(range(leaves), updates)]
    set_leaves = tree.set_leaves
    gc.collect()
    started = time.perf_counter()
    for single in singles:
        set_leaves(single)
    return updates / (time.perf_counter() - started)


def _node_hash_rate() -> float:
    sha256 = hashlib.sha256
    preimage = NODE_PREIMAGE
    started = time.perf_counter()
    for _ in range(HASH_SAMPLES):
        sha256(preimage).digest()
    return HASH_SAMPLES / (time.perf_counter() - started)


def _account_owner(number: int) -> bytes:
    return (number + 1).to_bytes(20, "big")


def measure_state_commitment(accounts: int = 1_000_000, touched: int = 10_000,
                             seed: int = 1) -> dict[str, float | int]:
    """Commit figures for a venue state of ``accounts`` funded subaccounts (see module doc)."""
    if not 1 <= touched <= accounts:
        raise ValueError(f"touched={touched} must be in [1, accounts={accounts}]")
    rng = random.Random(seed)
    config = default_venue_config((ORACLE_PLACEHOLDER,))
    state = genesis_state(_with_room_for(config, accounts + 1))
    deposit_id = 1
    started = time.perf_counter()
    for number in range(accounts):
        receipt = apply_transaction(state, Deposit(deposit_id, _account_owner(number), 0,
                                                   DEPOSIT_QUANTUMS))
        assert receipt.ok, receipt.message
        deposit_id += 1
    fill_s = time.perf_counter() - started
    gc.collect()
    started = time.perf_counter()
    commitment = genesis_commitment(state)
    build_s = time.perf_counter() - started
    elapsed_ms: list[float] = []
    for _ in range(ROOT_UPDATE_REPEATS):
        for number in rng.sample(range(accounts), touched):
            apply_transaction(state, Deposit(deposit_id, _account_owner(number), 0, 1))
            deposit_id += 1
        gc.collect()
        started = time.perf_counter()
        commitment.commit(state)
        elapsed_ms.append((time.perf_counter() - started) * MS_PER_S)
    return {
        "state_accounts": accounts,
        "state_touched": touched,
        "state_fill_s": fill_s,
        "state_build_s": build_s,
        "state_leaves": commitment.leaf_count,
        "root_update_ms": statistics.median(elapsed_ms),
        "root_update_ms_min": min(elapsed_ms),
    }


def _with_room_for(config: VenueConfig, subaccounts: int) -> VenueConfig:
    """The venue config with room for ``subaccounts`` (the default cap is 2**24)."""
    return dataclasses.replace(config, subaccounts_max=max(config.subaccounts_max, subaccounts))


def run_commit_bench(accounts: int, touched: int, seed: int, with_gas: bool,
                     progress: Any = None) -> dict[str, Any]:
    say = progress or (lambda message: None)
    say(f"building a state of {accounts:,} funded accounts and committing it")
    state_figures = measure_state_commitment(accounts, touched, seed)
    say(f"bare tree: {accounts:,} leaves, {touched:,} touched per batch")
    tree_figures = measure_commitment(accounts, touched, seed)
    if NATIVE_AVAILABLE:
        say("bare tree again with the pure-Python hashing loops (the reference)")
        reference = measure_commitment(accounts, touched, seed, native=False)
    result: dict[str, Any] = {
        "bench": "commit",
        "seed": seed,
        **state_figures,
        "leaf_updates_per_s": tree_figures["leaf_updates_per_s"],
        "tree_root_update_ms": tree_figures["root_update_ms"],
        "tree_build_s": tree_figures["build_s"],
        "tree_storage_bytes": tree_figures["storage_bytes"],
        "hashes_per_root_update": tree_figures["hashes_per_root_update"],
        "node_hashes_per_s": tree_figures["node_hashes_per_s"],
        "root_update_hash_floor_ms": tree_figures["root_update_hash_floor_ms"],
        "depth": BENCH_DEPTH,
        "python": sys.version.split()[0],
        "native_hashing": NATIVE_AVAILABLE,
    }
    if NATIVE_AVAILABLE:
        result["tree_root_update_ms_reference"] = reference["root_update_ms"]
    if with_gas:
        say("settlement gas on the embedded EVM (compiles the contracts once)")
        from rollbook.settlement.gas import measure_settlement_gas

        result.update(measure_settlement_gas())
    return result
