"""Crash recovery: a node under load is SIGKILLed at seeded random moments, again and again.

A zygote (``crash_zygote.py``) forks node processes that trade on one data directory (signed
orders from three threads, batches every 20 ms, a snapshot every 2 batches, 16 KiB WAL
segments) and log each acknowledgement as they receive it. The parent kills each one at a
random moment (during startup and recovery too), then, in process:

- sometimes (``POWER_CUT_SHARE``) also simulates a power cut: the last WAL segment loses an
  arbitrary suffix past what was surely synced, and junk may follow;
- restarts the node on the directory (it must start: a torn tail is cut, never refused) and
  stops it (closing the batch the crash left open);
- reads the log from where the last round stopped and replays every new batch from the
  published bytes with ``replay_batch`` on its own, independent copy of the state: every root
  must equal the root the log recorded, and the restarted node's state must equal the replay;
- checks that every acknowledged order is in the log, at its acknowledged sequence, with the
  acknowledged receipt code (an ack means durable), and that batches already seen never change.

``KILLS`` = 100 kill points with a fixed seed (marked ``slow``, about a minute); a short run of
``QUICK_KILLS`` always runs.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from crash_zygote import ERRORS_FILE
from crash_zygote import config as crash_config
from node_helpers import CHAIN_ID, CONTRACT

from rollbook.commitment import StateCommitment, canonical_root, genesis_commitment
from rollbook.execution import State, genesis_state
from rollbook.node import Node
from rollbook.node.journal import BatchClose, BatchOpen, EntryRecord, decode_record
from rollbook.node.snapshot import list_snapshots, read_snapshot
from rollbook.sequencer import AdmissionState, Eip712Domain, WriteAheadLog, recover_signer
from rollbook.sequencer.batch_data import (
    BatchData,
    SignedEntry,
    encode_batch_data,
    replay_batch,
)
from rollbook.sequencer.wal import _parse

KILLS = 100
QUICK_KILLS = 6
SEED = 20_250_601
KILL_AFTER_S_MAX = 0.3
POWER_CUT_SHARE = 0.25  # rounds that also lose the unsynced tail of the log
ZYGOTE = Path(__file__).with_name("crash_zygote.py")


@dataclass
class Replica:
    """The parent's own replay of everything the log ever held."""

    state: State
    commitment: StateCommitment
    admission: AdmissionState
    domain: Eip712Domain
    next_sequence: int = 1  # the first WAL record not yet replayed
    roots: dict[int, bytes] = field(default_factory=dict)
    entries: dict[int, tuple[bytes, int, int]] = field(default_factory=dict)  # sequence ->
    # (signer, nonce, receipt code) of every signed entry

    def catch_up(self, data_dir: Path) -> None:
        with WriteAheadLog(data_dir / "wal") as wal:
            records = list(wal.read_from(self.next_sequence))
        current: BatchOpen | None = None
        entries: list[tuple[int, object]] = []
        for sequence, payload in records:
            record = decode_record(payload)
            if isinstance(record, BatchOpen):
                current, entries = record, []
            elif isinstance(record, EntryRecord):
                entries.append((sequence, record.entry))
            elif isinstance(record, BatchClose):
                assert current is not None and current.index == record.index
                batch = BatchData(record.index, current.timestamp_ms, current.previous_root,
                                  tuple(entry for _, entry in entries))  # type: ignore[misc]
                receipts, root = replay_batch(self.state, self.commitment, self.admission,
                                              self.domain, encode_batch_data(batch))
                assert root == record.root, f"batch {record.index} replays to another root"
                assert record.index not in self.roots, "a batch index was written twice"
                self.roots[record.index] = root
                for (entry_sequence, entry), receipt in zip(entries, receipts, strict=True):
                    if isinstance(entry, SignedEntry):
                        signer = recover_signer(self.domain, entry.signed).signer
                        self.entries[entry_sequence] = (signer, entry.signed.nonce_ms,
                                                        int(receipt.code))
                self.next_sequence = sequence + 1
                current = None
        # the parent's restart closed every batch: nothing may stay open
        assert current is None, "a batch was left open after a clean stop"


class Zygote:
    def __init__(self) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(ZYGOTE.parent), str(ZYGOTE.parent.parent), os.environ.get("PYTHONPATH", "")]))
        self.process = subprocess.Popen([sys.executable, str(ZYGOTE)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env=env, text=True, bufsize=1)
        assert self.process.stdout is not None and self.process.stdin is not None
        assert self.process.stdout.readline().strip() == "ready"

    def run(self, data_dir: Path, seed: int, ack_file: Path) -> int:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"run {data_dir} {seed} {ack_file}\n")
        answer = self.process.stdout.readline().split()
        assert answer[0] == "pid", answer
        return int(answer[1])

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(10)


def _kill(pid: int, after_s: float) -> None:
    handle = os.pidfd_open(pid)
    try:
        time.sleep(after_s)
        os.kill(pid, signal.SIGKILL)
        ready, _, _ = select.select([handle], [], [], 10)
        assert ready, "the killed child did not exit"
    finally:
        os.close(handle)


