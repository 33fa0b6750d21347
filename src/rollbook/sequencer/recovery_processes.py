"""Signer recovery in worker processes: the curve work of recovery off the caller's GIL.

Why processes: a recovery is ~35 us of C (coincurve releases the GIL) between Python steps
that hold it. On threads, every recovery must take the GIL back from a main thread that runs
the STF in Python; on the 2-core bench machine the recovery threads spent about half their
time waiting for it, so the verifier reached 0.61-0.67 of the recovery ceiling with both cores
free. A worker process has its own interpreter: nothing it does waits on the caller's GIL, and
the caller pays only for the signatures' shape checks and struct words, the pipe and the
results.

Division of the work (``recover_signer`` is the reference; the results are exactly
``recover_signers``'):
- the caller checks each signature's shape (``check_signature_shape``: length, ``v``, range,
  low-s) and packs the action's EIP-712 struct words (``struct_words``: the part of the
  digest that needs the action's fields);
- a worker hashes the words into the digest (``digest_of_struct``: two keccaks, most of the
  digest's cost), runs ``recover_address`` (public-key recovery, the address's keccak) and
  answers with the address or the refusal;
- the caller pairs each answer with its ``SignedTransaction``.
The caller's share is kept small on purpose: in the verifier it is the thread that also
decodes, executes and commits, the serial part of the pipeline.

Wire format (a worker's stdin and stdout; both ends are this module)::

    frame   = length (u32, big-endian) | payload
    hello   = an empty frame, the worker's first
    request = domain separator (32) | n x (compact signature (65) | words length (u16) | words)
    reply   = n x (status (u8) | address (20)) | refusals
    refusal = code (u16) | length (u16) | detail (utf-8)

status 0: recovered, ``address`` is the signer; status 1: refused (``address`` is zero), its
``AdmissionError`` code and detail follow, in order, after the fixed part.

Invariants:
- a worker answers its requests in the order it received them, one reply per request;
- a result never depends on which worker computed it, or whether one did: when a worker is
  gone (it exited, or its pipe broke) its outstanding and later requests are recovered in the
  caller's process by ``recover_signers``, and the worker is not used again;
- every request is bounded (``REQUEST_SIGNATURES_MAX``) and so is the work a worker may hold
  unread (``OUTSTANDING_REQUESTS_MAX``), which keeps both pipes from filling: a worker blocks
  writing a reply only after more than a pipe's buffer of replies is unread.

Start: a worker says hello (an empty frame) once it has started and imported what it needs,
about 0.3 s; until then requests skip it, and while no worker is ready they are recovered in
the caller's process, so a caller never waits for a worker to start (``wait_ready`` waits for
all of them, for a benchmark).

Limits: ``RECOVERY_PROCESSES_MAX`` workers. Workers start with the caller's interpreter and
environment (``python -m rollbook.sequencer.recovery_worker``, which runs ``serve``), so they
import the same build (compiled or pure: this module is compiled with the sequencer's hot
path, see setup.py). They exit when their stdin closes (``close``, or the caller's exit).
"""

from __future__ import annotations

import contextlib
import fcntl
import select
import struct
import subprocess
import sys
from collections.abc import Sequence
from typing import IO, Final

from rollbook.sequencer.eip712 import (
    ADDRESS_BYTES,
    Eip712Domain,
    digest_of_struct,
    struct_words,
)
from rollbook.sequencer.errors import AdmissionCode, AdmissionError
from rollbook.sequencer.signatures import (
    SIGNATURE_BYTES,
    SignedTransaction,
    VerifiedTransaction,
    check_signature_shape,
    recover_address,
    recover_signers,
)

__all__ = [
    "OUTSTANDING_REQUESTS_MAX",
    "RECOVERY_PROCESSES_MAX",
    "REQUEST_SIGNATURES_MAX",
    "STRUCT_WORDS_BYTES_MAX",
    "PendingRecovery",
    "RecoveryProcesses",
    "answer_request",
    "read_reply",
]

