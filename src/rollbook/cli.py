"""The ``rollbook`` command line.

- ``rollbook simulate``: a whole venue life through the STF (the main job until the node lands);
- ``rollbook bench stf``: the STF throughput benchmark beside the peer engine;
- ``rollbook bench commit``: state root updates and the settlement contract's gas;
- ``rollbook bench risk``: option pricing, portfolio margin and whole-venue revaluation;
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


def _bench_risk(args: argparse.Namespace) -> int:
    from rollbook.bench.risk import run_risk_bench

    result = run_risk_bench(args.seed, args.options, args.accounts, args.venue_accounts,
                            _progress(not args.quiet))
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"Risk (seed {result['seed']}, Python {result['python']})")
    print(f"  option valuations/s (deterministic):  {result['option_prices_per_s']:,.0f}")
    print(f"  option valuations/s (NumPy):          "
          f"{result['vectorised_option_prices_per_s']:,.0f}")
    print(f"  portfolio margin accounts/s:          "
          f"{result['portfolio_margin_accounts_per_s']:,.0f} "
          f"({result['scenarios']:.0f} scenarios, warm scenario cache)")
    print(f"  re-margin 10 positions:               {result['remargin_10_positions_ms']:.3f} ms "
          f"(p99 {result['remargin_10_positions_p99_ms']:.3f} ms; full breakdown "
          f"{result['remargin_10_positions_breakdown_ms']:.3f} ms; cold cache "
          f"{result['remargin_10_positions_cold_ms']:.1f} ms)")
    print(f"  scenario cache fill per strike:       "
          f"{result['scenario_cache_fill_ms_per_strike']:.3f} ms")
    print(f"  venue revaluation ({result['venue_accounts']:,.0f} accounts x 10): "
          f"{result['venue_revaluation_ms']:.1f} ms (table {result['venue_table_ms']:.1f} ms)")
    return 0


def _bench_commit(args: argparse.Namespace) -> int:
    from rollbook.bench.commit import run_commit_bench

    result = run_commit_bench(args.accounts, args.touched, args.seed, not args.no_gas,
                              _progress(not args.quiet))
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"State commitment (seed {result['seed']}, Python {result['python']})")
    print(f"  root update, {result['state_touched']:,} of {result['state_accounts']:,} accounts: "
          f"{result['root_update_ms']:.1f} ms (fastest {result['root_update_ms_min']:.1f} ms; "
          f"bare tree {result['tree_root_update_ms']:.1f} ms)")
    print(f"  single leaf updates/s:  {result['leaf_updates_per_s']:,.0f}")
    print(f"  first commit of the state: {result['state_build_s']:.1f} s "
          f"({result['state_leaves']:,} leaves)")
    if "claim_withdrawal_gas" in result:
        print(f"  gas: deposit {result['deposit_gas']:,}; "
              f"claim {result['claim_withdrawal_gas']:,}; "
              f"escape register {result['escape_register_account_gas']:,} + withdraw "
              f"{result['escape_withdraw_account_gas']:,}")
        print(f"  gas per batch: max({result['submit_batch_gas_fixed']:,.0f} + "
              f"{result['submit_batch_gas_per_byte']:.1f}/byte, "
              f"{result['submit_batch_floor_gas_fixed']:,.0f} + "
              f"{result['submit_batch_floor_gas_per_byte']:.1f}/byte)")
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
    commit = benches.add_parser("commit", help="state root updates and settlement gas")
    commit.add_argument("--seed", type=int, default=1)
    commit.add_argument("--accounts", type=int, default=1_000_000,
                        help="funded accounts in the committed state")
    commit.add_argument("--touched", type=int, default=10_000,
                        help="accounts touched per timed batch")
    commit.add_argument("--no-gas", action="store_true", help="skip the settlement gas")
    commit.add_argument("--json", action="store_true", help="print one JSON object")
    commit.add_argument("--quiet", action="store_true", help="no progress on stderr")
    commit.set_defaults(handler=_bench_commit)
    risk = benches.add_parser("risk", help="option pricing, portfolio margin, venue revaluation")
    risk.add_argument("--seed", type=int, default=1)
    risk.add_argument("--options", type=int, default=20_000,
                      help="options valued for option_prices_per_s")
    risk.add_argument("--accounts", type=int, default=2_000,
                      help="10-position accounts for the deterministic portfolio margin")
    risk.add_argument("--venue-accounts", type=int, default=100_000,
                      help="10-position accounts for the vectorised venue revaluation")
    risk.add_argument("--json", action="store_true", help="print one JSON object")
    risk.add_argument("--quiet", action="store_true", help="no progress on stderr")
    risk.set_defaults(handler=_bench_risk)

    version = commands.add_parser("version", help="print the version")
    version.set_defaults(handler=lambda args: print(__version__) or 0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    status: int = args.handler(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
