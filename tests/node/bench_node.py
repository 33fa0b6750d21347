"""Node benchmarks (a script, not a test): durable signed orders per second, ack latency.

    .venv/bin/python tests/node/bench_node.py [--orders N] [--rate R] [--dir PATH]
        [--chain none|embedded]

- throughput: ``--orders`` pre-signed orders (signing is the client's cost, excluded) from 64
  traders: 80 % resting limit orders around the mark, 20 % crossing IOC orders, submitted by
  ``--clients`` threads through ``submit_many_sync`` in groups of 64 (what the gateway's batch
  route does). The clock runs from the first submission to the last durable ack; every ack is
  checked.
- latency: one asyncio client sends single orders through ``await node.submit`` at a fixed
  ``--rate`` (an open-loop schedule: a late ack does not delay the next send), ``--seconds``
  long; the latency of each order is from its scheduled send time to the ack; p50/p90/p99/max.

Batches close every 200 ms (the default cadence); snapshots every 100 batches; the WAL lives in
``--dir`` (its disk decides the fsync cost: a tmpfs makes it free).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from node_helpers import BTC, PRICE_TICKS, USDC, key, offline_config, owner

from rollbook.execution import Deposit, PlaceOrder, Side, TimeInForce
from rollbook.node import Ack, Node, NodeConfig
from rollbook.node.config import BatchSettings, ChainSettings
from rollbook.runtime import tune_gc_for_throughput
from rollbook.sequencer import SignedTransaction, sign_action

TRADERS = 64
GROUP = 64


def _config(data_dir: Path, chain: str) -> NodeConfig:
    config = offline_config(data_dir, interval_ms=200)
    if chain == "embedded":
        config = dataclasses.replace(config, chain=ChainSettings(url="embedded"))
    return dataclasses.replace(config, batch=BatchSettings(interval_ms=200))


def _orders(node: Node, count: int, first_nonce: int) -> list[SignedTransaction]:
    domain = node.domain
    assert domain is not None
    orders = []
    for i in range(count):
        trader = i % TRADERS
        crossing = i % 5 == 4
        side = Side.BUY if (i // TRADERS) % 2 == 0 else Side.SELL
        offset = (i * 7919) % 200 + 1
        if crossing:
            price = PRICE_TICKS + (300 if side == Side.BUY else -300)
            action = PlaceOrder(owner(trader), 0, BTC, side, price, 1,
                                time_in_force=TimeInForce.IOC)
        else:
            price = PRICE_TICKS - offset if side == Side.BUY else PRICE_TICKS + offset
            action = PlaceOrder(owner(trader), 0, BTC, side, price, 1)
        orders.append(sign_action(key(trader), domain, action, first_nonce + i))
    return orders


def _fund(node: Node) -> None:
    first = node.engine.state.next_deposit_id
    futures = [node.submit_system(Deposit(first + i, owner(i), 0, 10**9 * USDC))
               for i in range(TRADERS)]
    for future in futures:
        assert future.result(30).ok


def throughput(node: Node, count: int, clients: int) -> dict[str, float]:
    orders = _orders(node, count, time.time_ns() // 1_000_000)
    shares = [orders[i::clients] for i in range(clients)]
    failures: list[str] = []

    def client(share: list[SignedTransaction]) -> None:
        for start in range(0, len(share), GROUP):
            for result in node.submit_many_sync(share[start:start + GROUP], timeout_s=120):
                if not isinstance(result, Ack):
                    failures.append(repr(result))

    threads = [threading.Thread(target=client, args=(share,)) for share in shares]
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    assert not failures, failures[:3]
    cpu_s = (cpu_after.ru_utime - cpu_before.ru_utime) + (
        cpu_after.ru_stime - cpu_before.ru_stime)
    # CPU per order is the figure that survives a noisy shared machine; cores_used < 2 means
    # the process could not get both cores
    return {"orders": count, "seconds": elapsed, "orders_per_s": count / elapsed,
            "cpu_us_per_order": cpu_s / count * 1e6, "cores_used": cpu_s / elapsed}


def latency(node: Node, rate: float, seconds: float) -> dict[str, float]:
    count = int(rate * seconds)
    orders = _orders(node, count, time.time_ns() // 1_000_000 + 10_000_000)

    async def run() -> list[float]:
        loop = asyncio.get_running_loop()
        latencies: list[float] = []
        start = loop.time() + 0.05

        async def one(order: SignedTransaction, due: float) -> None:
            await asyncio.sleep(max(0.0, due - loop.time()))
            await node.submit(order)
            latencies.append(loop.time() - due)

        await asyncio.gather(*(one(order, start + i / rate) for i, order in enumerate(orders)))
        return latencies

    latencies = sorted(asyncio.run(run()))
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1_000  # noqa: E731
    return {"orders": count, "rate_per_s": rate, "p50_ms": pick(0.50), "p90_ms": pick(0.90),
            "p99_ms": pick(0.99), "max_ms": latencies[-1] * 1_000,
            "mean_ms": statistics.fmean(latencies) * 1_000}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=50_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rate", type=float, default=1_000.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--chain", choices=("none", "embedded"), default="none")
    args = parser.parse_args()
    data_dir = args.dir or Path(tempfile.mkdtemp(prefix="rollbook-bench-node-"))
    with Node(_config(data_dir, args.chain)) as node:
        _fund(node)
        tune_gc_for_throughput()
        print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        print("throughput:", throughput(node, args.orders, args.clients), flush=True)
        print("latency:", latency(node, args.rate, args.seconds), flush=True)
        status = node.status_sync()
        print(f"batches: {status.batch_index}, durable sequence {status.durable_sequence}, "
              f"WAL syncs {node._wal.syncs if node._wal else 0}, data in {data_dir}")


if __name__ == "__main__":
    main()
