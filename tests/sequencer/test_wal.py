"""Write-ahead log: round trips, group commit, rotation, and recovery from torn or corrupted
files (torn tails are cut, damage a crash cannot explain refuses to open)."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest

from rollbook.sequencer import wal as wal_module
from rollbook.sequencer.wal import (
    PENDING_RECORDS_MAX,
    RECORD_HEADER_BYTES,
    RECORD_PAYLOAD_BYTES_MAX,
    WalCorruptError,
    WalError,
    WalFullError,
    WriteAheadLog,
)


def payload(sequence: int) -> bytes:
    """A distinct payload per sequence, of varying length (0 to 90 bytes)."""
    return hashlib.sha256(sequence.to_bytes(8, "big")).digest()[:sequence % 31] * 3


def write_groups(directory: Path, sizes: list[int], **options: int) -> list[int]:
    """Commit one group per size; returns the sequence each group ends at."""
    ends = []
    with WriteAheadLog(directory, **options) as log:
        for size in sizes:
            first = log.last_sequence + 1
            log.append([payload(s) for s in range(first, first + size)])
            ends.append(log.commit())
    return ends


def contents(directory: Path, **options: int) -> list[tuple[int, bytes]]:
    with WriteAheadLog(directory, **options) as log:
        return list(log.read_from(log.first_sequence))


def expected(last: int) -> list[tuple[int, bytes]]:
    return [(s, payload(s)) for s in range(1, last + 1)]


def record_bytes(sequence: int) -> int:
    return RECORD_HEADER_BYTES + len(payload(sequence))


def offset_of(sequence: int) -> int:
    """Byte offset of a record in a single-segment log starting at 1."""
    return sum(record_bytes(s) for s in range(1, sequence))


def segment(directory: Path) -> Path:
    (only,) = sorted(directory.glob("*.wal"))
    return only


# --- round trips ---------------------------------------------------------------------------------

def test_round_trip_and_reopen_after_clean_close(tmp_path: Path) -> None:
    ends = write_groups(tmp_path, [1, 5, 64, 3])
    assert ends == [1, 6, 70, 73]
    assert contents(tmp_path) == expected(73)
    with WriteAheadLog(tmp_path) as log:
        assert log.recovery.truncated_bytes == 0 and log.recovery.last_sequence == 73
        assert log.durable_sequence == log.last_sequence == 73
        assert log.append([b"next"]) == range(74, 75)
        assert list(log.read_from(70))[-1] == (73, payload(73))  # read stops at durable
    # close committed the pending record
    assert contents(tmp_path)[-1] == (74, b"next")


def test_empty_log(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path) as log:
        assert (log.first_sequence, log.last_sequence, log.durable_sequence) == (1, 0, 0)
        assert list(log.read_from(1)) == []
        assert log.commit() == 0
    assert contents(tmp_path) == []


def test_group_commit_is_one_sync(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path) as log:
        for i in range(100):
            log.append([payload(i + 1)])
        assert log.durable_sequence == 0
        log.commit()
        assert log.syncs == 1 and log.durable_sequence == 100


def test_concurrent_producers_share_syncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_sync = wal_module._sync_file

    def slow_sync(fd: int) -> None:  # a disk slow enough for commits to queue up
        time.sleep(0.004)
        real_sync(fd)

    monkeypatch.setattr(wal_module, "_sync_file", slow_sync)
    producers, commits_each = 8, 15
    acked: list[list[int]] = [[] for _ in range(producers)]
    with WriteAheadLog(tmp_path) as log:
        def produce(index: int) -> None:
            for i in range(commits_each):
                (sequence,) = log.append([b"%d/%d" % (index, i)])
                log.wait_durable(sequence)
                assert log.durable_sequence >= sequence
                acked[index].append(sequence)

        threads = [threading.Thread(target=produce, args=(i,)) for i in range(producers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        syncs = log.syncs
    total = producers * commits_each
    assert sorted(s for each in acked for s in each) == list(range(1, total + 1))
    assert syncs < total // 2, f"{syncs} syncs for {total} commits"
    assert {p for _, p in contents(tmp_path)} == {
        b"%d/%d" % (i, j) for i in range(producers) for j in range(commits_each)}


# --- torn tails ----------------------------------------------------------------------------------

def test_torn_last_record_is_cut_at_every_offset(tmp_path: Path) -> None:
    write_groups(tmp_path, [3, 4, 1])  # the last record is a group of its own (sequence 8)
    path = segment(tmp_path)
    original = path.read_bytes()
    start = offset_of(8)
    assert len(original) == start + record_bytes(8)
    for cut in range(start, len(original)):
        path.write_bytes(original[:cut])
        with WriteAheadLog(tmp_path) as log:
            assert log.recovery.last_sequence == 7
            assert log.recovery.truncated_bytes == cut - start
            assert list(log.read_from(1)) == expected(7)
        assert path.stat().st_size == start
    # and the log goes on from there
    path.write_bytes(original[:start + 5])
    write_groups(tmp_path, [2])
    assert contents(tmp_path) == expected(9)


def test_incomplete_last_group_is_cut_whole_at_every_offset(tmp_path: Path) -> None:
    write_groups(tmp_path, [2, 3])  # last group: sequences 3, 4, 5
    path = segment(tmp_path)
    original = path.read_bytes()
    group_start = offset_of(3)
    for cut in range(group_start, len(original)):
        path.write_bytes(original[:cut])
        with WriteAheadLog(tmp_path) as log:
            # a group is atomic: records 3-4 may be whole, but their sync never returned
            assert log.recovery.last_sequence == 2
            whole = sum(offset_of(s + 1) <= cut for s in (3, 4))
            assert log.recovery.truncated_records == whole
            assert list(log.read_from(1)) == expected(2)
        assert path.stat().st_size == group_start


def test_last_record_failing_its_checksum_is_cut(tmp_path: Path) -> None:
    write_groups(tmp_path, [2, 1])
    path = segment(tmp_path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    assert contents(tmp_path) == expected(2)


def test_hole_inside_the_last_group_is_cut(tmp_path: Path) -> None:
    # pages of the in-flight group reach the disk in any order: a record may be missing while
    # later records of the same group are intact
    write_groups(tmp_path, [2, 4])  # last group: 3..6
    path = segment(tmp_path)
    data = bytearray(path.read_bytes())
    start = offset_of(4)
    data[start:start + record_bytes(4)] = bytes(record_bytes(4))
    path.write_bytes(bytes(data))
    with WriteAheadLog(tmp_path) as log:
        assert log.recovery.last_sequence == 2
    assert contents(tmp_path) == expected(2)


def test_junk_after_the_last_group_is_cut(tmp_path: Path) -> None:
    write_groups(tmp_path, [3])
    path = segment(tmp_path)
    with path.open("ab") as file:
        file.write(b"RBW1" + bytes(100))
    assert contents(tmp_path) == expected(3)


# --- damage a crash cannot explain ----------------------------------------------------------------

def refuses(directory: Path, match: str, required_through_sequence: int = 0) -> None:
    before = {p: p.read_bytes() for p in directory.glob("*.wal")}
    with pytest.raises(WalCorruptError, match=match):
        WriteAheadLog(directory, required_through_sequence=required_through_sequence)
    with pytest.raises(WalCorruptError, match=match):
        WriteAheadLog.inspect(directory, required_through_sequence=required_through_sequence)
    assert {p: p.read_bytes() for p in directory.glob("*.wal")} == before, "nothing was cut"


def test_corruption_in_the_middle_refuses_to_open(tmp_path: Path) -> None:
    write_groups(tmp_path, [2, 3, 2])
    path = segment(tmp_path)
    data = bytearray(path.read_bytes())
    data[offset_of(4) + RECORD_HEADER_BYTES] ^= 0xFF  # a payload byte of a synced group
    path.write_bytes(bytes(data))
    refuses(tmp_path, r"00000000000000000001\.wal@.*corruption in the middle.*refusing to open")
    # a lost record followed by later groups is the same
    data = bytearray(write_and_read(tmp_path / "b", [2, 3, 2]))
    del data[offset_of(3):offset_of(4)]
    (tmp_path / "b" / "00000000000000000001.wal").write_bytes(bytes(data))
    refuses(tmp_path / "b", "refusing to open")


def write_and_read(directory: Path, sizes: list[int]) -> bytes:
    write_groups(directory, sizes)
    return segment(directory).read_bytes()


def test_checksum_valid_record_out_of_sequence_refuses(tmp_path: Path) -> None:
    data = write_and_read(tmp_path, [2, 1])
    segment(tmp_path).write_bytes(data + data[offset_of(3):])  # sequence 3 twice
    refuses(tmp_path, "out of sequence")


def test_acknowledged_sequence_is_never_truncated(tmp_path: Path) -> None:
    # damage to the last synced group with nothing after looks like a torn tail; the caller's
    # knowledge of what was acknowledged turns it into a refusal
    write_groups(tmp_path, [2, 1])
    path = segment(tmp_path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    refuses(tmp_path, "sequence 3 was acknowledged", required_through_sequence=3)
    assert WriteAheadLog.inspect(tmp_path).last_sequence == 2
    assert contents(tmp_path, required_through_sequence=2) == expected(2)


# --- segments ------------------------------------------------------------------------------------

SMALL = {"segment_bytes_target": 4096}


def test_rotation_reading_across_segments_and_removal(tmp_path: Path) -> None:
    write_groups(tmp_path, [20] * 30, **SMALL)
    paths = sorted(tmp_path.glob("*.wal"))
    assert len(paths) > 3
    assert contents(tmp_path, **SMALL) == expected(600)
    with WriteAheadLog(tmp_path, **SMALL) as log:
        assert list(log.read_from(333)) == expected(600)[332:]
        second = int(paths[2].stem)
        assert log.remove_segments_before(second + 1) == 2
        assert log.first_sequence == second
        with pytest.raises(ValueError, match="removed"):
            list(log.read_from(second - 1))
        log.append([b"x"])
    assert contents(tmp_path, **SMALL) == [*expected(600)[second - 1:], (601, b"x")]


def test_damage_in_an_earlier_segment_refuses(tmp_path: Path) -> None:
    write_groups(tmp_path, [20] * 12, **SMALL)
    first = sorted(tmp_path.glob("*.wal"))[0]
    data = first.read_bytes()
    first.write_bytes(data[:-3])  # torn, but later segments exist: not a crash
    refuses(tmp_path, "followed by later segments")


def test_missing_segment_refuses(tmp_path: Path) -> None:
    write_groups(tmp_path, [20] * 12, **SMALL)
    sorted(tmp_path.glob("*.wal"))[1].unlink()
    refuses(tmp_path, "missing or extra segment")


# --- limits and failure --------------------------------------------------------------------------

def test_record_and_pending_limits(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path) as log:
        with pytest.raises(ValueError, match="exceeds"):
            log.append([bytes(RECORD_PAYLOAD_BYTES_MAX + 1)])
        log.append([bytes(RECORD_PAYLOAD_BYTES_MAX), b""])
        log.append([b""] * (PENDING_RECORDS_MAX - 2))
        with pytest.raises(WalFullError):
            log.append([b""])
        log.commit()
        log.append([b""])
        with pytest.raises(ValueError, match="never appended"):
            log.wait_durable(log.last_sequence + 1)
        with pytest.raises(TypeError):
            log.append(["text"])  # type: ignore[list-item]


def test_one_writer_per_directory(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path), pytest.raises(WalError, match="locked"):
        WriteAheadLog(tmp_path)
    WriteAheadLog(tmp_path).close()  # released on close


def test_failed_sync_poisons_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_groups(tmp_path, [2])

    def failing_sync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    log = WriteAheadLog(tmp_path)
    monkeypatch.setattr(wal_module, "_sync_file", failing_sync)
    log.append([payload(3)])
    with pytest.raises(WalError, match="unusable until reopened"):
        log.commit()
    assert log.durable_sequence == 2
    with pytest.raises(WalError, match="reopen"):
        log.append([b"more"])
    log.close()
    monkeypatch.undo()
    with WriteAheadLog(tmp_path) as reopened:  # recovery decides; record 3 was never acked
        assert reopened.recovery.last_sequence >= 2
