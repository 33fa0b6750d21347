"""Sequencer micro-benchmarks (a script, not a test): signer recovery, checksums, WAL commits.

    .venv/bin/python tests/sequencer/bench_sequencer.py [--quick] [--dir PATH]
        [--only recovery|checksums|wal]

- recoveries/s: ``recover_signer`` over pre-signed PlaceOrders (EIP-712 digest + low-s checks
  + coincurve recovery + address keccak), single-threaded and through ``recover_signers`` on a
  ``ThreadPoolExecutor`` of 2; also the bare coincurve recovery and eth-account's full path;
- checksums per record (160 bytes) and throughput (64 KiB): zlib.crc32, blake2b-128, sha256;
- WAL: records/s for one producer committing groups of 1, 64 and 1024 records (130-byte
  payloads, the size of a signed PlaceOrder), and for 8 producers each committing its own
  record (group commit shares the fdatasync). ``--dir`` must be on the disk you care about: a
  tmpfs makes fsync free.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import coincurve

sys.path.insert(0, str(Path(__file__).parent))

from seq_helpers import DOMAIN, OWNER, OWNER_KEY, T0_MS

from rollbook.execution.txs import PlaceOrder, Side
from rollbook.sequencer import (
    WriteAheadLog,
    recover_signer,
    recover_signers,
    sign_action,
    signing_digest,
    typed_data,
)


def rate(count: int, run: Callable[[], object], repeat: int = 3) -> float:
    """Best of ``repeat`` runs, in operations per second."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return count / best


def control_parallelism() -> float:
    """Sum of thread CPU time over wall time for two threads of a GIL-free workload."""
    data = os.urandom(1 << 20)
    cpu: list[float] = []

    def work() -> None:
        start = time.thread_time()
        for _ in range(100):
            hashlib.sha256(data).digest()
        cpu.append(time.thread_time() - start)

    threads = [threading.Thread(target=work) for _ in range(2)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(cpu) / (time.perf_counter() - start)


def bench_recovery(count: int) -> None:
    signed = [sign_action(OWNER_KEY, DOMAIN,
                          PlaceOrder(OWNER, 0, 1, Side.BUY, 1_000_000 + i, 5), T0_MS + i)
              for i in range(count)]
    assert all(recover_signer(DOMAIN, s).signer == OWNER for s in signed[:10])
    single = rate(count, lambda: [recover_signer(DOMAIN, s) for s in signed])
    with ThreadPoolExecutor(2) as pool:
        recover_signers(DOMAIN, signed[:1000], pool)  # warm the threads
        double = rate(count, lambda: recover_signers(DOMAIN, signed, pool))
    digests = [signing_digest(DOMAIN, s.action, s.nonce_ms) for s in signed]
    compact = [s.signature[:64] + bytes([s.signature[64] - 27]) for s in signed]
    bare = rate(count, lambda: [coincurve.PublicKey.from_signature_and_message(c, d, hasher=None)
                                for c, d in zip(compact, digests, strict=True)])
    digest_only = rate(count, lambda: [signing_digest(DOMAIN, s.action, s.nonce_ms)
                                       for s in signed])
    print(f"recovery, full path, 1 thread:   {single:>10,.0f} /s")
    print(f"recovery, full path, 2 threads:  {double:>10,.0f} /s  (x{double / single:.2f})")
    print(f"  control: 2 threads of sha256 over 1 MiB (releases the GIL) reach "
          f"x{control_parallelism():.2f} parallelism; below ~1.9 the machine has no free core")
    print(f"coincurve recovery alone:        {bare:>10,.0f} /s")
    print(f"EIP-712 digest alone:            {digest_only:>10,.0f} /s")
    try:
        from eth_account import Account
        from eth_account.messages import encode_typed_data
    except ImportError:  # pragma: no cover
        return
    few = signed[:500]
    eth = rate(len(few), lambda: [Account.recover_message(
        encode_typed_data(full_message=typed_data(DOMAIN, s.action, s.nonce_ms)),
        signature=s.signature) for s in few], repeat=1)
    print(f"eth-account encode + recover:    {eth:>10,.0f} /s")


def bench_checksums() -> None:
    small, large = os.urandom(160), os.urandom(64 * 1024)
    candidates: dict[str, Callable[[bytes], object]] = {
        "zlib.crc32": zlib.crc32,
        "blake2b-128": lambda d: hashlib.blake2b(d, digest_size=16).digest(),
        "sha256": lambda d: hashlib.sha256(d).digest(),
    }
    def loop(function: Callable[[bytes], object], data: bytes, count: int) -> Callable[[], None]:
        def run() -> None:
            for _ in range(count):
                function(data)
        return run

    for name, function in candidates.items():
        per_record = rate(200_000, loop(function, small, 200_000))
        throughput = rate(2_000, loop(function, large, 2_000))
        print(f"{name:<12} 160 B: {1e9 / per_record:6.0f} ns/record   "
              f"64 KiB: {throughput * len(large) / 1e9:5.2f} GB/s")


def filesystem_of(path: Path) -> str:
    try:
        out = subprocess.run(["df", "-T", str(path)], capture_output=True, text=True,
                             check=True).stdout.splitlines()[-1].split()
        return f"{out[1]} on {out[0]}"
    except (OSError, subprocess.CalledProcessError, IndexError):  # pragma: no cover
        return "unknown filesystem"


def bench_wal(root: Path, quick: bool) -> None:
    payload = os.urandom(130)
    print(f"WAL in {root} ({filesystem_of(root)})")
    for group in (1, 64, 1024):
        commits = (200 if group == 1 else 100) // (2 if quick else 1)
        directory = Path(tempfile.mkdtemp(dir=root))
        try:
            with WriteAheadLog(directory) as log:
                batch = [payload] * group
                start = time.perf_counter()
                for _ in range(commits):
                    log.append(batch)
                    log.commit()
                elapsed = time.perf_counter() - start
        finally:
            shutil.rmtree(directory)
        print(f"group commit of {group:>4}: {group * commits / elapsed:>10,.0f} records/s   "
              f"{commits / elapsed:>7,.0f} commits/s   {elapsed / commits * 1e3:6.2f} ms/commit")
    producers, each = 8, 50 // (2 if quick else 1)
    directory = Path(tempfile.mkdtemp(dir=root))
    try:
        with WriteAheadLog(directory) as log:
            def produce() -> None:
                for _ in range(each):
                    (sequence,) = log.append([payload])
                    log.wait_durable(sequence)

            threads = [threading.Thread(target=produce) for _ in range(producers)]
            start = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - start
            syncs = log.syncs
    finally:
        shutil.rmtree(directory)
    total = producers * each
    print(f"{producers} producers, 1 record each per commit: {total / elapsed:>8,.0f} records/s, "
          f"{syncs} fdatasyncs for {total} commits")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--only", choices=["recovery", "checksums", "wal"])
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")
    if args.only in (None, "recovery"):
        bench_recovery(4_000 if args.quick else 20_000)
    if args.only in (None, "checksums"):
        bench_checksums()
    if args.only in (None, "wal"):
        bench_wal(args.dir, args.quick)


if __name__ == "__main__":
    main()
