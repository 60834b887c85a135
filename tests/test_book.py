"""Unit tests of obelisk._core.book: one behaviour per test, through the public API."""

import numpy as np
import pytest

from obelisk import (
    EVENT_DTYPE,
    MAX_PRICE_TICKS,
    MAX_QTY_LOTS,
    EventKind,
    OrderBook,
    OrderEventKind,
    OrderStatus,
    Reason,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from obelisk._core.pool import OrderPool
from obelisk.errors import (
    DuplicateOrderIdError,
    InvalidOrderError,
    PoolExhaustedError,
    SnapshotError,
    UnknownOrderError,
)

BUY, SELL = Side.BUY, Side.SELL


def fills_of(book):
    """(taker, maker, price, qty) of the last call's fills."""
    return [(int(f["taker_oid"]), int(f["maker_oid"]), int(f["price"]), int(f["qty"]))
            for f in book.last_fills()]


def events_of(book):
    """(kind, reason, oid, qty) of the last call's order events."""
    return [(int(e["kind"]), int(e["reason"]), int(e["oid"]), int(e["qty"]))
            for e in book.last_order_events()]


@pytest.fixture
def book():
    return OrderBook(16)


# ---------------------------------------------------------------- priority

def test_resting_orders_set_the_touch(book):
    assert book.add(1, BUY, 100, 5) == OrderStatus.RESTED
    assert book.add(2, BUY, 101, 3) == OrderStatus.RESTED
    assert book.add(3, SELL, 105, 7) == OrderStatus.RESTED
    assert book.bbo() == (101, 3, 105, 7)
    assert book.spread() == 4
    assert book.mid() == 103.0
    assert len(book) == 3


def test_price_then_time_priority_and_maker_price(book):
    book.add(1, SELL, 101, 5)
    book.add(2, SELL, 100, 5)
    book.add(3, SELL, 100, 5)
    assert book.add(4, BUY, 102, 12) == OrderStatus.FILLED
    # best price first, FIFO within it, each at the resting order's price
    assert fills_of(book) == [(4, 2, 100, 5), (4, 3, 100, 5), (4, 1, 101, 2)]
    assert book.order(1).qty == 3
    assert book.last_filled_qty == 12
    assert book.last_fill_count == 3
    assert book.last_order_event_count == len(book.last_order_events()) == 0


def test_partial_fill_rests_the_remainder(book):
    book.add(1, SELL, 100, 4)
    assert book.add(2, BUY, 100, 10) == OrderStatus.RESTED
    assert book.last_filled_qty == 4
    assert book.last_resting_qty == 6
    assert book.bbo() == (100, 6, None, 0)
    assert events_of(book) == [(OrderEventKind.RESTED, Reason.NONE, 2, 6)]


def test_fill_marks_whether_the_maker_is_done(book):
    book.add(1, SELL, 100, 4)
    book.add(2, BUY, 100, 3)
    book.add(3, BUY, 100, 1)
    assert [bool(f["maker_done"]) for f in book.last_fills()] == [True]
    assert book.last_fills()["taker_side"][0] == BUY


def test_fill_and_event_rows_are_the_records_as_tuples(book):
    book.add(1, SELL, 100, 4, owner=7)
    book.add(2, SELL, 101, 4, owner=8)
    book.add(3, BUY, 101, 10, TimeInForce.IOC)
    assert book.last_fill_rows() == [(int(f["maker_oid"]), int(f["maker_owner"]),
                                      int(f["price"]), int(f["qty"]))
                                     for f in book.last_fills()] == [(1, 7, 100, 4),
                                                                     (2, 8, 101, 4)]
    assert book.last_order_event_rows() == [(int(e["oid"]), int(e["kind"]), int(e["reason"]))
                                            for e in book.last_order_events()] == [
        (3, OrderEventKind.CANCELLED, Reason.IOC_REMAINDER)]
    book.add(4, BUY, 90, 1)
    assert book.last_fill_rows() == []


# ------------------------------------------------------------ time in force

def test_ioc_cancels_what_it_cannot_fill(book):
    book.add(1, SELL, 100, 4)
    assert book.add(2, BUY, 100, 10, TimeInForce.IOC) == OrderStatus.CANCELLED
    assert book.last_reason == Reason.IOC_REMAINDER
    assert book.last_filled_qty == 4
    assert 2 not in book
    assert events_of(book) == [(OrderEventKind.CANCELLED, Reason.IOC_REMAINDER, 2, 6)]


def test_fok_is_all_or_nothing_before_any_fill(book):
    book.add(1, SELL, 100, 4)
    book.add(2, SELL, 101, 4)
    assert book.add(3, BUY, 101, 9, TimeInForce.FOK) == OrderStatus.REJECTED
    assert book.last_reason == Reason.FOK_UNFILLABLE
    assert book.last_fills().size == 0
    assert book.bbo() == (None, 0, 100, 4)
    assert book.add(4, BUY, 101, 8, TimeInForce.FOK) == OrderStatus.FILLED
    assert len(book) == 0


def test_fok_respects_its_limit_price(book):
    book.add(1, SELL, 100, 4)
    book.add(2, SELL, 102, 10)
    assert book.add(3, BUY, 101, 5, TimeInForce.FOK) == OrderStatus.REJECTED


def test_alo_rejected_when_it_would_take(book):
    book.add(1, SELL, 100, 4)
    assert book.add(2, BUY, 100, 1, TimeInForce.ALO) == OrderStatus.REJECTED
    assert book.last_reason == Reason.ALO_WOULD_CROSS
    assert book.add(3, BUY, 99, 1, TimeInForce.ALO) == OrderStatus.RESTED
    assert book.order(3).tif == TimeInForce.ALO


def test_market_order_sweeps_and_respects_protection(book):
    for oid, price in enumerate([100, 101, 102, 103], start=1):
        book.add(oid, SELL, price, 2)
    assert book.market(10, BUY, 5, protection_price=101) == OrderStatus.CANCELLED
    assert book.last_filled_qty == 4
    assert book.market(11, BUY, 3) == OrderStatus.FILLED
    assert fills_of(book) == [(11, 3, 102, 2), (11, 4, 103, 1)]
    assert book.market(12, SELL, 1) == OrderStatus.CANCELLED  # no bids at all
    assert book.last_filled_qty == 0


# ---------------------------------------------------------- cancel / modify

def test_cancel_returns_resting_qty_and_drops_empty_level(book):
    book.add(1, BUY, 100, 5)
    book.add(2, BUY, 99, 5)
    assert book.cancel(1) == 5
    assert book.best_bid() == 99
    assert book.bid_level_count == 1
    with pytest.raises(UnknownOrderError):
        book.cancel(1)


def test_modify_down_keeps_priority(book):
    book.add(1, SELL, 100, 5)
    book.add(2, SELL, 100, 5)
    assert book.modify(1, 100, 2) == OrderStatus.MODIFIED
    assert book.queue_ahead(2) == 2
    book.add(3, BUY, 100, 2)
    assert fills_of(book) == [(3, 1, 100, 2)]


def test_modify_up_or_reprice_requeues(book):
    book.add(1, SELL, 100, 5)
    book.add(2, SELL, 100, 5)
    assert book.modify(1, 100, 6) == OrderStatus.RESTED
    assert book.queue_ahead(1) == 5
    assert book.modify(2, 101, 5) == OrderStatus.RESTED
    assert book.bbo()[2:] == (100, 6)


def test_modify_across_the_book_trades(book):
    book.add(1, SELL, 100, 5)
    book.add(2, BUY, 98, 7)
    assert book.modify(2, 100, 7) == OrderStatus.RESTED
    assert fills_of(book) == [(2, 1, 100, 5)]
    assert book.bbo() == (100, 2, None, 0)


def test_modify_to_zero_cancels(book):
    book.add(1, SELL, 100, 5)
    assert book.modify(1, 100, 0) == OrderStatus.CANCELLED
    assert len(book) == 0


def test_modify_alo_that_would_cross_is_rejected_and_kept(book):
    book.add(1, SELL, 100, 5)
    book.add(2, BUY, 98, 5, TimeInForce.ALO)
    before = book.snapshot()
    assert book.modify(2, 100, 5) == OrderStatus.REJECTED
    assert book.last_reason == Reason.ALO_WOULD_CROSS
    assert book.snapshot()[32:] == before[32:]  # same orders; only the sequence moved


# ----------------------------------------------------- self-trade prevention

@pytest.mark.parametrize(
    ("mode", "status", "fills", "left"),
    [
        (SelfTradePrevention.CANCEL_RESTING, OrderStatus.FILLED, [(9, 2, 100, 3)], []),
        (SelfTradePrevention.CANCEL_INCOMING, OrderStatus.CANCELLED, [], [1, 2]),
        (SelfTradePrevention.CANCEL_BOTH, OrderStatus.CANCELLED, [], [2]),
        (SelfTradePrevention.ALLOW, OrderStatus.FILLED, [(9, 1, 100, 3)], [2]),
    ],
)
def test_self_trade_prevention_modes(mode, status, fills, left):
    book = OrderBook(16, stp=mode)
    book.add(1, SELL, 100, 3, owner=7)
    book.add(2, SELL, 100, 3, owner=8)
    assert book.add(9, BUY, 100, 3, TimeInForce.IOC, owner=7) == status
    assert fills_of(book) == fills
    assert [int(o["oid"]) for o in book.orders()] == left
    book.check_integrity()


def test_owner_zero_never_self_trades():
    book = OrderBook(16, stp=SelfTradePrevention.CANCEL_BOTH)
    book.add(1, SELL, 100, 3)
    assert book.add(2, BUY, 100, 3) == OrderStatus.FILLED


def test_fok_counts_self_trade_prevention():
    book = OrderBook(16, stp=SelfTradePrevention.CANCEL_INCOMING)
    book.add(1, SELL, 100, 3, owner=7)
    book.add(2, SELL, 100, 3, owner=8)
    assert book.add(9, BUY, 100, 3, TimeInForce.FOK, owner=7) == OrderStatus.REJECTED
    assert len(book) == 2


# ------------------------------------------------------------------ queries

def test_depth_size_at_and_queue_ahead(book):
    book.add(1, BUY, 100, 5)
    book.add(2, BUY, 100, 7)
    book.add(3, BUY, 98, 1)
    book.add(4, SELL, 103, 2)
    prices, qtys, counts = book.depth(BUY, 5)
    assert prices.tolist() == [100, 98]
    assert qtys.tolist() == [12, 1]
    assert counts.tolist() == [2, 1]
    assert book.depth(SELL, 0)[0].size == 0
    assert book.size_at(BUY, 100) == 12
    assert book.size_at(BUY, 99) == 0
    assert book.queue_ahead(2) == 5
    assert book.order(2) == (2, BUY, 100, 7, 0, TimeInForce.GTC)
    assert book.order(42) is None
    assert (book.bid_order_count, book.ask_order_count) == (3, 1)
    with pytest.raises(InvalidOrderError):
        book.depth(2)


def test_orders_export_in_priority_order(book):
    book.add(1, BUY, 99, 5)
    book.add(2, BUY, 100, 5)
    book.add(3, BUY, 100, 1)
    book.add(4, SELL, 102, 2)
    exported = book.orders()
    assert exported["oid"].tolist() == [2, 3, 1, 4]
    assert exported["queue_ahead"].tolist() == [0, 5, 0, 0]


def test_empty_book_queries(book):
    assert book.bbo() == (None, 0, None, 0)
    assert book.spread() is None and book.mid() is None
    assert book.orders().size == 0


# ----------------------------------------------------------------- snapshot

def test_snapshot_restore_reproduces_the_book(book):
    book.add(1, BUY, 99, 5, owner=3)
    book.add(2, BUY, 99, 6)
    book.add(3, SELL, 102, 2, TimeInForce.ALO)
    restored = OrderBook.restore(book.snapshot())
    assert restored.snapshot() == book.snapshot()
    assert restored.sequence == book.sequence
    # and it behaves the same from here on
    for b in (book, restored):
        b.add(10, SELL, 99, 8)
    assert fills_of(book) == fills_of(restored)
    assert book.snapshot() == restored.snapshot()


@pytest.mark.parametrize(
    "mangle",
    [
        lambda data: data[:10],
        lambda data: b"NOTABOOK" + data[8:],
        lambda data: data[:-1],
        lambda data: data[:8] + (99).to_bytes(4, "little") + data[12:],
        lambda data: data[:16] + (-1).to_bytes(8, "little", signed=True) + data[24:],  # seq
    ],
)
def test_restore_rejects_malformed_snapshots(book, mangle):
    book.add(1, BUY, 99, 5)
    with pytest.raises(SnapshotError):
        OrderBook.restore(mangle(book.snapshot()))


def test_restore_rejects_a_crossed_snapshot(book):
    book.add(1, BUY, 99, 5)
    book.add(2, SELL, 100, 5)
    data = bytearray(book.snapshot())
    ask_price = 32 + 40 + 8  # header, the bid's record, then the ask's oid
    data[ask_price:ask_price + 8] = (98).to_bytes(8, "little")
    with pytest.raises(SnapshotError, match="crossed"):
        OrderBook.restore(bytes(data))


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda b: b.add(9, 2, 100, 1), InvalidOrderError),
        (lambda b: b.add(9, -1, 100, 1), InvalidOrderError),
        (lambda b: b.add(9, BUY, 0, 1), InvalidOrderError),
        (lambda b: b.add(9, BUY, -5, 1), InvalidOrderError),
        (lambda b: b.add(9, BUY, MAX_PRICE_TICKS + 1, 1), InvalidOrderError),
        (lambda b: b.add(9, BUY, 100, 0), InvalidOrderError),
        (lambda b: b.add(9, BUY, 100, MAX_QTY_LOTS + 1), InvalidOrderError),
        (lambda b: b.add(9, BUY, 100, 1, tif=7), InvalidOrderError),
        (lambda b: b.add(1, BUY, 90, 1), DuplicateOrderIdError),
        (lambda b: b.market(1, SELL, 1), DuplicateOrderIdError),
        (lambda b: b.market(9, SELL, 1, protection_price=-1), InvalidOrderError),
        (lambda b: b.cancel(77), UnknownOrderError),
        (lambda b: b.modify(77, 100, 1), UnknownOrderError),
        (lambda b: b.modify(1, 0, 1), InvalidOrderError),
        (lambda b: b.modify(1, 99, -1), InvalidOrderError),
        (lambda b: b.queue_ahead(77), UnknownOrderError),
    ],
)
def test_bad_input_raises_and_leaves_the_book_untouched(book, call, error):
    book.add(1, BUY, 99, 5)
    book.add(2, SELL, 101, 5)
    before = book.snapshot()
    with pytest.raises(error) as info:
        call(book)
    assert book.snapshot()[32:] == before[32:]
    assert "rejected" in str(info.value) or "no resting order" in str(info.value)
    book.check_integrity()


