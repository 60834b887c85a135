"""MatchingEngine: one order book per asset, batches sharded across threads.

Books of different assets share nothing, so a batch that spans assets is
applied by one thread per book with the GIL released inside each book's loop.
Every book reads the whole batch and applies only its own asset's events, so
nothing is copied on the way in and results land directly in input order.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from obelisk._core.book import (
    FILL_DTYPE,
    ORDER_EVENT_DTYPE,
    RESULT_DTYPE,
    BatchResult,
    OrderBook,
    OrderEventKind,
    OrderStatus,
    Reason,
    SelfTradePrevention,
    as_event_array,
)


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
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="obelisk-match") \
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
        results = np.empty(len(events), dtype=RESULT_DTYPE)
        top = int(self._asset_ids[-1]) + 1  # every asset id above ours counts as `top`
        clipped = np.minimum(events["asset"], top)
        counts = np.bincount(clipped, minlength=top + 1)
        busy = [asset for asset in self._books if counts[asset]]
        with self._lock:
            if self._executor is None or len(busy) < 2:
                parts = [self._books[a]._process_shard(events, results, a) for a in busy]
            else:
                futures = [self._executor.submit(self._books[a]._process_shard, events, results, a)
                           for a in busy]
                parts = [future.result() for future in futures]
        fill_parts = [fills for fills, _ in parts]
        event_parts = [order_events for _, order_events in parts]
        has_book = np.zeros(top + 1, dtype=bool)
        has_book[self._asset_ids] = True
        unknown = ~has_book[clipped]
        if unknown.any():
            event_parts.append(self._reject_unknown(events, results, unknown))
        return BatchResult(results, _merge(fill_parts, FILL_DTYPE),
                           _merge(event_parts, ORDER_EVENT_DTYPE))

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


def _merge(parts: list[np.ndarray], dtype: np.dtype) -> np.ndarray:
    """Concatenate per-book tapes into input-event order, keeping each event's own order."""
    parts = [part for part in parts if len(part)]
    if not parts:
        return np.empty(0, dtype=dtype)
    if len(parts) == 1:
        return parts[0]
    merged = np.concatenate(parts)
    return merged[np.argsort(merged["event_index"], kind="stable")]
