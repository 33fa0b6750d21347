"""The verifier's snapshot files: its own replica at a final batch, and where to resume.

A verifier that restarts resumes from the newest snapshot it wrote itself, never from anything
the operator wrote (the operator is who it checks). File ``verifier-<batch, 20 digits>.rvs``::

    magic b"RBVERIFY" | format (u16) | payload length (u64) | sha256(payload) (32) | payload
    payload = JSON header length (u32) | JSON header | replica bytes (``Replica.dumps``)

The JSON header holds the chain id, the settlement contract, the genesis root and the venue
fingerprint the snapshot belongs to, the batch index and root, the resume position (the block
and log index of the batch's own ``BatchSubmitted`` event: every event after it is processed
again), the L1 book (deposits and forced requests not yet credited) and the counters.

Invariants:
- written to ``<name>.tmp``, fsynced, renamed, directory fsynced: a crash leaves the previous
  set of snapshots or the new one, never a torn file under a final name;
- read back only if the magic, the format, the length and the checksum hold and the header
  names this chain, contract, genesis root and venue: anything else (an operator's snapshot,
  a damaged file, another venue's) is refused with the reason, and the next older file is
  tried;
- only batches that were final on chain are snapshotted, so no dispute can ever reach below a
  snapshot and the resume position never needs an older state.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "SNAPSHOTS_KEPT",
    "SNAPSHOT_FORMAT",
    "SNAPSHOT_MAGIC",
    "SnapshotHeader",
    "VerifierSnapshotError",
    "list_snapshots",
    "read_snapshot",
    "write_snapshot",
]

SNAPSHOT_MAGIC = b"RBVERIFY"
# 2: the commitment keeps its leaves in a list, and state classes pickle through reducers (so
# that compiled and pure builds read each other's snapshots): a format-1 file is skipped
SNAPSHOT_FORMAT = 2
SNAPSHOT_SUFFIX = ".rvs"
SNAPSHOTS_KEPT = 2  # the newest and one before it, in case the newest is damaged
SNAPSHOT_BYTES_MAX = 1 << 36  # 64 GiB: a bound on what a header may claim
HEADER_JSON_BYTES_MAX = 1 << 30
_FRAME = struct.Struct(">8sHQ32s")
_JSON_LENGTH = struct.Struct(">I")
_NAME = re.compile(r"^verifier-(\d{20})\.rvs$")


class VerifierSnapshotError(Exception):
    """A snapshot file the verifier will not use; the message says why."""


@dataclass(frozen=True, slots=True)
class SnapshotHeader:
    """What a snapshot says about itself (see the module docstring)."""

    chain_id: int
    settlement_address: bytes
    genesis_root: bytes
    venue_fingerprint: bytes
    batch_index: int
    root: bytes
    resume_block: int
    resume_log_index: int
    book: dict[str, Any]
    counters: dict[str, int]

    def to_json(self) -> bytes:
        return json.dumps({
            "chain_id": self.chain_id, "settlement_address": self.settlement_address.hex(),
            "genesis_root": self.genesis_root.hex(),
            "venue_fingerprint": self.venue_fingerprint.hex(), "batch_index": self.batch_index,
            "root": self.root.hex(), "resume_block": self.resume_block,
            "resume_log_index": self.resume_log_index, "book": self.book,
            "counters": self.counters}, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> SnapshotHeader:
        try:
            raw = json.loads(data)
            return cls(int(raw["chain_id"]), bytes.fromhex(raw["settlement_address"]),
                       bytes.fromhex(raw["genesis_root"]),
                       bytes.fromhex(raw["venue_fingerprint"]), int(raw["batch_index"]),
                       bytes.fromhex(raw["root"]), int(raw["resume_block"]),
                       int(raw["resume_log_index"]), dict(raw["book"]),
                       {str(k): int(v) for k, v in raw["counters"].items()})
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise VerifierSnapshotError(f"unreadable snapshot header: {error!r}") from error


def _name(batch_index: int) -> str:
    return f"verifier-{batch_index:020d}{SNAPSHOT_SUFFIX}"


def write_snapshot(directory: Path, header: SnapshotHeader, replica_payload: bytes,
                   keep: int = SNAPSHOTS_KEPT) -> Path:
    """Write atomically; delete all but the ``keep`` newest snapshots; the final path."""
    directory.mkdir(parents=True, exist_ok=True)
    header_json = header.to_json()
    payload = _JSON_LENGTH.pack(len(header_json)) + header_json + replica_payload
    frame = _FRAME.pack(SNAPSHOT_MAGIC, SNAPSHOT_FORMAT, len(payload),
                        hashlib.sha256(payload).digest())
    final = directory / _name(header.batch_index)
    temporary = final.with_name(final.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(frame + payload)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, final)
    directory_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(directory_fd)
    finally:
        os.close(directory_fd)
    for _, old in list_snapshots(directory)[keep:]:
        old.unlink(missing_ok=True)
    return final


def list_snapshots(directory: Path) -> list[tuple[int, Path]]:
    """(batch index, path) of every snapshot file, newest first; stray ``.tmp`` files (a crash
    before the rename) are deleted."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        if path.name.endswith(SNAPSHOT_SUFFIX + ".tmp"):
            path.unlink(missing_ok=True)
            continue
        match = _NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found, reverse=True)


def read_snapshot(path: Path) -> tuple[SnapshotHeader, bytes]:
    """The header and the replica payload of ``path``; ``VerifierSnapshotError`` if the file is
    not an intact verifier snapshot."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise VerifierSnapshotError(f"{path.name}: cannot read ({error})") from error
    if len(data) < _FRAME.size:
        raise VerifierSnapshotError(f"{path.name}: shorter than its header")
    magic, version, length, digest = _FRAME.unpack_from(data)
    if magic != SNAPSHOT_MAGIC:
        raise VerifierSnapshotError(f"{path.name}: not a verifier snapshot (magic {magic!r}); "
                                    "the verifier resumes only from snapshots it wrote")
    if version != SNAPSHOT_FORMAT:
        raise VerifierSnapshotError(f"{path.name}: format {version}, expected {SNAPSHOT_FORMAT}")
    if length > SNAPSHOT_BYTES_MAX or len(data) != _FRAME.size + length:
        raise VerifierSnapshotError(f"{path.name}: length {len(data) - _FRAME.size}, header "
                                    f"says {length}")
    payload = data[_FRAME.size:]
    if hashlib.sha256(payload).digest() != digest:
        raise VerifierSnapshotError(f"{path.name}: checksum mismatch (damaged)")
    if len(payload) < _JSON_LENGTH.size:
        raise VerifierSnapshotError(f"{path.name}: no header")
    (json_length,) = _JSON_LENGTH.unpack_from(payload)
    if json_length > min(HEADER_JSON_BYTES_MAX, len(payload) - _JSON_LENGTH.size):
        raise VerifierSnapshotError(f"{path.name}: header length {json_length} out of range")
    start = _JSON_LENGTH.size
    header = SnapshotHeader.from_json(payload[start:start + json_length])
    named = _NAME.match(path.name)
    if named is not None and int(named.group(1)) != header.batch_index:
        raise VerifierSnapshotError(f"{path.name}: holds batch {header.batch_index}")
    return header, payload[start + json_length:]