def test_error_message_says_what_is_allowed(book):
    with pytest.raises(InvalidOrderError, match=r"price -5.*positive number of ticks"):
        book.add(9, BUY, -5, 1)


def test_fixed_pool_refuses_orders_that_would_rest():
    book = OrderBook(2, growable=False)
    book.add(1, SELL, 100, 1)
    book.add(2, SELL, 101, 1)
    with pytest.raises(PoolExhaustedError):
        book.add(3, SELL, 102, 1)
    # an order that fills completely needs no slot
    assert book.add(4, BUY, 100, 1) == OrderStatus.FILLED
    assert book.add(5, SELL, 105, 1) == OrderStatus.RESTED
    assert book.pool_stats()["grow_count"] == 0


def test_growable_pool_grows():
    book = OrderBook(2)
    for oid in range(1, 100):
        book.add(oid, BUY, oid, 1)
    stats = book.pool_stats()
    assert stats["in_use"] == 99 and stats["capacity"] >= 99 and stats["grow_count"] >= 1
    book.check_integrity()


def test_a_batch_grows_its_pool_id_map_and_tape_once_up_front():
    # growing by doubling inside the loop copied a fresh book's arena at every step
    n = 50_000
    events = np.zeros(n, EVENT_DTYPE)
    events["oid"] = np.arange(1, n + 1)
    events["side"], events["price"] = BUY, 1_000 - np.arange(n) % 125
    events["qty"], events["kind"], events["tif"] = 1, EventKind.LIMIT, TimeInForce.GTC
    book = OrderBook()
    before = book.memory_usage()
    result = book.process(events)
    assert (result.results["status"] == OrderStatus.RESTED).all()
    stats = book.pool_stats()
    assert stats["grow_count"] == 1 and stats["capacity"] >= n and stats["in_use"] == n
    assert len(result.order_events) == n
    assert book.memory_usage()["order_index"] > before["order_index"]
    book.check_integrity()