RECOVERY_PROCESSES_MAX: Final = 16  # more than any machine this runs on has cores to spare
REQUEST_SIGNATURES_MAX: Final = 4096  # per request: ~2 MiB in, ~86 KiB out at most
# requests a worker may hold unanswered or unread; callers cut batches into a few requests each
# and hold a few batches ahead (the verifier's PREFETCH_BATCHES_MAX)
OUTSTANDING_REQUESTS_MAX: Final = 64
SEPARATOR_BYTES: Final = 32
# the widest struct is a MassQuote's: the type hash and about a dozen words (the quotes are one
# word, their array's hash); the bound leaves room and is checked for every signature sent
STRUCT_WORDS_BYTES_MAX: Final = 1024
ANSWER_BYTES: Final = 1 + ADDRESS_BYTES
REQUEST_BYTES_MAX: Final = SEPARATOR_BYTES + REQUEST_SIGNATURES_MAX * (
    SIGNATURE_BYTES + 2 + STRUCT_WORDS_BYTES_MAX)
DETAIL_BYTES_MAX: Final = 1024  # a refusal's detail is a library's one-line message

# the request pipe's capacity: several batches' requests (about 100 KiB each at the verifier's
# 450-signature batches over 2 workers); Linux's default most a user may set is 1 MiB
REQUEST_PIPE_BYTES: Final = 1 << 20
_FRAME: Final = struct.Struct(">I")
_WORDS_LENGTH: Final = struct.Struct(">H")
# every words length a request may carry, packed once: a tuple index per signature on the
# caller's serial path instead of a struct call
_WORDS_LENGTHS: Final = tuple(_WORDS_LENGTH.pack(length)
                              for length in range(STRUCT_WORDS_BYTES_MAX + 1))
_REFUSAL: Final = struct.Struct(">HH")
_REPLY_BYTES_MAX: Final = REQUEST_SIGNATURES_MAX * (ANSWER_BYTES + _REFUSAL.size + DETAIL_BYTES_MAX)
_STATUS_RECOVERED: Final = 0
_STATUS_REFUSED: Final = 1
_NO_ADDRESS: Final = bytes(ADDRESS_BYTES)


# --- the worker's side (pure leaves and the loop) ---------------------------------------------

def answer_request(payload: bytes) -> bytes:
    """The reply to one request payload (see the module docstring); ``ValueError`` for a
    request that is not one."""
    if not SEPARATOR_BYTES <= len(payload) <= REQUEST_BYTES_MAX:
        raise ValueError(f"a request of {len(payload)} bytes")
    separator = payload[:SEPARATOR_BYTES]
    answers: list[bytes] = []
    refusals: list[bytes] = []
    offset = SEPARATOR_BYTES
    while offset < len(payload):
        if len(answers) == REQUEST_SIGNATURES_MAX:
            raise ValueError(f"a request of more than {REQUEST_SIGNATURES_MAX} signatures")
        words_at = offset + SIGNATURE_BYTES + _WORDS_LENGTH.size
        if words_at > len(payload):
            raise ValueError(f"a request cut inside a signature at byte {offset}")
        compact = payload[offset:offset + SIGNATURE_BYTES]
        (length,) = _WORDS_LENGTH.unpack_from(payload, offset + SIGNATURE_BYTES)
        offset = words_at + length
        if length > STRUCT_WORDS_BYTES_MAX or offset > len(payload):
            raise ValueError(f"a request cut inside struct words at byte {words_at}")
        digest = digest_of_struct(separator, payload[words_at:offset])
        try:
            answers.append(b"\x00" + recover_address(compact, digest))
        except AdmissionError as error:
            detail = error.detail.encode()[:DETAIL_BYTES_MAX]
            answers.append(b"\x01" + _NO_ADDRESS)
            refusals.append(_REFUSAL.pack(int(error.code), len(detail)) + detail)
    return b"".join(answers) + b"".join(refusals)


