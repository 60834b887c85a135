"""The book's id index (obelisk._core._ids): a ring of counter ids in front of a hash map.

Ids that stay in the ring, ids it leaves behind as it moves (into the map), ids far ahead
of it or below it, a map id the ring later moves over, and map ids inside a ring sized at
once for a batch must all be found, refused as duplicates and cancelled exactly as the
pure-Python reference does.
"""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from obelisk import EVENT_DTYPE, EventKind, OrderBook, OrderStatus, Reason
from obelisk.testing.reference import ReferenceBook

RING_FIRST = 4_096          # ids a new book's ring covers (obelisk/_core/_ids.pxd)


def limits(oids, side=0, price=100):
    events = np.zeros(len(oids), EVENT_DTYPE)
    events["oid"], events["side"], events["price"] = oids, side, price
    events["qty"], events["kind"] = 1, EventKind.LIMIT
    return events


def cancels(oids):
    events = np.zeros(len(oids), EVENT_DTYPE)
    events["oid"], events["kind"] = oids, EventKind.CANCEL
    return events


@st.composite
def id_streams(draw):
    """Adds under a counter that steps 1 to 400 ids and sometimes jumps far ahead (past the
    ring, into the map) or back (below it), with cancels, modifies and repeats of earlier
    ids."""
    size = draw(st.integers(20, 300))
    counter = draw(st.integers(1, 5_000))
    used, rows = [], []
    for _ in range(size):
        roll = draw(st.integers(0, 9))
        if roll < 6 or not used:
            counter += draw(st.sampled_from([1, 1, 7, 61, 400, 5_000, 70_000, 10**12]))
            oid = draw(st.sampled_from([counter] * 8 + [counter // 3, -counter]))
            used.append(oid)
            rows.append((EventKind.LIMIT, oid, draw(st.integers(0, 1)), draw(
                st.integers(95, 105)), draw(st.integers(1, 5))))
        elif roll < 9:
            rows.append((EventKind.CANCEL, draw(st.sampled_from(used)), 0, 0, 0))
        else:
            rows.append((EventKind.MODIFY, draw(st.sampled_from(used)), 0,
                         draw(st.integers(95, 105)), draw(st.integers(0, 5))))
    return rows


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=id_streams(), capacity=st.sampled_from([2, 1_000, 20_000]))
def test_ids_anywhere_match_reference(rows, capacity):
    assert_matches_reference(rows, capacity)


def assert_matches_reference(rows, capacity):
    """The compiled book and the reference agree on `rows`, 40 events a batch."""
    events = np.zeros(len(rows), EVENT_DTYPE)
    for i, (kind, oid, side, price, qty) in enumerate(rows):
        events[i] = (oid, price, qty, 0, 0, kind, side, 0)
    compiled, reference = OrderBook(capacity), ReferenceBook(capacity)
    for start in range(0, len(rows), 40):
        chunk = events[start:start + 40]
        left, right = compiled.process(chunk), reference.process(chunk)
        assert left.results.tolist() == right.results.tolist()
        assert left.fills.tolist() == right.fills.tolist()
        assert left.order_events.tolist() == right.order_events.tolist()
        compiled.check_integrity()
    assert compiled.orders().tolist() == reference.orders().tolist()


INT64_MAX, INT64_MIN = 2**63 - 1, -2**63


def test_a_ring_that_wraps_past_the_largest_id_still_asks_the_map():
    # An empty ring moved its base to within its size of INT64_MAX, so it also covers
    # the smallest ids, where the map held one: the duplicate was accepted and the
    # cancel refused as unknown.
    low, high = INT64_MIN + 5, INT64_MAX - 10
    for last in (limits([low]), cancels([low])):
        compiled, reference = OrderBook(16), ReferenceBook(16)
        for events in (limits([1, low]), cancels([1]), limits([high]), last):
            assert compiled.process(events).results.tolist() == \
                reference.process(events).results.tolist()
            compiled.check_integrity()
        assert compiled.orders().tolist() == reference.orders().tolist()


@st.composite
def streams_near_the_ends(draw):
    """Adds under a counter that starts near either end of int64 and wraps past the
    largest id to the smallest, with ids at the very ends (kept in the map), cancels (often
    of every counter id, which empties the ring so that it moves to the next one) and
    modifies."""
    counter = draw(st.sampled_from([INT64_MAX - 5_000, INT64_MAX - 100, INT64_MIN,
                                    INT64_MIN + 3]))
    ends = (INT64_MIN, INT64_MIN + 7, INT64_MAX, INT64_MAX - 1, 0, 5)
    used, rows = [], []
    for _ in range(draw(st.integers(5, 120))):
        roll = draw(st.integers(0, 9))
        if roll == 0:
            rows.extend((EventKind.CANCEL, oid, 0, 0, 0) for oid in used if oid not in ends)
        elif roll < 6 or not used:
            counter += draw(st.sampled_from([1, 1, 1, 3, 50]))
            if counter > INT64_MAX:
                counter -= 2**64
            oid = draw(st.sampled_from([counter] * 4 + list(ends)))
            used.append(oid)
            rows.append((EventKind.LIMIT, oid, draw(st.integers(0, 1)),
                         draw(st.integers(95, 105)), draw(st.integers(1, 4))))
        elif roll < 9:
            rows.append((EventKind.CANCEL, draw(st.sampled_from(used)), 0, 0, 0))
        else:
            rows.append((EventKind.MODIFY, draw(st.sampled_from(used)), 0,
                         draw(st.integers(95, 105)), draw(st.integers(0, 4))))
    return rows


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=streams_near_the_ends(), capacity=st.sampled_from([2, 16, 1_000]))
def test_ids_near_the_ends_of_int64_match_reference(rows, capacity):
    assert_matches_reference(rows, capacity)


def test_the_ring_grows_under_a_dense_counter_and_finds_its_oldest_ids():
    book = OrderBook()
    before = book.memory_usage()["order_index"]
    oids = np.arange(1, 6 * RING_FIRST)
    assert (book.process(limits(oids)).results["status"] == OrderStatus.RESTED).all()
    assert book.memory_usage()["order_index"] > before
    book.check_integrity()
    again = book.process(limits(oids[:50]))           # the oldest ids are still known
    assert (again.results["reason"] == Reason.DUPLICATE_OID).all()
    assert (book.process(cancels(oids)).results["status"] == OrderStatus.CANCELLED).all()
    assert len(book) == 0
    book.check_integrity()


def test_sparse_old_ids_move_to_the_map_and_stay_found():
    book = OrderBook()
    oids = np.arange(1, 40 * RING_FIRST, 100)        # 1 in 100: too sparse to grow for
    book.process(limits(oids))
    book.check_integrity()
    # a ring over all those ids would take 4 bytes each: 655,360 bytes; the map takes 8 per
    # bucket for the 1,639 orders the ring left
    assert book.memory_usage()["order_index"] < 100_000
    assert (book.process(cancels(oids[::-1])).results["status"]
            == OrderStatus.CANCELLED).all()
    assert len(book) == 0
    book.check_integrity()


def test_a_map_id_the_ring_moves_over_is_still_found():
    book = OrderBook()
    book.process(limits([1]))
    far = 3 * RING_FIRST                              # two ring sizes ahead: to the map
    book.process(limits([far]))
    book.process(limits(np.arange(2, 5 * RING_FIRST)[np.arange(2, 5 * RING_FIRST) != far]))
    book.check_integrity()
    assert book.process(limits([far])).results["reason"][0] == Reason.DUPLICATE_OID
    assert book.process(cancels([far])).results["status"][0] == OrderStatus.CANCELLED
    assert book.process(cancels([far])).results["reason"][0] == Reason.UNKNOWN_OID
    book.check_integrity()


def test_ids_stepping_a_ring_size_each_still_work():
    # each id would move the ring a whole size: the move's cost bound sends them to the map
    book = OrderBook()
    oids = np.arange(1, 3_000) * (RING_FIRST + 1)
    assert (book.process(limits(oids)).results["status"] == OrderStatus.RESTED).all()
    book.check_integrity()
    assert (book.process(cancels(oids)).results["status"] == OrderStatus.CANCELLED).all()
    book.check_integrity()


def join(*parts):
    events = np.empty(sum(len(part) for part in parts), EVENT_DTYPE)
    events[:] = np.concatenate(parts)
    return events


def interleave(first, second):
    events = np.empty(len(first) + len(second), EVENT_DTYPE)
    events[0::2], events[1::2] = first, second
    return events


def test_a_batch_of_dense_new_ids_sizes_an_empty_ring_at_once():
    # each order is cancelled at once, so a ring growing as orders rest would only move on;
    # told the batch's ids up front, the empty ring covers them all from the start
    oids = np.arange(1, 5 * RING_FIRST)
    book = OrderBook()
    results = book.process(interleave(limits(oids), cancels(oids))).results
    assert (results["status"][1::2] == OrderStatus.CANCELLED).all()
    assert book.memory_usage()["order_index"] >= 8 * RING_FIRST * 4
    # a book holding orders keeps its ring: growth then follows the orders that rest
    book = OrderBook()
    book.process(limits([1]))
    book.process(interleave(limits(oids + 1), cancels(oids + 1)))
    assert book.memory_usage()["order_index"] < 4 * RING_FIRST * 4
    book.check_integrity()


def test_a_ring_sized_for_a_batch_still_asks_the_map_for_the_ids_it_holds():
    compiled, reference = OrderBook(), ReferenceBook()
    setup = join(limits([5_000, 100]), cancels([5_000]))   # 100 goes to the map
    oids = np.arange(50, 50 + 2 * RING_FIRST)                          # 100 among them
    batch = join(limits(oids), cancels([100, 100, 7_000]))
    for events in (setup, batch):
        left, right = compiled.process(events), reference.process(events)
        assert left.results.tolist() == right.results.tolist()
        assert left.order_events.tolist() == right.order_events.tolist()
        compiled.check_integrity()
    assert compiled.orders().tolist() == reference.orders().tolist()


def test_a_batch_whose_ends_mislead_the_ring_still_matches_the_reference():
    # the ring is sized from the batch's first and last limit orders (1,000 and 9,000, two
    # ring sizes apart); the ids between lie anywhere, below, inside and far beyond that span
    rng = np.random.default_rng(7)
    middle = rng.choice(np.arange(1, 10**6), 5_000, replace=False)
    middle = middle[(middle != 1_000) & (middle != 9_000)]
    oids = np.concatenate([[1_000], middle, [9_000]])
    events = join(limits(oids, side=0, price=100), cancels(rng.choice(oids, 500)))
    events["kind"][-1], events["oid"][-1] = EventKind.LIMIT, 9_001        # a limit near the end
    compiled, reference = OrderBook(), ReferenceBook()
    for chunk in (events, limits([1_000, 9_000, *middle[:5]])):
        left, right = compiled.process(chunk), reference.process(chunk)
        assert left.results.tolist() == right.results.tolist()
        assert left.order_events.tolist() == right.order_events.tolist()
        compiled.check_integrity()
    assert compiled.orders().tolist() == reference.orders().tolist()