def test_a_large_batch_hands_its_tapes_over_and_a_small_one_copies_them():
    n = 20_000
    events = np.zeros(n, EVENT_DTYPE)
    events["oid"] = np.arange(1, n + 1)
    events["side"] = np.where(np.arange(n) % 2 == 0, BUY, SELL)
    events["price"], events["qty"], events["kind"] = 100, 1, EventKind.LIMIT
    book = OrderBook()
    large = book.process(events)
    assert not large.fills.flags.owndata and not large.order_events.flags.owndata
    assert book._tape_capacity() == (0, 0)
    assert book.last_fill_count == book.last_order_event_count == 0
    expected_fills = large.fills.tolist()     # a copy() would leave its padding unset
    assert len(expected_fills) == n // 2 and (large.fills["maker_oid"] % 2 == 1).all()
    # the book writes its next batches on new tapes: the arrays handed over stay as they were
    events["oid"] += n
    small = book.process(events[:4])
    assert small.fills.flags.owndata and len(small.fills) == 2
    book.process(events)
    del book
    assert large.fills.tolist() == expected_fills
    assert large.order_events["oid"].tolist() == list(range(1, n + 1, 2))
    large.fills["qty"] = 7         # writable, like any result array


def test_a_batch_leaves_growth_within_one_doubling_to_the_orders_that_rest():
    # Adds that fill or are cancelled in the same batch need no slot: reserving one per
    # add grew (and first-touched) an arena the busy book never used.
    n = 6_000
    events = np.zeros(n, EVENT_DTYPE)
    events["oid"] = np.arange(1, n + 1)
    events["side"], events["price"], events["qty"] = BUY, 1_000, 1
    events["kind"], events["tif"] = EventKind.LIMIT, TimeInForce.GTC
    events["kind"][1::2] = EventKind.CANCEL
    events["oid"][1::2] = events["oid"][0::2]           # each add cancelled right after
    book = OrderBook(4_096)
    statuses = book.process(events).results["status"]
    assert (statuses[0::2] == OrderStatus.RESTED).all()
    assert (statuses[1::2] == OrderStatus.CANCELLED).all()
    assert book.pool_stats()["grow_count"] == 0 and len(book) == 0
    book.check_integrity()