def read_reply(reply: bytes, count: int) -> list[bytes | AdmissionError]:
    """A reply's answers, in order: the signer's address, or the refusal."""
    fixed = count * ANSWER_BYTES
    if len(reply) < fixed:
        raise ValueError(f"a reply of {len(reply)} bytes is short of {count} answers")
    answers: list[bytes | AdmissionError] = []
    offset = fixed
    for start in range(0, fixed, ANSWER_BYTES):
        status = reply[start]
        if status == _STATUS_RECOVERED:
            answers.append(reply[start + 1:start + ANSWER_BYTES])
            continue
        if status != _STATUS_REFUSED:
            raise ValueError(f"answer {start // ANSWER_BYTES} has status {status}")
        code, length = _REFUSAL.unpack_from(reply, offset)
        offset += _REFUSAL.size
        detail = reply[offset:offset + length].decode()
        offset += length
        answers.append(AdmissionError(AdmissionCode(code), detail))
    if offset != len(reply):
        raise ValueError(f"a reply has {len(reply) - offset} bytes after its refusals")
    return answers


def _read_frame(source: IO[bytes], payload_bytes_max: int) -> bytes | None:
    """The next frame's payload; None at a clean end of stream."""
    header = source.read(_FRAME.size)
    if not header:
        return None
    if len(header) != _FRAME.size:
        raise EOFError("the stream ended inside a frame header")
    (length,) = _FRAME.unpack(header)
    if length > payload_bytes_max:
        raise ValueError(f"a frame of {length} bytes exceeds {payload_bytes_max}")
    payload = source.read(length)
    if len(payload) != length:
        raise EOFError(f"the stream ended inside a frame of {length} bytes")
    return payload


def serve(source: IO[bytes], sink: IO[bytes]) -> None:
    """Say hello (an empty frame: started, imports done), then answer requests from
    ``source`` on ``sink`` until ``source`` ends (the worker's loop)."""
    sink.write(_FRAME.pack(0))
    sink.flush()
    while (payload := _read_frame(source, REQUEST_BYTES_MAX)) is not None:
        reply = answer_request(payload)
        sink.write(_FRAME.pack(len(reply)) + reply)
        sink.flush()


# --- the caller's side ----------------------------------------------------------------------

