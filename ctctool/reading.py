"""Reading and feature extraction for inference, optionally in worker processes.

``feature_windows`` cuts the items into windows (bounded read-ahead: a million paths on stdin
are never all held) and gives each window's features in input order. With ``workers > 0`` a
process pool reads the next window while the caller runs the network on the current one, so
decoding, reading and feature extraction overlap; at most two windows are in flight. A window
read is decoded without waiting for the source's next one (a pipe that stays open).
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from .errors import ConfigError, ItemError
from .features import FeatureExtractor, Features
from .manifest import ManifestItem
from .threads import MAX_WORKERS

_extractor: FeatureExtractor | None = None  # in each worker process
T = TypeVar("T")
R = TypeVar("R")


def chunks(items: Iterable[ManifestItem], size: int) -> Iterator[list[ManifestItem]]:
    """``size`` items at a time. Where the source fails, the items it gave before are given
    first, then its error: a bad line loses nothing read before it."""
    chunk: list[ManifestItem] = []
    try:
        for item in items:
            chunk.append(item)
            if len(chunk) == size:
                yield chunk
                chunk = []
    except Exception:
        if chunk:
            yield chunk
        raise
    if chunk:
        yield chunk


def read_one(extractor: FeatureExtractor, item: ManifestItem) -> Features | ItemError:
    """The item's features, or its error as a value (so a pool can hand it back)."""
    try:
        return extractor.load(item)
    except ItemError as exc:
        return exc


def _init_worker(extractor: FeatureExtractor) -> None:
    global _extractor
    _extractor = extractor
    try:  # one thread per worker: the workers are the parallelism (as DataLoader workers do)
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


class _Failure:
    """An unexpected exception in a reader process, as text: an exception the parent cannot
    unpickle would kill the pool's result thread and hang the run."""

    def __init__(self, text: str):
        self.text = text


def _read_in_worker(item: ManifestItem) -> Features | ItemError | _Failure:
    assert _extractor is not None
    try:
        return read_one(_extractor, item)
    except Exception as exc:  # noqa: BLE001 - re-raised in the parent, by value
        return _Failure(f"{item.where}: {type(exc).__name__}: {exc}")


def _checked(read: list) -> list[Features | ItemError]:
    failure = next((value for value in read if isinstance(value, _Failure)), None)
    if failure is not None:
        raise RuntimeError(f"a reader process failed: {failure.text}")
    return read


def feature_windows(extractor: FeatureExtractor, items: Iterable[ManifestItem], size: int,
                    workers: int = 0) -> Iterator[tuple[list[ManifestItem], list[Features | ItemError]]]:
    """(window of items, their features or errors) in input order, ``size`` items a window."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers > MAX_WORKERS:
        raise ConfigError(f"workers must be 0 to {MAX_WORKERS} processes, got {workers!r}")
    windows = chunks(items, size)
    if workers <= 0:
        for window in windows:
            yield window, [read_one(extractor, item) for item in window]
        return
    with worker_pool(extractor, workers) as pool:
        yield from _pooled(pool, windows, workers)


def worker_pool(extractor: FeatureExtractor, workers: int):
    """A pool of ``workers`` processes (forked where the platform can), each holding
    ``extractor`` and running torch on one thread; use it as a context manager."""
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    return context.Pool(workers, initializer=_init_worker, initargs=(extractor,))


def _call_in_worker(task: tuple[Callable[[FeatureExtractor, T], R], T]) -> R | _Failure:
    function, argument = task
    assert _extractor is not None
    try:
        return function(_extractor, argument)
    except Exception as exc:  # noqa: BLE001 - re-raised in the parent, by value
        return _Failure(f"{type(exc).__name__}: {exc}")


def in_workers(pool, function: Callable[[FeatureExtractor, T], R], arguments: Iterable[T],
               chunksize: int = 1) -> Iterator[R]:
    """``function(extractor, argument)`` for each argument, run in ``worker_pool``'s processes,
    results in the arguments' order. ``function`` must be a module-level function (workers find
    it by name) and should return its expected errors as values; any other exception it raises
    is raised here as a RuntimeError."""
    for result in pool.imap(_call_in_worker, ((function, argument) for argument in arguments), chunksize):
        if isinstance(result, _Failure):
            raise RuntimeError(f"a reader process failed: {result.text}")
        yield result


_END = object()


def _pooled(pool, windows: Iterator[list[ManifestItem]], workers: int
            ) -> Iterator[tuple[list[ManifestItem], list[Features | ItemError]]]:
    """The windows' features from the pool, in order. A thread pulls the windows and hands them
    to the pool, so that a source that waits (a pipe still open after its last full window) never
    holds back windows already read: pulling the next window in this thread kept the previous
    one's results until more lines came. Two windows in flight at most (``slots``)."""
    slots = threading.Semaphore(2)
    submitted: queue.Queue = queue.Queue()
    stop = threading.Event()

    def submit() -> None:
        try:
            while True:
                slots.acquire()
                if stop.is_set():
                    return
                window = next(windows, None)
                if window is None:
                    break
                chunksize = max(1, len(window) // (4 * workers))
                submitted.put((window, pool.map_async(_read_in_worker, window, chunksize=chunksize)))
            submitted.put(_END)
        except BaseException as exc:  # noqa: BLE001 - the source's error, raised in order by the caller
            submitted.put(exc)

    thread = threading.Thread(target=submit, name="ctctool-reader", daemon=True)
    thread.start()
    try:
        while True:
            entry = submitted.get()
            if entry is _END:
                return
            if isinstance(entry, BaseException):
                raise entry
            window, job = entry
            read = _checked(job.get())
            yield window, read
            slots.release()  # the caller is done with this window: read one more
    finally:
        stop.set()
        slots.release()  # wakes the thread if it waits for a slot; one blocked on its source stays (daemon)
