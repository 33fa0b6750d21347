"""The verifier's configuration: the in-process ``VerifierConfig`` and the CLI's TOML file.

``VerifierConfig`` is what ``Verifier(chain, settlement_address, config)`` takes: the venue
configuration the genesis state is built from (it must be the node's: the same markets, fees,
oracle signers and limits, or the replay computes other roots), an optional challenger key
(without one the verifier reports and never disputes), the confirmation depth, and the limits
of its checkpoints, snapshots and signature recovery (``recovery_processes`` worker processes,
``rollbook.sequencer.recovery_processes``; with 0, ``recovery_threads`` threads do it).

The CLI reads a TOML file (``load_settings``) whose ``[verifier]`` table is::

    [verifier]
    rpc_url = "http://127.0.0.1:8545"   # any EVM JSON-RPC endpoint (required)
    settlement_address = "0x…"          # the settlement contract (required)
    challenger_key = "0x…"              # optional; or ROLLBOOK_CHALLENGER_KEY in the environment
    node_config = "node.toml"           # the node's TOML: the venue it runs (default: local venue)
    confirmations = 2                   # events are processed this many blocks deep
    start_block = 0                     # the contract's deployment block (where the scan starts)
    poll_interval_ms = 1000
    snapshot_dir = "./verifier-data"    # optional; snapshots of the verifier's own replica
    snapshot_interval_batches = 100
    recovery_threads = 2
    recovery_processes = 2              # signature recovery workers; 0 recovers on the threads
    l1_time_tolerance_ms = 300000

Flags override the file. Relative paths are relative to the file. The venue comes from
``rollbook.node.config`` (``load_config(node_config).venue_config(chain_id)``), the module the
node itself reads, so one TOML describes the venue for both. Unknown keys are errors.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollbook.execution.config import VenueConfig
from rollbook.execution.crypto import SECP256K1_N
from rollbook.node.config import ConfigError, NodeConfig, load_config
from rollbook.sequencer.recovery_processes import RECOVERY_PROCESSES_MAX
from rollbook.verifier.checks import L1_TIME_TOLERANCE_MS_DEFAULT

__all__ = [
    "CHALLENGER_KEY_ENV",
    "CHECKPOINTS_KEPT_MAX_DEFAULT",
    "CHECKPOINT_INTERVAL_DEFAULT",
    "VerifierConfig",
    "VerifierConfigError",
    "VerifierSettings",
    "load_settings",
    "parse_private_key",
    "venue_fingerprint",
]

CHALLENGER_KEY_ENV = "ROLLBOOK_CHALLENGER_KEY"
CHECKPOINT_INTERVAL_DEFAULT = 32  # batches between in-memory checkpoints (rollback replays <=)
CHECKPOINTS_KEPT_MAX_DEFAULT = 8  # in-memory checkpoints (thinned beyond this)
SNAPSHOT_INTERVAL_DEFAULT = 100
CONFIRMATIONS_MAX = 10_000  # settlement.chain.CONFIRMATIONS_MAX
POLL_INTERVAL_MS_MIN = 10
POLL_INTERVAL_MS_MAX = 600_000
RECOVERY_THREADS_MAX = 64
INTERVAL_MAX = 1_000_000
TOLERANCE_MS_MAX = 86_400_000  # a day: the nonce window; more would hide real manipulation
_PRIVATE_KEY_BYTES = 32
_ADDRESS_BYTES = 20


class VerifierConfigError(ValueError):
    """A configuration the verifier refuses; the message names the key."""


@dataclass(frozen=True, slots=True)
class VerifierConfig:
    """See the module docstring. ``venue.chain_id`` must be the chain's id."""

    venue: VenueConfig
    challenger_key: bytes | None = None
    confirmations: int = 0
    start_block: int = 0
    poll_interval_ms: int = 1_000
    snapshot_dir: Path | None = None
    snapshot_interval_batches: int = SNAPSHOT_INTERVAL_DEFAULT
    checkpoint_interval_batches: int = CHECKPOINT_INTERVAL_DEFAULT
    checkpoints_kept_max: int = CHECKPOINTS_KEPT_MAX_DEFAULT
    recovery_threads: int = 2
    recovery_processes: int = 2
    l1_time_tolerance_ms: int = L1_TIME_TOLERANCE_MS_DEFAULT

    def __post_init__(self) -> None:
        checks: list[tuple[str, int, int, int]] = [
            ("confirmations", self.confirmations, 0, CONFIRMATIONS_MAX),
            ("start_block", self.start_block, 0, 1 << 63),
            ("poll_interval_ms", self.poll_interval_ms, POLL_INTERVAL_MS_MIN,
             POLL_INTERVAL_MS_MAX),
            ("snapshot_interval_batches", self.snapshot_interval_batches, 1, INTERVAL_MAX),
            ("checkpoint_interval_batches", self.checkpoint_interval_batches, 1, INTERVAL_MAX),
            ("checkpoints_kept_max", self.checkpoints_kept_max, 2, INTERVAL_MAX),
            ("recovery_threads", self.recovery_threads, 1, RECOVERY_THREADS_MAX),
            ("recovery_processes", self.recovery_processes, 0, RECOVERY_PROCESSES_MAX),
            ("l1_time_tolerance_ms", self.l1_time_tolerance_ms, 0, TOLERANCE_MS_MAX),
        ]
        for name, value, low, high in checks:
            if type(value) is not int or not low <= value <= high:
                raise VerifierConfigError(f"{name}: must be an integer in [{low}, {high}]")
        if self.challenger_key is not None:
            parse_private_key(self.challenger_key, "challenger_key")


