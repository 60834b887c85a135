"""MatchingEngine: one order book per asset, batches sharded across threads.

Books of different assets share nothing, so a batch that spans assets is
applied by one thread per book, with the GIL released inside the book's loop.
Each book walks the positions of its own asset's events in the shared batch
and writes their results in place; the fill and order-event tapes are then
merged by input position.
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

from obelisk._core.book import (
    ORDER_EVENT_DTYPE,
    RESULT_DTYPE,
    BatchResult,
    OrderBook,
    OrderEventKind,
    OrderStatus,
    Reason,
    SelfTradePrevention,
    TapeMerge,
    as_event_array,
)

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
        asset_column = events["asset"]
        results = np.empty(len(events), dtype=RESULT_DTYPE)
        selections = self._select(asset_column)

        def shard(asset: int) -> int:
            selected = selections[asset]()
            if len(selected) == len(events):
                self._books[asset]._process_selected(events, selected, results)
            else:
                # Called even with nothing selected, so the book's tapes restart empty.
                # Each book writes its own compact results (threads writing interleaved
                # rows of one array would fight over cache lines), put back in place after.
                own = np.empty(len(selected), dtype=RESULT_DTYPE)
                self._books[asset]._process_selected(events, selected, own)
                np.put(_as_records(results), selected, _as_records(own))
            return len(selected)

        with self._lock:
            candidates = [asset for asset in self._books if asset in selections]
            books = [self._books[asset] for asset in candidates]
            claimed = []
            try:
                for book in books:  # no other thread may touch these books until merged
                    book._claim()
                    claimed.append(book)
                handled = sum(self._run_in_parallel([partial(shard, a) for a in candidates]))
                rejected = None
                if handled < len(events):
                    unknown = ~np.isin(asset_column, self._asset_ids)
                    rejected = self._reject_unknown(events, results, unknown)
                merge = TapeMerge(books, rejected)
                bounds = np.linspace(0, len(events), self.threads + 1).astype(np.int64).tolist()
                self._run_in_parallel([partial(merge.merge_range, lo, hi)
                                       for lo, hi in zip(bounds, bounds[1:], strict=False)])
            finally:
                for book in claimed:
                    book._release()
        return BatchResult(results, merge.fills, merge.order_events)

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

    @staticmethod
    def _reject_unknown(events: np.ndarray, results: np.ndarray, unknown: np.ndarray) -> np.ndarray:
        results[unknown] = (0, 0, 0, OrderStatus.REJECTED, Reason.UNKNOWN_ASSET)
        rejected = events[unknown]
        out = np.zeros(len(rejected), dtype=ORDER_EVENT_DTYPE)
        for field in ("oid", "price", "qty", "owner", "side"):
            out[field] = rejected[field]
        out["event_index"] = np.flatnonzero(unknown)
        out["kind"] = OrderEventKind.REJECTED
        out["reason"] = Reason.UNKNOWN_ASSET
        return out

    def close(self) -> None:
        """Stop the worker threads."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def __enter__(self) -> MatchingEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _as_records(array: np.ndarray) -> np.ndarray:
    """The same rows as opaque fixed-size items, which numpy moves with a plain copy."""
    return array.view(np.dtype((np.void, array.dtype.itemsize)))
