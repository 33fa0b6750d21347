"""Gateway-side limits: payload sizes and per-account token-bucket rate limits.

These run before admission and depend on the transport and on wall time, so they are *not* part
of the deterministic rules the verifier replays (their codes are ``GATEWAY_CODES``). An action a
gateway let through is judged by admission alone.

Payload sizes: a signed transaction's canonical bytes are at most
``SIGNED_TRANSACTION_BYTES_MAX``; one request (HTTP body or WebSocket message, JSON or binary)
at most ``REQUEST_BYTES_MAX`` and ``ACTIONS_PER_REQUEST_MAX`` actions. Check the size before
parsing anything.

Rate limits: one token bucket per account (the owner an action acts for, so that an owner's
agents share its budget): ``burst_tokens`` deep, refilled at ``refill_tokens_per_s``. An action
costs ``action_cost_tokens``: cancels cost half of anything else, so an account can always
cancel what it placed. Arithmetic is in integer nanotokens against an integer nanosecond clock
(``time.monotonic_ns`` unless one is injected), so a bucket never drifts by rounding. A clock that
steps back refills nothing.

Limits and known gaps: at most ``accounts_max`` buckets are held; the least recently used is
evicted first. Evicting a full bucket loses nothing; evicting a partly drained one gives that
account a fresh bucket when it returns (so keep ``accounts_max`` well above the number of
accounts active within one refill period). No per-IP limit here: that belongs to the HTTP
server in front.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from rollbook.execution.txs import CancelAll, CancelOrder, CancelOrderByClientId
from rollbook.sequencer.eip712 import UserAction
from rollbook.sequencer.errors import AdmissionCode, AdmissionError
from rollbook.sequencer.signatures import SIGNED_TRANSACTION_BYTES_MAX

__all__ = [
    "ACTIONS_PER_REQUEST_MAX",
    "ACTION_COST_TOKENS",
    "CANCEL_COST_TOKENS",
    "RATE_LIMIT_ACCOUNTS_MAX",
    "REQUEST_BYTES_MAX",
    "SIGNED_TRANSACTION_BYTES_MAX",
    "RateLimit",
    "RateLimiter",
    "action_cost_tokens",
    "check_request",
    "check_signed_transaction_size",
]

REQUEST_BYTES_MAX = 64 * 1024
ACTIONS_PER_REQUEST_MAX = 64
RATE_LIMIT_ACCOUNTS_MAX = 1 << 20
BURST_TOKENS_MAX = 1 << 32
REFILL_TOKENS_PER_S_MAX = 1 << 32
CANCEL_COST_TOKENS = 1
ACTION_COST_TOKENS = 2
_NANO = 1_000_000_000  # nanotokens per token, and nanoseconds per second
_NS_PER_MS = 1_000_000
_CANCELS = (CancelOrder, CancelOrderByClientId, CancelAll)


def check_signed_transaction_size(data: bytes) -> None:
    """``PAYLOAD_TOO_LARGE`` for bytes longer than any signed transaction can be."""
    if len(data) > SIGNED_TRANSACTION_BYTES_MAX:
        raise AdmissionError(AdmissionCode.PAYLOAD_TOO_LARGE,
                             f"{len(data)} > {SIGNED_TRANSACTION_BYTES_MAX} bytes")


def check_request(request_bytes: int, action_count: int) -> None:
    """``PAYLOAD_TOO_LARGE`` for a request over its byte or action limit."""
    if request_bytes > REQUEST_BYTES_MAX:
        raise AdmissionError(AdmissionCode.PAYLOAD_TOO_LARGE,
                             f"request {request_bytes} > {REQUEST_BYTES_MAX} bytes")
    if action_count > ACTIONS_PER_REQUEST_MAX:
        raise AdmissionError(AdmissionCode.PAYLOAD_TOO_LARGE,
                             f"{action_count} > {ACTIONS_PER_REQUEST_MAX} actions")


def action_cost_tokens(action: UserAction) -> int:
    return CANCEL_COST_TOKENS if isinstance(action, _CANCELS) else ACTION_COST_TOKENS


@dataclass(frozen=True, slots=True)
class RateLimit:
    burst_tokens: int
    refill_tokens_per_s: int

    def __post_init__(self) -> None:
        if not 0 < self.burst_tokens <= BURST_TOKENS_MAX:
            raise ValueError(f"burst out of range: {self.burst_tokens}")
        if not 0 < self.refill_tokens_per_s <= REFILL_TOKENS_PER_S_MAX:
            raise ValueError(f"refill rate out of range: {self.refill_tokens_per_s}")


class RateLimiter:
    """Per-account token buckets; thread-safe."""

    __slots__ = ("_buckets", "_clock_ns", "_limit", "_lock", "accounts_max")

    def __init__(self, limit: RateLimit, clock_ns: Callable[[], int] = time.monotonic_ns,
                 accounts_max: int = RATE_LIMIT_ACCOUNTS_MAX) -> None:
        if not 0 < accounts_max <= RATE_LIMIT_ACCOUNTS_MAX:
            raise ValueError(f"accounts_max out of range: {accounts_max}")
        self._limit = limit
        self._clock_ns = clock_ns
        self.accounts_max = accounts_max
        # account -> (nanotokens, clock_ns at that level); most recently used last
        self._buckets: OrderedDict[bytes, tuple[int, int]] = OrderedDict()
        self._lock = threading.Lock()

    def _level(self, account: bytes, now_ns: int) -> int:
        """The account's nanotokens now (a new account starts full)."""
        capacity = self._limit.burst_tokens * _NANO
        entry = self._buckets.get(account)
        if entry is None:
            return capacity
        level, at_ns = entry
        elapsed_ns = max(0, now_ns - at_ns)  # a clock stepping back refills nothing
        return min(capacity, level + elapsed_ns * self._limit.refill_tokens_per_s)

    def try_acquire(self, account: bytes, cost_tokens: int = ACTION_COST_TOKENS) -> bool:
        """Take ``cost_tokens`` if the account has them; False (and take nothing) if not."""
        return self._take(account, cost_tokens) == 0

    def acquire(self, account: bytes, cost_tokens: int = ACTION_COST_TOKENS) -> None:
        """Take ``cost_tokens`` or raise ``RATE_LIMITED`` saying when to retry."""
        wait_ns = self._take(account, cost_tokens)
        if wait_ns:
            retry_ms = -(-wait_ns // _NS_PER_MS)  # round the wait up: never retry too early
            raise AdmissionError(AdmissionCode.RATE_LIMITED, f"retry in {retry_ms} ms")

    def tokens(self, account: bytes) -> int:
        """Whole tokens the account could spend now."""
        with self._lock:
            return self._level(account, self._clock_ns()) // _NANO

    def _take(self, account: bytes, cost_tokens: int) -> int:
        """0 after taking the tokens, else the nanoseconds until they would be there."""
        if not 0 < cost_tokens <= self._limit.burst_tokens:
            raise ValueError(f"cost {cost_tokens} outside 1..burst")
        cost = cost_tokens * _NANO
        with self._lock:
            now_ns = self._clock_ns()
            level = self._level(account, now_ns)
            if level < cost:
                return -(-(cost - level) // self._limit.refill_tokens_per_s)
            self._buckets[account] = (level - cost, now_ns)
            self._buckets.move_to_end(account)
            while len(self._buckets) > self.accounts_max:
                self._buckets.popitem(last=False)
            return 0
