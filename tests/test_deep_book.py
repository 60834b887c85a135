"""The deep-book workload, the limit loop that bounds it, and the bench rows that time both.

The limit loop (obelisk/_core/limit.pyx) is a measuring stick, so it must do
the book's work: its fill tape and results are checked against OrderBook's on
the deep stream, on other seeds and on small random streams full of crosses,
unknown ids and reused ids.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obelisk import EVENT_DTYPE, EventKind, OrderBook, OrderStatus, TimeInForce
from obelisk._core.limit import LIMIT_FILL_DTYPE, LimitLoop
from obelisk.perf.bench import BenchReport, format_report
from obelisk.perf.rows.deep import (
    FILL_FIELDS,
    FRESH,
    LIMIT,
    LIMIT_SUFFIX,
    PREALLOCATED,
    deep_facts,
    deep_ratios,
    deep_rows,
    preallocated_book,
)
from obelisk.perf.settings import BenchConfig
from obelisk.perf.timing import BenchRow
from obelisk.testing.workload import deep_mix

RESTING = 30_000


@pytest.fixture(scope="module")
def deep() -> np.ndarray:
    return deep_mix().events


def book_over_time(events: np.ndarray, every: int = 1_000) -> tuple[np.ndarray, ...]:
    """Resting orders, price levels and spread after each `every` events on a fresh book."""
    book = OrderBook()
    counts, levels, spreads = [], [], []
    for start in range(0, len(events), every):
        book.process(events[start:start + every])
        counts.append(len(book))
        levels.append(book.bid_level_count + book.ask_level_count)
        spreads.append(book.spread() or 0)
    return np.array(counts), np.array(levels), np.array(spreads)


def assert_same_work(events: np.ndarray) -> None:
    """The limit loop's fills, results and resting count are OrderBook's, record for record."""
    book = OrderBook()
    out = book.process(events)
    loop = LimitLoop(events)
    assert loop.run() == (len(out.fills), int(out.fills["qty"].sum()))
    assert loop.fills.tolist() == out.fills[FILL_FIELDS].tolist()
    assert loop.results["status"].tolist() == out.results["status"].tolist()
    assert loop.results["filled_qty"].tolist() == out.results["filled_qty"].tolist()
    assert loop.resting == len(book)


def test_deep_mix_has_the_shape_of_the_issue(deep):
    kinds = deep["kind"]
    assert len(deep) == 200_000 and len(deep_mix(10).seed_events) == 0
    assert abs(np.mean(kinds == EventKind.LIMIT) - 0.68) < 0.01
    assert abs(np.mean(kinds == EventKind.CANCEL) - 0.25) < 0.01
    assert abs(np.mean(kinds == EventKind.MARKET) - 0.07) < 0.005
    assert not deep["owner"].any() and np.all(deep["tif"] == TimeInForce.GTC)
    orders = deep["oid"][kinds != EventKind.CANCEL]
    assert orders.tolist() == list(range(1, len(orders) + 1))     # dense, in order

    out = OrderBook().process(deep)
    assert np.all(out.results["status"][kinds == EventKind.CANCEL] == OrderStatus.CANCELLED)
    marketable = np.mean(out.results["filled_qty"][kinds == EventKind.LIMIT] > 0)
    assert 0.02 < marketable < 0.06

    counts, levels, spreads = book_over_time(deep)
    built = int(np.argmax(counts >= RESTING))
    assert counts[built] >= RESTING and built < 0.6 * len(counts)
    assert np.all(np.abs(counts[built:] - RESTING) < 0.01 * RESTING)
    assert 115 < levels[built:].mean() < 145 and levels[built:].max() < 180
    assert counts[built:].min() / levels[built:].max() > 150   # a few hundred orders a level
    assert np.median(spreads[built:]) <= 2                     # adds stay near the touch


def test_deep_mix_is_deterministic_for_a_seed():
    first = deep_mix(5_000, levels=25, resting=1_000, seed=7).events
    assert np.array_equal(first, deep_mix(5_000, levels=25, resting=1_000, seed=7).events)
    assert not np.array_equal(first, deep_mix(5_000, levels=25, resting=1_000, seed=8).events)


def test_limit_loop_does_the_books_work_on_the_deep_stream(deep):
    assert_same_work(deep)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_limit_loop_does_the_books_work_on_other_seeds(seed):
    assert_same_work(deep_mix(20_000, levels=25, resting=2_000, seed=seed).events)


order = st.tuples(st.sampled_from([EventKind.LIMIT] * 4 + [EventKind.MARKET, EventKind.CANCEL]),
                  st.integers(0, 15),              # a small id pool: reused and unknown ids
                  st.integers(0, 1),
                  st.integers(98, 102),            # a narrow band: crosses and queues
                  st.one_of(st.integers(1, 6), st.integers(7, 40)))


@settings(max_examples=200, deadline=None)
@given(st.lists(order, min_size=4, max_size=150))
def test_limit_loop_does_the_books_work_on_random_streams(rows):
    events = np.zeros(len(rows), dtype=EVENT_DTYPE)
    for i, (kind, oid, side, price, qty) in enumerate(rows):
        if kind == EventKind.CANCEL:
            events[i] = (oid, 0, 0, 0, 0, kind, 0, 0)
        else:
            events[i] = (oid, price if kind == EventKind.LIMIT else 0, qty, 0, 0, kind, side,
                         TimeInForce.GTC)
    assert_same_work(events)


def with_event(**fields: int) -> np.ndarray:
    events = deep_mix(100, levels=10, resting=50, seed=1).events
    for name, value in fields.items():
        events[name][0] = value
    return events


@pytest.mark.parametrize("fields", [
    {"kind": EventKind.MODIFY}, {"kind": EventKind.LIMIT, "tif": TimeInForce.IOC},
    {"owner": 1}, {"kind": EventKind.MARKET, "price": 5}, {"kind": EventKind.LIMIT, "side": 2},
    {"kind": EventKind.LIMIT, "qty": 0}, {"kind": EventKind.LIMIT, "price": 0},
    {"oid": -1}, {"oid": 401}, {"kind": EventKind.LIMIT, "price": 1_000_000 + (1 << 22)},
], ids=str)
def test_limit_loop_refuses_what_it_cannot_match_like_the_book(fields):
    with pytest.raises(ValueError):
        LimitLoop(with_event(**fields))


def test_limit_loop_runs_once_is_made_once_and_an_empty_stream_runs():
    loop = LimitLoop(with_event())
    assert not loop.results["status"].any() and len(loop.fills) == 0
    loop.run()
    with pytest.raises(RuntimeError, match="once"):
        loop.run()
    with pytest.raises(RuntimeError, match="twice"):
        loop.__init__(with_event())
    with pytest.raises(RuntimeError, match="not initialised"):
        LimitLoop.__new__(LimitLoop).run()
    empty = LimitLoop(np.zeros(0, dtype=EVENT_DTYPE))
    assert empty.run() == (0, 0) and empty.resting == 0 and empty.fills.dtype == LIMIT_FILL_DTYPE


def test_a_preallocated_book_does_not_grow_and_a_fresh_one_does(deep):
    preallocated, fresh = preallocated_book(deep), OrderBook()
    reserved = preallocated.memory_usage()
    out = preallocated.process(deep)
    fresh.process(deep)
    grown = preallocated.memory_usage()
    # Levels and ladders (a few KB) have no reserve call; the rest must not move, and the
    # tapes left with the result instead of being copied into it.
    assert [grown[k] for k in ("orders", "order_index")] \
        == [reserved[k] for k in ("orders", "order_index")]
    assert reserved["tapes"] > 0 and grown["tapes"] == 0
    assert not out.fills.flags.owndata and not out.order_events.flags.owndata
    assert preallocated.pool_stats()["grow_count"] == 0
    assert fresh.pool_stats()["grow_count"] >= 1


def test_deep_rows_time_the_three_paths_and_report_the_limit():
    events = deep_mix(3_000, levels=25, resting=500, seed=5).events
    rows = deep_rows(events, 2)
    assert [row.name for row in rows] == [FRESH, PREALLOCATED, LIMIT]
    assert all(row.events == 3_000 and row.events_per_second > 0 for row in rows)
    ratios = deep_ratios(rows)
    assert ratios[f"deep book, fresh OrderBook{LIMIT_SUFFIX}"] \
        == pytest.approx(rows[0].events_per_second / rows[2].events_per_second)
    assert ratios["deep book, fresh vs preallocated OrderBook"] \
        == pytest.approx(rows[0].events_per_second / rows[1].events_per_second)
    facts = deep_facts(events)
    assert facts["deep_book_limit_agrees"] is True
    assert facts["deep_book_cold_fresh_run_events_per_second"] > 0


def test_limit_ratios_print_as_a_share_of_the_limit():
    rows = [BenchRow("a path", 10, 1.0, 1.0)]
    ratios = {"batch vs reference": 123.4, f"deep book, fresh OrderBook{LIMIT_SUFFIX}": 0.3125}
    text = format_report(BenchReport(BenchConfig(), rows, ratios, {}, {"python": "3"}))
    lines = [line for line in text.splitlines() if line.startswith(tuple(ratios))]
    assert lines[0].endswith("123.4x faster") and lines[1].endswith("0.31x of the limit")
    assert len({line.index("x ") for line in lines}) == 1
    assert "about 125 levels and up to 30,000 resting orders" in text
