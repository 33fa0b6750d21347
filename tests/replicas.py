"""Cross-process replay: the same encoded batches in fresh interpreters with different
``PYTHONHASHSEED`` values must print the same line after every batch.

Shared by the perpetual and options determinism tests; each supplies its stream, the child
program (which prints a hash probe, then one line per batch) and the lines it expects.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from rollbook.execution import Batch
from rollbook.execution.encoding import encode_batch

__all__ = ["CHILD_TIMEOUT_S", "assert_replicas_agree"]

CHILD_TIMEOUT_S = 120


def _write_stream(batches: Sequence[Batch], path: Path) -> None:
    with path.open("wb") as out:
        for batch in batches:
            encoded = encode_batch(batch)
            out.write(len(encoded).to_bytes(4, "big") + encoded)


def assert_replicas_agree(batches: Sequence[Batch], expected_lines: Sequence[str], child: str,
                          child_args: Sequence[str], hash_seeds: Sequence[str],
                          tmp_path: Path) -> list[str]:
    """Run ``child`` once per hash seed on the encoded stream; assert every batch's line
    matches; return each child's hash probe (so the caller can check the seeds differed)."""
    path = tmp_path / "stream.bin"
    _write_stream(batches, path)
    children = []
    for hash_seed in hash_seeds:
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        children.append(subprocess.Popen(
            [sys.executable, "-c", child, str(path), *child_args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
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
