"""A fixed-depth binary Merkle tree over dense leaf indices, hashed with SHA-256.

Why SHA-256 and not keccak-256: the node rehashes every touched path after every batch, in
Python, while the contract verifies a proof only when a user claims. Measured on the project's
2-core machines: hashlib's SHA-256 does about 2.2M 64-byte node hashes/s against pysha3
keccak's 1.1M, and 1.7M against 0.45M for a 289-byte subaccount leaf, so the commitment is
about twice as fast; on the EVM a SHA-256 is a precompile call (60 + 12 gas per word plus the
call, ~200 gas a node against ~40 for keccak), which adds about 6,000 gas to a depth-32 proof:
a withdrawal claim stays far below its 150,000 gas budget (see ``rollbook bench commit``).

This is the tree the state commitment maps the venue's state onto, and the tree whose proofs
the settlement contract (Vyper) verifies. ``verify_proof`` is the bit-exact reference of the
contract's check.

Byte layout (the contract mirrors exactly this; ``||`` is byte concatenation):

- leaf hash   ``sha256(0x00 || payload)``; ``payload`` is the leaf's canonical bytes (any
  length from 0 to ``LEAF_PAYLOAD_BYTES_MAX``). In Vyper: ``sha256(concat(b"\\x00", payload))``.
- empty leaf  ``EMPTY_LEAF_HASH`` = 32 zero bytes. No payload hashes to it (that would be a
  SHA-256 preimage of zero), so an empty slot can never be mistaken for a written one, not even
  for a written empty payload (whose hash is ``sha256(0x00)``).
- node        ``sha256(left || right)``: exactly 64 bytes, two 32-byte children, no prefix.
  In Vyper: ``sha256(concat(left, right))`` (the precompile: 60 + 12 * 2 = 84 gas plus the call).
- empty subtree of height ``h`` (``h`` levels above the leaves): ``default[0]`` =
  ``EMPTY_LEAF_HASH``, ``default[h + 1] = sha256(default[h] || default[h])``. The root of an
  empty tree of depth ``d`` is ``default[d]``.
- position    leaf ``index`` (0 <= index < 2**depth) sits at level 0; its ancestor at level
  ``h`` has index ``index >> h``. At level ``h`` the node is a right child when bit ``h`` of
  ``index`` is 1, so its parent is ``sha256(sibling || node)``, otherwise
  ``sha256(node || sibling)``. The root is the single node at level ``depth``.
- proof       exactly ``depth`` 32-byte siblings, bottom-up: ``proof[h]`` is the sibling of
  the path's node at level ``h``. Nothing else (no length, no index) is encoded in it.

Leaves and internal nodes are domain-separated twice: a leaf preimage starts with the byte
0x00 and is 64 bytes long (like a node's) only for a 63-byte payload; and, the stronger
guarantee, a proof always has exactly ``depth`` siblings, so the verifier hashes a claimed leaf
exactly ``depth`` times and an internal node can never be passed off as a leaf. The contract
must hash the claimed payload itself (``hash_leaf``), never accept a leaf hash from a caller.

Storage (dense, because leaf indices are dense: accounts are numbered on creation, append-only):
level ``h`` is one ``bytearray`` holding nodes ``0 .. n_h - 1`` of that level, 32 bytes each,
back to back (node ``i`` at bytes ``32 i .. 32 i + 31``). A node's two children are therefore
64 contiguous bytes of the level below: hashing a node is one slice of the children's level and
one 32-byte write into its own, with no per-node object or key. Measured on the project's
2-core machines for 10,000 random updates among 1,000,000 leaves: a dict per level (int key ->
32-byte bytes) took 120-160 ms and 261 MiB; this layout takes about 100 ms and 61 MiB (see
``rollbook.bench.commit``).

Invariants:

- Every stored node equals the hash of its stored (or default) children, and every level below
  the root holds whole sibling pairs: ``n_h`` is even for ``h < depth`` and covers the ancestors
  of every leaf slot in use (``n_h >= ((size - 1) >> h | 1) + 1``). Slots never written hold
  the default hash of their level; nodes past the end of a level are defaults and are not
  stored. A fresh tree of any depth stores nothing beyond the ``depth + 1`` default hashes.
- ``size`` (1 + the highest index ever written) only grows; memory is 64 bytes per slot up to
  it, whatever the number of empty slots below it. Hence the dense-index contract and the
  ``LEAF_SLOTS_MAX`` guard against a stray huge index.
- The root depends only on the final content of the leaves, never on the order of updates or
  on the insertion order of an update batch: each level is recomputed from the fully updated
  level below it, each dirty node once.
- An update batch is checked completely before anything is written: a rejected batch leaves
  the tree unchanged.

Cost: a batch of ``t`` touched leaves costs ``t`` leaf hashes (for payloads) plus at most
``t * depth`` node hashes; paths that share ancestors share them, each dirty node is hashed once
per batch: 10,000 random leaves among 1,000,000 at depth 32 cost 10,000 leaf hashes and about
68,000 node hashes (not 320,000). SHA-256 itself (about 0.45 us per 64-byte preimage here) is
about 40% of the time; the rest is the interpreter's loop, slicing, writes and cache misses.

Two implementations of the hashing loops, one result: the pure-Python loops in this module are
the reference; ``rollbook.commitment._native`` (C, built by ``setup.py`` where a compiler and
libcrypto exist) runs the same loops on OpenSSL's SHA-256 with the GIL released, about three
times faster for a whole state root update (measured by ``rollbook bench commit``, which reports
which one ran). ``MerkleTree(native=...)`` picks; the default uses C when it is built. The
tests feed both the same batches and compare every stored level byte for byte.

Limits: ``DEPTH_MIN`` <= depth <= ``DEPTH_MAX``; written indices below ``LEAF_SLOTS_MAX``;
payloads up to ``LEAF_PAYLOAD_BYTES_MAX`` bytes. Not thread-safe: one writer, and no reads
concurrent with a write.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from types import ModuleType

_NATIVE: ModuleType | None
try:  # the hashing loops in C (optional, built by setup.py); the loops below are the reference
    from rollbook.commitment import _native as _NATIVE
except ImportError:  # not built on this machine: the pure-Python loops
    _NATIVE = None
NATIVE_AVAILABLE = _NATIVE is not None
# the whole-batch functions (check_leaves, update_leaves) came after the per-level ones: an
# extension built before them still serves the per-level path until it is rebuilt
_NATIVE_BATCHES = _NATIVE is not None and hasattr(_NATIVE, "update_leaves")

__all__ = [
    "DEPTH_MAX",
    "DEPTH_MIN",
    "EMPTY_LEAF_HASH",
    "HASH_BYTES",
    "LEAF_PAYLOAD_BYTES_MAX",
    "LEAF_PREFIX",
    "LEAF_SLOTS_MAX",
    "NATIVE_AVAILABLE",
    "MerkleTree",
    "default_hashes",
    "empty_root",
    "hash_leaf",
    "hash_node",
    "verify_proof",
]

HASH_BYTES = 32
LEAF_PREFIX = b"\x00"
EMPTY_LEAF_HASH = bytes(HASH_BYTES)
DEPTH_MIN = 1
DEPTH_MAX = 64  # 2**64 leaves is beyond any venue; a proof of 64 siblings is 2 KiB of calldata
LEAF_PAYLOAD_BYTES_MAX = 65_535  # a state leaf is tens of bytes; this bounds a malformed one
LEAF_SLOTS_MAX = 1 << 26  # dense storage: 64 bytes per slot, so at most 4 GiB of hashes

# bound directly: the hot loop cannot afford a wrapper call per node
_sha256 = hashlib.sha256


def hash_leaf(payload: bytes) -> bytes:
    """``sha256(0x00 || payload)``: the hash of a written leaf."""
    digest: bytes = _sha256(LEAF_PREFIX + payload).digest()
    return digest


def hash_node(left: bytes, right: bytes) -> bytes:
    """``sha256(left || right)`` over two 32-byte children."""
    digest: bytes = _sha256(left + right).digest()
    return digest


def default_hashes(depth: int) -> tuple[bytes, ...]:
    """``default[h]`` for h in 0..depth: the hash of an empty subtree of height ``h``."""
    _check_depth(depth)
    defaults = [EMPTY_LEAF_HASH]
    for _ in range(depth):
        defaults.append(hash_node(defaults[-1], defaults[-1]))
    return tuple(defaults)


def empty_root(depth: int) -> bytes:
    """The root of a tree of ``depth`` whose leaves are all empty."""
    return default_hashes(depth)[depth]


def verify_proof(root: bytes, depth: int, index: int, leaf_hash: bytes,
                 proof: tuple[bytes, ...]) -> bool:
    """Whether ``leaf_hash`` sits at ``index`` in the tree of ``depth`` whose root is ``root``.

    The settlement contract's algorithm, bit for bit: any malformed input (depth out of range,
    index out of range, a proof that is not exactly ``depth`` 32-byte siblings, a root or leaf
    hash that is not 32 bytes) is False, never an exception. With ``leaf_hash`` =
    ``EMPTY_LEAF_HASH`` it proves that the slot is empty (non-inclusion).
    """
    if not DEPTH_MIN <= depth <= DEPTH_MAX or not 0 <= index < (1 << depth):
        return False
    if len(root) != HASH_BYTES or len(leaf_hash) != HASH_BYTES or len(proof) != depth:
        return False
    node = leaf_hash
    for level, sibling in enumerate(proof):
        if len(sibling) != HASH_BYTES:
            return False
        is_right_child = (index >> level) & 1 == 1
        node = hash_node(sibling, node) if is_right_child else hash_node(node, sibling)
    return node == root


class MerkleTree:
    """A binary Merkle tree of fixed ``depth`` (2**depth leaf slots, all empty at first).

    Updates go in batches (``set_leaves`` with payloads, ``set_leaf_hashes`` with leaf hashes)
    and recompute only the dirty paths, level by level, once per dirty node.
    """

    __slots__ = ("_capacity", "_defaults", "_depth", "_levels", "_native", "_size")

    def __init__(self, depth: int, *, native: bool | None = None) -> None:
        """``native``: hash with the C loops (True: required, False: never, None: when built).

        Both give the same bytes (the tests compare them level by level); the C loops are
        about ten times faster and release the GIL while they hash.
        """
        if native and not NATIVE_AVAILABLE:
            raise RuntimeError("rollbook.commitment._native is not built on this machine")
        # a flag, not the module: trees are pickled into snapshots, and a snapshot read where
        # the extension is missing falls back to the reference loops
        self._native = NATIVE_AVAILABLE and native is not False
        self._defaults = default_hashes(depth)  # checks the depth
        self._depth = depth
        self._capacity = 1 << depth
        self._size = 0
        self._levels = [bytearray() for _ in range(depth + 1)]  # see "Storage" above

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def capacity(self) -> int:
        """The number of leaf slots the depth addresses, ``2**depth``."""
        return self._capacity

    @property
    def size(self) -> int:
        """Leaf slots in use: 1 + the highest index ever written, 0 for a fresh tree.

        The next index to append at. Emptied slots below it still count.
        """
        return self._size

    @property
    def storage_bytes(self) -> int:
        """Bytes allocated for the nodes of every level (about 64 per leaf slot in use)."""
        return sum(level.__sizeof__() for level in self._levels)

    def root(self) -> bytes:
        return self._node(self._depth, 0)

    def copy(self) -> MerkleTree:
        """An independent copy (the levels are copied, not shared)."""
        other = MerkleTree.__new__(MerkleTree)
        other._native = self._native
        other._defaults = self._defaults
        other._depth = self._depth
        other._capacity = self._capacity
        other._size = self._size
        other._levels = [bytearray(level) for level in self._levels]
        return other

    def leaf_hash(self, index: int) -> bytes:
        """The leaf's hash; ``EMPTY_LEAF_HASH`` for an empty slot."""
        _check_index(index, self._capacity)
        return self._node(0, index)

    def proof(self, index: int) -> tuple[bytes, ...]:
        """The ``depth`` siblings of the leaf's path, bottom-up (see ``verify_proof``)."""
        _check_index(index, self._capacity)
        return tuple(self._node(level, (index >> level) ^ 1) for level in range(self._depth))

    def set_leaves(self, updates: Mapping[int, bytes | None]) -> int:
        """Write payloads (``None`` empties the slot); returns the number of hashes computed.

        The whole batch is checked first; on an error nothing is written.
        """
        native = _NATIVE if self._native else None
        if native is not None and _NATIVE_BATCHES and type(updates) is dict and updates:
            # the whole batch in C: one pass checks it, one writes and rehashes it (per leaf
            # no Python step, where the loops below take several); anything the C check does
            # not pass goes to the reference checks, which raise with their own messages
            highest = native.check_leaves(updates, min(self._capacity, LEAF_SLOTS_MAX),
                                          LEAF_PAYLOAD_BYTES_MAX)
            if highest >= 0:
                self._grow(highest + 1)
                hashes: int = native.update_leaves(self._levels, updates)
                return hashes
        self._check_indices(updates.keys())
        payloads = [payload for payload in updates.values() if payload is not None]
        _check_payloads(payloads)
        assert native is None or not _NATIVE_BATCHES or not updates or type(updates) is not dict, \
            "check_leaves refused a batch that the reference checks pass"
        if native is not None and updates:
            ascending = sorted(updates)
            self._grow(ascending[-1] + 1)
            native.write_leaves(self._levels[0], ascending, [updates[i] for i in ascending])
            return len(payloads) + self._rehash_dirty(_as_run(ascending))
        prefix = LEAF_PREFIX
        sha256 = _sha256
        leaf_hashes = {
            index: EMPTY_LEAF_HASH if payload is None
            else sha256(prefix + payload).digest()
            for index, payload in updates.items()
        }
        return len(payloads) + self._apply(leaf_hashes)

    def set_leaf_hashes(self, updates: Mapping[int, bytes]) -> int:
        """Write leaf hashes directly (``EMPTY_LEAF_HASH`` empties the slot).

        For callers that hash leaves themselves; they own the leaf domain separation (a leaf
        hash should be ``hash_leaf(payload)``). Returns the number of node hashes computed; the
        whole batch is checked first and on an error nothing is written.
        """
        self._check_indices(updates.keys())
        for index, leaf_hash in updates.items():
            _check_hash(index, leaf_hash)
        return self._apply(updates)

    def _node(self, level: int, index: int) -> bytes:
        nodes = self._levels[level]
        offset = index * HASH_BYTES
        if offset >= len(nodes):
            return self._defaults[level]
        return bytes(nodes[offset:offset + HASH_BYTES])

    def _check_indices(self, indices: Collection[int]) -> None:
        """Every index is an int below the capacity and ``LEAF_SLOTS_MAX``, or raise.

        One bulk pass in C for the common case; the slow pass only finds the culprit.
        """
        writable = min(self._capacity, LEAF_SLOTS_MAX)
        if not indices or (all(type(index) is int for index in indices)
                           and min(indices) >= 0 and max(indices) < writable):
            return
        for index in indices:
            _check_index(index, self._capacity)
            if index >= LEAF_SLOTS_MAX:
                raise IndexError(f"leaf index {index} beyond the dense storage limit "
                                 f"LEAF_SLOTS_MAX={LEAF_SLOTS_MAX}: indices must be dense")

    def _apply(self, leaf_hashes: Mapping[int, bytes]) -> int:
        """Store checked leaf hashes, then rehash the dirty parents level by level."""
        if not leaf_hashes:
            return 0
        dirty = _as_run(sorted(leaf_hashes))  # ascending: every pass walks memory forward
        self._grow(dirty[-1] + 1)
        with memoryview(self._levels[0]) as leaves:
            for index in dirty:
                offset = index * HASH_BYTES
                leaves[offset:offset + HASH_BYTES] = leaf_hashes[index]
        return self._rehash_dirty(dirty)

    def _rehash_dirty(self, dirty: list[int] | range) -> int:
        """Rehash the ancestors of the written ascending leaves ``dirty``, level by level."""
        native = _NATIVE if self._native else None
        if native is None and len(dirty) == 1:
            self._rehash_path(dirty[0])
            return self._depth
        hashes = 0
        levels = self._levels
        for level in range(self._depth):
            below, above = levels[level], levels[level + 1]
            if native is not None and not isinstance(dirty, range):
                dirty = _as_run(native.rehash_parents(below, above, dirty))
            else:
                dirty = _parents_of(dirty)
                if isinstance(dirty, list):
                    self._rehash_scattered(level, dirty)
                elif native is None:
                    self._rehash_run(level, dirty)
                else:
                    native.rehash_run(below, above, dirty.start, dirty.stop)
            hashes += len(dirty)
        return hashes

    def _grow(self, slots: int) -> None:
        """Extend the levels with default nodes so that leaves ``0 .. slots - 1`` and all
        their ancestors are stored, each level below the root in whole sibling pairs."""
        if slots <= self._size:
            return
        self._size = slots
        last = slots - 1
        for level, nodes in enumerate(self._levels):
            needed = 1 if level == self._depth else ((last >> level) | 1) + 1
            missing = needed - len(nodes) // HASH_BYTES
            if missing > 0:
                nodes += self._defaults[level] * missing

    def _rehash_path(self, index: int) -> None:
        """Recompute the ancestors of one leaf (a batch of one: no sets, no sorting)."""
        sha256 = _sha256
        children = self._levels[0]
        for nodes in self._levels[1:]:
            index >>= 1
            offset = index << 5  # * HASH_BYTES: the node's offset; its children's is twice
            child = offset << 1
            nodes[offset:offset + 32] = sha256(children[child:child + 64]).digest()
            children = nodes

    def _rehash_scattered(self, level: int, parents: list[int]) -> None:
        """Recompute the given nodes of ``level + 1`` from their children at ``level``."""
        sha256 = _sha256
        with memoryview(self._levels[level]) as children, \
                memoryview(self._levels[level + 1]) as nodes:
            for parent in parents:
                offset = parent << 5  # * HASH_BYTES: the node's offset; its children's is twice
                child = offset << 1
                nodes[offset:offset + 32] = sha256(children[child:child + 64]).digest()

    def _rehash_run(self, level: int, parents: range) -> None:
        """Recompute a contiguous run of nodes of ``level + 1``, written back in one piece."""
        sha256 = _sha256
        first = parents.start * HASH_BYTES
        last = parents.stop * HASH_BYTES
        with memoryview(self._levels[level]) as children, \
                memoryview(self._levels[level + 1]) as nodes:
            nodes[first:last] = b"".join([
                sha256(children[offset:offset + 64]).digest()
                for offset in range(first + first, last + last, 64)])


