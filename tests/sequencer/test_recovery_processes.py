"""Recovery in worker processes answers exactly as ``recover_signers`` does: the same signers,
the same refusals with the same codes and details, in order; also when a worker is gone, when
results are dropped unread, and for every request size up to the limit."""

from __future__ import annotations

from collections.abc import Iterator

import coincurve
import pytest

from rollbook.execution.crypto import SECP256K1_N, address_of_public_key
from rollbook.execution.txs import PlaceOrder, Side
from rollbook.sequencer.eip712 import (
    Eip712Domain,
    digest_of_struct,
    signing_digest,
    struct_words,
)
from rollbook.sequencer.errors import AdmissionError
from rollbook.sequencer.recovery_processes import (
    OUTSTANDING_REQUESTS_MAX,
    REQUEST_SIGNATURES_MAX,
    STRUCT_WORDS_BYTES_MAX,
    RecoveryProcesses,
    answer_request,
    read_reply,
)
from rollbook.sequencer.signatures import (
    SignedTransaction,
    check_signature_shape,
    recover_address,
    recover_signers,
    sign_action,
)

DOMAIN = Eip712Domain(31337, bytes(20))
KEY = (0xB0B).to_bytes(32, "big")
OWNER = address_of_public_key(coincurve.PrivateKey(KEY).public_key.format(compressed=False))
T0_MS = 1_700_000_000_000
NOT_A_POINT_SEARCH_MAX = 64  # about half of all x have no curve point: one is found quickly


@pytest.fixture
def workers() -> Iterator[RecoveryProcesses]:
    processes = RecoveryProcesses(2)
    assert processes.wait_ready() == 2  # so that the tests below exercise the workers
    yield processes
    processes.close()


def test_requests_before_the_workers_are_ready_are_recovered_here() -> None:
    """Whether or not a worker has started yet (about 0.3 s after the pool), the answers are
    the same: until one is ready the caller recovers in its own process."""
    processes = RecoveryProcesses(1)
    try:
        signed = _with_refusals(_signed(9))
        early = processes.start(DOMAIN, signed)
        assert early.result() == recover_signers(DOMAIN, signed)
        assert processes.wait_ready() == 1
        late = processes.start(DOMAIN, signed)
        assert late.result() == recover_signers(DOMAIN, signed)
    finally:
        processes.close()


def _signed(count: int, first_nonce: int = 0) -> list[SignedTransaction]:
    return [sign_action(KEY, DOMAIN, PlaceOrder(OWNER, 0, 1, Side.BUY, 1_000 + n, 1 + n % 7),
                        T0_MS + first_nonce + n) for n in range(count)]


def _r_without_a_point() -> bytes:
    """An ``r`` that passes the shape checks but is the x of no curve point."""
    digest = bytes(32)
    for r in range(1, NOT_A_POINT_SEARCH_MAX):
        compact = r.to_bytes(32, "big") + (1).to_bytes(32, "big") + b"\x00"
        try:
            recover_address(compact, digest)
        except AdmissionError:
            return r.to_bytes(32, "big")
    raise AssertionError("no r without a curve point found")


def _with_refusals(signed: list[SignedTransaction]) -> list[SignedTransaction]:
    """Every kind of refusal among good signatures: high s, bad v, short, no curve point."""
    def replace(position: int, signature: bytes) -> None:
        one = signed[position]
        signed[position] = SignedTransaction(one.action, one.nonce_ms, signature)

    good = signed[1].signature
    high_s = (SECP256K1_N - int.from_bytes(good[32:64], "big")).to_bytes(32, "big")
    replace(1, good[:32] + high_s + bytes([55 - good[64]]))
    replace(3, good[:64] + b"\x1d")
    replace(4, good[:40])
    replace(6, _r_without_a_point() + (5).to_bytes(32, "big") + b"\x1b")
    return signed


def test_answers_are_the_reference_recovery_in_process() -> None:
    """The worker's leaf, without a worker: every signature that passes the shape checks."""
    signed = [one for one in _with_refusals(_signed(8))
              if _passes_shape_checks(one.signature)]
    assert len(signed) == 5  # four good ones and the one without a curve point
    payload = DOMAIN.separator + b"".join(_pair(one) for one in signed)
    answers = read_reply(answer_request(payload), len(signed))
    expected = [r if isinstance(r, AdmissionError) else r.signer
                for r in recover_signers(DOMAIN, signed)]
    assert answers == expected
    assert sum(isinstance(a, AdmissionError) for a in answers) == 1  # the curve refusal


def _pair(one: SignedTransaction) -> bytes:
    """One signature of a request: compact signature, struct words' length, struct words."""
    words = struct_words(one.action, one.nonce_ms)
    return check_signature_shape(one.signature) + len(words).to_bytes(2, "big") + words


def test_the_worker_hashes_the_words_as_the_digest_does() -> None:
    one = _signed(1)[0]
    assert digest_of_struct(DOMAIN.separator, struct_words(one.action, one.nonce_ms)) == \
        signing_digest(DOMAIN, one.action, one.nonce_ms)


