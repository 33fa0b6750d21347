"""The ``rollbook`` command line.

- ``rollbook node``: a node and its HTTP/WebSocket gateway (the local venue on the embedded EVM
  without ``--config``); Ctrl-C stops it cleanly;
- ``rollbook demo``: a whole venue life through the real node, API and embedded chain;
- ``rollbook simulate``: a scripted venue life through the STF alone (no node, no chain);
- ``rollbook bench node``: signed orders per second and ack latency through node + gateway,
  driven by a separate load-generator process;
- ``rollbook bench stf``: the STF throughput benchmark beside the peer engine;
- ``rollbook bench commit``: state root updates and the settlement contract's gas;
- ``rollbook bench risk``: option pricing, portfolio margin and whole-venue revaluation;
- ``rollbook verify``: replay the settlement chain, check every root, dispute a wrong one;
- ``rollbook bench verify``: verifier replay speed against the signature-recovery limit;
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


def _node(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from rollbook.gateway import Gateway, GatewayConfig
    from rollbook.node.config import ConfigError, load_config
    from rollbook.node.core import Node

    say = _progress(True)
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"rollbook node: {error}", file=sys.stderr)
        return 2

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        node = Node(config)
        say(f"starting the node (chain: {config.chain.url}) ...")
        await loop.run_in_executor(None, node.start)
        gateway = Gateway(node, GatewayConfig(host=args.host, port=args.port))
        try:
            await gateway.start()
            status = await node.status()
            say(f"node running: chain id {status.chain_id}, settlement contract "
                f"0x{(status.settlement_address or bytes(20)).hex()}, data in {node.data_dir}")
            say(f"API at {gateway.url} (OpenAPI: {gateway.url}/openapi.json, WebSocket: "
                f"ws://{args.host}:{gateway.port}/ws); Ctrl-C stops")
            await stop.wait()
            say("stopping: closing the open batch and writing a snapshot ...")
        finally:
            await gateway.stop()
            await loop.run_in_executor(None, node.stop)
        say("stopped cleanly")

    asyncio.run(serve())
    return 0


def _demo(args: argparse.Namespace) -> int:
    from rollbook.demo import run_demo

    report = run_demo(args.seed, _progress(True))
    if args.json:
        payload = asdict(report)
        payload.pop("timeline")
        payload["complete"] = report.complete
        print(json.dumps(payload))
        return 0 if report.complete else 1
    for line in report.timeline:
        print(line)
    print(f"deposits credited:           {report.deposits}")
    print(f"fills:                       {report.fills} ({report.volume_usd:,.0f} USD traded)")
    print(f"liquidations:                {report.liquidations}")
    print(f"funding payments:            {report.funding_payments}")
    print(f"withdrawals claimed on chain: {report.withdrawals_claimed_onchain} "
          f"({report.withdrawn_usd:,.2f} USDC)")
    print(f"batches closed / final:      {report.batches_closed} / {report.batches_finalized}")
    print(f"actions acked / refused:     {report.actions_acked} / {report.actions_refused}")
    print(f"final root:                  {report.final_root}")
    print(f"took:                        {report.seconds} s")
    print("complete venue life:         " + ("yes" if report.complete else "NO"))
    return 0 if report.complete else 1


def _build(result: dict[str, Any]) -> str:
    """How a bench's ``compiled`` field reads in the human output."""
    return "STF compiled (mypyc)" if result.get("compiled") else "STF pure Python"


def _bench_node(args: argparse.Namespace) -> int:
    from rollbook.bench.node import run_node_bench

    if args.rate is None:
        args.rate = [1_000, 5_000]
    result = run_node_bench(args.duration, tuple(args.rate), args.fixed_duration, args.batch_size,
                            args.window, args.connections, args.actions, args.chain,
                            _progress(not args.quiet),
                            recovery_processes=args.recovery_processes)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"Node + gateway, durable log, chain: {result['chain']} ({result['cores']} cores, "
          f"Python {result['python']}, {_build(result)}; load from a separate process over "
          "WebSocket)")
    print(f"  signed orders/s:       {result['orders_per_s']:,.0f} "
          f"(ack p50 {result['ack_p50_ms']:.1f} ms, p99 {result['ack_p99_ms']:.1f} ms at "
          f"saturation)")
    for fixed in result["fixed_rate"]:
        print(f"  at {fixed['offered_rate_per_s']:,}/s offered: ack p50 "
              f"{fixed['ack_p50_ms']:.2f} ms, p99 {fixed['ack_p99_ms']:.2f} ms (achieved "
              f"{fixed['orders_per_s']:,.0f}/s)")
    print(f"  batches closed: {result['batches_closed']}, submitted on chain: "
          f"{result['batches_submitted_on_chain']}; WAL {result['wal_bytes']:,} bytes")
    return 0


