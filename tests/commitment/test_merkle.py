"""The incremental SHA-256 Merkle tree: roots against from-scratch references, proofs, goldens.

The references below are deliberately naive and independent of ``rollbook.commitment.merkle``:
they recompute every level from the leaves on each call, with ``hashlib.sha256`` and their own
empty-subtree hashes. The golden empty roots are the well-known SHA-256 "zero hashes" (sha256
of two zero words, iterated) of Ethereum's beacon-chain deposit contract, so they also pin the
layout to an outside value.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollbook.bench.commit import measure_commitment
from rollbook.commitment.merkle import (
    DEPTH_MAX,
    EMPTY_LEAF_HASH,
    LEAF_PAYLOAD_BYTES_MAX,
    LEAF_SLOTS_MAX,
    MerkleTree,
    default_hashes,
    empty_root,
    hash_leaf,
    hash_node,
    verify_proof,
)

ZERO_WORD = bytes(32)

GOLDEN_EMPTY_ROOTS = {
    1: "f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b",
    2: "db56114e00fdd4c1f85c892bf35ac9a89289aaecb1ebd0a96cde606a748b5d71",
    3: "c78009fdf07fc56a11f122370658a353aaa542ed63e44c4bc15ff4cd105ab33c",
    4: "536d98837f2dd165a55d5eeae91485954472d56f246df256bf3cae19352a123c",
    8: "26846476fd5fc54a5d43385167c95144f2643f533cc85bb9d16b782f8d7db193",
    16: "8fe6b1689256c0d385f42f5bbe2027a22c1996e110ba97c171d3e5948de92beb",
    20: "cddba7b592e3133393c16194fac7431abf2f5485ed711db282183c819e08ebaa",
    32: "c6f67e02e6e4e1bdefb994c6098953f34636ba2b6ca20a4721d2b26a886722ff",
    64: "c885c236140249c9e1640e5e99fb972d81fbb31ea5e29fbdde063627f0d6bdc8",
}
GOLDEN_LEAVES: dict[int, bytes | None] = {
    0: b"alice", 1: b"bob", 2: b"", 7: bytes(63), 1000: b"last",
}
GOLDEN_ROOT_DEPTH_32 = "35d78274c3a69191237d865b992e648af8116075717df2d887d973d15d1b2208"
GOLDEN_LEAF_HASHES = {
    b"": "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    b"alice": "1255dacaa637f70cb606763d3035c7ef6b52eb2983c5cd906f714c3818d0dfaa",
}


# --- independent references -------------------------------------------------------------------

def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def reference_leaf_hash(payload: bytes) -> bytes:
    return sha256(b"\x00" + payload)


def reference_root_dense(depth: int, leaf_hashes: dict[int, bytes]) -> bytes:
    """Every one of the 2**depth leaves, halved level by level (small depths only)."""
    layer = [leaf_hashes.get(index, ZERO_WORD) for index in range(2**depth)]
    while len(layer) > 1:
        layer = [sha256(layer[i] + layer[i + 1]) for i in range(0, len(layer), 2)]
    return layer[0]


def reference_root_sparse(depth: int, leaf_hashes: dict[int, bytes]) -> bytes:
    """Only the non-empty nodes, each level rebuilt from the one below (any depth)."""
    empty = ZERO_WORD
    layer = dict(leaf_hashes)
    for _ in range(depth):
        parents = {index // 2 for index in layer}
        layer = {parent: sha256(layer.get(2 * parent, empty) + layer.get(2 * parent + 1, empty))
                 for parent in sorted(parents)}
        empty = sha256(empty + empty)
    return layer.get(0, empty)


class Model:
    """What the leaves should hold: index -> leaf hash, empty slots absent."""

    def __init__(self) -> None:
        self.leaf_hashes: dict[int, bytes] = {}

    def apply(self, batch: Mapping[int, bytes | None]) -> None:
        for index, payload in batch.items():
            if payload is None:
                self.leaf_hashes.pop(index, None)
            else:
                self.leaf_hashes[index] = reference_leaf_hash(payload)


def assert_every_proof(tree: MerkleTree, indices: list[int]) -> None:
    root = tree.root()
    for index in indices:
        proof = tree.proof(index)
        assert len(proof) == tree.depth
        assert verify_proof(root, tree.depth, index, tree.leaf_hash(index), proof)


# --- the layout: known vectors and goldens ------------------------------------------------------

def test_node_hash_is_the_deposit_contracts_zero_hash() -> None:
    # zero_hashes[1] of Ethereum's deposit contract: sha256 of two zero words
    assert hash_node(ZERO_WORD, ZERO_WORD).hex() == (
        "f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b")
    assert hash_node(ZERO_WORD, ZERO_WORD) == sha256(bytes(64))


def test_leaf_hash_layout() -> None:
    for payload, golden in GOLDEN_LEAF_HASHES.items():
        assert hash_leaf(payload).hex() == golden
        assert hash_leaf(payload) == reference_leaf_hash(payload)
    assert hash_leaf(b"") != EMPTY_LEAF_HASH  # an empty payload is not an empty slot


@pytest.mark.parametrize("depth", sorted(GOLDEN_EMPTY_ROOTS))
def test_empty_roots_are_golden(depth: int) -> None:
    assert empty_root(depth).hex() == GOLDEN_EMPTY_ROOTS[depth]
    assert MerkleTree(depth).root().hex() == GOLDEN_EMPTY_ROOTS[depth]
    assert reference_root_sparse(depth, {}).hex() == GOLDEN_EMPTY_ROOTS[depth]


def test_default_hashes_chain() -> None:
    defaults = default_hashes(5)
    assert len(defaults) == 6 and defaults[0] == EMPTY_LEAF_HASH
    for level in range(5):
        assert defaults[level + 1] == sha256(defaults[level] * 2)


def test_golden_root_of_fixed_leaves() -> None:
    tree = MerkleTree(32)
    tree.set_leaves(GOLDEN_LEAVES)
    model = Model()
    model.apply(GOLDEN_LEAVES)
    assert tree.root().hex() == GOLDEN_ROOT_DEPTH_32
    assert reference_root_sparse(32, model.leaf_hashes).hex() == GOLDEN_ROOT_DEPTH_32
    assert_every_proof(tree, [*GOLDEN_LEAVES, 3, 999, 1001, 2**32 - 1])


def test_empty_tree_stores_nothing() -> None:
    tree = MerkleTree(DEPTH_MAX)
    assert tree.size == 0 and tree.capacity == 2**DEPTH_MAX
    assert tree.storage_bytes < 4096  # 65 empty bytearrays
    assert tree.leaf_hash(2**DEPTH_MAX - 1) == EMPTY_LEAF_HASH
    assert_every_proof(tree, [0, 12345, 2**DEPTH_MAX - 1])


# --- incremental == from scratch ----------------------------------------------------------------

# None empties a slot; payloads of 56 bytes or more take two SHA-256 blocks
payloads = st.one_of(st.none(), st.binary(max_size=140))


@st.composite
def batches(draw: st.DrawFn, index_max: int) -> list[dict[int, bytes | None]]:
    index = st.integers(0, index_max)
    return draw(st.lists(st.dictionaries(index, payloads, max_size=12), min_size=1, max_size=8))


@settings(max_examples=300, deadline=None)
@given(depth=st.integers(1, 6), data=st.data())
def test_incremental_root_matches_full_reference(depth: int, data: st.DataObject) -> None:
    tree = MerkleTree(depth)
    model = Model()
    for batch in data.draw(batches(2**depth - 1)):
        tree.set_leaves(batch)
        model.apply(batch)
        assert tree.root() == reference_root_dense(depth, model.leaf_hashes)
    assert_every_proof(tree, list(range(2**depth)))


@settings(max_examples=150, deadline=None)
@given(sequence=batches(300))
def test_incremental_root_matches_sparse_reference_at_depth_32(
        sequence: list[dict[int, bytes | None]]) -> None:
    tree = MerkleTree(32)
    model = Model()
    touched: list[int] = []
    for batch in sequence:
        hashes = tree.set_leaves(batch)
        assert hashes <= len(batch) * (32 + 1)
        model.apply(batch)
        touched.extend(batch)
        assert tree.root() == reference_root_sparse(32, model.leaf_hashes)
    for index in touched:
        assert tree.leaf_hash(index) == model.leaf_hashes.get(index, EMPTY_LEAF_HASH)
    assert_every_proof(tree, sorted(set(touched)))


@settings(max_examples=100, deadline=None)
@given(batch=st.dictionaries(st.integers(0, 63), st.binary(max_size=8), min_size=1),
       seed=st.integers(0, 2**32))
def test_root_is_independent_of_batch_order_and_split(batch: dict[int, bytes], seed: int) -> None:
    in_order = MerkleTree(8)
    in_order.set_leaves(batch)
    items = list(batch.items())
    random.Random(seed).shuffle(items)
    shuffled = MerkleTree(8)
    shuffled.set_leaves(dict(items))
    one_by_one = MerkleTree(8)
    for index, payload in items:
        one_by_one.set_leaves({index: payload})
    via_hashes = MerkleTree(8)
    via_hashes.set_leaf_hashes({index: hash_leaf(payload) for index, payload in reversed(items)})
    assert in_order.root() == shuffled.root() == one_by_one.root() == via_hashes.root()


def test_updates_back_to_empty_restore_the_empty_root() -> None:
    tree = MerkleTree(10)
    tree.set_leaves({index: bytes([index % 256]) for index in range(100)})
    tree.set_leaves({index: b"overwritten" for index in range(0, 100, 3)})
    tree.set_leaves(dict.fromkeys(range(100)))
    assert tree.root() == empty_root(10)
    assert tree.size == 100  # slots in use only grow: the next append goes to 100
    tree.set_leaf_hashes({5: hash_leaf(b"x")})
    tree.set_leaf_hashes({5: EMPTY_LEAF_HASH})
    assert tree.root() == empty_root(10)


def test_contiguous_and_scattered_batches_agree() -> None:
    rng = random.Random(7)
    dense = {index: rng.randbytes(20) for index in range(513)}  # a run, with an odd end
    scattered = {rng.randrange(4096): rng.randbytes(20) for _ in range(200)}
    for first, second in ((dense, scattered), (scattered, dense)):
        tree = MerkleTree(16)
        tree.set_leaves(first)
        tree.set_leaves(second)
        model = Model()
        model.apply(first)
        model.apply(second)
        assert tree.root() == reference_root_sparse(16, model.leaf_hashes)
        assert_every_proof(tree, [0, 1, 511, 512, 513, *sorted(scattered)[:20]])


def test_hash_counts() -> None:
    tree = MerkleTree(3)
    assert tree.set_leaves({5: b"a"}) == 1 + 3
    assert tree.set_leaves({0: b"a", 1: b"b"}) == 2 + 3  # siblings share all three ancestors
    assert tree.set_leaf_hashes({0: hash_leaf(b"c"), 7: hash_leaf(b"d")}) == 2 + 2 + 1
    assert tree.set_leaves({}) == 0


def test_size_and_storage_grow_with_the_highest_index() -> None:
    tree = MerkleTree(32)
    tree.set_leaves({9: b"x"})
    assert tree.size == 10
    tree.set_leaves({3: b"y"})
    assert tree.size == 10
    tree.set_leaves({4095: None})
    assert tree.size == 4096
    assert 4096 * 64 <= tree.storage_bytes < 4096 * 64 * 2


# --- proofs that must fail ----------------------------------------------------------------------

@pytest.fixture
def tree() -> MerkleTree:
    t = MerkleTree(16)
    t.set_leaves({index: b"leaf %d" % index for index in range(0, 2000, 7)})
    return t


def test_wrong_leaf_index_root_or_sibling_fails(tree: MerkleTree) -> None:
    root, depth = tree.root(), tree.depth
    index = 700
    leaf, proof = tree.leaf_hash(index), tree.proof(index)
    assert verify_proof(root, depth, index, leaf, proof)
    assert not verify_proof(root, depth, index, hash_leaf(b"leaf 701"), proof)
    assert not verify_proof(root, depth, index, EMPTY_LEAF_HASH, proof)
    for wrong_index in (index ^ 1, index + 7, index ^ (1 << 15), index + 2**16, -1):
        assert not verify_proof(root, depth, wrong_index, leaf, proof)
    assert not verify_proof(hash_leaf(b"another root"), depth, index, leaf, proof)
    for level in range(depth):
        forged = list(proof)
        forged[level] = bytes(a ^ b for a, b in zip(forged[level], b"\x01" * 32, strict=True))
        assert not verify_proof(root, depth, index, leaf, tuple(forged))


def test_malformed_proofs_fail(tree: MerkleTree) -> None:
    root, depth, index = tree.root(), tree.depth, 14
    leaf, proof = tree.leaf_hash(index), tree.proof(index)
    assert not verify_proof(root, depth, index, leaf, proof[:-1])  # truncated
    assert not verify_proof(root, depth, index, leaf, ())
    assert not verify_proof(root, depth, index, leaf, (*proof, ZERO_WORD))  # extended
    assert not verify_proof(root, depth - 1, index, leaf, proof[:-1])  # a subtree's root
    assert not verify_proof(root, depth + 1, index, leaf, (*proof, ZERO_WORD))
    assert not verify_proof(root, 0, 0, leaf, ())
    assert not verify_proof(root, DEPTH_MAX + 1, index, leaf, proof)
    assert not verify_proof(root, depth, index, leaf, (*proof[:-1], proof[-1] + b"\x00"))
    assert not verify_proof(root + b"\x00", depth, index, leaf, proof)
    assert not verify_proof(root, depth, index, leaf[:31], proof)


def test_internal_node_is_not_a_leaf(tree: MerkleTree) -> None:
    """A level-1 node presented as a leaf at its own index needs depth - 1 siblings: rejected."""
    index = 700
    proof = tree.proof(index)
    node = hash_node(*((tree.leaf_hash(index), proof[0]) if index % 2 == 0
                       else (proof[0], tree.leaf_hash(index))))
    assert not verify_proof(tree.root(), tree.depth, index // 2, node, proof[1:])
    assert not verify_proof(tree.root(), tree.depth, index // 2, node, (*proof[1:], ZERO_WORD))


def test_empty_slot_has_a_non_inclusion_proof(tree: MerkleTree) -> None:
    for index in (1, 1999, 2**16 - 1):
        assert tree.leaf_hash(index) == EMPTY_LEAF_HASH
        assert verify_proof(tree.root(), tree.depth, index, EMPTY_LEAF_HASH, tree.proof(index))


# --- bounds and rejected batches ----------------------------------------------------------------

@pytest.mark.parametrize("depth", [0, -1, DEPTH_MAX + 1, True, 3.0, "8"])
def test_bad_depth_is_rejected(depth: object) -> None:
    with pytest.raises(ValueError, match="depth"):
        MerkleTree(depth)  # type: ignore[arg-type]


@pytest.mark.parametrize(("batch", "error"), [
    ({-1: b"x"}, IndexError),
    ({2**20: b"x"}, IndexError),
    ({True: b"x"}, TypeError),
    ({"3": b"x"}, TypeError),
    ({3: "x"}, TypeError),
    ({3: bytearray(b"x")}, TypeError),
    ({3: bytes(LEAF_PAYLOAD_BYTES_MAX + 1)}, ValueError),
])
def test_bad_batch_is_rejected_and_changes_nothing(batch: dict[object, object],
                                                   error: type[Exception]) -> None:
    tree = MerkleTree(20)
    tree.set_leaves({0: b"kept"})
    root, size = tree.root(), tree.size
    with pytest.raises(error):
        tree.set_leaves({5: b"fine", **batch})  # type: ignore[dict-item]
    assert (tree.root(), tree.size, tree.leaf_hash(5)) == (root, size, EMPTY_LEAF_HASH)


def test_bad_leaf_hash_is_rejected_and_changes_nothing() -> None:
    tree = MerkleTree(8)
    root = tree.root()
    for bad in (bytes(31), bytes(33), bytearray(32)):
        with pytest.raises(ValueError, match="32 bytes"):
            tree.set_leaf_hashes({1: hash_leaf(b"ok"), 2: bad})  # type: ignore[dict-item]
    assert tree.root() == root


def test_dense_storage_limit() -> None:
    tree = MerkleTree(32)
    with pytest.raises(IndexError, match="LEAF_SLOTS_MAX"):
        tree.set_leaves({LEAF_SLOTS_MAX: b"far"})
    assert tree.size == 0
    with pytest.raises(IndexError):
        tree.proof(2**32)
    with pytest.raises(IndexError):
        tree.leaf_hash(-1)


def test_bench_smoke() -> None:
    figures = measure_commitment(leaves=256, touched=16, seed=3)
    assert figures["depth"] == 32
    assert 16 < figures["hashes_per_root_update"] <= 16 * 33
    assert figures["root_update_ms"] > 0 and figures["leaf_updates_per_s"] > 0
