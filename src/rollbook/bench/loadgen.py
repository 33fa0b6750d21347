"""The load generator of ``rollbook bench node``: a separate process that drives a node's API.

Run as ``python -m rollbook.bench.loadgen PLAN.json``; prints one JSON object on stdout and
progress on stderr. It never shares a process (or a GIL) with the node it measures.

Method:
1. Pre-sign every action before any clock starts (EIP-712, the node's domain; one key per
   trader; nonces ``t0 + i`` per key, strictly increasing), and pre-encode each WebSocket
   message, so that the timed phases only send bytes and read acks.
2. Throughput phase: ``connections`` WebSockets, each keeping ``window`` batch messages of
   ``batch_size`` actions in flight, for ``duration_s`` (or until the pre-signed actions run
   out). An action's ack latency is from the send of its message to the receipt of the
   message's results. ``orders_per_s`` = actions acknowledged / elapsed seconds.
3. Fixed-rate phases, one per rate of ``rates_per_s``: one WebSocket, one action per message,
   sent on that schedule (bursts every ``TICK_S`` of what is due) for ``fixed_duration_s``;
   each action's ack latency is measured alone (below saturation the p99 is the node's, not a
   queue's; at or above it, the queue's growth shows in the figure).

Each phase also reports the CPU seconds this process and the node (``node_pid``, read from
Linux's ``/proc``; absent elsewhere) spent in it, the node's per thread (``node_threads``,
kernel thread id -> name, given by the bench), the embedded chain's process
(``chain_pid``: py-evm executing the published batches, the node's child) and the node's
signature-recovery worker processes (``recovery_pids``: ``recovery_cpu_s``, and
``node_and_recovery_cpu_us_per_action``, the node's cost per action with the curve work that
left its process).

Workload (per trader, alternating sides): limit GTC orders of 1-10 lots at the mid ± up to
``spread_ticks`` (about half of them cross and fill), and every ``cancel_every``-th action a
cancel by client id of that trader's order two places earlier (which may have filled: a refused
receipt, still a sequenced, acknowledged action). Deterministic for a seed.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec

from rollbook.execution.txs import CancelOrderByClientId, PlaceOrder, Side, TimeInForce
from rollbook.gateway.actions import from_signed
from rollbook.sequencer.eip712 import Eip712Domain, UserAction
from rollbook.sequencer.signatures import sign_action

__all__ = ["LoadPlan", "main", "percentile", "presign"]

TICK_S = 0.001  # the fixed-rate schedule's granularity
WS_MESSAGE_BYTES_MAX = 16 << 20
DRAIN_TIMEOUT_S = 30.0  # waiting for the last acks after a phase
PAUSE_S = 1.0  # between phases: the node's queues empty


@dataclass(frozen=True, slots=True)
class LoadPlan:
    url: str
    chain_id: int
    verifying_contract: str  # 0x hex
    market_id: int
    mid_ticks: int
    spread_ticks: int
    trader_keys: tuple[str, ...]  # 0x hex private keys (funded on the venue)
    actions_total: int  # pre-signed for the throughput phase
    batch_size: int
    window: int
    connections: int
    duration_s: float
    rates_per_s: tuple[int, ...]
    fixed_duration_s: float
    cancel_every: int = 4
    seed: int = 1
    signing_processes: int = 2
    node_pid: int = 0  # the node's process, whose CPU time each phase reports (0: not reported)
    node_threads: dict[str, str] | None = None  # its threads: kernel thread id -> name
    chain_pid: int = 0  # the embedded chain's process (the node's child; 0: none)
    recovery_pids: tuple[int, ...] = ()  # the node's signature-recovery worker processes


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, int(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def _actions_for(plan: LoadPlan, trader: int, count: int, salt: int) -> list[UserAction]:
    rng = random.Random(plan.seed * 1_000_003 + trader * 7_919 + salt)
    owner = _address_of(plan.trader_keys[trader])
    actions: list[UserAction] = []
    client_ids: list[int] = []
    for i in range(count):
        if plan.cancel_every and i % plan.cancel_every == plan.cancel_every - 1 and \
                len(client_ids) >= 2:
            actions.append(CancelOrderByClientId(owner, 0, client_ids[-2]))
            continue
        side = Side.BUY if i % 2 == 0 else Side.SELL
        offset = rng.randint(-plan.spread_ticks, plan.spread_ticks)
        client_id = salt * 10_000_000 + i + 1
        client_ids.append(client_id)
        actions.append(PlaceOrder(owner, 0, plan.market_id, side, plan.mid_ticks + offset,
                                  rng.randint(1, 10), time_in_force=TimeInForce.GTC,
                                  client_order_id=client_id))
    return actions


def _address_of(key_hex: str) -> bytes:
    import coincurve

    from rollbook.execution.crypto import address_of_public_key

    key = bytes.fromhex(key_hex.removeprefix("0x"))
    return address_of_public_key(coincurve.PrivateKey(key).public_key.format(compressed=False))


def _sign_chunk(args: tuple[LoadPlan, int, int, int, int]) -> list[bytes]:
    """Encoded signed actions of one trader (run in a worker process)."""
    plan, trader, count, salt, nonce_base = args
    domain = Eip712Domain(plan.chain_id, bytes.fromhex(plan.verifying_contract[2:]))
    key = bytes.fromhex(plan.trader_keys[trader].removeprefix("0x"))
    encoder = msgspec.json.Encoder()
    return [encoder.encode(from_signed(sign_action(key, domain, action, nonce_base + i)))
            for i, action in enumerate(_actions_for(plan, trader, count, salt))]


def presign(plan: LoadPlan, total: int, salt: int, nonce_base: int) -> list[list[bytes]]:
    """``total`` encoded signed actions: one list per trader, in nonce order."""
    traders = len(plan.trader_keys)
    per_trader = -(-total // traders)
    jobs = [(plan, t, per_trader, salt, nonce_base) for t in range(traders)]
    if plan.signing_processes > 1:
        with ProcessPoolExecutor(plan.signing_processes) as pool:
            return list(pool.map(_sign_chunk, jobs))
    return [_sign_chunk(job) for job in jobs]


def _cpu_s(path: str) -> float | None:
    """User + system CPU seconds so far of the process or thread whose Linux ``stat`` file is
    ``path``; None where that is not available."""
    try:
        with open(path, encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # after the command name: state is field 3 of stat(5), utime and stime fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _CpuMeter:
    """CPU seconds spent by this process, by the node and by each of the node's threads
    (named as the node named them) over one phase."""

    def __init__(self, plan: LoadPlan) -> None:
        self.pid = plan.node_pid
        self.threads = dict(plan.node_threads or {}) if self.pid > 0 else {}
        self.mine = time.process_time()
        self.node = _cpu_s(f"/proc/{self.pid}/stat") if self.pid > 0 else None
        self.per_thread = self._threads_now()
        self.chain_pid = plan.chain_pid
        self.chain = _cpu_s(f"/proc/{self.chain_pid}/stat") if self.chain_pid > 0 else None
        self.recovery_pids = tuple(plan.recovery_pids)
        self.recovery = self._recovery_now()

    def _recovery_now(self) -> float | None:
        if not self.recovery_pids:
            return None
        total = 0.0
        for pid in self.recovery_pids:
            seconds = _cpu_s(f"/proc/{pid}/stat")
            if seconds is None:
                return None
            total += seconds
        return total

    def _threads_now(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for tid, name in self.threads.items():
            seconds = _cpu_s(f"/proc/{self.pid}/task/{tid}/stat")
            if seconds is not None:
                totals[name] = totals.get(name, 0.0) + seconds
        return totals

    def report(self, result: dict[str, Any]) -> None:
        result["loadgen_cpu_s"] = round(time.process_time() - self.mine, 3)
        chain_now = _cpu_s(f"/proc/{self.chain_pid}/stat") if self.chain_pid > 0 else None
        if self.chain is not None and chain_now is not None:
            result["chain_cpu_s"] = round(chain_now - self.chain, 3)
        node_now = _cpu_s(f"/proc/{self.pid}/stat") if self.pid > 0 else None
        if self.node is None or node_now is None:
            return
        result["node_cpu_s"] = round(node_now - self.node, 3)
        # the node's cost per action, whatever share of the cores it got
        acked = result.get("actions_acked", 0)
        result["node_cpu_us_per_action"] = (
            round((node_now - self.node) / acked * 1e6, 1) if acked else None)
        recovery_now = self._recovery_now()
        if self.recovery is not None and recovery_now is not None:
            # the recovery workers' CPU, and the node's with it (the curve work left the node)
            spent = recovery_now - self.recovery
            result["recovery_cpu_s"] = round(spent, 3)
            result["node_and_recovery_cpu_us_per_action"] = (
                round((node_now - self.node + spent) / acked * 1e6, 1) if acked else None)
        before = self.per_thread
        result["node_cpu_s_by_thread"] = {
            name: round(seconds - before.get(name, 0.0), 3)
            for name, seconds in sorted(self._threads_now().items())}


def _interleave(columns: Sequence[list[bytes]]) -> list[bytes]:
    """Round-robin over traders, so that every message mixes them."""
    length = max((len(c) for c in columns), default=0)
    return [c[i] for i in range(length) for c in columns if i < len(c)]


def _say(message: str) -> None:
    print(f"[loadgen] {message}", file=sys.stderr, flush=True)


class _Phase:
    def __init__(self) -> None:
        self.sent_at: dict[int, float] = {}  # message id -> perf_counter at send
        self.latencies_ms: list[float] = []
        self.acked = 0
        self.ok = 0
        self.refused_at_door = 0
        self.refused_by_stf = 0
        self.codes: dict[str, int] = {}

    def record(self, reply: dict[str, Any]) -> None:
        sent = self.sent_at.pop(reply.get("id"), None)  # type: ignore[arg-type]
        if sent is None:
            return
        latency_ms = (time.perf_counter() - sent) * 1_000
        results = reply.get("results")
        if results is None:
            results = [reply]
        for result in results:
            self.latencies_ms.append(latency_ms)
            self.acked += 1
            status = result.get("status")
            if status == 200:
                self.ok += 1
            else:
                error = result.get("error") or {}
                name = str(error.get("name"))
                self.codes[name] = self.codes.get(name, 0) + 1
                if result.get("ack") is None:
                    self.refused_at_door += 1
                else:
                    self.refused_by_stf += 1

    def summary(self, elapsed_s: float) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        return {
            "actions_acked": self.acked,
            "elapsed_s": round(elapsed_s, 3),
            "orders_per_s": round(self.acked / elapsed_s, 1) if elapsed_s > 0 else 0.0,
            "ok": self.ok,
            "refused_by_stf": self.refused_by_stf,
            "refused_at_door": self.refused_at_door,
            "refusal_codes": dict(sorted(self.codes.items())),
            "ack_p50_ms": round(percentile(lat, 0.50), 3),
            "ack_p90_ms": round(percentile(lat, 0.90), 3),
            "ack_p99_ms": round(percentile(lat, 0.99), 3),
            "ack_max_ms": round(lat[-1], 3) if lat else 0.0,
        }


async def _reader(ws: aiohttp.ClientWebSocketResponse, phase: _Phase,
                  inflight: asyncio.Semaphore | None) -> None:
    decoder = msgspec.json.Decoder()
    async for message in ws:
        if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            break
        phase.record(decoder.decode(message.data))
        if inflight is not None:
            inflight.release()


async def _throughput(plan: LoadPlan, session: aiohttp.ClientSession,
                      columns: list[list[bytes]]) -> dict[str, Any]:
    phase = _Phase()
    # each trader sends on one connection only: two connections racing could deliver one
    # signer's nonces far out of order (NONCE_BELOW_WINDOW past the kept window)
    per_connection: list[list[list[bytes]]] = []
    for c in range(plan.connections):
        mine = _interleave(columns[c::plan.connections])
        per_connection.append([mine[i:i + plan.batch_size]
                               for i in range(0, len(mine), plan.batch_size)])
    total = sum(len(column) for column in columns)
    next_id = iter(range(1, 1 << 62))
    sockets = [await session.ws_connect(plan.url + "/ws", max_msg_size=WS_MESSAGE_BYTES_MAX)
               for _ in range(plan.connections)]
    started = time.perf_counter()
    cpu = _CpuMeter(plan)
    deadline = started + plan.duration_s

    async def drive(ws: aiohttp.ClientWebSocketResponse, mine: list[list[bytes]]) -> None:
        inflight = asyncio.Semaphore(plan.window)
        reader = asyncio.create_task(_reader(ws, phase, inflight))
        for chunk in mine:
            if time.perf_counter() >= deadline:
                break
            await inflight.acquire()
            message_id = next(next_id)
            payload = (b'{"op":"batch","id":%d,"actions":[' % message_id + b",".join(chunk)
                       + b"]}")
            phase.sent_at[message_id] = time.perf_counter()
            await ws.send_bytes(payload)
        try:  # every message answered once the whole window is free again
            async with asyncio.timeout(DRAIN_TIMEOUT_S):
                for _ in range(plan.window):
                    await inflight.acquire()
        except TimeoutError:
            _say("some acks never came")
        await ws.close()
        reader.cancel()

    await asyncio.gather(*(drive(ws, mine) for ws, mine in zip(sockets, per_connection,
                                                               strict=True)))
    elapsed = time.perf_counter() - started
    result = phase.summary(elapsed)
    cpu.report(result)
    result["batch_size"] = plan.batch_size
    result["window"] = plan.window
    result["connections"] = plan.connections
    result["exhausted_presigned"] = phase.acked >= total
    return result


async def _fixed_rate(plan: LoadPlan, session: aiohttp.ClientSession, rate_per_s: int,
                      actions: list[bytes]) -> dict[str, Any]:
    phase = _Phase()
    ws = await session.ws_connect(plan.url + "/ws", max_msg_size=WS_MESSAGE_BYTES_MAX)
    reader = asyncio.create_task(_reader(ws, phase, None))
    started = time.perf_counter()
    cpu = _CpuMeter(plan)
    sent = 0
    message_id = 0
    while sent < len(actions):
        elapsed = time.perf_counter() - started
        if elapsed >= plan.fixed_duration_s:
            break
        due = min(len(actions), int(elapsed * rate_per_s))
        while sent < due:
            message_id += 1
            phase.sent_at[message_id] = time.perf_counter()
            await ws.send_bytes(b'{"op":"order","id":%d,"action":' % message_id
                                + actions[sent] + b"}")
            sent += 1
        await asyncio.sleep(TICK_S)
    send_elapsed = time.perf_counter() - started
    drain_until = time.perf_counter() + DRAIN_TIMEOUT_S
    while phase.sent_at and time.perf_counter() < drain_until:
        await asyncio.sleep(0.005)
    await ws.close()
    reader.cancel()
    result = phase.summary(send_elapsed)
    cpu.report(result)
    result["offered_rate_per_s"] = rate_per_s
    result["offered"] = sent
    result["unanswered"] = len(phase.sent_at)
    return result


async def _run(plan: LoadPlan, throughput_actions: list[list[bytes]],
               fixed_actions: list[list[bytes]]) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=None)
    fixed: list[dict[str, Any]] = []
    async with aiohttp.ClientSession(timeout=timeout) as session:
        _say(f"throughput phase: {plan.duration_s:.0f} s, {plan.connections} connection(s), "
             f"{plan.window} x {plan.batch_size}-action messages in flight")
        throughput = await _throughput(plan, session, throughput_actions)
        _say(f"  {throughput['orders_per_s']:,.0f} actions/s, ack p99 "
             f"{throughput['ack_p99_ms']:.1f} ms")
        for rate, column in zip(plan.rates_per_s, fixed_actions, strict=True):
            await asyncio.sleep(PAUSE_S)  # let the node's queues empty between the phases
            _say(f"fixed-rate phase: {rate:,}/s for {plan.fixed_duration_s:.0f} s")
            fixed.append(await _fixed_rate(plan, session, rate, column))
            _say(f"  ack p50 {fixed[-1]['ack_p50_ms']:.2f} ms, p99 "
                 f"{fixed[-1]['ack_p99_ms']:.2f} ms")
    return {"throughput": throughput, "fixed_rate": fixed}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    with open(args[0], encoding="utf-8") as handle:
        raw = json.load(handle)
    raw["trader_keys"] = tuple(raw["trader_keys"])
    raw["rates_per_s"] = tuple(raw["rates_per_s"])
    plan = LoadPlan(**raw)
    nonce_base = time.time_ns() // 1_000_000
    started = time.perf_counter()
    throughput_actions = presign(plan, plan.actions_total, 1, nonce_base)
    fixed_actions: list[list[bytes]] = []
    for phase, rate in enumerate(plan.rates_per_s, start=2):
        # each phase's nonces follow the previous phase's for every key
        nonce_base += len(throughput_actions[0]) if phase == 2 else len(fixed_actions[-1]) + 1
        count = int(rate * (plan.fixed_duration_s + 1))
        fixed_actions.append(_interleave(presign(plan, count, phase, nonce_base)))
    signing_s = time.perf_counter() - started
    presigned = sum(map(len, throughput_actions)) + sum(map(len, fixed_actions))
    _say(f"pre-signed {presigned:,} actions in {signing_s:.1f} s")
    result = asyncio.run(_run(plan, throughput_actions, fixed_actions))
    result["presigned"] = presigned
    result["presign_s"] = round(signing_s, 2)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
