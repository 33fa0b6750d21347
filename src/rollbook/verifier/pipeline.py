"""Signature recovery ahead of replay: the next batch's signers are recovered on a thread pool
while the current batch executes.

``replay_batch`` (the one replay path, ``rollbook.sequencer.batch_data``) recovers a batch's
signatures before it executes any entry. Given a ``RecoveryPipeline`` it asks the pipeline's
``recover(domain, signed)``, which splits the batch into chunks (``chunk_signatures``: spread
over the threads, at most ``RECOVERY_CHUNK_MAX`` each) and runs one pool task per chunk.
``prefetch(batch)`` submits the same chunks of a batch that has not been replayed yet; when
``recover`` later asks for them it takes the futures already running (or done) instead of
starting the work again. coincurve releases the GIL inside the recovery, so the pool's threads
recover batch n + 1 while the main thread runs the STF on batch n, small batches included.
The pipeline is also a plain ``Executor`` (``recover_signers(domain, signed, pipeline)`` maps
its chunks through it, and takes prefetched chunks that are the same work).

Invariants:
- results are exactly ``recover_signers``' (recovery is a pure function of the signed
  transaction and the domain): a prefetched chunk is used only if it holds the very same
  ``SignedTransaction`` objects, in the same order, for the same domain; anything else is
  computed afresh on the pool, so a change in how the chunks are cut costs speed, never
  correctness (``hits``/``misses`` show which happened);
- only the thread that calls ``prefetch`` and ``replay_batch`` touches the prefetch table.

Processes (``processes`` > 0, what ``rollbook verify`` runs by default): the chunks go to
``rollbook.sequencer.recovery_processes`` workers instead of the pool's threads. This thread
then checks each signature's shape and packs its EIP-712 struct words when the chunk starts,
and a worker hashes them into the digest and does the curve work with an interpreter of its
own, so no recovery waits for this thread's GIL (see that module for why that matters). The
results are the same.

The GIL, with threads (``processes`` 0): every coincurve call releases the GIL and must take it
back when it returns, while the main thread runs the STF in Python and never lets go of it on
its own. A thread waiting for the GIL may wait up to the switch interval (5 ms by default)
before CPython makes the holder drop it, so a recovery thread can sit idle for most of a
batch's execution (measured on the 2-core bench machine, at times: 150 to 450 of 6,000
recoveries completed while batches executed, 2,200 to 4,000 with the interval lowered). While a
pipeline is open the interpreter's switch interval is lowered to ``RECOVERY_SWITCH_INTERVAL_S``
(process-wide, through ``rollbook.runtime.SWITCH_INTERVAL``, which a node in the same process
holds too: the previous value comes back when the last holder lets go). It changes when
threads switch, never what any of them computes.

Limits: at most ``PREFETCH_BATCHES_MAX`` batches are held ahead. A batch is recovered on at
most ``lanes`` threads or processes at once; its chunks are not split further.
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from rollbook.runtime import SWITCH_INTERVAL
from rollbook.sequencer.batch_data import BatchData, SignedEntry
from rollbook.sequencer.eip712 import Eip712Domain
from rollbook.sequencer.errors import AdmissionError
from rollbook.sequencer.recovery_processes import PendingRecovery, RecoveryProcesses
from rollbook.sequencer.signatures import (
    RECOVERY_CHUNK_MAX,
    SignedTransaction,
    VerifiedTransaction,
    recover_signers,
)

__all__ = ["PREFETCH_AHEAD_BATCHES", "PREFETCH_BATCHES_MAX", "RECOVERY_SWITCH_INTERVAL_S",
           "RecoveryPipeline"]

PREFETCH_BATCHES_MAX = 6  # batches recovered ahead; each holds at most a batch of results
# what a replay loop should keep prefetched beyond the batch it executes: with one, a recovery
# worker that finishes the next batch idles until this thread has finished the current one
# and prefetched again, which on a busy machine includes waiting for a core. Four rather than
# two: when the host takes a core from this VM for a moment, the replay thread stops feeding
# the workers, and a deeper queue keeps them busy through it (bench verify, interleaved A/B on
# the shared 2-core VM: ratio 0.89, 0.89, 0.78 with four against 0.79, 0.75, 0.71 with two;
# six measured like four)
PREFETCH_AHEAD_BATCHES = 4
assert PREFETCH_AHEAD_BATCHES < PREFETCH_BATCHES_MAX
# a recovery is ~35 us of GIL-free C between short Python steps; on the 2-core bench machine
# intervals from 0.1 ms to 1 ms measured alike (recovery threads kept busy while the STF runs),
# 5 ms at times let them finish half as many: the middle of that range, on a log scale
RECOVERY_SWITCH_INTERVAL_S = 0.0003

_P = ParamSpec("_P")
_T = TypeVar("_T")
# a chunk's recovery under way: on the pool (a future) or on a worker process
_Work = Future[list[VerifiedTransaction | AdmissionError]] | PendingRecovery


def _discard(work: _Work) -> None:
    """The result of ``work`` will never be asked for."""
    if isinstance(work, PendingRecovery):
        work.discard()


class RecoveryPipeline(Executor):
    """A thread-pool executor that can start a batch's signature recovery ahead of time."""

    def __init__(self, domain: Eip712Domain, threads: int,
                 switch_interval_s: float | None = RECOVERY_SWITCH_INTERVAL_S,
                 processes: int = 0) -> None:
        """``processes`` > 0 recovers on that many worker processes (the thread pool then
        serves only ``submit``/``map``); ``switch_interval_s`` None leaves the interpreter's
        switch interval alone, and so does a pipeline with processes (no recovery thread
        waits for the GIL)."""
        if threads < 1:
            raise ValueError(f"threads={threads} must be >= 1")
        if processes < 0:
            raise ValueError(f"processes={processes} must be >= 0")
        if switch_interval_s is not None and not switch_interval_s > 0:
            raise ValueError(f"switch_interval_s={switch_interval_s} must be positive")
        self.domain = domain
        self.threads = threads
        self._processes = RecoveryProcesses(processes) if processes else None
        self.lanes = processes or threads  # recoveries that run at once
        self._pool = ThreadPoolExecutor(max_workers=threads,
                                        thread_name_prefix="rollbook-verify-recover")
        # id(first signed transaction of a chunk) -> (chunk, future); batches in prefetch order
        # with their chunks, which keeps those objects alive, so that no id in either table can
        # be reused by another object before its batch is evicted
        self._ahead: dict[int, tuple[list[SignedTransaction], _Work]] = {}
        self._batches: OrderedDict[int, list[list[SignedTransaction]]] = OrderedDict()
        self.hits = 0
        self.misses = 0
        if self._processes is not None:
            switch_interval_s = None
        self._lowered = switch_interval_s is not None
        if switch_interval_s is not None:
            SWITCH_INTERVAL.lower(switch_interval_s)

    @property
    def processes(self) -> int:
        """Recovery worker processes (0: the recovery runs on the pool's threads)."""
        return 0 if self._processes is None else self._processes.processes

    def wait_ready(self) -> None:
        """Return once every worker process answers (a no-op with threads): what a benchmark
        calls so that the workers' start is not in what it times."""
        if self._processes is not None:
            self._processes.wait_ready()

    def chunk_signatures(self, count: int) -> int:
        """Signatures per task for a batch of ``count``: spread over every lane (thread or
        process), at most ``RECOVERY_CHUNK_MAX`` (a batch of ``lanes * RECOVERY_CHUNK_MAX`` or
        more is chunked as ``recover_signers`` chunks it)."""
        return max(1, min(RECOVERY_CHUNK_MAX, -(-count // self.lanes)))

    def prefetch(self, batch: BatchData) -> None:
        """Start recovering ``batch``'s signatures (no-op for a batch without any, or known)."""
        signed = [entry.signed for entry in batch.entries if isinstance(entry, SignedEntry)]
        if not signed or id(signed[0]) in self._ahead:
            return
        while len(self._batches) >= PREFETCH_BATCHES_MAX:
            _, stale = self._batches.popitem(last=False)
            for chunk in stale:  # only its own chunks: one taken and prefetched again is newer
                found = self._ahead.get(id(chunk[0]))
                if found is not None and found[0] is chunk:
                    del self._ahead[id(chunk[0])]
                    _discard(found[1])
        chunks = []
        size = self.chunk_signatures(len(signed))
        for start in range(0, len(signed), size):
            chunk = signed[start:start + size]
            self._ahead[id(chunk[0])] = (chunk, self._start(self.domain, chunk))
            chunks.append(chunk)
        self._batches[id(signed[0])] = chunks

    def recover(self, domain: Eip712Domain, signed: Sequence[SignedTransaction],
                ) -> list[VerifiedTransaction | AdmissionError]:
        """``recover_signers(domain, signed)``, from the prefetched work where it is the same
        (``replay_batch`` calls this rather than ``recover_signers`` when it is given a
        pipeline); chunks that were not prefetched run on the pool, small batches included."""
        if not signed:
            return []
        size = self.chunk_signatures(len(signed))
        futures = []
        for start in range(0, len(signed), size):
            chunk = list(signed[start:start + size])
            futures.append(self._take((domain, chunk)) or self._start(domain, chunk))
        results: list[VerifiedTransaction | AdmissionError] = []
        for future in futures:
            results.extend(future.result())
        assert len(results) == len(signed)
        return results

    def forget(self) -> None:
        """Drop everything prefetched (after a rollback the next batches differ)."""
        for _, work in self._ahead.values():
            _discard(work)
        self._ahead.clear()
        self._batches.clear()

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args,
               **kwargs: _P.kwargs) -> Future[_T]:
        return self._pool.submit(fn, *args, **kwargs)

    def map(self, fn: Callable[..., _T], *iterables: Iterable[Any], timeout: float | None = None,
            chunksize: int = 1) -> Iterator[_T]:
        futures: list[Any] = [self._take(args) or self._pool.submit(fn, *args)
                              for args in zip(*iterables, strict=True)]

        def results() -> Iterator[_T]:
            for future in futures:  # a worker's reply has no timeout: its worker answers or dies
                yield (future.result(timeout) if isinstance(future, Future)
                       else future.result())

        return results()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the pool and the workers, give the switch interval back (idempotent)."""
        self.forget()
        self._pool.shutdown(wait, cancel_futures=cancel_futures)
        if self._processes is not None:
            self._processes.close()
        if self._lowered:
            self._lowered = False
            SWITCH_INTERVAL.release()

    def _start(self, domain: Eip712Domain, chunk: list[SignedTransaction]) -> _Work:
        """Start recovering a chunk: on a worker process, or on the pool."""
        if self._processes is not None:
            return self._processes.start(domain, chunk)
        return self._pool.submit(recover_signers, domain, chunk)

    def _take(self, args: tuple[Any, ...]) -> _Work | None:
        """The prefetched future for ``(domain, chunk)`` arguments, if it is the same work."""
        if len(args) != 2 or args[0] != self.domain:
            self.misses += 1
            return None
        chunk = args[1]
        if not isinstance(chunk, list) or not chunk:
            self.misses += 1
            return None
        found = self._ahead.pop(id(chunk[0]), None)
        # identity, compared in C (map over operator.is_, no generator step per signature)
        if found is None or len(found[0]) != len(chunk) or not all(
                map(operator.is_, found[0], chunk)):
            self.misses += 1
            return None
        self.hits += 1
        return found[1]
