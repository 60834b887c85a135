"""Deep-book rows of ``obelisk bench``: a fresh OrderBook per run against the physical limit.

The deep mix (``deep_mix``) starts from an empty book, as a backtest or a
replay does, and builds it to about 30,000 orders over about 125 levels.
Three paths run it: ``OrderBook().process`` with the book's creation and
growth timed, as a user would run it; a book preallocated for the stream
(slots and tapes reserved, untimed), which leaves out the growth; and the
limit loop (``obelisk._core.limit``), a minimal C matcher with everything
allocated before timing, which bounds what any matcher can do on this stream
and machine. The paths take turns within each repeat, so a noisy neighbour
slows all three alike and their ratios hold better than their rates. A fresh
book's repeats reuse the memory earlier runs freed (obelisk._core.spare); the
facts add one cold run, the first book of a process, which does not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from obelisk._core.book import BatchResult, EventKind, OrderBook
from obelisk._core.limit import LimitLoop
from obelisk._core.spare import release_spare_memory
from obelisk.perf.timing import BenchRow, rows_in_turns

FRESH = "deep book: OrderBook().process, fresh book per run"
PREALLOCATED = "deep book: OrderBook.process, preallocated book"
LIMIT = "deep book: limit loop (minimal C, all preallocated)"
LIMIT_SUFFIX = " vs the limit"      # ratios so named are shares of the limit's speed
FILL_FIELDS = ["maker_oid", "taker_oid", "price", "qty"]


def preallocated_book(events: np.ndarray) -> OrderBook:
    """A book whose pool, id index and tapes never grow on `events`: a slot per limit
    order, an order event per event, and room for the most fills the stream can make
    (each fill empties a resting order or completes an incoming one). Its levels and
    ladders, a few KB, still grow: no call reserves them."""
    kinds = events["kind"]
    adds = int(np.count_nonzero(kinds == EventKind.LIMIT))
    takers = adds + int(np.count_nonzero(kinds == EventKind.MARKET))
    book = OrderBook(max(adds, 1))
    book.reserve(adds + takers, len(events))
    return book


def fresh_run(events: np.ndarray) -> tuple[OrderBook, BatchResult]:
    """A new book with its default capacity, run over `events`; both are kept, so
    freeing them is not timed."""
    book = OrderBook()
    return book, book.process(events)


def deep_rows(events: np.ndarray, repeat: int) -> list[BenchRow]:
    """The fresh book, the preallocated book and the limit loop, in turns, `repeat` times."""
    paths: dict[str, tuple[Callable[[], Any], Callable[[Any], object]]] = {
        FRESH: (lambda: None, lambda _: fresh_run(events)),
        PREALLOCATED: (lambda: preallocated_book(events), lambda book: book.process(events)),
        LIMIT: (lambda: LimitLoop(events), lambda loop: loop.run()),
    }
    return rows_in_turns(paths, len(events), repeat)


def deep_ratios(rows: list[BenchRow]) -> dict[str, float]:
    """Each book's speed as a share of the limit's, and what growing costs a fresh book."""
    rate = {row.name: row.events_per_second for row in rows}
    return {
        f"deep book, fresh OrderBook{LIMIT_SUFFIX}": rate[FRESH] / rate[LIMIT],
        f"deep book, preallocated OrderBook{LIMIT_SUFFIX}": rate[PREALLOCATED] / rate[LIMIT],
        "deep book, fresh vs preallocated OrderBook": rate[FRESH] / rate[PREALLOCATED],
    }


def cold_run_rate(events: np.ndarray) -> float:
    """Events per second of one fresh book with no spare memory to take: the first book of
    a process, which pays the kernel's first touch of every page (the fresh row's repeats
    reuse the blocks earlier runs freed)."""
    release_spare_memory()
    start = time.perf_counter()
    fresh_run(events)
    return len(events) / (time.perf_counter() - start)


def deep_facts(events: np.ndarray) -> dict[str, Any]:
    """Whether the limit loop did the book's work: the same fill tape, the same results
    and the same orders left resting; the shape of the book at the end; and a cold run."""
    cold = cold_run_rate(events)
    book, out = fresh_run(events)
    loop = LimitLoop(events)
    fill_count, filled_qty = loop.run()
    results = loop.results
    agrees = (fill_count == len(out.fills) and filled_qty == int(out.fills["qty"].sum())
              and loop.resting == len(book)
              and loop.fills.tolist() == out.fills[FILL_FIELDS].tolist()
              and np.array_equal(results["status"], out.results["status"])
              and np.array_equal(results["filled_qty"], out.results["filled_qty"]))
    return {
        "deep_book_limit_agrees": agrees,
        "deep_book_resting_orders_at_end": len(book),
        "deep_book_levels_at_end": book.bid_level_count + book.ask_level_count,
        "deep_book_cold_fresh_run_events_per_second": round(cold),
    }
