"""Reading the next training batches on a thread while the network trains on the current one.

Without DataLoader workers (the default on machines of 2 cores or fewer) each batch is loaded
between two steps, and a step waits for it: about 55 ms of a 600 ms OCR step at 1 thread on a
2-core machine with centre normalization and full augmentation (README, "Reading ahead, and
cheaper line preparation").
Where torch runs fewer threads than there are cores, a thread can load the next batches on a
free core meanwhile. Loading and collating release the GIL for most of their time (numpy, PIL,
torch copies), and every item's augmentation draws from its own seeded generator, so batches
are the same, in the same order, whichever thread made them: a run with the thread equals a
run without it bit for bit (tests/test_prefetch.py).

A thread, not a worker process: a worker costs a second copy of the toolkit (about 200 MB)
and pickles each batch across; a thread shares the batch. It is not used when torch's threads
fill the cores: an extra busy thread there deschedules OpenMP's team members mid-region (the
collapse described in ``threads``).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

DEPTH = 2  # batches read ahead: one for the next step, one to absorb a slow line
_POLL_S = 0.1  # how often a blocked reader checks whether it was told to stop


class _Ahead(Iterator[T]):
    """``source`` iterated on a daemon thread, at most ``depth`` items ahead of the consumer.
    Items come out in ``source``'s order; an exception raised by ``source`` is raised where
    its item would have come out."""

    _END = object()

    def __init__(self, source: Iterable[T], depth: int):
        self._queue: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._fill, args=(iter(source),), name="ctctool-prefetch", daemon=True)
        self._thread.start()

    def _fill(self, source: Iterator[T]) -> None:
        try:
            for item in source:
                if not self._put((True, item)):
                    return
        except BaseException as exc:  # handed to the consumer, who decides what it means
            self._put((False, exc))
            return
        self._put((True, self._END))

    def _put(self, entry: tuple[bool, object]) -> bool:
        """Queue ``entry``; False when the consumer closed the reader first."""
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        ok, item = self._queue.get()
        if not ok:
            self._finished = True
            raise item  # type: ignore[misc]
        if item is self._END:
            self._finished = True
            raise StopIteration
        return item  # type: ignore[return-value]

    def close(self) -> None:
        """Stop reading ahead and wait for the thread (at most the item it is loading)."""
        self._stop.set()
        self._finished = True
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=_POLL_S)  # frees a reader blocked on a full queue
        self._thread.join()


@contextlib.contextmanager
def read_ahead(source: Iterable[T], depth: int = DEPTH) -> Iterator[Iterator[T]]:
    """An iterator over ``source`` that reads up to ``depth`` items ahead on a thread (``depth``
    0: reads in the caller's thread, as a plain iterator). Leaving the block stops the thread."""
    if depth <= 0:
        yield iter(source)
        return
    ahead = _Ahead(source, depth)
    try:
        yield ahead
    finally:
        ahead.close()


def prefetch_depth(workers: int, torch_threads: int, cores: int) -> int:
    """Batches to read ahead on a thread: DEPTH when loading happens in the training process
    (no ``workers``) and torch's ``torch_threads`` leave one of ``cores`` free, else 0."""
    return DEPTH if workers == 0 and torch_threads < cores else 0