def _passes_shape_checks(signature: bytes) -> bool:
    try:
        check_signature_shape(signature)
    except AdmissionError:
        return False
    return True


@pytest.mark.parametrize("count", [0, 1, 2, 9, 300])
def test_workers_answer_as_recover_signers(workers: RecoveryProcesses, count: int) -> None:
    signed = _with_refusals(_signed(count)) if count >= 8 else _signed(count)
    assert workers.start(DOMAIN, signed).result() == recover_signers(DOMAIN, signed)


def test_many_requests_in_flight_come_back_in_their_own_order(
        workers: RecoveryProcesses) -> None:
    chunks = [_with_refusals(_signed(9, first_nonce=100 * n)) for n in range(12)]
    pending = [workers.start(DOMAIN, chunk) for chunk in chunks]
    for chunk, one in reversed(list(zip(chunks, pending, strict=True))):  # taken out of order
        assert one.result() == recover_signers(DOMAIN, chunk)
        assert one.result() == recover_signers(DOMAIN, chunk)  # asked twice, same answer


def test_a_dropped_result_is_skipped_and_the_rest_still_match(
        workers: RecoveryProcesses) -> None:
    chunks = [_signed(5, first_nonce=10 * n) for n in range(6)]
    pending = [workers.start(DOMAIN, chunk) for chunk in chunks]
    for dropped in pending[::2]:
        dropped.discard()
    for chunk, kept in list(zip(chunks, pending, strict=True))[1::2]:
        assert kept.result() == recover_signers(DOMAIN, chunk)
    # the workers keep no dropped replies: more requests than the in-flight bound still go out
    for round_number in range(2 * OUTSTANDING_REQUESTS_MAX):
        chunk = _signed(1, first_nonce=1_000 + round_number)
        one = workers.start(DOMAIN, chunk)
        one.discard()
    chunk = _signed(3, first_nonce=5_000)
    assert workers.start(DOMAIN, chunk).result() == recover_signers(DOMAIN, chunk)


def test_a_worker_that_is_gone_costs_speed_never_results() -> None:
    workers = RecoveryProcesses(2)
    try:
        workers.wait_ready()
        signed = _with_refusals(_signed(10))
        in_flight = [workers.start(DOMAIN, signed) for _ in range(4)]
        for worker in workers._workers:  # killed with requests in flight
            worker.process.kill()
            worker.process.wait()
        for one in in_flight:
            assert one.result() == recover_signers(DOMAIN, signed)
        later = workers.start(DOMAIN, signed)  # no live worker: recovered in this process
        assert later.result() == recover_signers(DOMAIN, signed)
    finally:
        workers.close()


def test_after_close_results_are_still_exact() -> None:
    workers = RecoveryProcesses(1)
    signed = _signed(4)
    pending = workers.start(DOMAIN, signed)
    workers.close()
    workers.close()  # idempotent
    assert pending.result() == recover_signers(DOMAIN, signed)
    assert workers.start(DOMAIN, signed).result() == recover_signers(DOMAIN, signed)


def test_limits_are_enforced() -> None:
    with pytest.raises(ValueError, match="processes=0"):
        RecoveryProcesses(0)
    pair = _pair(_signed(1)[0])
    with pytest.raises(ValueError, match="a request of 31 bytes"):
        answer_request(bytes(31))  # not even a domain separator
    with pytest.raises(ValueError, match="cut inside a signature"):
        answer_request(DOMAIN.separator + pair[:40])
    with pytest.raises(ValueError, match="cut inside struct words"):
        answer_request(DOMAIN.separator + pair[:-1])
    too_long = pair[:65] + (STRUCT_WORDS_BYTES_MAX + 1).to_bytes(2, "big")
    with pytest.raises(ValueError, match="cut inside struct words"):
        answer_request(DOMAIN.separator + too_long + bytes(STRUCT_WORDS_BYTES_MAX + 1))
    with pytest.raises(ValueError, match="more than"):
        answer_request(DOMAIN.separator + pair * (REQUEST_SIGNATURES_MAX + 1))
    assert read_reply(answer_request(DOMAIN.separator + pair * 3), 3) == [OWNER] * 3
    with pytest.raises(ValueError, match="short of"):
        read_reply(b"\x00" * 20, 1)
    workers = RecoveryProcesses(1)
    try:
        one = _signed(1)[0]
        with pytest.raises(ValueError, match="per request"):
            workers.start(DOMAIN, [one] * (REQUEST_SIGNATURES_MAX + 1))
    finally:
        workers.close()


def test_a_reply_of_recovered_answers_pairs_in_one_pass_and_any_other_is_left_to_read_reply(
        ) -> None:
    from rollbook.sequencer.recovery_processes import _all_recovered

    signed = _signed(3)
    reply = answer_request(DOMAIN.separator + b"".join(_pair(one) for one in signed))
    paired = _all_recovered(reply, signed)
    assert paired == recover_signers(DOMAIN, signed)
    assert paired is not None and all(p.signed is s for p, s in zip(paired, signed, strict=True))
    refused = reply[:21] + b"\x01" + reply[22:]  # a status other than "recovered": not paired
    assert _all_recovered(refused, signed) is None
