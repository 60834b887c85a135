"""Differential tests: the compiled book against the pure-Python reference, record for record.

Random streams mix every event kind, time in force, self-trade prevention mode
and owner, over a narrow price band so that orders cross, queue and collide,
and include invalid events so that rejection paths are compared too.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from obelisk import (
    EVENT_DTYPE,
    MAX_PRICE_TICKS,
    EventKind,
    OrderBook,
    OrderStatus,
    SelfTradePrevention,
)
from obelisk.errors import ObeliskError
from obelisk.testing.reference import ReferenceBook

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# A five-tick band and small sizes make crosses, queues and same-price modifies common.
prices = st.one_of(st.integers(98, 102), st.integers(98, 102), st.integers(90, 110),
                   st.sampled_from([0, -3, MAX_PRICE_TICKS, MAX_PRICE_TICKS + 1]))
quantities = st.one_of(st.integers(1, 6), st.integers(1, 6), st.integers(7, 40),
                       st.sampled_from([0, -1]))
kinds = st.sampled_from([EventKind.LIMIT] * 6 + [EventKind.MARKET] + [EventKind.CANCEL] * 2
                        + [EventKind.MODIFY] * 2 + [0, 9])     # 0 and 9 are invalid kinds
event = st.tuples(
    kinds,
    st.integers(1, 16),                                    # oid: a small pool, so ids collide
    st.sampled_from([0, 0, 0, 1, 1, 1, 2]),                # side (2 is invalid)
    prices,
    quantities,
    st.sampled_from([0, 0, 0, 1, 2, 3, 4]),                # tif (4 is invalid)
    st.sampled_from([0, 0, 1, 2]),                         # owner
)


@st.composite
def streams(draw, max_size=120):
    """Random events; most cancels and modifies aim at a live order, found by replaying
    the stream so far on a reference book, and most modifies keep its price."""
    size = draw(st.integers(1, max_size))  # lists would otherwise stay very short
    rows = draw(st.lists(event, min_size=size, max_size=size))
    shadow = ReferenceBook(10_000)
    for i, row in enumerate(rows):
        kind = row[0]
        if kind in (EventKind.CANCEL, EventKind.MODIFY) and shadow.by_id and draw(st.booleans()):
            target = shadow.by_id[draw(st.sampled_from(sorted(shadow.by_id)))]
            if kind == EventKind.CANCEL:
                row = (kind, target.oid) + row[2:]
            else:
                price = draw(st.sampled_from([target.price, target.price, row[3]]))
                qty = max(0, target.qty + draw(st.sampled_from([-2, -1, 0, 1, 2])))
                row = (kind, target.oid, 0, price, qty, 0, 0)
            rows[i] = row
        shadow.apply(i, *row)
    return rows


books = st.tuples(st.sampled_from(list(SelfTradePrevention)), st.integers(2, 12), st.booleans())


def to_events(rows):
    events = np.zeros(len(rows), dtype=EVENT_DTYPE)
    for i, (kind, oid, side, price, qty, tif, owner) in enumerate(rows):
        events[i] = (oid, price, qty, owner, 0, kind, side, tif)
    return events


def assert_same_batch(left, right):
    assert left.results.tolist() == right.results.tolist()
    assert left.fills.tolist() == right.fills.tolist()
    assert left.order_events.tolist() == right.order_events.tolist()


@SETTINGS
@given(rows=streams(), config=books)
def test_batch_matches_reference(rows, config):
    stp, capacity, growable = config
    events = to_events(rows)
    compiled = OrderBook(capacity, growable=growable, stp=stp)
    reference = ReferenceBook(capacity, growable=growable, stp=stp)
    assert_same_batch(compiled.process(events), reference.process(events))
    assert compiled.orders().tolist() == reference.orders().tolist()
    assert compiled.bbo() == reference.bbo()
    compiled.check_integrity()


@SETTINGS
@given(rows=streams(), config=books)
def test_per_call_matches_batch_and_reference_after_every_event(rows, config):
    stp, capacity, growable = config
    events = to_events(rows)
    batch = OrderBook(capacity, growable=growable, stp=stp).process(events)
    single = OrderBook(capacity, growable=growable, stp=stp)
    reference = ReferenceBook(capacity, growable=growable, stp=stp)
    fills = []
    for index, (kind, oid, side, price, qty, tif, owner) in enumerate(rows):
        expected = reference.apply(index, kind, oid, side, price, qty, tif, owner)
        try:
            if kind == EventKind.LIMIT:
                status = single.add(oid, side, price, qty, tif, owner)
            elif kind == EventKind.MARKET:
                status = single.market(oid, side, qty, price, owner)
            elif kind == EventKind.CANCEL:
                single.cancel(oid, owner)
                status = OrderStatus.CANCELLED
            elif kind == EventKind.MODIFY:
                status = single.modify(oid, price, qty, owner)
            else:
                status = single.process(events[index:index + 1]).results["status"][0]
        except ObeliskError:
            status = OrderStatus.REJECTED
        assert status == expected.status == batch.results["status"][index]
        assert single.bbo() == reference.bbo()
        single.check_integrity()
        if kind in (EventKind.LIMIT, EventKind.MARKET, EventKind.CANCEL, EventKind.MODIFY):
            fills.extend(single.last_fills().tolist())
    strip_index = [(f[:7] + f[8:]) for f in fills]
    assert strip_index == [(f[:7] + f[8:]) for f in batch.fills.tolist()]
    assert single.orders().tolist() == reference.orders().tolist()


@SETTINGS
@given(rows=streams(), more=streams(), config=books)
def test_snapshot_round_trip_behaves_identically(rows, more, config):
    stp, capacity, growable = config
    book = OrderBook(capacity, growable=growable, stp=stp)
    book.process(to_events(rows))
    restored = OrderBook.restore(book.snapshot(), capacity=capacity, growable=growable)
    assert restored.snapshot() == book.snapshot()
    assert_same_batch(book.process(to_events(more)), restored.process(to_events(more)))
    assert restored.snapshot() == book.snapshot()


@SETTINGS
@given(rows=streams())
def test_never_crossed_and_levels_sum_their_orders(rows):
    book = OrderBook(4)
    for i in range(len(rows)):
        book.process(to_events(rows[i:i + 1]))
        bid, _, ask, _ = book.bbo()
        assert bid is None or ask is None or bid < ask
        orders = book.orders()
        for side in (0, 1):
            prices, qtys, counts = book.depth(side, 1000)
            mine = orders[orders["side"] == side]
            for price, qty, count in zip(prices, qtys, counts, strict=True):
                at = mine[mine["price"] == price]
                assert at["qty"].sum() == qty and len(at) == count
        assert book.pool_stats()["in_use"] == len(orders) == len(book)


@st.composite
def drifting_streams(draw):
    """Events around a touch that wanders over many widths of the book's price window
    (obelisk._core._window, 4,096 ticks), some far behind it: the window moves, and levels
    outside it are found in the ladder."""
    size = draw(st.integers(20, 300))
    centre = draw(st.integers(20_000, 40_000))
    rows = []
    for _ in range(size):
        centre += draw(st.sampled_from([0, 0, 1, -1, 5, -5, 900, -900, 3_000, -3_000]))
        far = draw(st.sampled_from([0] * 6 + [2_100, -2_100, 5_000, -5_000]))
        kind = draw(st.sampled_from([EventKind.LIMIT] * 5 + [EventKind.CANCEL] * 2
                                    + [EventKind.MARKET, EventKind.MODIFY]))
        price = max(1, centre + far + draw(st.integers(-3, 3)))
        rows.append((kind, draw(st.integers(1, 40)), draw(st.integers(0, 1)),
                     0 if kind == EventKind.MARKET else price, draw(st.integers(1, 9)),
                     draw(st.sampled_from([0, 0, 0, 1, 3])), draw(st.sampled_from([0, 1]))))
    return rows


@SETTINGS
@given(rows=drifting_streams(), config=books)
def test_prices_that_wander_match_reference(rows, config):
    stp, capacity, growable = config
    events = to_events(rows)
    compiled = OrderBook(capacity, growable=growable, stp=stp)
    reference = ReferenceBook(capacity, growable=growable, stp=stp)
    for start in range(0, len(rows), 25):
        chunk = events[start:start + 25]
        assert_same_batch(compiled.process(chunk), reference.process(chunk))
        compiled.check_integrity()
    assert compiled.orders().tolist() == reference.orders().tolist()
    assert compiled.bbo() == reference.bbo()


@pytest.mark.parametrize("seed", [1, 2])
def test_standard_workload_matches_reference(seed):
    from obelisk.testing.workload import standard_mix

    workload = standard_mix(events=6_000, seed_orders=400, seed=seed)
    compiled, reference = OrderBook(64), ReferenceBook(64)
    seed = workload.seed_events
    assert_same_batch(compiled.process(seed), reference.process(seed))
    assert_same_batch(compiled.process(workload.events), reference.process(workload.events))
    assert compiled.orders().tolist() == reference.orders().tolist()
