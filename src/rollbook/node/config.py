"""Node configuration: one TOML file (stdlib ``tomllib``), validated into frozen dataclasses.

Every key is optional; what is left out takes the local venue's default (an embedded EVM, the
default BTC perpetual, an operator-run oracle key, a fresh temporary data directory). Layout::

    [node]
    data_dir = "./venue"              # default: a fresh temporary directory per start
    snapshot_interval_batches = 100   # a snapshot every N closed batches
    snapshots_kept = 2                # older snapshots are deleted (the newest valid one wins)
    snapshot_fork = true              # pickle in a forked child (the sequencer pauses for the
                                      # fork only); false: pickle on the sequencer thread
    wal_segment_bytes = 67108864
    recovery_processes = 2            # signature recovery worker processes (0..16); 0: on
                                      # recovery_threads threads in this process instead
    recovery_threads = 2              # recovery threads (with recovery_processes = 0) and the
                                      # WAL replay's recovery pool at start
    inflight_max = 100000             # submissions accepted but not yet answered

    [batch]
    interval_ms = 200                 # a batch closes this long after it opened ...
    txs_max = 4096                    # ... or at this many entries ...
    bytes_max = 65536                 # ... or before its published bytes would exceed this
                                      # (with a chain at most the contract's 65536)

    [chain]
    url = "embedded"                  # "embedded", "none" (no settlement) or an http(s) URL
    confirmations = 0                 # L1 deposits/forced withdrawals enter this many blocks deep
    operator_key = "0x…"              # the operator's key (required for a URL chain)
    settlement_address = "0x…"        # attach to a deployed contract instead of deploying
    start_block = 0                   # with settlement_address: where the L1 scan starts
    challenge_window_s = 600          # constructor arguments when the node deploys
    forced_deadline_s = 86400
    escape_period_s = 604800
    challengers = ["0x…"]             # who may dispute a root (the verifiers' keys); at most 16
    poll_interval_ms = 500            # L1 inputs and batch status
    chain_id = 31337                  # with url = "none" only (otherwise read from the chain)

    [oracle]
    signers = ["0x…"]                 # oracle addresses; default: the address of ``key``
    threshold = 1
    key = "0x…"                       # the operator-run oracle key that signs heartbeat updates
    interval_ms = 1000                # how often the price feed is read
    refresh_ms = 10000                # an unchanged price is re-signed this often
    [oracle.prices]                   # the local feed's starting prices (index id = quantums)
    1 = 100000000000

    [heartbeat]
    funding_interval_ms = 10000       # FundingTick cadence (the STF samples and pays on its own
    liquidations_interval_ms = 1000   # clock); ProcessLiquidations while the queue is not empty

    [fees]                            # defaults for every market
    maker_fee_ppm = -100
    taker_fee_ppm = 500

    [venue]                           # VenueConfig limits (rollbook.execution.config)
    open_orders_per_subaccount_max = 1000
    batch_cost_max = 1000000          # … and the other integer fields of VenueConfig

    [[markets]]                       # perpetual markets; default: BTC-PERP (id 1, index 1)
    id = 1
    symbol = "BTC-PERP"
    index_id = 1
    tick_size_quantums = 100000
    lot_size_nanounits = 100000
    initial_ppm = 100000
    maintenance_ppm = 50000
    # optional: maker_fee_ppm, taker_fee_ppm and the other integer fields of MarketConfig

Validation is strict: an unknown key, a wrong type (a string for an integer, a float, a bool for
an integer) or a value out of range raises ``ConfigError`` naming the key
(``markets[0].tick_size_quantums: must be an integer >= 1``). The venue itself is then checked by
``rollbook.execution.config.validate_venue``, whose failures are reported the same way.

``DEMO_ORACLE_KEY`` is public (derived from a fixed string): it is for local venues and demos
only; a real venue configures its own oracle signers.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import coincurve

from rollbook.execution.config import (
    MARKET_ID_MAX,
    InstrumentKind,
    MarketConfig,
    VenueConfig,
    perpetual_market,
    validate_venue,
)
from rollbook.execution.crypto import SECP256K1_N, address_of_public_key, keccak256
from rollbook.execution.state import genesis_state
from rollbook.execution.stf import cost_bound_units
from rollbook.execution.txs import CancelAll, MassQuote, ModifyOrder, PlaceOrder, Side
from rollbook.sequencer.recovery_processes import RECOVERY_PROCESSES_MAX

__all__ = [
    "BATCH_BYTES_MAX_LIMIT",
    "BATCH_INTERVAL_MS_MAX",
    "BATCH_INTERVAL_MS_MIN",
    "DEMO_ORACLE_KEY",
    "DEMO_PRICE_QUANTUMS",
    "SETTLEMENT_BATCH_BYTES_MAX",
    "BatchSettings",
    "ChainSettings",
    "ConfigError",
    "HeartbeatSettings",
    "NodeConfig",
    "OracleSettings",
    "StorageSettings",
    "address_of_key",
    "config_from_dict",
    "load_config",
    "parse_config",
]

# --- limits (every configurable number has a range) ---------------------------------------------
BATCH_INTERVAL_MS_MIN = 1
BATCH_INTERVAL_MS_MAX = 60_000
BATCH_TXS_MAX_LIMIT = 1 << 16  # batch_data.BATCH_ENTRIES_MAX
# room for the largest single entry (a transaction of TRANSACTION_BYTES_MAX with its header)
BATCH_BYTES_MIN = 16_384
BATCH_BYTES_MAX_LIMIT = 1 << 20  # batch_data.BATCH_DATA_BYTES_MAX
# Settlement.vy's BATCH_DATA_BYTES_MAX: submit_batch takes at most this much data, so with a
# chain a batch must never be larger (the node also reads the deployed contract's value)
SETTLEMENT_BATCH_BYTES_MAX = 65_536
SNAPSHOT_INTERVAL_MAX = 1_000_000
SNAPSHOTS_KEPT_MAX = 16
WAL_SEGMENT_BYTES_MIN = 4 << 10
WAL_SEGMENT_BYTES_MAX = 1 << 30
RECOVERY_THREADS_MAX = 64
INFLIGHT_MAX_LIMIT = 1 << 22
CONFIRMATIONS_MAX = 10_000  # settlement.chain.CONFIRMATIONS_MAX
WINDOW_S_MAX = 365 * 86_400
POLL_INTERVAL_MS_MIN = 10
POLL_INTERVAL_MS_MAX = 600_000
HEARTBEAT_MS_MIN = 10
HEARTBEAT_MS_MAX = 86_400_000
CHALLENGERS_MAX = 16  # Settlement.vy's DynArray bound
ORACLE_SIGNERS_MAX = 32  # execution.oracle.ORACLE_SIGNATURES_MAX
ORACLE_PRICE_QUANTUMS_MAX = 10**24  # execution.oracle.ORACLE_PRICE_QUANTUMS_MAX
MARKETS_MAX = 1_024
CHAIN_ID_MAX = (1 << 64) - 1
INT_FIELD_MAX = 1 << 128  # no configured integer comes near this; it bounds nonsense

# --- defaults: the local venue ------------------------------------------------------------------
DEMO_ORACLE_KEY = keccak256(b"rollbook/demo-oracle-key/v1")  # public: local venues only
DEMO_PRICE_QUANTUMS = 100_000 * 10**6  # BTC at $100,000
DEFAULT_CHAIN_ID = 31337  # the embedded EVM's and anvil's
assert 0 < int.from_bytes(DEMO_ORACLE_KEY, "big") < SECP256K1_N

_MARKET_INT_FIELDS = (
    "order_size_lots_max", "open_interest_lots_max", "price_band_ppm", "maker_fee_ppm",
    "taker_fee_ppm", "liquidation_penalty_ppm", "impact_notional_quantums", "funding_interval_s",
    "funding_sample_interval_s", "funding_rate_cap_ppm", "funding_interest_ppm",
    "funding_clamp_ppm", "funding_premium_divisor",
)
_VENUE_INT_FIELDS = (
    "oracle_max_age_ms", "oracle_max_future_ms", "open_orders_per_subaccount_max",
    "subaccounts_max", "batch_cost_max", "fills_per_order_max", "withdrawal_margin_floor_ppm",
    "liquidations_per_tx_max", "liquidation_step_ppm", "backstop_notional_quantums_max",
    "deposit_quantums_max",
)


class ConfigError(ValueError):
    """A configuration the node refuses; the message names the key."""


def address_of_key(private_key: bytes) -> bytes:
    return address_of_public_key(coincurve.PrivateKey(private_key).public_key.format(
        compressed=False))


@dataclass(frozen=True, slots=True)
class StorageSettings:
    data_dir: Path | None = None  # None: a fresh temporary directory per start
    snapshot_interval_batches: int = 100
    snapshots_kept: int = 2
    snapshot_fork: bool = True
    wal_segment_bytes: int = 64 << 20
    recovery_processes: int = 2  # 0: recover on recovery_threads threads
    recovery_threads: int = 2
    inflight_max: int = 100_000


@dataclass(frozen=True, slots=True)
class BatchSettings:
    interval_ms: int = 200
    txs_max: int = 4_096
    bytes_max: int = SETTLEMENT_BATCH_BYTES_MAX  # what Settlement.vy's submit_batch takes


@dataclass(frozen=True, slots=True)
class ChainSettings:
    url: str = "embedded"
    confirmations: int = 0
    operator_key: bytes | None = None
    settlement_address: bytes | None = None
    start_block: int = 0
    challenge_window_s: int = 600
    forced_deadline_s: int = 86_400
    escape_period_s: int = 7 * 86_400
    poll_interval_ms: int = 500
    chain_id: int = DEFAULT_CHAIN_ID
    challengers: tuple[bytes, ...] = ()  # constructor argument: who may dispute roots

    @property
    def kind(self) -> str:
        """``embedded``, ``none`` or ``rpc``."""
        return self.url if self.url in ("embedded", "none") else "rpc"


@dataclass(frozen=True, slots=True)
class OracleSettings:
    signers: tuple[bytes, ...] = ()  # empty: the address of ``key``
    threshold: int = 1
    key: bytes | None = DEMO_ORACLE_KEY
    interval_ms: int = 1_000
    refresh_ms: int = 10_000
    prices: tuple[tuple[int, int], ...] = ((1, DEMO_PRICE_QUANTUMS),)  # (index id, quantums)

    @property
    def signer_addresses(self) -> tuple[bytes, ...]:
        if self.signers:
            return self.signers
        return () if self.key is None else (address_of_key(self.key),)


@dataclass(frozen=True, slots=True)
class HeartbeatSettings:
    funding_interval_ms: int = 10_000
    liquidations_interval_ms: int = 1_000


def _default_markets() -> tuple[MarketConfig, ...]:
    return (perpetual_market(1, "BTC-PERP", 1, tick_size_quantums=100_000,
                             lot_size_nanounits=100_000),)


@dataclass(frozen=True, slots=True)
class NodeConfig:
    markets: tuple[MarketConfig, ...] = field(default_factory=_default_markets)
    venue_limits: tuple[tuple[str, int], ...] = ()  # VenueConfig field overrides
    oracle: OracleSettings = OracleSettings()
    batch: BatchSettings = BatchSettings()
    heartbeat: HeartbeatSettings = HeartbeatSettings()
    chain: ChainSettings = ChainSettings()
    storage: StorageSettings = StorageSettings()

    @classmethod
    def local(cls, data_dir: str | Path | None = None) -> NodeConfig:
        """The local venue: embedded EVM, BTC perpetual, demo oracle key."""
        storage = StorageSettings(data_dir=None if data_dir is None else Path(data_dir))
        return cls(storage=storage)

    def venue_config(self, chain_id: int) -> VenueConfig:
        """The STF's configuration on the chain ``chain_id`` (bound into oracle digests)."""
        signers = self.oracle.signer_addresses
        limits: dict[str, Any] = dict(self.venue_limits)
        config = VenueConfig(chain_id=chain_id, markets=self.markets, oracle_signers=signers,
                             oracle_threshold=self.oracle.threshold, **limits)
        _check_venue(config)
        return config

    def replace(self, **changes: Any) -> NodeConfig:
        """A copy with top-level fields replaced (validated again)."""
        updated = dataclasses.replace(self, **changes)
        _check_node(updated)
        return updated