def test_a_fixed_pool_batch_still_rests_what_fits_and_refuses_the_rest():
    events = np.zeros(100, EVENT_DTYPE)
    events["oid"] = np.arange(1, 101)
    events["side"], events["price"], events["qty"] = BUY, 1_000 - np.arange(100), 1
    events["kind"], events["tif"] = EventKind.LIMIT, TimeInForce.GTC
    book = OrderBook(10, growable=False)
    statuses = book.process(events).results["status"]
    assert (statuses[:10] == OrderStatus.RESTED).all()
    assert (statuses[10:] == OrderStatus.REJECTED).all()
    assert book.pool_stats()["grow_count"] == 0 and len(book) == 10


# -------------------------------------------------------------------- batch

def make_events(*rows):
    events = np.zeros(len(rows), dtype=EVENT_DTYPE)
    for i, (kind, oid, side, price, qty, tif, owner) in enumerate(rows):
        events[i] = (oid, price, qty, owner, 0, kind, side, tif)
    return events


def test_batch_rejects_bad_events_with_reason_codes(book):
    events = make_events(
        (EventKind.LIMIT, 1, BUY, 100, 5, 0, 0),
        (EventKind.LIMIT, 1, BUY, 100, 5, 0, 0),
        (EventKind.LIMIT, 2, 3, 100, 5, 0, 0),
        (EventKind.LIMIT, 3, BUY, 0, 5, 0, 0),
        (EventKind.LIMIT, 4, BUY, 100, -1, 0, 0),
        (EventKind.LIMIT, 5, BUY, 100, 1, 9, 0),
        (9, 6, BUY, 100, 1, 0, 0),
        (EventKind.CANCEL, 77, 0, 0, 0, 0, 0),
    )
    out = book.process(events)
    assert out.results["status"].tolist() == [OrderStatus.RESTED] + [OrderStatus.REJECTED] * 7
    assert out.results["reason"].tolist() == [
        Reason.NONE, Reason.DUPLICATE_OID, Reason.INVALID_SIDE, Reason.INVALID_PRICE,
        Reason.INVALID_QTY, Reason.INVALID_TIF, Reason.INVALID_KIND, Reason.UNKNOWN_OID]
    rejected = out.order_events[out.order_events["kind"] == OrderEventKind.REJECTED]
    assert rejected["event_index"].tolist() == list(range(1, 8))
    assert len(book) == 1


