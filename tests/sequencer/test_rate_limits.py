"""Gateway limits: payload sizes and per-account token buckets on an injected clock."""

from __future__ import annotations

import pytest
from seq_helpers import OWNER, place

from rollbook.execution.txs import CancelAll, Withdraw
from rollbook.sequencer import AdmissionCode, AdmissionError, RateLimit, RateLimiter
from rollbook.sequencer.errors import GATEWAY_CODES
from rollbook.sequencer.limits import (
    ACTIONS_PER_REQUEST_MAX,
    REQUEST_BYTES_MAX,
    SIGNED_TRANSACTION_BYTES_MAX,
    action_cost_tokens,
    check_request,
    check_signed_transaction_size,
)

A = b"\x0a" * 20
B = b"\x0b" * 20
NS_PER_S = 1_000_000_000


class FakeClock:
    def __init__(self) -> None:
        self.now_ns = 5 * NS_PER_S

    def __call__(self) -> int:
        return self.now_ns


def test_payload_limits() -> None:
    check_signed_transaction_size(bytes(SIGNED_TRANSACTION_BYTES_MAX))
    check_request(REQUEST_BYTES_MAX, ACTIONS_PER_REQUEST_MAX)
    with pytest.raises(AdmissionError) as refused:
        check_signed_transaction_size(bytes(SIGNED_TRANSACTION_BYTES_MAX + 1))
    assert refused.value.code == AdmissionCode.PAYLOAD_TOO_LARGE
    for request_bytes, actions in ((REQUEST_BYTES_MAX + 1, 1), (10, ACTIONS_PER_REQUEST_MAX + 1)):
        with pytest.raises(AdmissionError) as refused:
            check_request(request_bytes, actions)
        assert refused.value.code == AdmissionCode.PAYLOAD_TOO_LARGE
    assert {AdmissionCode.PAYLOAD_TOO_LARGE, AdmissionCode.RATE_LIMITED} == GATEWAY_CODES


def test_bucket_drains_and_refills_exactly() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(burst_tokens=10, refill_tokens_per_s=4), clock)
    for _ in range(5):
        limiter.acquire(A, 2)
    assert limiter.tokens(A) == 0
    with pytest.raises(AdmissionError) as refused:
        limiter.acquire(A, 2)
    assert refused.value.code == AdmissionCode.RATE_LIMITED
    assert "retry in 500 ms" in refused.value.message  # 2 tokens at 4/s
    clock.now_ns += NS_PER_S // 2 - 1
    assert not limiter.try_acquire(A, 2)  # a nanosecond short
    clock.now_ns += 1
    assert limiter.try_acquire(A, 2)
    clock.now_ns += 3600 * NS_PER_S
    assert limiter.tokens(A) == 10  # capped at the burst
    assert limiter.tokens(B) == 10  # accounts are independent


def test_clock_stepping_back_refills_nothing() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(2, 1), clock)
    limiter.acquire(A, 2)
    clock.now_ns -= 10 * NS_PER_S
    assert limiter.tokens(A) == 0
    assert not limiter.try_acquire(A, 1)


def test_cancels_cost_less() -> None:
    assert action_cost_tokens(CancelAll(OWNER, 0)) < action_cost_tokens(place())
    assert action_cost_tokens(Withdraw(OWNER, 0, 1)) == action_cost_tokens(place())


def test_buckets_are_bounded_least_recently_used_first() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(4, 1), clock, accounts_max=2)
    limiter.acquire(A, 4)
    limiter.acquire(B, 4)
    limiter.acquire(b"\x0c" * 20, 1)  # evicts A, the least recently used
    assert limiter.tokens(A) == 4  # documented: an evicted account starts full again
    assert limiter.tokens(B) == 0


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        RateLimit(0, 1)
    with pytest.raises(ValueError):
        RateLimit(1, 0)
    with pytest.raises(ValueError):
        RateLimiter(RateLimit(1, 1), accounts_max=0)
    with pytest.raises(ValueError):
        RateLimiter(RateLimit(1, 1)).acquire(A, 2)  # can never be paid
