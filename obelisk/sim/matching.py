"""MatchingEngine: one order book per asset, batches sharded across threads.

Books of different assets share nothing, so a batch that spans assets is
applied by one thread per book, with the GIL released inside the book's loop
when its share is large (:func:`obelisk._core.sharded.process_sharded`). Each
book walks the positions of its own asset's events in the shared batch; the fill
and order-event tapes are then merged by input position. This module chooses the books, finds each
one's events and owns the threads.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from obelisk._core.book import BatchResult, OrderBook, SelfTradePrevention, as_event_array
from obelisk._core.sharded import process_in_turn, process_sharded

T = TypeVar("T")

# Up to this many books, each scans the batch's asset column for its own events.
_SCAN_PER_BOOK_UP_TO = 8


Positions = npt.NDArray[np.int64]


def _positions_of(asset_column: np.ndarray, asset: int) -> Positions:
    return np.flatnonzero(asset_column == asset).astype(np.int64, copy=False)


class MatchingEngine:
    """Order books keyed by asset id, fed by one mixed batch.

    Parameters
    ----------
    assets : iterable of int
        Asset ids to open a book for (the ``asset`` field of EVENT_DTYPE).
    capacity, growable, stp :
        Passed to each :class:`~obelisk.OrderBook`.
    threads : int, optional
        Worker threads; defaults to one per book up to the CPU count. 1 runs
        the books one after another in the calling thread.
    """

    def __init__(self, assets: Iterable[int], *, capacity: int = 1024, growable: bool = True,
                 stp: int = SelfTradePrevention.CANCEL_RESTING, threads: int | None = None) -> None:
        asset_ids = sorted({int(asset) for asset in assets})
        if not asset_ids:
            raise ValueError("a MatchingEngine needs at least one asset")
        if asset_ids[0] < 0 or asset_ids[-1] > 0xFFFFFFFF:
            raise ValueError("asset ids must fit in an unsigned 32-bit integer")
        self._books = {asset: OrderBook(capacity, growable=growable, stp=stp)
                       for asset in asset_ids}
        self._asset_ids = np.array(asset_ids, dtype=np.uint32)
        if threads is None:
            threads = min(len(asset_ids), os.cpu_count() or 1)
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self.threads = threads
        # The calling thread works too, so the pool holds one thread fewer.
        self._executor = ThreadPoolExecutor(threads - 1, thread_name_prefix="obelisk-match") \
            if threads > 1 else None
        self._lock = threading.Lock()

    @property
    def assets(self) -> list[int]:
        return list(self._books)

    def book(self, asset: int) -> OrderBook:
        """The book of one asset (KeyError if the engine has none)."""
        try:
            return self._books[asset]
        except KeyError:
            raise KeyError(f"no book for asset {asset}; assets are {self.assets}") from None

    def process(self, events: np.ndarray) -> BatchResult:
        """Apply a mixed-asset EVENT_DTYPE batch; results, fills and order events in input order.

        Events for an asset without a book are rejected with
        ``Reason.UNKNOWN_ASSET`` (their order events carry sequence 0, since
        no book saw them). Fill and order-event sequence numbers are per book.
        """
        events = as_event_array(events)
        if self._executor is None:     # one thread: the books in turn, nothing to hand out
            with self._lock:
                return process_in_turn(list(self._books.values()), events, self._asset_ids)
        selections = self._select(events["asset"])
        with self._lock:
            assets = [asset for asset in self._books if asset in selections]
            return process_sharded([self._books[asset] for asset in assets], events,
                                   [selections[asset] for asset in assets],
                                   self._run_in_parallel, merge_parts=self.threads)

    def _select(self, asset_column: np.ndarray) -> dict[int, Callable[[], Positions]]:
        """Per asset with events, a task giving their positions in the batch.

        With few books each finds its own events in its own thread (a pass over
        the asset column each, run in parallel); with many, one sorted lookup
        here serves them all.
        """
        if len(self._books) <= _SCAN_PER_BOOK_UP_TO:
            return {asset: partial(_positions_of, asset_column, asset) for asset in self._books}
        position = np.searchsorted(self._asset_ids, asset_column)
        position[position == len(self._asset_ids)] = 0
        position[self._asset_ids[position] != asset_column] = len(self._asset_ids)
        order = np.argsort(position, kind="stable")
        counts = np.bincount(position, minlength=len(self._asset_ids) + 1)
        ends = np.cumsum(counts)
        return {int(self._asset_ids[k]):
                partial(np.asarray, order[ends[k] - counts[k]:ends[k]].astype(np.int64))
                for k in np.flatnonzero(counts[:-1])}

    def _run_in_parallel(self, tasks: list[Callable[[], T]]) -> list[T]:
        """Run tasks on the pool, the calling thread taking the first itself; their results."""
        if self._executor is None or len(tasks) < 2:
            return [task() for task in tasks]
        futures = [self._executor.submit(task) for task in tasks[1:]]
        try:
            first = tasks[0]()
        finally:
            rest = [future.result() for future in futures]
        return [first, *rest]

    def close(self) -> None:
        """Stop the worker threads."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def __enter__(self) -> MatchingEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

