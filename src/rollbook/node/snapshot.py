"""Snapshots: the node's whole state at a batch boundary, written atomically and checksummed.

A snapshot holds the STF state, the commitment (tree and slot map: the slot map is derivable
only by replay), the admission state, the WAL sequence it covers and what the node keeps beside
them (``NodeSnapshot.extra``: L1 cursor, batch history, withdrawal proofs). Restart = the
newest snapshot that reads back intact + WAL replay from its sequence.

File ``snapshot-<batch index, 20 digits>.rbs``::

    magic b"RBSNAP" | format (u16) | WAL sequence covered (u64) | payload length (u64)
    | sha256(payload) (32) | payload

written to ``<name>.<writer pid>.tmp``, fsynced, checked, renamed over the final name, then the
directory fsynced: a crash leaves the old snapshot set or the new one, never a torn file under
a final name (a ``.tmp`` left behind is ignored and deleted). A file whose checksum, format or
length is wrong is skipped with a message and the next older one is tried. The header names
the WAL sequence, so pruning the log needs no unpickling.

Why pickle. The STF state is a graph of slotted objects with back-references (orders link to
their price level, position and subaccount; positions to their margin group), defined in
``rollbook.execution``, which grows with every feature (options added a dozen record types). A
hand-written encoder would have to follow every field added there, and a forgotten one would
corrupt restarts silently; pickle follows the graph as it is, and a snapshot round trip plus
``StateCommitment.check`` in the tests catches what it cannot carry. Three things make it safe
enough here:

- depth: pickle recurses once per nested object, and a price level's linked list (or a chain
  of subaccount -> order -> level -> order -> subaccount) would blow the recursion limit with
  a few hundred resting orders. ``_StatePickler`` therefore writes an order as its plain
  fields plus the keys of its subaccount and margin group, and a price level as the list of
  its orders; loading rebuilds the links (``_relink``). The derived risk cache is dropped.
- integrity: the sha256 over the payload and the format number are checked before unpickling;
  the package version and the venue fingerprint are checked after, and a snapshot of another
  version or venue is not used (the node replays the WAL instead, or refuses to start).
- trust: unpickling runs code named in the file. Snapshots are the node's own files in its own
  data directory (anyone who can write there can also rewrite the WAL); never load one from
  elsewhere.

Pausing: pickling costs about 6 µs per resting order or subaccount (200 ms for 33,000 orders
on the development VM), so the node pickles in a forked child (``fork_and_write``): the
sequencer pauses only for the ``fork`` (copy-on-write page tables), the child writes the
temporary file and exits, and the node's snapshot thread checks and renames it. The child
closes every inherited descriptor first (the WAL's lock, sockets), and leaves with
``os._exit``.
"""

from __future__ import annotations

import copyreg
import hashlib
import io
import os
import pickle
import re
import struct
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rollbook.commitment.state_tree import StateCommitment
from rollbook.execution.options.mmp import MmpBook, MmpWindow
from rollbook.execution.options.portfolio import ScenarioCache
from rollbook.execution.state import (
    CROSS_GROUP,
    UNTOUCHED,
    MarginGroup,
    MarketState,
    OptionExpiry,
    OptionMarket,
    Order,
    OrderBook,
    PendingWithdrawal,
    Position,
    PriceLevel,
    QuoteLadder,
    RiskContext,
    State,
    Subaccount,
)
from rollbook.runtime import lower_to_background

__all__ = [
    "SNAPSHOT_FORMAT",
    "SNAPSHOT_SUFFIX",
    "NodeSnapshot",
    "SnapshotError",
    "dumps_snapshot",
    "fork_and_write",
    "list_snapshots",
    "loads_snapshot",
    "publish_temporary",
    "read_snapshot",
    "remove_snapshots",
    "snapshot_sequence",
    "temporary_path",
    "write_snapshot",
    "write_temporary",
]

SNAPSHOT_MAGIC = b"RBSNAP"
# 2: the commitment keeps its leaves in a list, and state classes pickle through reducers (so
# that compiled and pure builds read each other's snapshots): a format-1 file is skipped
SNAPSHOT_FORMAT = 2
SNAPSHOT_SUFFIX = ".rbs"
SNAPSHOT_BYTES_MAX = 1 << 36  # 64 GiB: a bound on what a header may claim
_HEADER = struct.Struct(">6sHQQ32s")
_NAME = re.compile(r"^snapshot-(\d{20})\.rbs$")
_FIRST_PRIVATE_FD = 3  # stdin, stdout and stderr stay open in a snapshot child
_PICKLE_PROTOCOL = 5