def test_batch_wrong_type_or_dtype_is_a_type_error(book):
    with pytest.raises(TypeError, match="EVENT_DTYPE"):
        book.process([(1, 2, 3)])
    with pytest.raises(TypeError, match="dtype"):
        book.process(np.zeros(3, dtype=np.int64))
    with pytest.raises(TypeError, match="one-dimensional"):
        book.process(np.zeros((2, 2), dtype=EVENT_DTYPE))


def test_batch_accepts_read_only_and_strided_arrays(book):
    events = make_events(*[(EventKind.LIMIT, i, BUY, 100 + i, 1, 0, 0) for i in range(1, 7)])
    events.setflags(write=False)
    assert (book.process(events[::2]).results["status"] == OrderStatus.RESTED).all()
    assert book.orders()["oid"].tolist() == [5, 3, 1]


def test_empty_batch(book):
    out = book.process(np.zeros(0, dtype=EVENT_DTYPE))
    assert out.results.size == out.fills.size == out.order_events.size == 0


def test_batch_and_per_call_agree_on_fill_tape():
    rows = [(EventKind.LIMIT, 1, SELL, 100, 5, 0, 0), (EventKind.LIMIT, 2, SELL, 101, 5, 0, 0),
            (EventKind.MARKET, 3, BUY, 0, 7, 0, 0), (EventKind.MODIFY, 2, 0, 101, 1, 0, 0),
            (EventKind.CANCEL, 2, 0, 0, 0, 0, 0)]
    batch = OrderBook(8).process(make_events(*rows))
    single = OrderBook(8)
    fills = []
    for kind, oid, side, price, qty, tif, owner in rows:
        if kind == EventKind.LIMIT:
            single.add(oid, side, price, qty, tif, owner)
        elif kind == EventKind.MARKET:
            single.market(oid, side, qty, price, owner)
        elif kind == EventKind.MODIFY:
            single.modify(oid, price, qty)
        else:
            single.cancel(oid)
        fills.extend(single.last_fills()[["seq", "maker_oid", "price", "qty"]].tolist())
    assert batch.fills[["seq", "maker_oid", "price", "qty"]].tolist() == fills