def _widen_pipe(stream: IO[bytes]) -> None:
    """Give a request pipe room for the requests a caller keeps in flight: with the default
    64 KiB, writing a batch's request blocked the caller until the busy worker read the one
    before it (a request carries about 470 bytes per signature). Linux only; elsewhere, or
    above the system's limit, the pipe keeps its size (slower, never wrong)."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if set_size is None:
        return
    with contextlib.suppress(OSError):
        fcntl.fcntl(stream.fileno(), set_size, REQUEST_PIPE_BYTES)


class _WorkerGone(Exception):
    """A worker exited or its pipe broke; its requests are recovered in-process."""


class _Worker:
    """One worker process and the bookkeeping of its requests (sequence numbers in order)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rollbook.sequencer.recovery_worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.process.stdin is not None and self.process.stdout is not None
        self.requests: IO[bytes] = self.process.stdin
        self.replies: IO[bytes] = self.process.stdout
        _widen_pipe(self.requests)
        self.sent = 0  # requests written; the next one gets this sequence number
        self.read = 0  # replies read from the pipe
        self.unclaimed: dict[int, bytes] = {}  # read, not yet taken by their PendingRecovery
        self.abandoned: set[int] = set()  # sent, never to be taken: dropped once read
        self.gone = False
        self.ready = False  # its hello has been read; nothing is sent to it before

    def poll_ready(self, wait: bool) -> bool:
        """Whether the worker has said hello, reading the hello if it is there (``wait``:
        until it is, or the worker is gone)."""
        if self.ready or self.gone:
            return self.ready
        if not wait and not select.select([self.replies], [], [], 0)[0]:
            return False
        try:  # nothing was sent yet, so the first frame is the hello (the buffer is empty)
            hello = _read_frame(self.replies, 0)
        except (OSError, EOFError, ValueError):
            hello = None
        if hello is None:
            self.gone = True
            return False
        self.ready = True
        return True

    def outstanding(self) -> int:
        return self.sent - self.read + len(self.unclaimed)

    def send(self, payload: bytes) -> int:
        """Write a request; its sequence number."""
        if self.gone:
            raise _WorkerGone
        assert self.outstanding() < OUTSTANDING_REQUESTS_MAX
        try:
            self.requests.write(_FRAME.pack(len(payload)) + payload)
            self.requests.flush()
        except OSError as error:
            self.gone = True
            raise _WorkerGone from error
        self.sent += 1
        return self.sent - 1

    def take(self, sequence: int) -> bytes:
        """The reply to request ``sequence``, reading earlier replies into ``unclaimed``."""
        assert 0 <= sequence < self.sent
        while sequence not in self.unclaimed:
            if self.gone:
                raise _WorkerGone
            assert self.read <= sequence, f"reply {sequence} was taken already"
            try:
                reply = _read_frame(self.replies, _REPLY_BYTES_MAX)
            except (OSError, EOFError, ValueError) as error:
                self.gone = True
                raise _WorkerGone from error
            if reply is None:
                self.gone = True
                raise _WorkerGone
            if self.read in self.abandoned:
                self.abandoned.discard(self.read)
            else:
                self.unclaimed[self.read] = reply
            self.read += 1
        return self.unclaimed.pop(sequence)

    def abandon(self, sequence: int) -> None:
        if self.unclaimed.pop(sequence, None) is None and sequence >= self.read:
            self.abandoned.add(sequence)

    def stop(self, timeout_s: float) -> None:
        for stream in (self.requests, self.replies):
            with contextlib.suppress(OSError):  # a broken pipe: the worker is gone already
                stream.close()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.gone = True


class PendingRecovery:
    """The signers of one ``RecoveryProcesses.start``: ``result()`` waits for the worker."""

    def __init__(self, domain: Eip712Domain, signed: list[SignedTransaction],
                 refused: dict[int, AdmissionError], worker: _Worker | None,
                 sequence: int) -> None:
        self.domain = domain
        self.signed = signed
        self._refused = refused  # position -> the shape check's refusal
        self._worker = worker  # None: nothing to recover, or recovered in-process
        self._sequence = sequence
        self._result: list[VerifiedTransaction | AdmissionError] | None = None

    def result(self) -> list[VerifiedTransaction | AdmissionError]:
        """Exactly ``recover_signers(domain, signed)``."""
        if self._result is None:
            self._result = self._collect()
            self._worker = None
        return self._result

    def discard(self) -> None:
        """The result will never be asked for (its reply is dropped when it arrives)."""
        if self._worker is not None and self._result is None:
            self._worker.abandon(self._sequence)
            self._worker = None

    def _collect(self) -> list[VerifiedTransaction | AdmissionError]:
        worker = self._worker
        if worker is None:
            return recover_signers(self.domain, self.signed)
        try:
            reply = worker.take(self._sequence)
        except _WorkerGone:
            return recover_signers(self.domain, self.signed)
        if not self._refused and len(reply) == len(self.signed) * ANSWER_BYTES:
            recovered = _all_recovered(reply, self.signed)
            if recovered is not None:
                return recovered
        answers = read_reply(reply, len(self.signed) - len(self._refused))
        results: list[VerifiedTransaction | AdmissionError] = []
        next_answer = iter(answers).__next__
        refused = self._refused
        for position, signed in enumerate(self.signed):
            refusal = refused.get(position) if refused else None
            if refusal is not None:
                results.append(refusal)
                continue
            answer = next_answer()
            results.append(answer if isinstance(answer, AdmissionError)
                           else VerifiedTransaction(signed, answer))
        assert len(results) == len(self.signed)
        return results


