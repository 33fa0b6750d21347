"""What the node writes into the write-ahead log: batch open, entry, batch close.

Each WAL record's payload (``rollbook.sequencer.wal`` frames, checksums and orders them) is::

    version (u8 = 1) | tag (u8) | body
    tag 1, batch open:  index (u64) | timestamp_ms (u64) | previous_root (32)
    tag 2, entry:       kind (u8) | length (u16) | body   (the published entry, batch_data)
    tag 3, batch close: index (u64) | root (32) | entry count (u32) | deposit count (u64) |
                        forced count (u64)   (the globals leaf's L1 counters after the batch)

Invariants: the log is a sequence of batches, each ``open, entry*, close``, with consecutive
indices; at most the last batch is open (no close yet). An entry record holds exactly the bytes
the batch publishes for that entry, so a batch's data is its entries' records concatenated
behind the header, and replaying the log runs the same ``BatchExecution`` as
``batch_data.replay_batch``. The close record's root is what recovery must recompute: a
different root means the code or the log changed, and the node refuses to start.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rollbook.sequencer.batch_data import Entry, decode_entry

__all__ = [
    "JOURNAL_VERSION",
    "BatchClose",
    "BatchOpen",
    "EntryRecord",
    "JournalError",
    "JournalRecord",
    "decode_record",
    "encode_close",
    "encode_entry_record",
    "encode_open",
]

JOURNAL_VERSION = 1
TAG_OPEN = 1
TAG_ENTRY = 2
TAG_CLOSE = 3
_PREFIX = struct.Struct(">BB")
_OPEN = struct.Struct(">QQ32s")
_CLOSE = struct.Struct(">Q32sIQQ")


class JournalError(ValueError):
    """A WAL payload that is not a journal record (the log holds something else)."""


@dataclass(frozen=True, slots=True)
class BatchOpen:
    index: int
    timestamp_ms: int
    previous_root: bytes


@dataclass(frozen=True, slots=True)
class EntryRecord:
    entry: Entry
    data: bytes  # the published entry bytes (kind | length | body)


@dataclass(frozen=True, slots=True)
class BatchClose:
    index: int
    root: bytes
    entries: int
    deposit_count: int
    forced_count: int


JournalRecord = BatchOpen | EntryRecord | BatchClose


def encode_open(index: int, timestamp_ms: int, previous_root: bytes) -> bytes:
    return _PREFIX.pack(JOURNAL_VERSION, TAG_OPEN) + _OPEN.pack(index, timestamp_ms,
                                                                 previous_root)


def encode_entry_record(entry_data: bytes) -> bytes:
    """``entry_data`` is ``batch_data.encode_entry(entry)``."""
    return _PREFIX.pack(JOURNAL_VERSION, TAG_ENTRY) + entry_data


def encode_close(index: int, root: bytes, entries: int, deposit_count: int,
                 forced_count: int) -> bytes:
    return _PREFIX.pack(JOURNAL_VERSION, TAG_CLOSE) + _CLOSE.pack(index, root, entries,
                                                                   deposit_count, forced_count)


def decode_record(payload: bytes) -> JournalRecord:
    if len(payload) < _PREFIX.size:
        raise JournalError("record shorter than its prefix")
    version, tag = _PREFIX.unpack_from(payload)
    if version != JOURNAL_VERSION:
        raise JournalError(f"unsupported journal version {version}")
    body = memoryview(payload)[_PREFIX.size:]
    if tag == TAG_OPEN:
        if len(body) != _OPEN.size:
            raise JournalError("batch open record length")
        index, timestamp_ms, previous_root = _OPEN.unpack(body)
        return BatchOpen(index, timestamp_ms, previous_root)
    if tag == TAG_ENTRY:
        entry, end = decode_entry(body)
        if end != len(body):
            raise JournalError("trailing bytes after an entry")
        return EntryRecord(entry, bytes(body))
    if tag == TAG_CLOSE:
        if len(body) != _CLOSE.size:
            raise JournalError("batch close record length")
        return BatchClose(*_CLOSE.unpack(body))
    raise JournalError(f"unknown journal tag {tag}")

