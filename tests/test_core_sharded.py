"""Unit tests of obelisk._core.sharded: one batch across books, held while it runs."""

from functools import partial

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obelisk import EVENT_DTYPE, EventKind, OrderBook, OrderEventKind, OrderStatus, Reason, Side
from obelisk._core.sharded import process_in_turn, process_sharded
from obelisk.errors import ConcurrentUseError

BUY, SELL = Side.BUY, Side.SELL


def in_turn(tasks):
    return [task() for task in tasks]


def limit_orders(*rows):
    """EVENT_DTYPE limit orders from (asset, oid, side, price, qty)."""
    events = np.zeros(len(rows), dtype=EVENT_DTYPE)
    for i, (asset, oid, side, price, qty) in enumerate(rows):
        events[i] = (oid, price, qty, 0, asset, EventKind.LIMIT, side, 0)
    return events


def positions(events, asset):
    return partial(np.flatnonzero, events["asset"] == asset)


def test_each_book_applies_its_own_events_and_the_tapes_come_in_input_order():
    events = limit_orders((0, 1, SELL, 100, 2), (1, 2, SELL, 50, 1), (0, 3, BUY, 100, 1),
                          (1, 4, BUY, 50, 1), (0, 5, BUY, 100, 1))
    books = [OrderBook(8), OrderBook(8)]
    out = process_sharded(books, events, [positions(events, 0), positions(events, 1)],
                          in_turn, merge_parts=3)
    assert out.results["status"].tolist() == [OrderStatus.RESTED, OrderStatus.RESTED,
                                              OrderStatus.FILLED, OrderStatus.FILLED,
                                              OrderStatus.FILLED]
    assert out.fills[["event_index", "maker_oid"]].tolist() == [(2, 1), (3, 2), (4, 1)]
    assert out.order_events["event_index"].tolist() == [0, 1]
    assert len(books[0]) == len(books[1]) == 0


def test_events_no_book_selects_are_rejected_as_unknown_assets():
    events = limit_orders((0, 1, SELL, 100, 2), (7, 2, BUY, 100, 1), (0, 3, BUY, 99, 1))
    out = process_sharded([OrderBook(8)], events, [positions(events, 0)], in_turn)
    assert out.results["reason"].tolist() == [Reason.NONE, Reason.UNKNOWN_ASSET, Reason.NONE]
    rejected = out.order_events[out.order_events["kind"] == OrderEventKind.REJECTED]
    assert rejected[["seq", "oid", "event_index", "reason"]].tolist() == [
        (0, 2, 1, Reason.UNKNOWN_ASSET)]
    assert out.order_events["event_index"].tolist() == [0, 1, 2]


def test_held_books_refuse_other_callers_until_the_batch_is_done():
    book = OrderBook(8)
    book.add(1, SELL, 100, 1)
    refused = []

    def run_in_parallel(tasks):
        for call in (lambda: book.add(2, BUY, 90, 1), book.bbo, book.orders, book.snapshot,
                     lambda: book.process(limit_orders()), lambda: book.reserve(10, 10),
                     lambda: 1 in book,
                     lambda: process_sharded([book], limit_orders(), [list], in_turn)):
            with pytest.raises(ConcurrentUseError, match="another thread"):
                call()
            refused.append(call)
        return in_turn(tasks)

    process_sharded([book], limit_orders(), [list], run_in_parallel)
    assert len(refused) == 8 * 3           # selections, shards and merge: held throughout
    assert book.bbo() == (None, 0, 100, 1)


@pytest.mark.parametrize(("rows", "error", "message"), [
    ([[0, 3], [1, 1]], ValueError, "ascend"),
    ([[0, 3], [1, 3]], ValueError, "two books"),
    ([[0, 4], [1]], IndexError, "outside"),
    ([[-1, 0], [1]], IndexError, "outside"),
])
def test_bad_selections_raise_before_any_book_changes(rows, error, message):
    events = limit_orders(*[(0, oid, BUY, 100 - oid, 1) for oid in range(1, 5)])
    books = [OrderBook(8), OrderBook(8)]
    with pytest.raises(error, match=message):
        process_sharded(books, events, [partial(np.array, r) for r in rows], in_turn)
    assert len(books[0]) == len(books[1]) == 0
    assert books[0].add(9, SELL, 200, 1) == OrderStatus.RESTED     # released again


