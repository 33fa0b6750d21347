"""Signature recovery ahead of replay: the next batch's signers are recovered on a thread pool
while the current batch executes.

``replay_batch`` (the one replay path, ``rollbook.sequencer.batch_data``) recovers a batch's
signatures through ``recover_signers(domain, signed, executor)`` before it executes any entry:
with more than ``RECOVERY_CHUNK_MAX`` signed entries it hands the executor one task per chunk
(``executor.map``). ``RecoveryPipeline`` is that executor. ``prefetch(batch)`` submits the
chunks of a batch that has not been replayed yet to its pool; when ``replay_batch`` later asks
for the same chunks, ``map`` hands back the futures already running (or done) instead of
starting the work again. coincurve releases the GIL inside the recovery, so the pool's threads
recover batch n + 1 while the main thread runs the STF on batch n.

Invariants:
- results are exactly ``recover_signers``' (recovery is a pure function of the signed
  transaction and the domain): a prefetched chunk is used only if it holds the very same
  ``SignedTransaction`` objects, in the same order, for the same domain; anything else is
  computed afresh on the pool, so a change in how ``recover_signers`` chunks its work costs
  speed, never correctness (``hits``/``misses`` show which happened);
- only the thread that calls ``prefetch`` and ``replay_batch`` touches the prefetch table.

Limits: a batch with at most ``RECOVERY_CHUNK_MAX`` signed entries is recovered by
``recover_signers`` inline, without the executor, so it is neither prefetched nor parallel
(prefetching it would recover it twice). At most ``PREFETCH_BATCHES_MAX`` batches are held
ahead.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from rollbook.sequencer.batch_data import BatchData, SignedEntry
from rollbook.sequencer.eip712 import Eip712Domain
from rollbook.sequencer.signatures import (
    RECOVERY_CHUNK_MAX,
    SignedTransaction,
    recover_signers,
)

__all__ = ["PREFETCH_BATCHES_MAX", "RecoveryPipeline"]

PREFETCH_BATCHES_MAX = 4  # batches recovered ahead; each holds at most a batch of results

_P = ParamSpec("_P")
_T = TypeVar("_T")


class RecoveryPipeline(Executor):
    """A thread-pool executor that can start a batch's signature recovery ahead of time."""

    def __init__(self, domain: Eip712Domain, threads: int) -> None:
        if threads < 1:
            raise ValueError(f"threads={threads} must be >= 1")
        self.domain = domain
        self.threads = threads
        self._pool = ThreadPoolExecutor(max_workers=threads,
                                        thread_name_prefix="rollbook-verify-recover")
        # id(first signed transaction of a chunk) -> (chunk, future); batches in prefetch order
        self._ahead: dict[int, tuple[list[SignedTransaction], Future[Any]]] = {}
        self._batches: OrderedDict[int, list[int]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def prefetch(self, batch: BatchData) -> None:
        """Start recovering ``batch``'s signatures (no-op for a small or known batch)."""
        signed = [entry.signed for entry in batch.entries if isinstance(entry, SignedEntry)]
        if len(signed) <= RECOVERY_CHUNK_MAX or id(signed[0]) in self._ahead:
            return
        while len(self._batches) >= PREFETCH_BATCHES_MAX:
            _, stale = self._batches.popitem(last=False)
            for key in stale:
                self._ahead.pop(key, None)
        keys = []
        for start in range(0, len(signed), RECOVERY_CHUNK_MAX):
            chunk = signed[start:start + RECOVERY_CHUNK_MAX]
            self._ahead[id(chunk[0])] = (chunk, self._pool.submit(recover_signers, self.domain,
                                                                  chunk))
            keys.append(id(chunk[0]))
        self._batches[id(signed[0])] = keys

    def forget(self) -> None:
        """Drop everything prefetched (after a rollback the next batches differ)."""
        self._ahead.clear()
        self._batches.clear()

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args,
               **kwargs: _P.kwargs) -> Future[_T]:
        return self._pool.submit(fn, *args, **kwargs)

    def map(self, fn: Callable[..., _T], *iterables: Iterable[Any], timeout: float | None = None,
            chunksize: int = 1) -> Iterator[_T]:
        futures = [self._take(args) or self._pool.submit(fn, *args)
                   for args in zip(*iterables, strict=True)]

        def results() -> Iterator[_T]:
            for future in futures:
                yield future.result(timeout)

        return results()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.forget()
        self._pool.shutdown(wait, cancel_futures=cancel_futures)

    def _take(self, args: tuple[Any, ...]) -> Future[Any] | None:
        """The prefetched future for ``(domain, chunk)`` arguments, if it is the same work."""
        if len(args) != 2 or args[0] != self.domain:
            self.misses += 1
            return None
        chunk = args[1]
        if not isinstance(chunk, list) or not chunk:
            self.misses += 1
            return None
        found = self._ahead.pop(id(chunk[0]), None)
        if found is None or len(found[0]) != len(chunk) or any(
                a is not b for a, b in zip(found[0], chunk, strict=True)):
            self.misses += 1
            return None
        self.hits += 1
        return found[1]
