"""Zygote of the node crash test: forks node processes that trade until they are SIGKILLed.

The parent starts this script once. It imports the node (about a second of imports paid once),
then for every line ``run DATA_DIR SEED ACK_FILE`` on stdin it forks a child and answers
``pid PID``. The zygote is single-threaded, so forking it is safe; the children are reaped by
the kernel (SIGCHLD ignored).

A child opens the node on ``DATA_DIR`` (recovering whatever the last child left), funds its
traders if they are new, and runs ``SUBMITTERS`` threads that sign seeded orders (resting,
crossing, cancels) and submit them in small groups. After each answer, for every ack it appends
one line ``sequence signer nonce code batch`` to ``ACK_FILE`` with a single ``os.write`` (an
O_APPEND write is atomic and survives the process being killed). A submitter that meets an
exception (the node failed) writes it to ``errors.txt`` beside the data directory.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import threading
import time
from pathlib import Path

from node_helpers import BTC, PRICE_TICKS, USDC, key, offline_config, owner

from rollbook.execution import CancelOrder, Deposit, PlaceOrder, Side, TimeInForce
from rollbook.node import Ack, Node
from rollbook.sequencer import sign_action

SUBMITTERS = 3
TRADERS_PER_SUBMITTER = 2
GROUP_MAX = 6
ERRORS_FILE = "errors.txt"  # in the child's working directory: the data directory's parent


def config(data_dir: Path) -> object:
    return offline_config(data_dir, interval_ms=20, snapshot_every=2, segment_bytes=16 * 1024)


def traders() -> list[int]:
    return list(range(SUBMITTERS * TRADERS_PER_SUBMITTER))


def submitter(node: Node, index: int, seed: int, ack_fd: int) -> None:
    try:
        _submit_forever(node, index, seed, ack_fd)
    except BaseException as error:  # the parent fails the test on any line in this file
        with open(ERRORS_FILE, "a") as errors:
            errors.write(f"submitter {index}: {error!r}\n")
        raise


def _submit_forever(node: Node, index: int, seed: int, ack_fd: int) -> None:
    rng = random.Random(seed * 1_000 + index)
    mine = [index * TRADERS_PER_SUBMITTER + i for i in range(TRADERS_PER_SUBMITTER)]
    last_nonce = {n: 0 for n in mine}
    placed: dict[int, list[int]] = {n: [] for n in mine}
    domain = node.domain
    assert domain is not None
    while True:
        group = []
        for _ in range(rng.randint(1, GROUP_MAX)):
            n = rng.choice(mine)
            nonce = max(time.time_ns() // 1_000_000, last_nonce[n] + 1)
            last_nonce[n] = nonce
            roll = rng.random()
            if roll < 0.15 and placed[n]:
                action: object = CancelOrder(owner(n), 0, placed[n].pop(rng.randrange(
                    len(placed[n]))))
            else:
                side = Side.BUY if rng.random() < 0.5 else Side.SELL
                offset = rng.randint(-30, 30)
                tif = TimeInForce.IOC if roll > 0.85 else TimeInForce.GTC
                action = PlaceOrder(owner(n), 0, BTC, side, PRICE_TICKS + offset,
                                    rng.randint(1, 20), time_in_force=tif)
            group.append(sign_action(key(n), domain, action, nonce))  # type: ignore[arg-type]
        for signed, result in zip(group, node.submit_many_sync(group, timeout_s=60),
                                  strict=True):
            if not isinstance(result, Ack):
                continue
            for event in result.receipt.events:
                if type(event).__name__ == "OrderPlaced":
                    placed.setdefault(_trader_of(event.owner), []).append(event.order_id)
            line = (f"{result.sequence} {result.signer.hex()} {signed.nonce_ms} "
                    f"{int(result.receipt.code)} {result.batch_index}\n")
            os.write(ack_fd, line.encode())


_OWNERS = {owner(n): n for n in range(64)}


def _trader_of(address: bytes) -> int:
    return _OWNERS[address]


def child(data_dir: Path, seed: int, ack_file: str) -> None:
    os.chdir(data_dir.parent)
    node = Node(config(data_dir))  # type: ignore[arg-type]
    node.start()
    state = node.engine.state
    missing = [owner(n) for n in traders() if (owner(n), 0) not in state.subaccounts]
    first = state.next_deposit_id
    for i, address in enumerate(missing):
        node.submit_system(Deposit(first + i, address, 0, 10**9 * USDC)).result(30)
    ack_fd = os.open(ack_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    threads = [threading.Thread(target=submitter, args=(node, i, seed, ack_fd), daemon=True)
               for i in range(SUBMITTERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def main() -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    os.write(1, b"ready\n")
    for line in sys.stdin:
        command, data_dir, seed, ack_file = line.split()
        assert command == "run"
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            try:
                child(Path(data_dir), int(seed), ack_file)
            finally:
                os._exit(1)
        os.write(1, b"pid %d\n" % pid)


if __name__ == "__main__":
    main()