_ORDER_LINKS = frozenset({"level", "next", "prev", "position", "subaccount"})
# derived on load, so not written: ``Order.key`` from ``order_id`` (the id's one int object) and
# ``Order.touched_epoch``, not state (a commitment mark; blank on load, see ``State``): a
# snapshot's order fields are the same with or without them
_ORDER_DERIVED = frozenset({"key", "touched_epoch"})
_LEVEL_LINKS = frozenset({"head", "tail"})
# ``State.primary_subaccounts`` is an index over ``owners``, rebuilt on load: not written, so a
# snapshot's bytes are the same with or without it
_STATE_DERIVED = frozenset({"primary_subaccounts"})


def _attribute_names(cls: type) -> tuple[str, ...]:
    """A slotted class's attributes, sorted; a mypyc-compiled class has no ``__slots__``."""
    names = getattr(cls, "__slots__", None) or getattr(cls, "__mypyc_attrs__", None)
    if not names:
        raise TypeError(f"{cls.__name__} declares no attributes")
    return tuple(sorted(names))


_ORDER_FIELDS = tuple(s for s in _attribute_names(Order)
                      if s not in _ORDER_LINKS and s not in _ORDER_DERIVED)
_LEVEL_FIELDS = tuple(s for s in _attribute_names(PriceLevel) if s not in _LEVEL_LINKS)


class SnapshotError(Exception):
    """A snapshot file that cannot be used (damaged, other format); the message says why."""


@dataclass(slots=True)
class NodeSnapshot:
    """Everything a restart needs besides the WAL records after ``wal_sequence``."""

    code_version: str
    venue_fingerprint: bytes
    batch_index: int
    root: bytes
    wal_sequence: int  # the last WAL record the snapshot covers (its batch's close)
    state: State
    commitment: StateCommitment
    admission: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


# --- pickling without deep recursion ------------------------------------------------------------

def _reduce_order(order: Order) -> tuple[Any, ...]:
    fields = tuple(getattr(order, name) for name in _ORDER_FIELDS)
    sub = order.subaccount
    group = order.position.group
    return (_restore_order, (fields, sub.owner, sub.number, group.isolated_market_id))


def _reduce_level(level: PriceLevel) -> tuple[Any, ...]:
    orders = []
    order = level.head
    while order is not None:
        orders.append(order)
        order = order.next
    fields = tuple(getattr(level, name) for name in _LEVEL_FIELDS)
    return (_restore_level, (fields, orders))


def _reduce_risk(risk: RiskContext) -> tuple[Any, ...]:
    # the scenario cache is derived from committed state and rebuilt on demand; the state is
    # set after the object exists (BUILD), so the cycle through it is safe
    return (_new_risk, (), {"state": risk.state, "_cache": None}, None, None, _set_attributes)


def _new_risk() -> RiskContext:
    return RiskContext.__new__(RiskContext)


# The other slotted classes of the state travel as {attribute: value}, set by ``_set_attributes``
# (pickle's state_setter): the same bytes whether the classes are compiled by mypyc (which has
# no ``__slots__`` and restores a dict) or interpreted (which restores ``(None, slots)``).
_SLOTTED = (MarginGroup, MarketState, MmpBook, MmpWindow, OptionExpiry, OptionMarket, OrderBook,
            PendingWithdrawal, Position, QuoteLadder, ScenarioCache, State, Subaccount)
_SLOTTED_NAMES = {cls: _attribute_names(cls) for cls in _SLOTTED}
_SLOTTED_NAMES[State] = tuple(s for s in _SLOTTED_NAMES[State] if s not in _STATE_DERIVED)


def _reduce_slotted(obj: Any) -> tuple[Any, ...]:
    """``obj`` as a blank instance plus its set attributes (an unset slot stays unset)."""
    state = {name: getattr(obj, name) for name in _SLOTTED_NAMES[type(obj)]
             if hasattr(obj, name)}
    return (_new_blank, (type(obj),), state, None, None, _set_attributes)


def _new_blank(cls: Any) -> Any:
    """An instance without ``__init__`` (mypyc's allow_interpreted_subclasses keeps this)."""
    return cls.__new__(cls)


def _set_attributes(obj: Any, state: dict[str, Any]) -> None:
    for name, value in state.items():
        setattr(obj, name, value)


def _restore_order(fields: tuple[Any, ...], owner: bytes, number: int,
                   group_id: int) -> Order:  # pragma: no cover - replaced by _Unpickler
    raise AssertionError("orders are restored by _Unpickler")