def _all_recovered(reply: bytes, signed: list[SignedTransaction],
                   ) -> list[VerifiedTransaction | AdmissionError] | None:
    """The common reply, every signature recovered, paired in one pass (no list of addresses
    between ``read_reply`` and the pairing); None when an answer is not "recovered", for
    ``read_reply`` to read or refuse. ``reply`` holds exactly one answer per signature."""
    assert len(reply) == len(signed) * ANSWER_BYTES
    results: list[VerifiedTransaction | AdmissionError] = []
    append = results.append
    start = 0
    for one in signed:
        if reply[start] != _STATUS_RECOVERED:
            return None
        append(VerifiedTransaction(one, reply[start + 1:start + ANSWER_BYTES]))
        start += ANSWER_BYTES
    return results


class RecoveryProcesses:
    """``processes`` recovery workers, given requests in turn (see the module docstring)."""

    def __init__(self, processes: int) -> None:
        if not 1 <= processes <= RECOVERY_PROCESSES_MAX:
            raise ValueError(f"processes={processes} must be within 1..{RECOVERY_PROCESSES_MAX}")
        self._workers = [_Worker() for _ in range(processes)]
        self._turn = 0
        self._closed = False

    @property
    def processes(self) -> int:
        return len(self._workers)

    @property
    def pids(self) -> tuple[int, ...]:
        """The workers' process ids (for monitoring: their CPU is the recovery's)."""
        return tuple(worker.process.pid for worker in self._workers)

    def start(self, domain: Eip712Domain, signed: Sequence[SignedTransaction],
              ) -> PendingRecovery:
        """Start recovering ``signed`` (at most ``REQUEST_SIGNATURES_MAX``) on the next worker;
        the shapes are checked and the struct words packed here, now."""
        if len(signed) > REQUEST_SIGNATURES_MAX:
            raise ValueError(f"{len(signed)} signatures exceed {REQUEST_SIGNATURES_MAX} "
                             "per request")
        chunk = list(signed)
        parts: list[bytes] = [domain.separator]
        refused: dict[int, AdmissionError] = {}
        for position, one in enumerate(chunk):
            try:
                compact = check_signature_shape(one.signature)
                words = struct_words(one.action, one.nonce_ms)
            except AdmissionError as error:
                refused[position] = error
                continue
            assert len(words) <= STRUCT_WORDS_BYTES_MAX, len(words)
            parts += (compact, _WORDS_LENGTHS[len(words)], words)
        worker = (self._next_worker() if len(refused) < len(chunk) and not self._closed
                  else None)
        if worker is None:
            return PendingRecovery(domain, chunk, refused, None, 0)
        try:
            sequence = worker.send(b"".join(parts))
        except _WorkerGone:
            return PendingRecovery(domain, chunk, refused, None, 0)
        return PendingRecovery(domain, chunk, refused, worker, sequence)

    def wait_ready(self) -> int:
        """Wait until every worker has said hello (started, imports done) or is gone; the
        workers ready. Optional: until a worker is ready, requests skip it, and with none
        ready they are recovered in the caller's process (``PendingRecovery.result``)."""
        return sum(worker.poll_ready(wait=True) for worker in self._workers)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop every worker (idempotent); pending results not yet taken are recovered
        in-process if asked for."""
        if self._closed:
            return
        self._closed = True
        for worker in self._workers:
            worker.stop(timeout_s)

    def _next_worker(self) -> _Worker | None:
        """The ready, live worker with room and the fewest requests in flight (in turn among
        equals); None when there is none. Fewest, not simply the next: the scheduler gives the
        workers unequal shares of a busy machine, and a worker handed requests in strict turn
        idles once it is ahead while the caller waits for the one behind."""
        chosen: _Worker | None = None
        count = len(self._workers)
        for step in range(count):
            worker = self._workers[(self._turn + step) % count]
            if not worker.poll_ready(wait=False):
                continue
            load = worker.outstanding()
            if load < OUTSTANDING_REQUESTS_MAX and (chosen is None
                                                    or load < chosen.outstanding()):
                chosen = worker
        self._turn = (self._turn + 1) % count
        return chosen
