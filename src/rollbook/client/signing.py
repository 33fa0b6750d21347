"""Client-side signing: keys, nonces, and the rounding of human prices and sizes to the venue.

Keys. A ``Signer`` holds one secp256k1 key and the owner it acts for: the owner's own key
(``Signer.from_key`` / ``Signer.from_account`` with an eth-account ``LocalAccount``), or an
agent key trading for another owner (``Signer.agent``; agents may trade and cancel but never
withdraw, transfer or manage agents — the node refuses with ``AGENT_NOT_PERMITTED``). Signing
is EIP-712 through ``rollbook.sequencer.eip712`` / ``sign_action`` (the node's own digest code,
so the client and the node cannot disagree; it equals eth-account's ``encode_typed_data``).

Nonces. ``NonceSource`` hands out millisecond timestamps, strictly increasing per source even
when the wall clock stands still or steps back (then it counts up from the last one). The node
keeps the highest 100 nonces per signer and refuses one at or below the smallest kept, so
concurrent clients sharing one key should each use their own agent key, or share one
``NonceSource``.

Rounding (integers only after the conversion; ``Decimal`` in, never binary floats in the
arithmetic). Prices are quote units (USDC) per whole base unit; sizes are base units:
- a buy's price rounds **down** to a tick and a sell's **up**, so rounding never makes an order
  more aggressive than the caller asked;
- sizes round **down** to a lot, so rounding never trades more than asked; a size below one lot
  is refused (``ValueError``), never rounded up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import coincurve
from eth_account.signers.local import LocalAccount

from rollbook.execution.crypto import address_of_public_key
from rollbook.execution.txs import Side
from rollbook.sequencer.eip712 import Eip712Domain, UserAction
from rollbook.sequencer.signatures import SignedTransaction, sign_action

__all__ = [
    "NANOUNITS_PER_UNIT",
    "MarketRounding",
    "NonceSource",
    "Signer",
    "pow10",
    "to_decimal",
]

NANOUNITS_PER_UNIT = 10**9
PRIVATE_KEY_BYTES = 32
Number = Decimal | int | str | float


def to_decimal(value: Number) -> Decimal:
    """A float goes through its shortest repr ("0.1", not 0.1000000000000000055...)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, bool):
        raise TypeError("a bool is not a number")
    result = Decimal(value)
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


class NonceSource:
    """Strictly increasing millisecond nonces; thread-safe."""

    __slots__ = ("_clock_ms", "_last", "_lock")

    def __init__(self, clock_ms: Callable[[], int] | None = None) -> None:
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            nonce = max(self._clock_ms(), self._last + 1)
            self._last = nonce
            return nonce


class Signer:
    """One key, the owner it signs for, and its nonces."""

    __slots__ = ("address", "nonces", "owner", "private_key")

    def __init__(self, private_key: bytes, owner: bytes | None = None,
                 nonces: NonceSource | None = None) -> None:
        if len(private_key) != PRIVATE_KEY_BYTES:
            raise ValueError("a private key is 32 bytes")
        self.private_key = private_key
        public = coincurve.PrivateKey(private_key).public_key.format(compressed=False)
        self.address: bytes = address_of_public_key(public)
        self.owner: bytes = self.address if owner is None else owner
        if len(self.owner) != 20:
            raise ValueError("an owner is a 20-byte address")
        self.nonces = nonces or NonceSource()

    @classmethod
    def from_key(cls, private_key: str | bytes) -> Signer:
        """The owner's own key (hex, with or without 0x, or 32 bytes)."""
        return cls(_key_bytes(private_key))

    @classmethod
    def from_account(cls, account: LocalAccount) -> Signer:
        return cls(bytes(account.key))

    @classmethod
    def agent(cls, agent_key: str | bytes | LocalAccount, owner: bytes | str) -> Signer:
        """An agent key trading for ``owner`` (registered by the owner first)."""
        key = bytes(agent_key.key) if isinstance(agent_key, LocalAccount) else _key_bytes(
            agent_key)
        owner_bytes = bytes.fromhex(owner.removeprefix("0x")) if isinstance(owner, str) else owner
        return cls(key, owner_bytes)

    @property
    def is_agent(self) -> bool:
        return self.address != self.owner

    def sign(self, domain: Eip712Domain, action: UserAction,
             nonce_ms: int | None = None) -> SignedTransaction:
        return sign_action(self.private_key, domain, action,
                           self.nonces.next() if nonce_ms is None else nonce_ms)


def pow10(exponent: int) -> int:
    """10**exponent as an int (``int ** int`` is not an int to a type checker)."""
    assert exponent >= 0
    return int(10**exponent)


def _key_bytes(private_key: str | bytes) -> bytes:
    if isinstance(private_key, bytes):
        return private_key
    return bytes.fromhex(private_key.removeprefix("0x"))


@dataclass(frozen=True, slots=True)
class MarketRounding:
    """A market's tick and lot, and the conversions with their rounding directions."""

    market_id: int
    tick_size_quantums: int  # quantums of collateral per whole base unit, per tick
    lot_size_nanounits: int  # 10^-9 base units per lot
    collateral_decimals: int = 6

    def price_ticks(self, price: Number, side: Side) -> int:
        """Price (collateral units per base unit) to ticks: buys round down, sells up."""
        num, den = to_decimal(price).as_integer_ratio()  # exact: no context precision
        num *= pow10(self.collateral_decimals)
        den *= self.tick_size_quantums
        result = num // den if side == Side.BUY else -(-num // den)
        if result <= 0:
            raise ValueError(f"price {price} is below one tick")
        return result

    def size_lots(self, size: Number) -> int:
        """Size (base units) to lots, rounded down; below one lot is refused."""
        num, den = to_decimal(size).as_integer_ratio()
        result = num * NANOUNITS_PER_UNIT // (den * self.lot_size_nanounits)
        if result <= 0:
            raise ValueError(f"size {size} is below one lot")
        return result

    def price(self, price_ticks: int) -> Decimal:
        """Ticks back to a price (exact)."""
        return (Decimal(price_ticks) * self.tick_size_quantums
                / pow10(self.collateral_decimals))

    def size(self, size_lots: int) -> Decimal:
        """Lots back to a size (exact)."""
        return Decimal(size_lots) * self.lot_size_nanounits / NANOUNITS_PER_UNIT
