"""The ``rollbook`` command line.

- ``rollbook simulate``: a whole venue life through the STF (the main job until the node lands);
- ``rollbook bench stf``: the STF throughput benchmark beside the peer engine;
- ``rollbook version``.

Human-readable output by default, one JSON object with ``--json``; progress goes to stderr so
JSON on stdout stays parseable. Exit status 0 means the command did everything it claims.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from rollbook import __version__

__all__ = ["main"]

USDC = 10**6


def _progress(enabled: bool) -> Any:
    def say(message: str) -> None:
        if enabled:
            print(f"[rollbook] {message}", file=sys.stderr, flush=True)

    return say


def _simulate(args: argparse.Namespace) -> int:
    from rollbook.simulation import run_simulation

    lines: list[str] = []
    report = run_simulation(args.seed, lines.append)
    if args.json:
        payload = asdict(report)
        payload.pop("timeline")
        payload["complete"] = report.complete
        print(json.dumps(payload))
        return 0 if report.complete else 1
    for line in lines:
        print(line)
    print(f"batches applied:        {report.batches} ({report.transactions} transactions, "
          f"{report.rejected} rejected)")
    print(f"deposits credited:      {report.deposits}")
    print(f"fills:                  {report.fills} "
          f"({report.volume_quantums / USDC:,.0f} USDC traded)")
    print(f"liquidations:           {report.liquidations} "
          f"({report.deleveraged} positions deleveraged)")
    print(f"funding payments:       {report.funding_payments}")
    print(f"withdrawals queued:     {report.withdrawals}")
    print(f"insurance fund:         {report.insurance_fund_quantums / USDC:,.2f} USDC")
    print(f"fee pool:               {report.fee_pool_quantums / USDC:,.2f} USDC")
    print(f"invariant checks:       {report.invariant_checks} (all held)")
    print(f"final state root:       {report.final_root}")
    print("complete venue life:    " + ("yes" if report.complete else "NO"))
    return 0 if report.complete else 1


def _bench_stf(args: argparse.Namespace) -> int:
    from rollbook.bench.stf import run_stf_bench

    result = run_stf_bench(args.seed, args.ops, args.resting, not args.no_peer,
                           _progress(not args.quiet))
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"STF, standard workload (seed {result['seed']}, {result['ops']:,} operations, "
          f"{result['batches']} batches, Python {result['python']})")
    print(f"  orders/s:              {result['orders_per_s']:,.0f}")
    print(f"  fills:                 {result['fills']:,}; resting at end: "
          f"{result['resting_orders_end']:,}")
    print(f"  with the state root committed per batch: "
          f"{result['orders_per_s_with_commit']:,.0f} orders/s")
    print(f"  final state root:      {result['state_root']}")
    for peer in result.get("peers", []):
        if peer.get("skipped"):
            print(f"  peer {peer['name']}: skipped ({peer['reason']})")
        else:
            print(f"  peer {peer['name']} {peer.get('version', '')}: "
                  f"{peer['orders_per_s']:,.0f} orders/s (Python {peer.get('python', '?')}); "
                  f"rollbook/peer = {result.get('ratio_to_peer')}")
    memory = result.get("memory")
    if memory:
        if "error" in memory:
            print(f"  memory: failed: {memory['error']}")
        else:
            print(f"  memory: {memory['resting_orders']:,} resting orders, peak RSS "
                  f"{memory['peak_rss_mib']:,} MiB ({memory['bytes_per_resting_order']} B/order)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rollbook", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    simulate = commands.add_parser("simulate", help="run a whole venue life through the STF")
    simulate.add_argument("--seed", type=int, default=7)
    simulate.add_argument("--json", action="store_true", help="print one JSON object")
    simulate.set_defaults(handler=_simulate)

    bench = commands.add_parser("bench", help="benchmarks (targets live here)")
    benches = bench.add_subparsers(dest="bench", required=True)
    stf = benches.add_parser("stf", help="STF throughput on the standard workload")
    stf.add_argument("--seed", type=int, default=1)
    stf.add_argument("--ops", type=int, default=200_000)
    stf.add_argument("--resting", type=int, default=1_000_000,
                     help="resting orders for the memory figure (0 to skip)")
    stf.add_argument("--no-peer", action="store_true", help="skip the matching-engine peer")
    stf.add_argument("--json", action="store_true", help="print one JSON object")
    stf.add_argument("--quiet", action="store_true", help="no progress on stderr")
    stf.set_defaults(handler=_bench_stf)

    version = commands.add_parser("version", help="print the version")
    version.set_defaults(handler=lambda args: print(__version__) or 0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    status: int = args.handler(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
