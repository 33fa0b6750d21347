"""A node snapshot written by the compiled build loads in the pure build, and vice versa.

The builds pickle the state differently underneath (a compiled class has no ``__slots__``), so
``node.snapshot`` reduces every state class to its attributes by name; a loss there would show
as a different canonical root (it once loaded a pure snapshot as an empty ``State``). Skipped
without the mypyc build.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_determinism import STREAM_SEED, _StreamBuilder

from replicas import CHILD_TIMEOUT_S
from rollbook._pure import is_compiled
from rollbook.commitment import canonical_root
from rollbook.node.snapshot import NodeSnapshot, dumps_snapshot, loads_snapshot

pytestmark = pytest.mark.skipif(not is_compiled(), reason="needs the mypyc-compiled build")

BATCHES = 40

# in a pure process: load the compiled build's snapshot, print its roots, write it back
CHILD = r"""
import sys
from pathlib import Path
from rollbook._pure import is_compiled
from rollbook.commitment import canonical_root
from rollbook.node.snapshot import dumps_snapshot, loads_snapshot
assert not is_compiled()
snapshot = loads_snapshot(Path(sys.argv[1]).read_bytes())
snapshot.commitment.check(snapshot.state)
print(canonical_root(snapshot.state).hex(), snapshot.commitment.root.hex())
Path(sys.argv[2]).write_bytes(dumps_snapshot(snapshot))
"""


def test_snapshots_load_across_builds(tmp_path: Path) -> None:
    stream = _StreamBuilder(STREAM_SEED)
    stream.build(BATCHES)
    state, commitment = stream.state, stream.commitment
    expected = canonical_root(state)
    compiled_path, pure_path = tmp_path / "compiled.snapshot", tmp_path / "pure.snapshot"
    compiled_path.write_bytes(dumps_snapshot(NodeSnapshot(
        "test", b"", state.batch_index, commitment.root, 0, state, commitment, {})))

    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(compiled_path), str(pure_path)], capture_output=True,
        text=True, env={**os.environ, "ROLLBOOK_PURE": "1"}, timeout=CHILD_TIMEOUT_S,
        check=False)
    assert child.returncode == 0, child.stderr
    assert child.stdout.split() == [expected.hex(), commitment.root.hex()]

    restored = loads_snapshot(pure_path.read_bytes())
    restored.commitment.check(restored.state)
    assert canonical_root(restored.state) == expected
    assert restored.commitment.root == commitment.root
    assert restored.state.next_order_id == state.next_order_id
