"""Cross-process replay: the same encoded batches in fresh interpreters with different
``PYTHONHASHSEED`` values must print the same line after every batch.

Shared by the perpetual and options determinism tests; each supplies its stream, the child
program (which prints a hash probe, then one line per batch) and the lines it expects.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from rollbook.execution import Batch
from rollbook.execution.encoding import encode_batch

__all__ = ["CHILD_TIMEOUT_S", "assert_pure_replica_agrees", "assert_replicas_agree",
           "replay_child"]

CHILD_TIMEOUT_S = 120

_REPLAY_CHILD = r"""
import hashlib, sys
from rollbook.commitment import apply_and_commit, genesis_commitment
from rollbook.execution import {config_factory}, genesis_state
from rollbook.execution.encoding import decode_batch

print(hash("rollbook hash randomisation probe"))
state = genesis_state({config_factory}((bytes.fromhex(sys.argv[2]),)))
commitment = genesis_commitment(state)
data = open(sys.argv[1], "rb").read()
offset = 0
while offset < len(data):
    length = int.from_bytes(data[offset:offset + 4], "big")
    batch = decode_batch(data[offset + 4:offset + 4 + length])
    offset += 4 + length
    receipts, root = apply_and_commit(state, commitment, batch)
    print(root.hex(), hashlib.sha256(repr(receipts).encode()).hexdigest())
"""


def replay_child(config_factory: str) -> str:
    """The child program: the venue from ``rollbook.execution.<config_factory>(oracle keys)``
    (the oracle key is its second argument), then the stream file (its first), printing the
    root and a digest of the receipts after every batch."""
    return _REPLAY_CHILD.format(config_factory=config_factory)


def _write_stream(batches: Sequence[Batch], path: Path) -> None:
    with path.open("wb") as out:
        for batch in batches:
            encoded = encode_batch(batch)
            out.write(len(encoded).to_bytes(4, "big") + encoded)


def assert_replicas_agree(batches: Sequence[Batch], expected_lines: Sequence[str], child: str,
                          child_args: Sequence[str], hash_seeds: Sequence[str],
                          tmp_path: Path, env: Mapping[str, str] | None = None) -> list[str]:
    """Run ``child`` once per hash seed on the encoded stream (with ``env`` added to this
    process's environment); assert every batch's line matches; return each child's hash probe
    (so the caller can check the seeds differed)."""
    path = tmp_path / "stream.bin"
    _write_stream(batches, path)
    children = []
    for hash_seed in hash_seeds:
        child_env = {**os.environ, **(env or {}), "PYTHONHASHSEED": hash_seed}
        children.append(subprocess.Popen(
            [sys.executable, "-c", child, str(path), *child_args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env))
    probes = []
    for hash_seed, process in zip(hash_seeds, children, strict=True):
        stdout, stderr = process.communicate(timeout=CHILD_TIMEOUT_S)
        assert process.returncode == 0, stderr
        probe, *lines = stdout.splitlines()
        probes.append(probe)
        assert len(lines) == len(expected_lines)
        for number, (line, expected) in enumerate(zip(lines, expected_lines, strict=True), 1):
            assert line == expected, f"PYTHONHASHSEED={hash_seed} diverged at batch {number}"
    return probes



_PURE_PROBE = "from rollbook._pure import is_compiled; print(is_compiled())"
# Receipts rendered without enum types: compiled, an IntEnum member stored in a field declared
# ``int`` (e.g. ``OrderCancelled.reason``) becomes a plain int, so ``repr`` differs between the
# builds although every value (and the state root) is equal.
_CANONICAL = r"""
import dataclasses, enum
def _canonical(value):
    if isinstance(value, enum.IntEnum):
        return int(value)
    if isinstance(value, (tuple, list)):
        return tuple(_canonical(v) for v in value)
    if dataclasses.is_dataclass(value):
        return (type(value).__name__,
                tuple(_canonical(getattr(value, f.name)) for f in dataclasses.fields(value)))
    return value
"""


def assert_pure_replica_agrees(batches: Sequence[Batch], expected_lines: Sequence[str],
                               child: str, child_args: Sequence[str], tmp_path: Path) -> None:
    """The differential test of the compiled build: a child with ``ROLLBOOK_PURE=1`` (checked
    to run interpreted) and a compiled child replay the stream and must print the same state
    root and receipts after every batch; the roots must also be ``expected_lines``' (computed
    in this compiled process). ``child`` prints ``repr(receipts)``'s digest; here the receipts
    are compared by value (``_CANONICAL``)."""
    pure_env = {**os.environ, "ROLLBOOK_PURE": "1"}
    probe = subprocess.run([sys.executable, "-c", _PURE_PROBE], capture_output=True, text=True,
                           env=pure_env, timeout=CHILD_TIMEOUT_S, check=True)
    assert probe.stdout.strip() == "False", probe.stderr
    assert "repr(receipts)" in child
    canonical_child = _CANONICAL + child.replace("repr(receipts)", "repr(_canonical(receipts))")
    compiled_lines = _replay(batches, canonical_child, child_args, tmp_path, {})
    assert [line.split()[0] for line in compiled_lines] == [
        line.split()[0] for line in expected_lines]
    assert_replicas_agree(batches, compiled_lines, canonical_child, child_args, ("0",),
                          tmp_path, env={"ROLLBOOK_PURE": "1"})


def _replay(batches: Sequence[Batch], child: str, child_args: Sequence[str], tmp_path: Path,
            env: Mapping[str, str]) -> list[str]:
    path = tmp_path / "stream-compiled.bin"
    _write_stream(batches, path)
    completed = subprocess.run([sys.executable, "-c", child, str(path), *child_args],
                               capture_output=True, text=True, env={**os.environ, **env},
                               timeout=CHILD_TIMEOUT_S, check=False)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.splitlines()[1:]  # after the hash probe