def _as_run(ascending: list[int]) -> list[int] | range:
    """The same indices, as a ``range`` when they are contiguous (a dense batch, a build)."""
    if ascending[-1] - ascending[0] + 1 == len(ascending):
        return range(ascending[0], ascending[-1] + 1)
    return ascending


def _parents_of(ascending: list[int] | range) -> list[int] | range:
    """The distinct parents of ascending, non-empty node indices, ascending."""
    if isinstance(ascending, range):
        return range(ascending.start >> 1, ((ascending.stop - 1) >> 1) + 1)
    # ascending children have non-decreasing parents: dropping repeats keeps them ascending, so
    # no sort is needed (a third of the cost of a set and a sort, measured per level)
    return _as_run(list(dict.fromkeys([index >> 1 for index in ascending])))


def _check_depth(depth: int) -> None:
    if type(depth) is not int or not DEPTH_MIN <= depth <= DEPTH_MAX:
        raise ValueError(f"depth={depth!r} must be an int in [{DEPTH_MIN}, {DEPTH_MAX}]")


def _check_index(index: int, capacity: int) -> None:
    if type(index) is not int:
        raise TypeError(f"leaf index {index!r} must be an int")
    if not 0 <= index < capacity:
        raise IndexError(f"leaf index {index} out of range [0, {capacity})")


def _check_payloads(payloads: list[bytes]) -> None:
    if all(type(payload) is bytes for payload in payloads) and \
            max(map(len, payloads), default=0) <= LEAF_PAYLOAD_BYTES_MAX:
        return
    for payload in payloads:
        if type(payload) is not bytes:
            raise TypeError(f"a leaf payload must be bytes or None, got {type(payload)}")
        if len(payload) > LEAF_PAYLOAD_BYTES_MAX:
            raise ValueError(f"a leaf payload of {len(payload)} bytes exceeds "
                             f"LEAF_PAYLOAD_BYTES_MAX={LEAF_PAYLOAD_BYTES_MAX}")


def _check_hash(index: int, leaf_hash: bytes) -> None:
    if type(leaf_hash) is not bytes or len(leaf_hash) != HASH_BYTES:
        raise ValueError(f"leaf {index}: a leaf hash must be {HASH_BYTES} bytes, "
                         f"got {leaf_hash!r}")