# ------------------------------------------------------- memory exhaustion

def test_per_call_out_of_memory_raises_and_changes_nothing(book):
    book.add(1, SELL, 100, 5)
    before = book.snapshot()
    book._limit_tapes(1)  # injected: tape growth beyond one record fails
    with pytest.raises(MemoryError, match="unchanged"):
        book.add(2, BUY, 100, 3)
    assert book.snapshot() == before
    book._limit_tapes(0)
    assert book.add(2, BUY, 100, 3) == OrderStatus.FILLED


def test_batch_out_of_memory_reports_what_was_applied():
    rows = [(EventKind.LIMIT, oid, SELL, 100 + oid, 1, 0, 0) for oid in range(1, 11)]
    book = OrderBook(16)
    book._limit_tapes(4)
    out = book.process(make_events(*rows))
    applied = int((out.results["reason"] != Reason.OUT_OF_MEMORY).sum())
    assert 0 < applied < 10
    assert (out.results["status"][:applied] == OrderStatus.RESTED).all()
    assert (out.results["status"][applied:] == OrderStatus.REJECTED).all()
    assert out.order_events["oid"].tolist() == list(range(1, applied + 1))
    expected = OrderBook(16)
    expected.process(make_events(*rows[:applied]))
    assert book.snapshot() == expected.snapshot()


# -------------------------------------------------- robustness at the edges