def _bench_stf(args: argparse.Namespace) -> int:
    from rollbook.bench.stf import run_stf_bench

    result = run_stf_bench(args.seed, args.ops, args.resting, not args.no_peer,
                           _progress(not args.quiet), repeats=args.repeats)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"STF, standard workload (seed {result['seed']}, {result['ops']:,} operations, "
          f"{result['batches']} batches, Python {result['python']}, {_build(result)})")
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
    if "tree_root_update_ms_reference" in result:
        print(f"  bare tree on the pure-Python hashing loops: "
              f"{result['tree_root_update_ms_reference']:.1f} ms")
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


def _verify(args: argparse.Namespace) -> int:
    import os

    from rollbook.verifier.command import EXIT_CONFIG, run_verify
    from rollbook.verifier.config import CHALLENGER_KEY_ENV, VerifierConfigError, load_settings

    say = _progress(not args.quiet)
    overrides = {"rpc_url": args.rpc_url, "settlement_address": args.contract,
                 "node_config": args.node_config, "confirmations": args.confirmations,
                 "start_block": args.start_block, "snapshot_dir": args.snapshot_dir,
                 "challenger_key": args.challenger_key or os.environ.get(CHALLENGER_KEY_ENV)}
    try:
        settings = load_settings(args.config, overrides)
    except VerifierConfigError as error:
        print(f"rollbook verify: {error}", file=sys.stderr)
        return EXIT_CONFIG
    report, status = run_verify(settings, follow=args.follow, duration_s=args.duration, say=say)
    if args.json:
        print(json.dumps(report))
        return status
    if "error" in report:
        print(f"rollbook verify: {report['error']}", file=sys.stderr)
    if "batches_verified" in report:
        print(f"batches verified:     {report['batches_verified']} "
              f"({report['roots_matched']} roots matched, {report['skipped']} skipped)")
        print(f"transactions:         {report['transactions']}")
        print(f"disputes sent:        {report['disputes_sent']}")
        print(f"last verified:        batch {report['last_verified_batch']}, root "
              f"{report['last_verified_root']}")
        for record in report["disputes"]:
            d = record["divergence"]
            entry = "" if d["entry"] is None else f", entry {d['entry']}"
            print(f"DIVERGENCE batch {d['batch_index']}{entry}: {d['reason']}: {d['detail']} "
                  f"[{'disputed' if record['sent'] else 'not disputed: ' + record['note']}]")
        if report["frozen"]:
            print(f"contract frozen:      escape batch {report['escape_batch']}")
    return status


def _bench_verify(args: argparse.Namespace) -> int:
    from rollbook.bench.verify import run_verify_bench

    result = run_verify_bench(args.seed, args.transactions, args.batch_entries, args.threads,
                              args.repeats, args.processes, _progress(not args.quiet))
    if args.json:
        print(json.dumps(result))
        return 0
    lanes = (f"{result['processes']} recovery processes" if result["processes"]
             else f"{result['threads']} recovery threads")
    print(f"Verifier replay ({result['transactions']:,} signed transactions in "
          f"{result['batches']} batches, {lanes}, "
          f"{result['cores']} cores, Python {result['python']}, {_build(result)})")
    print(f"  verified tx/s:          {result['txs_per_s']:,}")
    print(f"  signature limit/s:      {result['sig_limit_per_s']:,} (recovery alone, the faster "
          f"of {result['threads']} threads: {result['sig_limit_threads_per_s']:,}/s and "
          f"{result['processes']} processes: {result['sig_limit_processes_per_s'] or 0:,}/s)")
    print(f"  ratio to limit:         {result['ratio_to_limit']}")
    breakdown = result["breakdown_us_per_tx"]
    print("  per tx, one thread:     " + ", ".join(f"{k} {v} us" for k, v in breakdown.items()))
    print(f"  machine parallelism:    {result['parallelism']} (2.0 = two free cores)")
    return 0