def _restore_level(fields: tuple[Any, ...], orders: list[Order]) -> PriceLevel:
    level = PriceLevel.__new__(PriceLevel)
    for name, value in zip(_LEVEL_FIELDS, fields, strict=True):
        setattr(level, name, value)
    previous: Order | None = None
    for order in orders:
        order.level = level
        order.prev = previous
        order.next = None
        if previous is not None:
            previous.next = order
        previous = order
    level.head = orders[0] if orders else None
    level.tail = previous
    return level


_DISPATCH: dict[Any, Any] = {**copyreg.dispatch_table,
                             **dict.fromkeys(_SLOTTED, _reduce_slotted), Order: _reduce_order,
                             PriceLevel: _reduce_level, RiskContext: _reduce_risk}


class _StatePickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, protocol=_PICKLE_PROTOCOL)
        self.dispatch_table = _DISPATCH


_Link = tuple[Order, bytes, int, int]


class _Unpickler(pickle.Unpickler):
    """Collects restored orders, whose links are set once the whole state exists."""

    def __init__(self, data: io.BytesIO) -> None:
        super().__init__(data)
        self.links: list[_Link] = []

    def find_class(self, module_name: str, name: str) -> Any:
        if module_name == __name__ and name == "_restore_order":
            return self._restore_order
        return super().find_class(module_name, name)

    def _restore_order(self, fields: tuple[Any, ...], owner: bytes, number: int,
                       group_id: int) -> Order:
        order = Order.__new__(Order)
        for name, value in zip(_ORDER_FIELDS, fields, strict=True):
            setattr(order, name, value)
        order.key = order.order_id
        order.touched_epoch = UNTOUCHED
        order.level = order.prev = order.next = None
        self.links.append((order, owner, number, group_id))
        return order


def _relink(state: State, links: list[_Link]) -> None:
    for order, owner, number, group_id in links:
        sub = state.subaccounts[(owner, number)]
        group = sub.cross if group_id == CROSS_GROUP else sub.isolated[group_id]
        order.subaccount = sub
        order.position = group.positions[order.market_id]
        if order.level is None:
            raise SnapshotError(f"order {order.order_id} is on no price level")


def dumps_snapshot(snapshot: NodeSnapshot) -> bytes:
    buffer = io.BytesIO()
    _StatePickler(buffer).dump(snapshot)
    return buffer.getvalue()


def loads_snapshot(payload: bytes) -> NodeSnapshot:
    unpickler = _Unpickler(io.BytesIO(payload))
    try:
        snapshot = unpickler.load()
    except Exception as error:  # a payload that passed its checksum but not this code
        raise SnapshotError(f"cannot unpickle: {error!r}") from error
    if not isinstance(snapshot, NodeSnapshot):
        raise SnapshotError(f"payload is a {type(snapshot).__name__}, not a NodeSnapshot")
    _relink(snapshot.state, unpickler.links)
    snapshot.state.index_primary_subaccounts()
    return snapshot


# --- files --------------------------------------------------------------------------------------

def _name(batch_index: int) -> str:
    return f"snapshot-{batch_index:020d}{SNAPSHOT_SUFFIX}"


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_path(directory: Path, batch_index: int, writer_pid: int) -> Path:
    return directory / f"{_name(batch_index)}.{writer_pid}.tmp"


def write_temporary(directory: Path, batch_index: int, wal_sequence: int, payload: bytes,
                    writer_pid: int) -> Path:
    """Write and fsync the temporary file of a snapshot; not visible to readers yet."""
    directory.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(directory, batch_index, writer_pid)
    header = _HEADER.pack(SNAPSHOT_MAGIC, SNAPSHOT_FORMAT, wal_sequence, len(payload),
                          hashlib.sha256(payload).digest())
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(header + payload)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    return temporary


def publish_temporary(temporary: Path) -> Path:
    """Check a temporary file (header and checksum) and rename it to its final name."""
    data = temporary.read_bytes()
    _check_bytes(temporary.name, data)
    final = temporary.with_name(temporary.name.split(SNAPSHOT_SUFFIX)[0] + SNAPSHOT_SUFFIX)
    os.replace(temporary, final)
    _sync_directory(temporary.parent)
    return final


def write_snapshot(directory: Path, batch_index: int, wal_sequence: int, payload: bytes,
                   before_rename: Callable[[], None] | None = None) -> Path:
    """Write ``payload`` (``dumps_snapshot``) atomically, in this process; the final path.

    ``before_rename`` runs after the temporary file is durable and before it becomes visible
    (the node waits there for the WAL to cover the snapshot)."""
    temporary = write_temporary(directory, batch_index, wal_sequence, payload, os.getpid())
    if before_rename is not None:
        before_rename()
    return publish_temporary(temporary)