def test_arguments_are_checked():
    book = OrderBook(8)
    with pytest.raises(ValueError, match="twice"):
        process_sharded([book, book], limit_orders(), [list, list], in_turn)
    with pytest.raises(ValueError, match="one selection each"):
        process_sharded([book], limit_orders(), [], in_turn)
    with pytest.raises(ValueError, match="merge_parts"):
        process_sharded([book], limit_orders(), [list], in_turn, merge_parts=0)
    with pytest.raises(TypeError, match="EVENT_DTYPE"):
        process_sharded([book], np.zeros(2, dtype=np.int64), [list], in_turn)
    with pytest.raises(TypeError):
        process_sharded([object()], limit_orders(), [list], in_turn)


# ------------------------------------------------------------ in turn

mixed_rows = st.lists(st.tuples(st.sampled_from([0, 1, 2, 7, 0xFFFFFFFF]), st.integers(1, 40),
                                st.sampled_from([0, 1]), st.integers(97, 103),
                                st.integers(1, 6), st.sampled_from(list(EventKind))),
                      min_size=0, max_size=80)


@settings(max_examples=150, deadline=None)
@given(batches=st.lists(mixed_rows, min_size=1, max_size=4), books=st.integers(1, 12))
def test_in_turn_gives_the_sharded_results_and_tapes_bit_for_bit(batches, books):
    """The same books fed the same batches both ways: results, tapes and books agree."""
    assets = sorted({0, 1, 2, 0xFFFFFFFF} | set(range(10, 10 + books)))[:books]
    sharded = [OrderBook(4) for _ in assets]
    in_turn_books = [OrderBook(4) for _ in assets]
    for rows in batches:
        events = np.zeros(len(rows), dtype=EVENT_DTYPE)
        for i, (asset, oid, side, price, qty, kind) in enumerate(rows):
            events[i] = (oid, price, qty, 0, asset, kind, side, 0)
        expected = process_sharded(sharded, events, [positions(events, a) for a in assets],
                                   in_turn)
        got = process_in_turn(in_turn_books, events, np.array(assets, dtype=np.uint32))
        for name in ("results", "fills", "order_events"):
            assert getattr(got, name).tobytes() == getattr(expected, name).tobytes(), name
    for ours, theirs in zip(in_turn_books, sharded, strict=True):
        assert ours.snapshot() == theirs.snapshot()


def test_in_turn_refuses_a_held_book_and_releases_the_others():
    books = [OrderBook(4), OrderBook(4)]
    events = limit_orders((0, 1, BUY, 100, 1), (1, 2, BUY, 100, 1))

    def run_in_parallel(tasks):                     # while books[1] is held by this batch
        with pytest.raises(ConcurrentUseError):
            process_in_turn(books, events, np.array([0, 1], dtype=np.uint32))
        assert books[0].best_bid() is None          # released again, unchanged
        return in_turn(tasks)

    process_sharded([books[1]], limit_orders(), [list], run_in_parallel)
    assert books[1].best_bid() is None
    assert process_in_turn(books, events, np.array([0, 1], dtype=np.uint32)).results[
        "status"].tolist() == [OrderStatus.RESTED, OrderStatus.RESTED]


def test_in_turn_checks_its_books_and_ids():
    with pytest.raises(ValueError, match="2 books need one asset id each"):
        process_in_turn([OrderBook(4), OrderBook(4)], limit_orders((0, 1, BUY, 100, 1)),
                        np.array([0], dtype=np.uint32))
    with pytest.raises(ValueError, match="asset ids must ascend: 1 after 3"):
        process_in_turn([OrderBook(4), OrderBook(4)], limit_orders((0, 1, BUY, 100, 1)),
                        np.array([3, 1], dtype=np.uint32))