def test_reserve_refuses_sizes_that_would_overflow(book):
    for size in (2**62, 2**62 + 1, -1):
        with pytest.raises(ValueError, match="reserve sizes"):
            book.reserve(size, 0)
    book.add(1, SELL, 100, 1)
    book.add(2, BUY, 100, 1)
    assert fills_of(book) == [(2, 1, 100, 1)]


def test_fok_over_a_level_holding_near_int64_max():
    book = OrderBook(2048)
    book.add(1, SELL, 100, 1)
    oid = 2
    for _ in range(1023):
        book.add(oid, SELL, 101, MAX_QTY_LOTS)
        oid += 1
    book.add(oid, SELL, 101, MAX_QTY_LOTS - 1)  # level 101 now totals 2**63 - 1
    assert book.size_at(SELL, 101) == 2**63 - 1
    assert book.add(9_999, BUY, 101, 2, TimeInForce.FOK) == OrderStatus.FILLED


def test_an_order_its_level_cannot_hold_is_cancelled_with_its_one_event():
    # 1,023 orders of 2**53 lots at 101, and one more that would take the level past
    # 2**63 - 1: it cannot rest, and its one order event says so (not RESTED)
    events = np.zeros(1_024, EVENT_DTYPE)
    events["oid"], events["kind"], events["side"] = np.arange(1, 1_025), EventKind.LIMIT, SELL
    events["price"], events["qty"] = 101, MAX_QTY_LOTS
    result = OrderBook(2048).process(events)
    assert (result.results["status"][:-1] == OrderStatus.RESTED).all()
    last = result.order_events[-1]
    assert (result.results["status"][-1], result.results["reason"][-1]) == (
        OrderStatus.CANCELLED, Reason.LEVEL_OVERFLOW)
    assert (last["kind"], last["reason"], last["oid"], last["qty"]) == (
        OrderEventKind.CANCELLED, Reason.LEVEL_OVERFLOW, 1_024, MAX_QTY_LOTS)
    assert len(result.order_events) == 1_024


def test_events_with_fields_in_another_order_are_read_by_name(book):
    names = ["price", "oid", "qty", "owner", "asset", "kind", "side", "tif"]
    reordered = np.dtype([(name, EVENT_DTYPE.fields[name][0]) for name in names])
    events = np.zeros(1, dtype=reordered)
    events["oid"], events["price"], events["qty"] = 7, 100, 3
    events["kind"], events["side"] = EventKind.LIMIT, SELL
    book.process(events)
    assert book.order(7) == (7, SELL, 100, 3, 0, TimeInForce.GTC)


def test_objects_made_without_init_are_safe():
    bare = OrderBook.__new__(OrderBook)
    assert bare.add(1, BUY, 100, 1) == OrderStatus.RESTED
    with pytest.raises(PoolExhaustedError):
        OrderPool.__new__(OrderPool).acquire()


def test_record_padding_is_zeroed(book):
    book.add(1, SELL, 100, 5)
    book.add(2, BUY, 100, 2)
    fill_bytes = book.last_fills().view(np.uint8)
    assert fill_bytes[54:56].tolist() == [0, 0]
    result = book.process(make_events((EventKind.CANCEL, 1, 0, 0, 0, 0, 0)))
    assert result.results.view(np.uint8)[22:24].tolist() == [0, 0]
    assert result.order_events.view(np.uint8)[43:48].tolist() == [0] * 5


def test_a_cancel_or_modify_that_names_an_owner_acts_only_on_that_owners_orders():
    # An account could cancel (or move) any participant's order by its id.
    book = OrderBook()
    book.add(1, Side.BUY, 100, 5, owner=7)
    events = np.zeros(3, EVENT_DTYPE)
    events["oid"], events["owner"] = 1, 8
    events["kind"] = [EventKind.CANCEL, EventKind.MODIFY, EventKind.MODIFY]
    events["price"], events["qty"] = [0, 101, 100], [0, 5, 0]
    out = book.process(events)
    assert out.results["reason"].tolist() == [Reason.UNKNOWN_OID] * 3
    assert book.orders()["oid"].tolist() == [1] and book.bbo()[0] == 100
    with pytest.raises(UnknownOrderError):
        book.cancel(1, owner=8)
    assert book.modify(1, 101, 5, owner=7) == OrderStatus.RESTED     # its owner may
    assert book.cancel(1) == 5                                          # and owner 0: any