@dataclass(frozen=True, slots=True)
class VerifierSettings:
    """What the CLI needs besides the venue: where the chain is, and the ``VerifierConfig``
    fields (``config(chain_id)`` adds the venue)."""

    rpc_url: str
    settlement_address: bytes
    node_config: Path | None = None
    challenger_key: bytes | None = None
    confirmations: int = 0
    start_block: int = 0
    poll_interval_ms: int = 1_000
    snapshot_dir: Path | None = None
    snapshot_interval_batches: int = SNAPSHOT_INTERVAL_DEFAULT
    recovery_threads: int = 2
    recovery_processes: int = 2
    l1_time_tolerance_ms: int = L1_TIME_TOLERANCE_MS_DEFAULT

    def venue(self, chain_id: int) -> VenueConfig:
        """The node's venue on ``chain_id`` (from ``node_config``, or the local venue)."""
        try:
            node = load_config(self.node_config) if self.node_config else NodeConfig.local()
            return node.venue_config(chain_id)
        except ConfigError as error:
            raise VerifierConfigError(f"node_config: {error}") from error

    def config(self, chain_id: int) -> VerifierConfig:
        return VerifierConfig(
            venue=self.venue(chain_id), challenger_key=self.challenger_key,
            confirmations=self.confirmations, start_block=self.start_block,
            poll_interval_ms=self.poll_interval_ms, snapshot_dir=self.snapshot_dir,
            snapshot_interval_batches=self.snapshot_interval_batches,
            recovery_threads=self.recovery_threads,
            recovery_processes=self.recovery_processes,
            l1_time_tolerance_ms=self.l1_time_tolerance_ms)

    def replace(self, **changes: Any) -> VerifierSettings:
        return dataclasses.replace(self, **changes)


_KEYS = frozenset({"rpc_url", "settlement_address", "challenger_key", "node_config",
                   "confirmations", "start_block", "poll_interval_ms", "snapshot_dir",
                   "snapshot_interval_batches", "recovery_threads", "recovery_processes",
                   "l1_time_tolerance_ms"})
_INT_KEYS = ("confirmations", "start_block", "poll_interval_ms", "snapshot_interval_batches",
             "recovery_threads", "recovery_processes", "l1_time_tolerance_ms")


def load_settings(path: str | Path | None, overrides: dict[str, Any] | None = None,
                  ) -> VerifierSettings:
    """The ``[verifier]`` table of ``path`` (None: flags only) with ``overrides`` (flags; None
    values are ignored) applied on top."""
    table: dict[str, Any] = {}
    base = Path.cwd()
    if path is not None:
        file = Path(path)
        base = file.parent
        try:
            document = tomllib.loads(file.read_text())
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise VerifierConfigError(f"{file}: {error}") from error
        extra = set(document) - {"verifier"}
        if extra:
            raise VerifierConfigError(f"unknown table(s) {sorted(extra)} (expected [verifier])")
        raw = document.get("verifier", {})
        if not isinstance(raw, dict):
            raise VerifierConfigError("verifier: must be a table")
        table.update(raw)
        for key in ("node_config", "snapshot_dir"):
            if isinstance(table.get(key), str):
                table[key] = str((base / table[key]).resolve())
    for key, value in (overrides or {}).items():
        if value is not None:
            table[key] = value
    unknown = set(table) - _KEYS
    if unknown:
        raise VerifierConfigError(f"verifier: unknown key(s) {sorted(unknown)}")
    for key in ("rpc_url", "settlement_address"):
        if not isinstance(table.get(key), str) or not table[key]:
            raise VerifierConfigError(f"verifier.{key}: required (a string)")
    values: dict[str, Any] = {
        "rpc_url": table["rpc_url"],
        "settlement_address": _hex(table["settlement_address"], _ADDRESS_BYTES,
                                   "settlement_address"),
    }
    if table.get("challenger_key") is not None:
        values["challenger_key"] = parse_private_key(table["challenger_key"], "challenger_key")
    for key in ("node_config", "snapshot_dir"):
        if table.get(key) is not None:
            if not isinstance(table[key], str | Path):
                raise VerifierConfigError(f"verifier.{key}: must be a path string")
            values[key] = Path(table[key])
    for key in _INT_KEYS:
        if key in table:
            value = table[key]
            if type(value) is not int:
                raise VerifierConfigError(f"verifier.{key}: must be an integer")
            values[key] = value
    return VerifierSettings(**values)


def parse_private_key(value: Any, where: str) -> bytes:
    """A secp256k1 private key from bytes or ``0x`` hex; the error names ``where`` only (never
    the value: it is a secret)."""
    key = value if isinstance(value, bytes) else _hex(value, _PRIVATE_KEY_BYTES, where)
    if len(key) != _PRIVATE_KEY_BYTES or not 0 < int.from_bytes(key, "big") < SECP256K1_N:
        raise VerifierConfigError(f"{where}: not a valid secp256k1 private key")
    return key


def venue_fingerprint(venue: VenueConfig) -> bytes:
    """A hash of the whole venue configuration (frozen dataclasses of ints, bytes, tuples: the
    repr is deterministic), so a snapshot is never resumed under other rules."""
    return hashlib.sha256(repr(venue).encode()).digest()


def _hex(value: Any, length: int, where: str) -> bytes:
    if not isinstance(value, str):
        raise VerifierConfigError(f"{where}: must be a 0x-prefixed hex string")
    text = value[2:] if value.startswith(("0x", "0X")) else value
    try:
        raw = bytes.fromhex(text)
    except ValueError as error:
        raise VerifierConfigError(f"{where}: not hex") from error
    if len(raw) != length:
        raise VerifierConfigError(f"{where}: must be {length} bytes")
    return raw
