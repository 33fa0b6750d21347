"""Market-maker protection (MMP): freeze a maker's quotes on an underlying after a burst of fills.

A market maker quotes many strikes at once; a fast market (or a stale quote) can sweep them
all before the maker reacts. MMP counts the maker's protected fills per (account, underlying
index) over a sliding window and, when any limit is exceeded, *triggers*: the STF cancels the
account's protected quotes on that underlying and rejects new ones until the freeze ends.

State machine (``MmpWindow``, one per account and index; deterministic, integer-only)
------------------------------------------------------------------------------------
- ``record_fill(timestamp_ms, quantity_nanounits, delta_nanounits, vega_quantums)``: the
  fill is appended to a bounded ring; fills at or before ``timestamp_ms - window_ms`` are
  evicted first (the window is ``(now - window_ms, now]``). Then the limits are checked:
    - quantity: the **gross** sum of ``|quantity|`` in the window (every contract filled
      counts, as on Deribit, Bybit, Derive and Paradex);
    - delta: ``|net delta|``, the absolute value of the signed sum (fills that offset each
      other reduce it, as on Derive and Bybit);
    - vega: ``|net vega|`` likewise (options only; a perpetual fill has vega 0).
  A limit is exceeded when the measure is **strictly greater** than it (``None``: no limit).
  On a trigger the window is cleared and the account is frozen until ``timestamp_ms +
  frozen_ms``; ``frozen_ms == 0`` freezes until ``reset``. ``record_fill`` returns ``True``
  exactly when this fill triggered.
- While frozen, fills are not counted (protected quotes are gone; what still fills is
  unprotected flow) and ``record_fill`` returns ``False``; ``is_frozen(now_ms)`` says whether
  protected orders must be rejected.
- Bounded: at most ``config.fills_in_window_max`` fills are kept. Reaching that many fills
  inside one window triggers too, so the ring never has to drop a fill that still counts
  (a burst of tiny fills is itself the pattern MMP exists to stop).
- Timestamps must not decrease (batch timestamps do not); a decrease raises ``ValueError``.

Units: quantity and delta in nanounits of the underlying (lots x contract size, and that times
the option's delta), vega in quantums per volatility point (``portfolio.position_risk`` gives
both for a fill's size). Sums are exact integers maintained incrementally (O(1) amortised per
fill). ``state()`` is a canonical tuple of the window for hashing into a state commitment.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Final

# allow_interpreted_subclasses: restorable by pickle/node.snapshot when compiled (see state.py)
from mypy_extensions import mypyc_attr

__all__ = [
    "MMP_FILLS_IN_WINDOW_MAX",
    "MMP_FROZEN_MS_MAX",
    "MMP_WINDOW_MS_MAX",
    "MmpBook",
    "MmpConfig",
    "MmpFill",
    "MmpWindow",
]

MMP_WINDOW_MS_MAX: Final = 3_600_000  # an hour; venues use seconds
MMP_FROZEN_MS_MAX: Final = 86_400_000  # a day
MMP_FILLS_IN_WINDOW_MAX: Final = 1_024  # ring capacity bound per (account, index)
_NOT_FROZEN: Final = -1
_FROZEN_UNTIL_RESET: Final = -2


@dataclass(frozen=True, slots=True)
class MmpConfig:
    """Per (account, index) protection settings; at least one limit must be set."""

    window_ms: int
    frozen_ms: int  # 0: until reset
    quantity_limit_nanounits: int | None = None
    delta_limit_nanounits: int | None = None
    vega_limit_quantums: int | None = None
    fills_in_window_max: int = MMP_FILLS_IN_WINDOW_MAX

    def __post_init__(self) -> None:
        if not 1 <= self.window_ms <= MMP_WINDOW_MS_MAX:
            raise ValueError(f"window_ms={self.window_ms} outside [1, MMP_WINDOW_MS_MAX]")
        if not 0 <= self.frozen_ms <= MMP_FROZEN_MS_MAX:
            raise ValueError(f"frozen_ms={self.frozen_ms} outside [0, MMP_FROZEN_MS_MAX]")
        if not 1 <= self.fills_in_window_max <= MMP_FILLS_IN_WINDOW_MAX:
            raise ValueError("fills_in_window_max outside [1, MMP_FILLS_IN_WINDOW_MAX]")
        limits = (self.quantity_limit_nanounits, self.delta_limit_nanounits,
                  self.vega_limit_quantums)
        if all(limit is None for limit in limits):
            raise ValueError("MMP needs at least one limit")
        if any(limit is not None and limit < 0 for limit in limits):
            raise ValueError("MMP limits must be non-negative")


@dataclass(frozen=True, slots=True)
class MmpFill:
    timestamp_ms: int
    quantity_nanounits: int  # signed: + bought, - sold
    delta_nanounits: int
    vega_quantums: int


@mypyc_attr(allow_interpreted_subclasses=True)
class MmpWindow:
    """The sliding window and freeze of one (account, index); see the module docstring."""

    __slots__ = ("_delta_sum", "_fills", "_frozen_until_ms", "_last_ms", "_quantity_sum",
                 "_vega_sum", "config")

    def __init__(self, config: MmpConfig) -> None:
        self.config = config
        self._fills: deque[MmpFill] = deque()
        self._quantity_sum = 0  # gross
        self._delta_sum = 0  # signed
        self._vega_sum = 0  # signed
        self._frozen_until_ms = _NOT_FROZEN
        self._last_ms = 0

    def is_frozen(self, now_ms: int) -> bool:
        if self._frozen_until_ms == _FROZEN_UNTIL_RESET:
            return True
        return now_ms < self._frozen_until_ms

    @property
    def frozen_until_ms(self) -> int | None:
        """End of the freeze (exclusive); ``None`` if frozen until reset or never frozen."""
        return self._frozen_until_ms if self._frozen_until_ms >= 0 else None

    def reset(self) -> None:
        """Lift a freeze and forget the window (the maker's explicit reset)."""
        self._clear()
        self._frozen_until_ms = _NOT_FROZEN

    def _clear(self) -> None:
        self._fills.clear()
        self._quantity_sum = self._delta_sum = self._vega_sum = 0

    def _evict(self, now_ms: int) -> None:
        horizon_ms = now_ms - self.config.window_ms
        fills = self._fills
        while fills and fills[0].timestamp_ms <= horizon_ms:
            old = fills.popleft()
            self._quantity_sum -= abs(old.quantity_nanounits)
            self._delta_sum -= old.delta_nanounits
            self._vega_sum -= old.vega_quantums

    def measures(self, now_ms: int) -> tuple[int, int, int, int]:
        """``(fills, gross quantity, |net delta|, |net vega|)`` in the window ending now."""
        self._check_time(now_ms)
        self._evict(now_ms)
        return (len(self._fills), self._quantity_sum, abs(self._delta_sum), abs(self._vega_sum))

    def _check_time(self, now_ms: int) -> None:
        if now_ms < self._last_ms:
            raise ValueError(f"timestamp {now_ms} before the last one {self._last_ms}")
        self._last_ms = now_ms

    def record_fill(self, timestamp_ms: int, quantity_nanounits: int, delta_nanounits: int,
                    vega_quantums: int) -> bool:
        """Count a protected fill; ``True`` iff it triggered a freeze (module docstring)."""
        self._check_time(timestamp_ms)
        if self.is_frozen(timestamp_ms):
            return False
        self._evict(timestamp_ms)
        self._fills.append(MmpFill(timestamp_ms, quantity_nanounits, delta_nanounits,
                                   vega_quantums))
        self._quantity_sum += abs(quantity_nanounits)
        self._delta_sum += delta_nanounits
        self._vega_sum += vega_quantums
        if not self._exceeded():
            return False
        self._clear()
        if self.config.frozen_ms == 0:
            self._frozen_until_ms = _FROZEN_UNTIL_RESET
        else:
            self._frozen_until_ms = timestamp_ms + self.config.frozen_ms
        return True

    def _exceeded(self) -> bool:
        config = self.config
        if len(self._fills) >= config.fills_in_window_max:
            return True
        quantity_limit = config.quantity_limit_nanounits
        if quantity_limit is not None and self._quantity_sum > quantity_limit:
            return True
        delta_limit = config.delta_limit_nanounits
        if delta_limit is not None and abs(self._delta_sum) > delta_limit:
            return True
        vega_limit = config.vega_limit_quantums
        return vega_limit is not None and abs(self._vega_sum) > vega_limit

    def state(self) -> tuple[int, int, tuple[tuple[int, int, int, int], ...]]:
        """Canonical ``(frozen_until, last_ms, fills)`` for hashing; sums are derived."""
        fills = tuple(
            (f.timestamp_ms, f.quantity_nanounits, f.delta_nanounits, f.vega_quantums)
            for f in self._fills
        )
        return (self._frozen_until_ms, self._last_ms, fills)


@mypyc_attr(allow_interpreted_subclasses=True)
class MmpBook:
    """``MmpWindow`` per (account key, index id), created on first use with its config.

    Keys must hash deterministically (ints, bytes, tuples of them); nothing iterates the
    dict except ``keys()``, which follows insertion order (the order of first fills).
    """

    __slots__ = ("_windows",)

    def __init__(self) -> None:
        self._windows: dict[tuple[Hashable, int], MmpWindow] = {}

    def configure(self, account: Hashable, index_id: int, config: MmpConfig) -> MmpWindow:
        """Install (or replace, forgetting the window and any freeze) a configuration."""
        window = MmpWindow(config)
        self._windows[(account, index_id)] = window
        return window

    def window(self, account: Hashable, index_id: int) -> MmpWindow | None:
        return self._windows.get((account, index_id))

    def record_fill(self, account: Hashable, index_id: int, timestamp_ms: int,
                    quantity_nanounits: int, delta_nanounits: int, vega_quantums: int) -> bool:
        """``True`` iff the fill triggered; unconfigured accounts are never protected."""
        window = self._windows.get((account, index_id))
        if window is None:
            return False
        return window.record_fill(timestamp_ms, quantity_nanounits, delta_nanounits,
                                  vega_quantums)

    def is_frozen(self, account: Hashable, index_id: int, now_ms: int) -> bool:
        window = self._windows.get((account, index_id))
        return window is not None and window.is_frozen(now_ms)

    def keys(self) -> list[tuple[Hashable, int]]:
        return list(self._windows)