def _group_end(wal_dir: Path, sequence: int) -> tuple[Path, int] | None:
    """The segment holding record ``sequence`` and the offset just past its commit group: the
    fsync that made ``sequence`` durable covered everything up to there."""
    segments = sorted(wal_dir.glob("*.wal"))
    for position, path in enumerate(segments):
        following = int(segments[position + 1].stem) if position + 1 < len(segments) else None
        if int(path.stem) <= sequence and (following is None or sequence < following):
            data = path.read_bytes()
            offset = 0
            while True:
                record = _parse(data, offset)
                assert record is not None, "a durable record is unreadable"
                if record.sequence >= sequence and record.ends_group:
                    return path, record.end
                offset = record.end
    return None


def _power_cut(data_dir: Path, durable: int, rng: random.Random) -> None:
    """Lose an arbitrary suffix of the last segment past what was surely synced (the last
    acknowledged record, the newest snapshot, the parent's last clean stop), maybe with junk
    after it like a half-written sector."""
    wal_dir = data_dir / "wal"
    last = sorted(wal_dir.glob("*.wal"))[-1]
    snapshots = list_snapshots(data_dir / "snapshots")
    if snapshots:
        durable = max(durable, read_snapshot(snapshots[0][1]).wal_sequence)
    located = _group_end(wal_dir, durable) if durable else None
    floor = located[1] if located is not None and located[0] == last else 0
    data = last.read_bytes()
    cut = rng.randint(floor, len(data)) if len(data) > floor else floor
    damaged = data[:cut]
    if rng.random() < 0.5:
        damaged += bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200)))
    last.write_bytes(damaged)


def _cut_torn_ack(ack_file: Path) -> None:
    """Drop a last ack line the kill cut short (no newline), before the next child appends.

    A small O_APPEND write is atomic between writers, but a SIGKILL can cut one that straddles
    a page boundary: the kernel stops between pages and the write comes back short. That line's
    ack never fully reached the harness, so it is not claimed; cutting it keeps the next
    child's first line whole.
    """
    if not ack_file.exists():
        return
    data = ack_file.read_bytes()
    complete = data.rfind(b"\n") + 1
    if complete < len(data):
        with open(ack_file, "r+b") as file:
            file.truncate(complete)


def _acks(ack_file: Path) -> list[tuple[int, bytes, int, int]]:
    if not ack_file.exists():
        return []
    acks = []
    for line in ack_file.read_text().splitlines(keepends=True):
        if not line.endswith("\n"):
            break  # cut short by the kill (see _cut_torn_ack): not an ack the harness saw
        sequence, signer, nonce, code, _ = line.split()
        acks.append((int(sequence), bytes.fromhex(signer), int(nonce), int(code)))
    return acks


def _run(kills: int, tmp_path: Path) -> None:
    data_dir = tmp_path / "venue"
    ack_file = tmp_path / "acks.txt"
    config = crash_config(data_dir)
    venue = config.venue_config(CHAIN_ID)  # type: ignore[attr-defined]
    state = genesis_state(venue)
    replica = Replica(state, genesis_commitment(state), AdmissionState(),
                      Eip712Domain(CHAIN_ID, CONTRACT))
    rng = random.Random(SEED)
    stats = {"torn tails": 0, "rounds that acknowledged": 0, "power cuts": 0}
    durable_floor = 0
    zygote = Zygote()
    checked = 0
    try:
        for round_index in range(kills):
            pid = zygote.run(data_dir, SEED + round_index, ack_file)
            _kill(pid, rng.uniform(0, KILL_AFTER_S_MAX))
            _cut_torn_ack(ack_file)
            if rng.random() < POWER_CUT_SHARE and (data_dir / "wal").exists():
                acked = max((a[0] for a in _acks(ack_file)), default=0)
                _power_cut(data_dir, max(acked, durable_floor), rng)
                stats["power cuts"] += 1
            report = WriteAheadLog.inspect(data_dir / "wal") if (data_dir / "wal").exists() \
                else None
            if report is not None and report.truncated_bytes:
                stats["torn tails"] += 1
            node = Node(config)  # type: ignore[arg-type]
            node.start()  # must recover: a torn tail is cut, never refused
            node.stop()
            with WriteAheadLog(data_dir / "wal") as wal:
                durable_floor = wal.last_sequence  # the parent's stop synced all of it
            replica.catch_up(data_dir)
            assert node.engine.commitment.root == replica.commitment.root
            assert canonical_root(node.engine.state) == canonical_root(replica.state)
            assert node.engine.admission.snapshot() == replica.admission.snapshot()
            acks = _acks(ack_file)
            for sequence, signer, nonce, code in acks[checked:]:
                assert replica.entries.get(sequence) == (signer, nonce, code), (
                    f"round {round_index}: acknowledged entry {sequence} is not in the log")
            stats["rounds that acknowledged"] += len(acks) > checked
            checked = len(acks)
    finally:
        zygote.close()
    stats["acknowledged"] = checked
    stats["batches"] = len(replica.roots)
    stats["snapshots kept"] = len(list((data_dir / "snapshots").glob("*.rbs")))
    print(f"crash recovery, {kills} kills: {stats}")
    errors = tmp_path / ERRORS_FILE
    assert not errors.exists(), errors.read_text()
    assert checked > kills, "the children acknowledged orders"
    assert len(replica.roots) > kills


def test_quick_crash_recovery(tmp_path: Path) -> None:
    _run(QUICK_KILLS, tmp_path)


@pytest.mark.slow
def test_crash_recovery_at_100_kill_points(tmp_path: Path) -> None:
    _run(KILLS, tmp_path)