def fork_and_write(directory: Path, snapshot: NodeSnapshot) -> int:
    """Pickle and write ``snapshot``'s temporary file in a forked child; its pid.

    The caller holds the state still only for the ``fork``; it must ``os.waitpid`` the child,
    then ``publish_temporary(temporary_path(directory, index, pid))``."""
    pid = os.fork()
    if pid:
        return pid
    status = 1
    try:  # the child: never returns, never runs the parent's cleanup
        # the WAL's lock and any socket must not outlive the node in this child
        os.closerange(_FIRST_PRIVATE_FD, _max_fd())
        # background work: pickling takes a core for about a second, and on a machine with few
        # cores the node's threads and recovery workers must run first (measured at 5,000
        # orders/s on 2 cores, a snapshot in the phase: ack p99 14.8 and 42 ms, max 51 and 104
        # ms, against 5.1 and 3.7 ms without one); the node renames the file whenever it is done
        lower_to_background()
        write_temporary(directory, snapshot.batch_index, snapshot.wal_sequence,
                        dumps_snapshot(snapshot), os.getpid())
        status = 0
    except BaseException:  # the parent sees only the status: say why on the shared stderr
        traceback.print_exc()
    finally:
        os._exit(status)


def _max_fd() -> int:
    try:
        return int(os.sysconf("SC_OPEN_MAX"))
    except (OSError, ValueError):  # pragma: no cover - every Linux has it
        return 1 << 16


def list_snapshots(directory: Path, delete_temporary: bool = False) -> list[tuple[int, Path]]:
    """(batch index, path) of every snapshot file, newest first; ``delete_temporary`` deletes
    leftover ``.tmp`` files (a crash interrupted them before they were renamed: at start)."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        if path.name.endswith(".tmp"):
            if delete_temporary:
                path.unlink(missing_ok=True)
            continue
        match = _NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found, reverse=True)


def _check_bytes(name: str, data: bytes) -> tuple[int, bytes]:
    """(WAL sequence, payload) of a snapshot file's bytes, checked."""
    if len(data) < _HEADER.size:
        raise SnapshotError(f"{name}: shorter than its header")
    magic, version, wal_sequence, length, digest = _HEADER.unpack_from(data)
    if magic != SNAPSHOT_MAGIC:
        raise SnapshotError(f"{name}: not a snapshot (magic)")
    if version != SNAPSHOT_FORMAT:
        raise SnapshotError(f"{name}: snapshot format {version}, this node reads "
                            f"{SNAPSHOT_FORMAT}")
    if length > SNAPSHOT_BYTES_MAX or len(data) != _HEADER.size + length:
        raise SnapshotError(f"{name}: length {len(data) - _HEADER.size}, header says {length}")
    payload = data[_HEADER.size:]
    if hashlib.sha256(payload).digest() != digest:
        raise SnapshotError(f"{name}: checksum mismatch (damaged)")
    return wal_sequence, payload


def snapshot_sequence(path: Path) -> int:
    """The WAL sequence a snapshot file covers, from its header alone."""
    with path.open("rb") as handle:
        header = handle.read(_HEADER.size)
    if len(header) < _HEADER.size or header[:len(SNAPSHOT_MAGIC)] != SNAPSHOT_MAGIC:
        raise SnapshotError(f"{path.name}: not a snapshot header")
    return int(_HEADER.unpack(header)[2])


def read_snapshot(path: Path) -> NodeSnapshot:
    """The snapshot in ``path``; ``SnapshotError`` if damaged or of another format."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise SnapshotError(f"{path.name}: cannot read ({error})") from error
    wal_sequence, payload = _check_bytes(path.name, data)
    snapshot = loads_snapshot(payload)
    if snapshot.wal_sequence != wal_sequence:
        raise SnapshotError(f"{path.name}: header and payload disagree on the WAL sequence")
    named = _NAME.match(path.name)
    if named is not None and int(named.group(1)) != snapshot.batch_index:
        raise SnapshotError(f"{path.name}: holds batch {snapshot.batch_index}")
    return snapshot


def remove_snapshots(directory: Path, keep: int) -> list[int]:
    """Delete all but the ``keep`` newest snapshots; the batch indices removed."""
    removed = []
    for batch_index, path in list_snapshots(directory)[keep:]:
        path.unlink(missing_ok=True)
        removed.append(batch_index)
    return removed