# --- parsing ------------------------------------------------------------------------------------

class _Reader:
    """Typed access to one TOML table; remembers which keys were read to refuse the rest."""

    def __init__(self, table: Any, path: str) -> None:
        if not isinstance(table, dict):
            raise ConfigError(f"{path or 'config'}: must be a table")
        self.table: dict[str, Any] = table
        self.path = path
        self.seen: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self.table

    def raw(self, key: str) -> Any:
        self.seen.add(key)
        return self.table[key]

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        if key not in self.table:
            return default
        value = self.raw(key)
        if type(value) is not int:  # bool is an int subclass: refused here on purpose
            raise ConfigError(f"{self._key(key)}: must be an integer, got {value!r}")
        if not low <= value <= high:
            raise ConfigError(f"{self._key(key)}: must be an integer in [{low}, {high}], "
                              f"got {value}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        if key not in self.table:
            return default
        value = self.raw(key)
        if type(value) is not bool:
            raise ConfigError(f"{self._key(key)}: must be true or false, got {value!r}")
        return value

    def string(self, key: str, default: str) -> str:
        if key not in self.table:
            return default
        value = self.raw(key)
        if not isinstance(value, str):
            raise ConfigError(f"{self._key(key)}: must be a string, got {value!r}")
        return value

    def hex_bytes(self, key: str, length: int) -> bytes | None:
        if key not in self.table:
            return None
        return _hex(self.raw(key), length, self._key(key))

    def sub(self, key: str) -> _Reader:
        return _Reader(self.raw(key) if key in self.table else {}, self._key(key))

    def finish(self) -> None:
        unknown = sorted(set(self.table) - self.seen)
        if unknown:
            raise ConfigError(f"{self._key(unknown[0])}: unknown key")


def _hex(value: Any, length: int, where: str) -> bytes:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: must be a 0x-prefixed hex string")
    text = value.removeprefix("0x")
    try:
        data = bytes.fromhex(text)
    except ValueError as error:
        raise ConfigError(f"{where}: not hex ({value!r})") from error
    if len(data) != length:
        raise ConfigError(f"{where}: must be {length} bytes, got {len(data)}")
    return data


def _private_key(reader: _Reader, key: str) -> bytes | None:
    value = reader.hex_bytes(key, 32)
    if value is not None and not 0 < int.from_bytes(value, "big") < SECP256K1_N:
        raise ConfigError(f"{reader._key(key)}: not a valid secp256k1 private key")
    return value


def parse_config(text: str) -> NodeConfig:
    """A configuration from TOML text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"not valid TOML: {error}") from error
    return config_from_dict(data)


def load_config(path: str | Path | None = None) -> NodeConfig:
    """The configuration in the TOML file at ``path``; the local venue for ``None``."""
    if path is None:
        return NodeConfig.local()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror})") from error
    config = parse_config(text)
    storage = config.storage
    if storage.data_dir is not None and not storage.data_dir.is_absolute():
        # a relative data directory is relative to the file that names it, not to the cwd
        storage = dataclasses.replace(storage, data_dir=Path(path).parent / storage.data_dir)
        config = dataclasses.replace(config, storage=storage)
    return config


def config_from_dict(data: dict[str, Any]) -> NodeConfig:
    """A configuration from parsed TOML (a dict of tables)."""
    root = _Reader(data, "")
    storage = _storage(root.sub("node"))
    batch = _batch(root.sub("batch"))
    chain = _chain(root.sub("chain"))
    oracle = _oracle(root.sub("oracle"))
    heartbeat = _heartbeat(root.sub("heartbeat"))
    fees = root.sub("fees")
    maker_fee = fees.integer("maker_fee_ppm", -100, -1_000_000, 1_000_000)
    taker_fee = fees.integer("taker_fee_ppm", 500, 0, 1_000_000)
    fees.finish()
    venue_limits = _venue_limits(root.sub("venue"))
    if root.has("markets"):
        markets_raw = root.raw("markets")
        if not isinstance(markets_raw, list) or not markets_raw:
            raise ConfigError("markets: must be a non-empty array of tables ([[markets]])")
        if len(markets_raw) > MARKETS_MAX:
            raise ConfigError(f"markets: at most {MARKETS_MAX}")
        markets = tuple(_market(_Reader(m, f"markets[{i}]"), maker_fee, taker_fee)
                        for i, m in enumerate(markets_raw))
    else:
        markets = tuple(dataclasses.replace(m, maker_fee_ppm=maker_fee, taker_fee_ppm=taker_fee)
                        for m in _default_markets())
    root.finish()
    config = NodeConfig(markets=markets, venue_limits=venue_limits, oracle=oracle, batch=batch,
                        heartbeat=heartbeat, chain=chain, storage=storage)
    _check_node(config)
    return config


def _storage(reader: _Reader) -> StorageSettings:
    data_dir = reader.string("data_dir", "")
    settings = StorageSettings(
        data_dir=Path(data_dir) if data_dir else None,
        snapshot_interval_batches=reader.integer("snapshot_interval_batches", 100, 1,
                                                 SNAPSHOT_INTERVAL_MAX),
        snapshots_kept=reader.integer("snapshots_kept", 2, 1, SNAPSHOTS_KEPT_MAX),
        snapshot_fork=reader.boolean("snapshot_fork", True),
        wal_segment_bytes=reader.integer("wal_segment_bytes", 64 << 20, WAL_SEGMENT_BYTES_MIN,
                                         WAL_SEGMENT_BYTES_MAX),
        recovery_processes=reader.integer("recovery_processes", 2, 0, RECOVERY_PROCESSES_MAX),
        recovery_threads=reader.integer("recovery_threads", 2, 1, RECOVERY_THREADS_MAX),
        inflight_max=reader.integer("inflight_max", 100_000, 1, INFLIGHT_MAX_LIMIT),
    )
    reader.finish()
    return settings


def _batch(reader: _Reader) -> BatchSettings:
    settings = BatchSettings(
        interval_ms=reader.integer("interval_ms", 200, BATCH_INTERVAL_MS_MIN,
                                   BATCH_INTERVAL_MS_MAX),
        txs_max=reader.integer("txs_max", 4_096, 1, BATCH_TXS_MAX_LIMIT),
        bytes_max=reader.integer("bytes_max", SETTLEMENT_BATCH_BYTES_MAX, BATCH_BYTES_MIN,
                                 BATCH_BYTES_MAX_LIMIT),
    )
    reader.finish()
    return settings


def _chain(reader: _Reader) -> ChainSettings:
    url = reader.string("url", "embedded")
    if url not in ("embedded", "none") and not url.startswith(("http://", "https://")):
        raise ConfigError(f"chain.url: 'embedded', 'none' or an http(s) URL, got {url!r}")
    settings = ChainSettings(
        url=url,
        confirmations=reader.integer("confirmations", 0, 0, CONFIRMATIONS_MAX),
        operator_key=_private_key(reader, "operator_key"),
        settlement_address=reader.hex_bytes("settlement_address", 20),
        start_block=reader.integer("start_block", 0, 0, INT_FIELD_MAX),
        challenge_window_s=reader.integer("challenge_window_s", 600, 1, WINDOW_S_MAX),
        forced_deadline_s=reader.integer("forced_deadline_s", 86_400, 1, WINDOW_S_MAX),
        escape_period_s=reader.integer("escape_period_s", 7 * 86_400, 1, WINDOW_S_MAX),
        poll_interval_ms=reader.integer("poll_interval_ms", 500, POLL_INTERVAL_MS_MIN,
                                        POLL_INTERVAL_MS_MAX),
        chain_id=reader.integer("chain_id", DEFAULT_CHAIN_ID, 1, CHAIN_ID_MAX),
        challengers=_challengers(reader),
    )
    reader.finish()
    if settings.kind == "rpc" and settings.operator_key is None:
        raise ConfigError("chain.operator_key: required for a JSON-RPC chain (the key that "
                          "deploys and submits batches)")
    if settings.kind != "none" and reader.has("chain_id"):
        raise ConfigError("chain.chain_id: only for url = 'none' (a chain reports its own id)")
    return settings


def _challengers(reader: _Reader) -> tuple[bytes, ...]:
    """The settlement contract's challenger set (its constructor takes at most 16)."""
    if not reader.has("challengers"):
        return ()
    raw = reader.raw("challengers")
    if not isinstance(raw, list) or len(raw) > CHALLENGERS_MAX:
        raise ConfigError(f"chain.challengers: must be a list of at most {CHALLENGERS_MAX} "
                          "addresses")
    return tuple(_hex(value, 20, f"chain.challengers[{i}]") for i, value in enumerate(raw))


def _oracle(reader: _Reader) -> OracleSettings:
    signers: tuple[bytes, ...] = ()
    if reader.has("signers"):
        raw = reader.raw("signers")
        if not isinstance(raw, list) or not 1 <= len(raw) <= ORACLE_SIGNERS_MAX:
            raise ConfigError(f"oracle.signers: must be a list of 1 to {ORACLE_SIGNERS_MAX} "
                              "addresses")
        signers = tuple(_hex(value, 20, f"oracle.signers[{i}]") for i, value in enumerate(raw))
        if len(set(signers)) != len(signers):
            raise ConfigError("oracle.signers: duplicate address")
    key = _private_key(reader, "key") if reader.has("key") else (
        None if signers else DEMO_ORACLE_KEY)
    prices: tuple[tuple[int, int], ...] = ((1, DEMO_PRICE_QUANTUMS),)
    if reader.has("prices"):
        table = reader.sub("prices")
        parsed = []
        for name in sorted(table.table, key=lambda n: (len(n), n)):
            if not name.isdigit() or not 0 <= int(name) < 1 << 32:
                raise ConfigError(f"oracle.prices.{name}: keys are index ids (integers)")
            parsed.append((int(name), table.integer(name, 0, 1, ORACLE_PRICE_QUANTUMS_MAX)))
        table.finish()
        prices = tuple(parsed)
    settings = OracleSettings(
        signers=signers,
        threshold=reader.integer("threshold", 1, 1, ORACLE_SIGNERS_MAX),
        key=key,
        interval_ms=reader.integer("interval_ms", 1_000, HEARTBEAT_MS_MIN, HEARTBEAT_MS_MAX),
        refresh_ms=reader.integer("refresh_ms", 10_000, HEARTBEAT_MS_MIN, HEARTBEAT_MS_MAX),
        prices=prices,
    )
    reader.finish()
    if key is not None and signers and address_of_key(key) not in signers:
        raise ConfigError("oracle.key: its address is not among oracle.signers")
    if not settings.signer_addresses:
        raise ConfigError("oracle: configure signers, a key, or both")
    if settings.threshold > len(settings.signer_addresses):
        raise ConfigError(f"oracle.threshold: {settings.threshold} exceeds the "
                          f"{len(settings.signer_addresses)} signers")
    if key is not None and settings.threshold > 1:
        raise ConfigError("oracle.threshold: the node signs heartbeat updates with one key, so "
                          "a threshold above 1 needs external oracle updates and no oracle.key")
    return settings


def _heartbeat(reader: _Reader) -> HeartbeatSettings:
    settings = HeartbeatSettings(
        funding_interval_ms=reader.integer("funding_interval_ms", 10_000, HEARTBEAT_MS_MIN,
                                           HEARTBEAT_MS_MAX),
        liquidations_interval_ms=reader.integer("liquidations_interval_ms", 1_000,
                                                HEARTBEAT_MS_MIN, HEARTBEAT_MS_MAX),
    )
    reader.finish()
    return settings


def _venue_limits(reader: _Reader) -> tuple[tuple[str, int], ...]:
    defaults = VenueConfig(chain_id=1, markets=(), oracle_signers=(bytes(20),),
                           oracle_threshold=1)
    limits = []
    for name in _VENUE_INT_FIELDS:
        if reader.has(name):
            limits.append((name, reader.integer(name, getattr(defaults, name), 1,
                                                INT_FIELD_MAX)))
    reader.finish()
    return tuple(limits)


def _market(reader: _Reader, maker_fee: int, taker_fee: int) -> MarketConfig:
    market_id = reader.integer("id", 0, 1, MARKET_ID_MAX)
    if market_id == 0:
        raise ConfigError(f"{reader.path}.id: required")
    symbol = reader.string("symbol", f"MARKET-{market_id}")
    if not 1 <= len(symbol) <= 32:
        raise ConfigError(f"{reader.path}.symbol: 1 to 32 characters")
    base = perpetual_market(
        market_id, symbol, reader.integer("index_id", market_id, 0, (1 << 32) - 1),
        tick_size_quantums=reader.integer("tick_size_quantums", 100_000, 1, INT_FIELD_MAX),
        lot_size_nanounits=reader.integer("lot_size_nanounits", 100_000, 1, INT_FIELD_MAX),
        initial_ppm=reader.integer("initial_ppm", 100_000, 1, 1_000_000),
        maintenance_ppm=reader.integer("maintenance_ppm", 50_000, 1, 1_000_000),
    )
    changes: dict[str, Any] = {"maker_fee_ppm": maker_fee, "taker_fee_ppm": taker_fee}
    for name in _MARKET_INT_FIELDS:
        if reader.has(name):
            low = -1_000_000 if name == "maker_fee_ppm" else 0
            changes[name] = reader.integer(name, 0, low, INT_FIELD_MAX)
    reader.finish()
    market = dataclasses.replace(base, **changes)
    if market.kind != InstrumentKind.PERPETUAL:  # pragma: no cover - perpetual_market's kind
        raise ConfigError(f"{reader.path}: only perpetual markets are configured here")
    return market


def _check_venue(config: VenueConfig) -> None:
    try:
        validate_venue(config)
    except AssertionError as error:
        raise ConfigError(f"markets/venue: {str(error) or 'a venue invariant fails'}") from error


_ZERO = bytes(20)
# the transactions with the largest worst-case costs (their bounds grow with venue limits)
_COSTLIEST = (PlaceOrder(_ZERO, 0, 1, Side.BUY, 1, 1), ModifyOrder(_ZERO, 0, 1, 1, 1),
              CancelAll(_ZERO, 0), MassQuote(_ZERO, 0, 1, ()))


def _check_batch_cost(venue: VenueConfig) -> None:
    """Every transaction must fit an empty batch, or the sequencer could never place it."""
    state = genesis_state(venue)
    for tx in _COSTLIEST:
        bound = cost_bound_units(state, tx)
        if bound > venue.batch_cost_max:
            raise ConfigError(f"venue.batch_cost_max: {venue.batch_cost_max} is below the "
                              f"worst-case cost of one {type(tx).__name__} ({bound}); raise "
                              f"it to at least {bound} or lower the limit that drives it "
                              "(open_orders_per_subaccount_max, fills_per_order_max)")


def _check_node(config: NodeConfig) -> None:
    """Cross-field checks; the venue's own rules run with a placeholder chain id."""
    ids = [m.market_id for m in config.markets]
    if len(set(ids)) != len(ids):
        raise ConfigError("markets: duplicate market id")
    if config.chain.kind != "none" and config.batch.bytes_max > SETTLEMENT_BATCH_BYTES_MAX:
        raise ConfigError(f"batch.bytes_max: at most {SETTLEMENT_BATCH_BYTES_MAX} with a chain "
                          "(the settlement contract's limit on a batch's data)")
    indices = {m.index_id for m in config.markets}
    for index_id, _ in config.oracle.prices:
        if index_id not in indices:
            raise ConfigError(f"oracle.prices.{index_id}: no market uses index {index_id}")
    _check_batch_cost(config.venue_config(config.chain.chain_id))
