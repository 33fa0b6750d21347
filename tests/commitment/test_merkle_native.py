"""The C hashing loops (``rollbook.commitment._native``) against the pure-Python reference loops.

``MerkleTree(native=False)`` runs the pure-Python loops, the reference; ``native=True`` the C
ones. The same batches go to both and every stored level must be byte-identical after each one
(not only the roots: a wrong node in a subtree no batch revisits would hide behind a right root
for a while). The C functions' own checks are tested directly: a rejected call writes nothing.

``scripts/test.sh`` sets ``ROLLBOOK_REQUIRE_NATIVE=1``, so that a CI run where the extension
failed to build fails here instead of silently testing only the reference.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollbook.commitment import merkle
from rollbook.commitment.merkle import NATIVE_AVAILABLE, MerkleTree

needs_native = pytest.mark.skipif(not NATIVE_AVAILABLE,
                                  reason="rollbook.commitment._native is not built")


def test_the_extension_is_built_where_required() -> None:
    if os.environ.get("ROLLBOOK_REQUIRE_NATIVE") == "1":
        assert NATIVE_AVAILABLE, "setup.py did not build rollbook.commitment._native"
    assert MerkleTree(8, native=False)._native is False
    assert MerkleTree(8)._native is NATIVE_AVAILABLE


def test_requiring_native_where_it_is_missing_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(merkle, "NATIVE_AVAILABLE", False)
    with pytest.raises(RuntimeError, match="not built"):
        MerkleTree(8, native=True)
    assert MerkleTree(8)._native is False  # the default falls back to the reference


def _levels(tree: MerkleTree) -> list[bytes]:
    return [bytes(level) for level in tree._levels]


def _assert_same(native: MerkleTree, reference: MerkleTree) -> None:
    assert _levels(native) == _levels(reference)
    assert native.root() == reference.root()
    assert native.size == reference.size


payloads = st.one_of(st.none(), st.binary(max_size=300))


@needs_native
@settings(max_examples=60, deadline=None)
@given(depth=st.integers(min_value=1, max_value=12),
       batches=st.lists(st.dictionaries(st.integers(min_value=0, max_value=600), payloads,
                                        max_size=40), max_size=6),
       data=st.data())
def test_native_and_reference_store_the_same_levels(depth: int,
                                                    batches: list[dict[int, bytes | None]],
                                                    data: st.DataObject) -> None:
    native, reference = MerkleTree(depth, native=True), MerkleTree(depth, native=False)
    for batch in batches:
        batch = {index % (1 << depth): payload for index, payload in batch.items()}
        assert native.set_leaves(batch) == reference.set_leaves(batch)
        _assert_same(native, reference)
    # a contiguous run (the build path) and a single leaf (the path walk) as well
    start = data.draw(st.integers(min_value=0, max_value=(1 << depth) - 1))
    stop = data.draw(st.integers(min_value=start + 1, max_value=1 << depth))
    run = {index: index.to_bytes(4, "big") for index in range(start, stop)}
    assert native.set_leaves(run) == reference.set_leaves(run)
    _assert_same(native, reference)
    single = {start: b"single"}
    assert native.set_leaves(single) == reference.set_leaves(single) == depth + 1
    _assert_same(native, reference)


@needs_native
def test_native_matches_reference_at_depth_32_with_scattered_leaves() -> None:
    native, reference = MerkleTree(32, native=True), MerkleTree(32, native=False)
    dense = {index: index.to_bytes(8, "big") for index in range(5_000)}
    scattered = {index * 37 % 5_000: b"x" * (index % 97) for index in range(0, 5_000, 3)}
    for batch in (dense, scattered, {4_999: None, 0: None}):
        assert native.set_leaves(batch) == reference.set_leaves(batch)
        _assert_same(native, reference)
    assert native.proof(1234) == reference.proof(1234)


@needs_native
def test_copy_and_pickle_keep_the_hashing_loops() -> None:
    tree = MerkleTree(8, native=True)
    tree.set_leaves({1: b"a"})
    assert tree.copy()._native is True
    restored = pickle.loads(pickle.dumps(tree))
    assert restored._native is True
    assert restored.root() == tree.root()


def test_a_tree_pickled_with_native_loops_runs_without_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    tree = MerkleTree(8)
    tree.set_leaves({1: b"a", 5: b"b"})
    data = pickle.dumps(tree)
    reference = MerkleTree(8, native=False)
    reference.set_leaves({1: b"a", 5: b"b", 9: b"c"})
    monkeypatch.setattr(merkle, "_NATIVE", None)  # as on a machine where it is not built
    restored = pickle.loads(data)
    restored.set_leaves({9: b"c"})
    assert restored.root() == reference.root()


# --- the C functions' own checks: rejected calls write nothing --------------------------------

def _native_module():  # type: ignore[no-untyped-def]
    from rollbook.commitment import _native

    return _native


@needs_native
def test_write_leaves_hashes_like_hash_leaf() -> None:
    native = _native_module()
    level = bytearray(32 * 4)
    native.write_leaves(level, [0, 2, 3], [b"", b"abc", None])
    assert level[0:32] == hashlib.sha256(b"\x00").digest()
    assert level[32:64] == bytes(32)  # untouched
    assert level[64:96] == hashlib.sha256(b"\x00abc").digest()
    assert level[96:128] == bytes(32)  # None: the empty leaf


@needs_native
@pytest.mark.parametrize(("indices", "values", "error"), [
    ([1, 0], [b"a", b"b"], ValueError),  # not ascending
    ([1, 1], [b"a", b"b"], ValueError),  # repeated
    ([-1], [b"a"], ValueError),
    ([0, 4], [b"a", b"b"], IndexError),  # beyond the level
    ([0, 1], [b"a"], ValueError),  # one payload per index
    ([0], ["text"], TypeError),
    ([0], [bytearray(b"a")], TypeError),
    ([0.0], [b"a"], TypeError),
])
def test_write_leaves_rejects_and_writes_nothing(indices: list[object], values: list[object],
                                                 error: type[Exception]) -> None:
    native = _native_module()
    level = bytearray(b"\x07" * 32 * 4)
    with pytest.raises(error):
        native.write_leaves(level, indices, values)
    assert level == bytearray(b"\x07" * 32 * 4)


@needs_native
def test_rehash_parents_returns_distinct_parents_and_hashes_them() -> None:
    native = _native_module()
    children = bytearray(range(256)) * 1  # 4 pairs of 32-byte children
    nodes = bytearray(32 * 4)
    assert native.rehash_parents(children, nodes, [0, 1, 5, 6]) == [0, 2, 3]
    for parent in (0, 2, 3):
        expected = hashlib.sha256(bytes(children[64 * parent:64 * parent + 64])).digest()
        assert nodes[32 * parent:32 * parent + 32] == expected
    assert nodes[32:64] == bytes(32)


@needs_native
@pytest.mark.parametrize("indices", [[3, 2], [0, 0], [-2], [8], [0, 2**62]])
def test_rehash_parents_rejects_and_writes_nothing(indices: list[int]) -> None:
    native = _native_module()
    children, nodes = bytearray(32 * 8), bytearray(b"\x05" * 32 * 4)
    with pytest.raises((ValueError, IndexError, OverflowError)):
        native.rehash_parents(children, nodes, indices)
    assert nodes == bytearray(b"\x05" * 32 * 4)


@needs_native
@pytest.mark.parametrize(("start", "stop", "error"), [
    (2, 1, ValueError), (-1, 2, ValueError), (0, 5, IndexError)])
def test_rehash_run_rejects_and_writes_nothing(start: int, stop: int,
                                               error: type[Exception]) -> None:
    native = _native_module()
    children, nodes = bytearray(32 * 8), bytearray(b"\x05" * 32 * 4)
    with pytest.raises(error):
        native.rehash_run(children, nodes, start, stop)
    assert nodes == bytearray(b"\x05" * 32 * 4)


@needs_native
@pytest.mark.parametrize(("updates", "highest"), [
    ({}, -1),
    ({3: b"a", 0: None, 7: b""}, 7),
    ({-1: b"a"}, -1),  # below the range
    ({8: b"a"}, -1),  # at the writable bound
    ({2**70: b"a"}, -1),  # beyond any C integer: refused, not an OverflowError
    ({True: b"a"}, -1),  # not exactly an int
    ({1: "text"}, -1),
    ({1: bytearray(b"a")}, -1),
    ({1: b"x" * 9}, -1),  # a payload over the limit
])
def test_check_leaves_passes_only_what_the_reference_checks_pass(
        updates: dict[object, object], highest: int) -> None:
    assert _native_module().check_leaves(updates, 8, 8) == highest


@needs_native
def test_update_leaves_rejects_levels_too_short_and_writes_nothing() -> None:
    native = _native_module()
    levels = [bytearray(b"\x07" * 32 * 4), bytearray(b"\x07" * 32 * 2), bytearray(32)]
    before = [bytes(level) for level in levels]
    with pytest.raises(IndexError):
        native.update_leaves(levels, {5: b"a"})  # leaf 5 is not stored
    with pytest.raises(TypeError):
        native.update_leaves(levels, {1: "text"})
    assert [bytes(level) for level in levels] == before


@needs_native
@pytest.mark.parametrize("bad", [{-1: b"a"}, {1 << 8: b"a"}, {1.0: b"a"}, {1: "text"},
                                 {1: b"x" * (merkle.LEAF_PAYLOAD_BYTES_MAX + 1)}])
def test_a_batch_the_c_check_refuses_raises_as_the_reference_does(
        bad: dict[int, bytes | None]) -> None:
    native, reference = MerkleTree(8, native=True), MerkleTree(8, native=False)
    native.set_leaves({0: b"kept"})
    reference.set_leaves({0: b"kept"})
    with pytest.raises(Exception) as expected:
        reference.set_leaves(bad)
    with pytest.raises(type(expected.value), match=re.escape(str(expected.value))):
        native.set_leaves(bad)
    _assert_same(native, reference)
