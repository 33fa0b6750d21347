"""Crash test: a writer is SIGKILLed at seeded random moments; every acknowledged record
survives.

The child (``wal_crash_writer.py``) runs three producers that append groups, wait for them to be
durable and only then print the sequence number (the acknowledgement). The parent kills it at
a random moment (sometimes while it is still starting up or recovering), sometimes also
simulates a power cut (the last segment loses an arbitrary suffix past the last acknowledged
record, and junk may follow, like a half-written sector), reopens the log and checks:

- the log opens (a torn tail is cut, never refused);
- sequences are consecutive from 1 and reach at least every acknowledged one;
- every record is intact (self-verifying payloads), and records up to the highest
  acknowledgement never change from one crash to the next.

``CRASHES`` kill points with a fixed seed keep it reproducible and under ~10 s.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from rollbook.sequencer.wal import WriteAheadLog, _parse

CRASHES = 20
SEED = 20240607
WRITER = Path(__file__).with_name("wal_crash_writer.py")


def intact(payload: bytes) -> bool:
    body, check = payload[:-8], payload[-8:]
    return hashlib.sha256(body).digest()[:8] == check


def end_of_group(directory: Path, sequence: int) -> tuple[Path, int] | None:
    """The segment holding ``sequence`` and the offset just past its commit group (None if
    in none). The whole group was synced by the flush that acknowledged ``sequence``."""
    segments = sorted(directory.glob("*.wal"))
    for position, path in enumerate(segments):
        following = int(segments[position + 1].stem) if position + 1 < len(segments) else None
        if int(path.stem) <= sequence and (following is None or sequence < following):
            data = path.read_bytes()
            offset = 0
            while True:
                record = _parse(data, offset)
                assert record is not None, "an acknowledged record is unreadable before reopen"
                if record.sequence >= sequence and record.ends_group:
                    return path, record.end
                offset = record.end
    return None


def simulate_power_cut(directory: Path, acked: int, rng: random.Random) -> None:
    """Lose an arbitrary suffix of the last segment past the last acknowledged group."""
    last = sorted(directory.glob("*.wal"))[-1]
    located = end_of_group(directory, acked) if acked else None
    floor = located[1] if located is not None and located[0] == last else 0
    size = last.stat().st_size
    cut = rng.randint(floor, size) if size > floor else floor
    data = last.read_bytes()[:cut]
    if rng.random() < 0.5:
        data += bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300)))
    last.write_bytes(data)


def run_writer(directory: Path, seed: int, rng: random.Random) -> tuple[int, int | None]:
    """Start, kill at a random moment; returns (highest acknowledged, recovered-at-start)."""
    child = subprocess.Popen([sys.executable, str(WRITER), str(directory), str(seed)],
                             stdout=subprocess.PIPE)
    assert child.stdout is not None
    ready: int | None = None
    if rng.random() < 0.2:
        time.sleep(rng.uniform(0, 0.12))  # kill while starting up or recovering
    else:
        line = child.stdout.readline().split()
        assert line[0] == b"ready", line
        ready = int(line[1])
        time.sleep(rng.uniform(0, 0.08))
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    acked = [int(line.split()[-1]) for line in child.stdout.read().splitlines()
             if line and not line.startswith(b"ready")]
    child.stdout.close()
    return max(acked, default=0), ready


def test_acknowledged_records_survive_sigkill(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    directory = tmp_path / "wal"
    highest_acked = 0
    acked_digests: list[bytes] = []  # digest of every record up to highest_acked, in order
    kills_after_acks = 0
    truncations = 0
    for crash in range(CRASHES):
        acked, ready = run_writer(directory, SEED + crash, rng)
        if ready is not None:
            assert ready >= highest_acked, "the writer's own recovery lost acknowledged records"
        kills_after_acks += acked > highest_acked
        highest_acked = max(highest_acked, acked)
        if directory.exists() and rng.random() < 0.5:
            simulate_power_cut(directory, highest_acked, rng)
        with WriteAheadLog(directory, segment_bytes_target=64 * 1024,
                           required_through_sequence=highest_acked) as log:
            records = list(log.read_from(1))
            truncations += log.recovery.truncated_bytes > 0
        assert [s for s, _ in records] == list(range(1, len(records) + 1))
        assert len(records) >= highest_acked
        assert all(intact(payload) for _, payload in records)
        digests = [hashlib.sha256(p).digest() for _, p in records[:highest_acked]]
        assert digests[:len(acked_digests)] == acked_digests, "an acknowledged record changed"
        acked_digests = digests
    assert kills_after_acks >= CRASHES // 4, "kills should land while records flow"
    assert len(list(directory.glob("*.wal"))) > 1, "the run should have rotated segments"
    assert truncations >= 3, "torn tails should have been cut"
    print(f"{CRASHES} kills, {kills_after_acks} after new acks, {truncations} tails cut, "
          f"{highest_acked} records acknowledged")