def _output_flags(command: argparse.ArgumentParser, progress: bool = True) -> None:
    """``--json`` (one JSON object on stdout) and, for long work, ``--quiet`` (no progress)."""
    command.add_argument("--json", action="store_true", help="print one JSON object")
    if progress:
        command.add_argument("--quiet", action="store_true", help="no progress on stderr")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rollbook", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    node = commands.add_parser("node", help="run a node and its HTTP/WebSocket API")
    node.add_argument("--config", default=None, help="TOML file (default: the local venue)")
    node.add_argument("--host", default="127.0.0.1", help="listen address (default: loopback)")
    node.add_argument("--port", type=int, default=8600)
    node.set_defaults(handler=_node)

    demo = commands.add_parser("demo", help="a whole venue life through node, API and chain")
    demo.add_argument("--seed", type=int, default=7)
    _output_flags(demo, progress=False)
    demo.set_defaults(handler=_demo)

    simulate = commands.add_parser("simulate", help="run a whole venue life through the STF")
    simulate.add_argument("--seed", type=int, default=7)
    _output_flags(simulate, progress=False)
    simulate.set_defaults(handler=_simulate)

    bench = commands.add_parser("bench", help="benchmarks (targets live here)")
    benches = bench.add_subparsers(dest="bench", required=True)
    stf = benches.add_parser("stf", help="STF throughput on the standard workload")
    stf.add_argument("--seed", type=int, default=1)
    stf.add_argument("--ops", type=int, default=200_000)
    stf.add_argument("--resting", type=int, default=1_000_000,
                     help="resting orders for the memory figure (0 to skip)")
    stf.add_argument("--no-peer", action="store_true", help="skip the matching-engine peer")
    stf.add_argument("--repeats", type=int, default=3,
                     help="interleaved rounds of ours and the peer's (best of each)")
    _output_flags(stf)
    stf.set_defaults(handler=_bench_stf)
    commit = benches.add_parser("commit", help="state root updates and settlement gas")
    commit.add_argument("--seed", type=int, default=1)
    commit.add_argument("--accounts", type=int, default=1_000_000,
                        help="funded accounts in the committed state")
    commit.add_argument("--touched", type=int, default=10_000,
                        help="accounts touched per timed batch")
    commit.add_argument("--no-gas", action="store_true", help="skip the settlement gas")
    _output_flags(commit)
    commit.set_defaults(handler=_bench_commit)
    bench_node = benches.add_parser("node", help="signed orders/s and ack latency via the API")
    bench_node.add_argument("--duration", type=float, default=10.0,
                            help="seconds of the throughput phase")
    bench_node.add_argument("--rate", type=int, action="append", default=None,
                            help="offered orders/s of a fixed-rate phase (repeatable; "
                                 "default: 1000 and 5000)")
    bench_node.add_argument("--fixed-duration", type=float, default=5.0,
                            help="seconds of the fixed-rate phase")
    bench_node.add_argument("--batch-size", type=int, default=64,
                            help="actions per WebSocket message (throughput phase)")
    bench_node.add_argument("--window", type=int, default=8,
                            help="messages in flight per connection (throughput phase)")
    bench_node.add_argument("--connections", type=int, default=2)
    bench_node.add_argument("--actions", type=int, default=100_000,
                            help="actions pre-signed for the throughput phase")
    bench_node.add_argument("--chain", choices=("embedded", "none"), default="embedded",
                            help="none: no settlement layer (isolates the publisher's cost)")
    bench_node.add_argument("--recovery-processes", type=int, default=None,
                            help="signature-recovery worker processes (0: recovery threads in "
                                 "the node's process; default: the node's default)")
    _output_flags(bench_node)
    bench_node.set_defaults(handler=_bench_node)
    risk = benches.add_parser("risk", help="option pricing, portfolio margin, venue revaluation")
    risk.add_argument("--seed", type=int, default=1)
    risk.add_argument("--options", type=int, default=20_000,
                      help="options valued for option_prices_per_s")
    risk.add_argument("--accounts", type=int, default=2_000,
                      help="10-position accounts for the deterministic portfolio margin")
    risk.add_argument("--venue-accounts", type=int, default=100_000,
                      help="10-position accounts for the vectorised venue revaluation")
    _output_flags(risk)
    risk.set_defaults(handler=_bench_risk)
    bench_verify = benches.add_parser("verify", help="verifier replay vs signature recovery")
    bench_verify.add_argument("--seed", type=int, default=1)
    bench_verify.add_argument("--transactions", type=int, default=20_000,
                              help="signed transactions in the recorded chain")
    bench_verify.add_argument("--batch-entries", type=int, default=450,
                              help="signed transactions per batch (450 fit the contract's "
                                   "64 KiB of calldata)")
    bench_verify.add_argument("--threads", type=int, default=2, help="recovery threads")
    bench_verify.add_argument("--processes", type=int, default=2,
                              help="recovery worker processes (0: recover on the threads)")
    bench_verify.add_argument("--repeats", type=int, default=3,
                              help="interleaved measurement rounds (best of each)")
    _output_flags(bench_verify)
    bench_verify.set_defaults(handler=_bench_verify)

    verify = commands.add_parser(
        "verify", help="replay the settlement chain, check every root, dispute a wrong one")
    verify.add_argument("--config", default=None, help="TOML file with a [verifier] table")
    verify.add_argument("--rpc-url", default=None, help="EVM JSON-RPC endpoint")
    verify.add_argument("--contract", default=None, help="settlement contract address")
    verify.add_argument("--challenger-key", default=None,
                        help="challenger private key (prefer the ROLLBOOK_CHALLENGER_KEY "
                             "environment variable: arguments are visible to other users)")
    verify.add_argument("--node-config", default=None,
                        help="the node's TOML (the venue); default: the local venue")
    verify.add_argument("--confirmations", type=int, default=None)
    verify.add_argument("--start-block", type=int, default=None,
                        help="the contract's deployment block")
    verify.add_argument("--snapshot-dir", default=None,
                        help="keep the verifier's own snapshots here and resume from them")
    verify.add_argument("--follow", action="store_true",
                        help="keep following new batches after catching up")
    verify.add_argument("--duration", type=float, default=None,
                        help="with --follow: stop after this many seconds")
    _output_flags(verify)
    verify.set_defaults(handler=_verify)

    version = commands.add_parser("version", help="print the version")
    version.set_defaults(handler=lambda args: print(__version__) or 0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    status: int = args.handler(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
