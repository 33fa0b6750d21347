"""``rollbook bench node``: signed orders per second through a whole node, over the real API.

Method:
1. This process starts a node on the embedded EVM with a durable log (a fresh data directory;
   every acknowledgement waits for the WAL's ``fdatasync``) and a gateway on 127.0.0.1
   (ephemeral port) with the per-owner rate limit off (eight traders send thousands of actions
   a second each, which a production limit would refuse).
2. ``TRADERS`` dev accounts deposit on chain; the bench waits until the node credited them.
3. A **separate process** (``python -m rollbook.bench.loadgen``, its own interpreter and GIL)
   pre-signs every action (EIP-712, one key per trader), then drives the node over WebSocket:
   a throughput phase (batches of ``batch_size`` actions, ``window`` messages in flight per
   connection, for ``duration_s``) and fixed-rate phases (one action per message at each of
   ``rates_per_s``, so each ack's latency is measured alone). See ``loadgen`` for the workload:
   limit orders around the mid, half of them crossing, and cancels by client id.
4. The node keeps sequencing, closing batches and publishing them to the embedded chain while
   it is measured; the figures include all of it. The embedded chain executes in the node's
   child process (``rollbook.settlement.embedded``, at a lower priority): its CPU is reported
   per phase (``chain_cpu_s``) beside the node's. py-evm executes a 64 KiB batch in 20 to
   60 ms, so under sustained load ``batches_submitted_on_chain`` trails ``batches_closed``.
   ``--chain none`` runs the same without a settlement layer (deposits credited by the
   operator), which isolates the publisher's share.

Reported: ``orders_per_s`` (actions acknowledged per second in the throughput phase, refused
receipts included: each is a sequenced, durable action), ``ack_p50_ms`` / ``ack_p99_ms`` (that
phase: send of a message to receipt of its acks, queueing included),
``ack_p99_ms_at_fixed_rate`` with ``fixed_rate_per_s`` (5,000/s; every fixed rate's figures are
in ``fixed_rate``), ``cores`` (CPUs this process may use:
the node and the load generator share them), and the node's batches. Each phase also reports
(Linux) the CPU seconds the node and the load generator spent in it, the node's CPU per
acknowledged action and its split by thread (``node_cpu_s_by_thread``: ``MainThread`` is the
gateway's event loop): on a machine shared with other work the rates and latencies depend on
the CPU the node got, the CPU per action much less.

Targets (docs/node.md, 2 cores): >= 20,000 signed orders/s with a durable log; ack p99 <= 10 ms
at 5,000 orders/s. The bench reports what it measures; it does not assert the targets.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eth_account import Account

from rollbook._pure import is_compiled
from rollbook.execution.txs import Deposit
from rollbook.gateway import Gateway, GatewayConfig
from rollbook.node.config import NodeConfig
from rollbook.node.core import Node

__all__ = ["TRADERS", "run_node_bench"]

TRADERS = 8  # embedded-chain dev accounts 1..8 (account 0 is the node's operator)
DEPOSIT_QUANTUMS = 10**13  # 10 million USDC each: margin never binds in the bench
MID_TICKS = 1_000_000  # $100,000 at $0.1 ticks: the local venue's oracle price
SPREAD_TICKS = 50
OPEN_ORDERS_MAX = 200_000  # resting orders accumulate: the per-subaccount limit must not bind
# a CancelAll's worst case (8 + 2 units per open order) must fit an empty batch (docs/node.md)
BATCH_COST_MAX = 8 + 2 * OPEN_ORDERS_MAX
# Settlement.vy's BATCH_DATA_BYTES_MAX: larger batches revert on chain (see docs/node.md)
SETTLEMENT_BATCH_BYTES_MAX = 65_536
REPORTED_RATE_PER_S = 5_000  # the target's fixed rate: its p99 is reported at the top level
CREDIT_TIMEOUT_S = 60.0
LOADGEN_TIMEOUT_S = 600.0


def _config(data_dir: Path, chain: str, recovery_processes: int | None) -> NodeConfig:
    base = NodeConfig.local(data_dir)
    storage = base.storage if recovery_processes is None else dataclasses.replace(
        base.storage, recovery_processes=recovery_processes)
    return base.replace(
        storage=storage,
        venue_limits=(("open_orders_per_subaccount_max", OPEN_ORDERS_MAX),
                      ("batch_cost_max", max(BATCH_COST_MAX, base.venue_config(
                          base.chain.chain_id).batch_cost_max))),
        # the default L1 poll interval (500 ms): each poll reads the contract's heads and logs
        # on the embedded chain, whose process shares the cores with the node (a 100 ms poll
        # cost it 0.1 core at 5,000 orders/s)
        chain=dataclasses.replace(base.chain, url=chain),
        batch=dataclasses.replace(base.batch, bytes_max=SETTLEMENT_BATCH_BYTES_MAX),
    )


async def _bench(duration_s: float, rates_per_s: tuple[int, ...], fixed_duration_s: float,
                 batch_size: int, window: int, connections: int, actions_total: int,
                 chain: str, recovery_processes: int | None, say: Callable[[str], None],
                 ) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    data_dir = Path(tempfile.mkdtemp(prefix="rollbook-bench-node-"))
    node = Node(_config(data_dir, chain, recovery_processes))
    await loop.run_in_executor(None, node.start)
    gateway = Gateway(node, GatewayConfig(port=0, rate_limit=None))
    try:
        await gateway.start()
        say(f"node (chain: {chain}), WAL in {data_dir}; API at {gateway.url}")
        traders = (node.link.chain.dev_accounts[1:1 + TRADERS] if node.link is not None
                   else [Account.from_key(key) for key in _trader_keys()])

        def fund() -> None:
            if node.link is None:  # no chain: the operator credits the deposits directly
                for deposit_id, account in enumerate(traders, start=1):
                    node.submit_system(Deposit(deposit_id, bytes.fromhex(account.address[2:]),
                                               0, DEPOSIT_QUANTUMS)).result()
                return
            with node.chain_lock:
                for account in traders:
                    node.link.token.mint(account.address, DEPOSIT_QUANTUMS, sender=account)
                    node.link.settlement.deposit(0, DEPOSIT_QUANTUMS, sender=account)

        await loop.run_in_executor(None, fund)
        deadline = time.monotonic() + CREDIT_TIMEOUT_S
        owners = [bytes.fromhex(a.address[2:]) for a in traders]
        while any([await node.account(owner) is None for owner in owners]):
            if time.monotonic() > deadline:
                raise TimeoutError("the deposits were never credited")
            await asyncio.sleep(0.1)
        say(f"{TRADERS} traders funded on chain and credited")
        assert node.domain is not None
        plan = {
            "url": gateway.url, "chain_id": node.domain.chain_id,
            "verifying_contract": "0x" + node.domain.verifying_contract.hex(),
            "market_id": 1, "mid_ticks": MID_TICKS, "spread_ticks": SPREAD_TICKS,
            "trader_keys": ["0x" + bytes(a.key).hex() for a in traders],
            "actions_total": actions_total, "batch_size": batch_size, "window": window,
            "connections": connections, "duration_s": duration_s, "rates_per_s": list(rates_per_s),
            "fixed_duration_s": fixed_duration_s,
            "signing_processes": max(1, min(2, os.cpu_count() or 1)),
            "node_pid": os.getpid(),
            "chain_pid": (node.link.chain.child_pid or 0) if node.link is not None else 0,
            "recovery_pids": list(node.recovery_worker_pids),
            # this process's threads by kernel id: the load generator reports each one's CPU
            "node_threads": {str(t.native_id): t.name for t in threading.enumerate()
                             if t.native_id is not None},
        }
        plan_path = data_dir / "loadgen-plan.json"
        plan_path.write_text(json.dumps(plan), encoding="utf-8")
        status_before = await node.status()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "rollbook.bench.loadgen", str(plan_path),
            stdout=subprocess.PIPE, stderr=None)
        stdout, _ = await asyncio.wait_for(process.communicate(), LOADGEN_TIMEOUT_S)
        if process.returncode != 0:
            raise RuntimeError(f"the load generator failed (exit {process.returncode})")
        load = json.loads(stdout.decode().strip().splitlines()[-1])
        status = await node.status()
        wal_bytes = sum(p.stat().st_size for p in (data_dir / "wal").glob("*.wal"))
    finally:
        await gateway.stop()
        await loop.run_in_executor(None, node.stop)
        shutil.rmtree(data_dir, ignore_errors=True)
    throughput, fixed = load["throughput"], load["fixed_rate"]
    headline = next((f for f in fixed if f["offered_rate_per_s"] == REPORTED_RATE_PER_S),
                    fixed[-1])
    return {
        "orders_per_s": throughput["orders_per_s"],
        "ack_p50_ms": throughput["ack_p50_ms"],
        "ack_p99_ms": throughput["ack_p99_ms"],
        "fixed_rate_per_s": headline["offered_rate_per_s"],
        "ack_p50_ms_at_fixed_rate": headline["ack_p50_ms"],
        "ack_p99_ms_at_fixed_rate": headline["ack_p99_ms"],
        "achieved_rate_per_s": headline["orders_per_s"],
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "durable_log": True,
        "throughput": throughput,
        "fixed_rate": fixed,
        "presigned_actions": load["presigned"],
        "presign_s": load["presign_s"],
        "batches_closed": status.batch_index - status_before.batch_index,
        "batches_submitted_on_chain": status.submitted_batch,
        "chain": chain,
        "recovery_processes": node.config.storage.recovery_processes,
        "recovery_threads": (0 if node.config.storage.recovery_processes
                             else node.config.storage.recovery_threads),
        "wal_bytes": wal_bytes,
        "final_root": "0x" + status.root.hex(),
        "python": sys.version.split()[0],
        "compiled": is_compiled(),  # the node's STF: mypyc-compiled rollbook.execution or not
    }


def run_node_bench(duration_s: float = 10.0, rates_per_s: tuple[int, ...] = (1_000, 5_000),
                   fixed_duration_s: float = 5.0, batch_size: int = 64, window: int = 8,
                   connections: int = 2, actions_total: int = 100_000, chain: str = "embedded",
                   say: Callable[[str], None] | None = None, *,
                   recovery_processes: int | None = None) -> dict[str, Any]:
    """``recovery_processes``: the node's signature-recovery worker processes (0: recovery
    threads in the node's process); None: the node's default."""
    return asyncio.run(_bench(duration_s, tuple(rates_per_s), fixed_duration_s, batch_size,
                              window, connections, actions_total, chain, recovery_processes,
                              say or (lambda line: None)))


def _trader_keys() -> list[bytes]:
    """The embedded chain's dev keys 1..TRADERS (funded with gas there; plain keys elsewhere)."""
    from rollbook.settlement.chain import Chain

    return [bytes(a.key) for a in Chain.embedded().dev_accounts[1:1 + TRADERS]]
