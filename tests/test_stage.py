"""The engine's compiled bookkeeping against the numpy it replaces: the tally of how sent
orders ended, and a batch's trace columns."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obelisk import EVENT_DTYPE, RESULT_DTYPE, EventKind, OrderStatus
from obelisk._core.stage import (
    STATUS_NOT_SENT,
    STATUS_UNKNOWN,
    allowed_orders,
    any_flagged,
    first_bad_order,
    int64_columns,
    open_order_changes,
    queue_orders,
    tally_outcomes,
    trace_columns,
)


def numpy_tally(results, events, sent):
    status, filled = results["status"], results["filled_qty"] > 0
    cancels = events["kind"][sent] == EventKind.CANCEL
    return (int(np.count_nonzero(filled)),
            int(np.count_nonzero((status == OrderStatus.RESTED) & ~filled)),
            int(np.count_nonzero(cancels & (status == OrderStatus.CANCELLED) & ~filled)),
            int(np.count_nonzero((status == OrderStatus.REJECTED) & ~filled)))


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from(list(EventKind)), st.sampled_from(list(OrderStatus)),
                               st.sampled_from([0, 0, 3])), max_size=40),
       data=st.data())
def test_tally_matches_numpy(rows, data):
    events = np.zeros(len(rows) + 3, dtype=EVENT_DTYPE)
    sent = np.array(sorted(data.draw(st.sets(st.integers(0, len(events) - 1),
                                             max_size=len(rows)))), dtype=np.int64)
    results = np.zeros(len(sent), dtype=RESULT_DTYPE)
    for k, row in enumerate(sent):
        kind, status, filled = rows[k % len(rows)] if rows else (EventKind.LIMIT, 1, 0)
        events["kind"][row] = kind
        results[k]["status"], results[k]["filled_qty"] = status, filled
    assert tally_outcomes(results, events, sent) == numpy_tally(results, events, sent)


def test_tally_refuses_mismatched_or_outside_rows():
    events = np.zeros(2, dtype=EVENT_DTYPE)
    with pytest.raises(ValueError, match="1 results for 2 sent events"):
        tally_outcomes(np.zeros(1, dtype=RESULT_DTYPE), events, np.array([0, 1]))
    with pytest.raises(IndexError, match="sent event 2 is outside the batch of 2"):
        tally_outcomes(np.zeros(1, dtype=RESULT_DTYPE), events, np.array([2]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0, 0, 3, 17]), st.integers(0, 7)), max_size=40),
       st.sampled_from([1, 2, 4]))
def test_allowed_orders_match_numpy(rows, flag):
    reasons = np.array([reason for reason, _ in rows], np.uint8)
    flags = np.array([flags for _, flags in rows], np.uint8)
    allowed, flagged = allowed_orders(reasons, flags, flag)
    expected = np.flatnonzero(reasons == 0)
    assert allowed.dtype == np.int64 and allowed.tolist() == expected.tolist()
    assert flagged == bool((flags[expected] & flag).any())


@given(st.lists(st.integers(0, 255), max_size=20), st.sampled_from([1, 2, 4]))
def test_any_flagged_matches_numpy(flags, flag):
    column = np.array(flags, np.uint8)
    assert any_flagged(column, flag) == bool((column & flag).any())


def test_allowed_orders_refuse_mismatched_columns():
    with pytest.raises(ValueError, match="2 flags for 3 risk reasons"):
        allowed_orders(np.zeros(3, np.uint8), np.zeros(2, np.uint8), 1)


def numpy_open_order_changes(results, events, sent):
    status, oids = results["status"], events["oid"][sent]
    closed = (events["kind"][sent] == EventKind.CANCEL) & (status == OrderStatus.CANCELLED)
    return oids[status == OrderStatus.RESTED].tolist(), oids[closed].tolist()


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from(list(EventKind)), st.sampled_from(list(OrderStatus)),
                               st.integers(1, 2**63 - 1)), max_size=40),
       data=st.data())
def test_open_order_changes_match_numpy(rows, data):
    events = np.zeros(len(rows) + 3, dtype=EVENT_DTYPE)
    sent = np.array(data.draw(st.lists(st.integers(0, len(events) - 1), max_size=len(rows),
                                       unique=True)), dtype=np.int64)
    results = np.zeros(len(sent), dtype=RESULT_DTYPE)
    for k, row in enumerate(sent):
        kind, status, oid = rows[k]
        events[row]["kind"], events[row]["oid"] = kind, oid
        results[k]["status"] = status
    assert open_order_changes(results, events, sent) == numpy_open_order_changes(
        results, events, sent)


def test_open_order_changes_refuse_mismatched_or_outside_rows():
    events = np.zeros(2, dtype=EVENT_DTYPE)
    with pytest.raises(ValueError, match="1 results for 2 sent events"):
        open_order_changes(np.zeros(1, dtype=RESULT_DTYPE), events, np.array([0, 1]))
    with pytest.raises(IndexError, match="sent event -1 is outside the batch of 2"):
        open_order_changes(np.zeros(1, dtype=RESULT_DTYPE), events, np.array([-1]))


def numpy_columns(events, reasons, sent, unknown, results):
    status = np.full(len(events), STATUS_NOT_SENT, np.int16)
    status[unknown] = STATUS_UNKNOWN
    filled = np.zeros(len(events), np.int64)
    if results is not None:
        status[sent] = results["status"]
        filled[sent] = results["filled_qty"]
    columns = {name: np.ascontiguousarray(events[name])
               for name in ("oid", "asset", "side", "kind", "tif", "price", "qty")}
    columns.update(risk_reason=reasons, status=status, filled_qty=filled)
    return columns


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 30), data=st.data())
def test_trace_columns_match_numpy(n, data):
    events = np.zeros(n, dtype=EVENT_DTYPE)
    for name in ("oid", "price", "qty"):
        events[name] = data.draw(st.lists(st.integers(-2**63, 2**63 - 1), min_size=n, max_size=n))
    events["asset"] = data.draw(st.lists(st.integers(0, 2**32 - 1), min_size=n, max_size=n))
    for name in ("side", "kind", "tif"):
        events[name] = data.draw(st.lists(st.integers(0, 255), min_size=n, max_size=n))
    reasons = np.array(data.draw(st.lists(st.integers(0, 20), min_size=n, max_size=n)),
                       dtype=np.uint8)
    rows = data.draw(st.permutations(range(n)))
    split = data.draw(st.integers(0, n))
    sent = np.array(sorted(rows[:split]), dtype=np.int64)
    unknown = np.array(sorted(rows[split:][:data.draw(st.integers(0, n - split))]),
                       dtype=np.int64)
    results = None
    if data.draw(st.booleans()):
        results = np.zeros(len(sent), dtype=RESULT_DTYPE)
        results["status"] = data.draw(st.lists(st.integers(0, 6), min_size=len(sent),
                                               max_size=len(sent)))
        results["filled_qty"] = data.draw(st.lists(st.integers(0, 10**12), min_size=len(sent),
                                                   max_size=len(sent)))
    got = trace_columns(events, reasons, sent, unknown, results)
    expected = numpy_columns(events, reasons, sent, unknown, results)
    assert list(got) == list(expected)
    for name, column in expected.items():
        assert got[name].dtype == column.dtype and got[name].flags.c_contiguous, name
        assert got[name].tolist() == column.tolist(), name


def test_trace_columns_refuse_rows_outside_the_batch():
    events = np.zeros(2, dtype=EVENT_DTYPE)
    with pytest.raises(IndexError, match="unknown event 5 is outside the batch of 2"):
        trace_columns(events, np.zeros(2, np.uint8), [], [5])
    with pytest.raises(ValueError, match="1 risk reasons for 2 events"):
        trace_columns(events, np.zeros(1, np.uint8), [], [])


def numpy_first_bad(kinds, rows, sides, tifs, qtys, prices, oids, assets, tif_max):
    """submit_batch's checks as numpy calls, in its order (0 is a cancel without ids)."""
    cancel = kinds == EventKind.CANCEL
    if oids is None and np.count_nonzero(cancel):
        return 0, int(np.argmax(cancel))
    order, limit = ~cancel, kinds == EventKind.LIMIT
    checks = [order & ~limit & (kinds != EventKind.MARKET), (rows < 0) | (rows >= assets),
              order & (sides != 0) & (sides != 1), order & ((tifs < 0) | (tifs > tif_max)),
              order & (qtys <= 0), order & (prices < 0) | limit & (prices == 0)]
    if oids is not None:
        checks.append(cancel & (oids < 1))
    for check, bad in enumerate(checks, start=1):
        if np.count_nonzero(bad):
            return check, int(np.argmax(bad))
    return None


@settings(max_examples=300, deadline=None)
@given(n=st.integers(0, 12), with_oids=st.booleans(), data=st.data())
def test_first_bad_order_matches_numpy(n, with_oids, data):
    def column(low, high, dtype=np.int64):
        return np.array(data.draw(st.lists(st.integers(low, high), min_size=n, max_size=n)),
                        dtype=dtype)
    kinds = column(0, 5, np.uint8)
    rows, sides, tifs = column(-1, 3, np.int32), column(0, 2, np.uint8), column(-1, 4, np.int8)
    qtys, prices = column(-1, 3), column(-1, 3)
    oids = column(-1, 3) if with_oids else None
    columns = int64_columns(kinds, rows, sides, tifs, qtys, prices, oids, None)
    assert first_bad_order(columns, oids is None, 3, 3) == \
        numpy_first_bad(kinds, rows, sides, tifs, qtys, prices, oids, 3, 3)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 12), data=st.data())
def test_queue_orders_writes_what_numpy_would(n, data):
    def column(low, high, dtype=np.int64):
        return np.array(data.draw(st.lists(st.integers(low, high), min_size=n, max_size=n)),
                        dtype=dtype)
    kinds = np.array(data.draw(st.lists(st.sampled_from(
        [EventKind.LIMIT, EventKind.MARKET, EventKind.CANCEL]), min_size=n, max_size=n)),
        dtype=np.uint8)
    rows, sides, tifs = column(0, 2, np.int32), column(0, 1, np.uint8), column(0, 3, np.uint8)
    qtys, prices, oids, flags = column(1, 9), column(0, 9), column(1, 99), column(0, 1, np.uint8)
    assets = np.array([7, 8, 2**32 - 1], dtype=np.uint32)
    start = data.draw(st.integers(0, n))
    count = data.draw(st.integers(0, n - start))
    at = data.draw(st.integers(0, 4))
    events, rows_out = np.zeros(at + n, dtype=EVENT_DTYPE), np.zeros(at + n, np.int32)
    flags_out, born_out, ids = np.zeros(at + n, np.uint8), np.zeros(at + n, np.int64), \
        np.zeros(n, np.int64)
    columns = int64_columns(kinds, rows, sides, tifs, qtys, prices, oids, flags)
    after = queue_orders(columns, start, count, events, rows_out, flags_out, born_out, at, ids,
                         assets, 1000, 3, 55)
    part = slice(start, start + count)
    new = kinds[part] != EventKind.CANCEL
    expected_ids = oids[part].copy()
    expected_ids[new] = np.arange(1000, 1000 + int(new.sum()))
    assert after == 1000 + int(new.sum())
    assert ids[part].tolist() == expected_ids.tolist()
    expected = np.zeros(at + n, dtype=EVENT_DTYPE)
    here = slice(at, at + count)
    e = expected[here]
    e["oid"], e["asset"], e["side"] = expected_ids, assets[rows[part]], sides[part]
    e["price"], e["qty"], e["tif"], e["kind"], e["owner"] = prices[part], qtys[part], \
        tifs[part], kinds[part], 3
    assert events.tobytes() == expected.tobytes()
    assert rows_out[here].tolist() == rows[part].tolist()
    assert flags_out[here].tolist() == np.where(new, flags[part], 0).tolist()   # not cancels
    assert born_out[here].tolist() == [55] * count


def test_queue_orders_refuses_a_range_outside_its_arrays():
    columns = int64_columns(None, np.zeros(2, np.int32), np.zeros(2, np.uint8),
                            np.zeros(2, np.uint8), np.ones(2), np.ones(2), None, None)
    with pytest.raises(IndexError, match="outside its arrays"):
        queue_orders(columns, 0, 2, np.zeros(1, dtype=EVENT_DTYPE), np.zeros(2, np.int32),
                     np.zeros(2, np.uint8), np.zeros(2, np.int64), 0, np.zeros(2, np.int64),
                     np.zeros(1, np.uint32), 1, 0, 0)
    with pytest.raises(IndexError, match="row 0 of order 0 is outside the 0 assets"):
        queue_orders(columns, 0, 2, np.zeros(2, dtype=EVENT_DTYPE), np.zeros(2, np.int32),
                     np.zeros(2, np.uint8), np.zeros(2, np.int64), 0, np.zeros(2, np.int64),
                     np.zeros(0, np.uint32), 1, 0, 0)


def queue_arguments(n=3, assets=1):
    """queue_orders' arguments for `n` valid limit orders on row 0, outputs zeroed."""
    columns = int64_columns(None, np.zeros(n, np.int32), np.zeros(n, np.uint8),
                            np.zeros(n, np.uint8), np.ones(n), np.ones(n), None, None)
    return dict(columns=columns, start=0, count=n, events=np.zeros(n, dtype=EVENT_DTYPE),
                rows_out=np.full(n, -1, np.int32), flags_out=np.zeros(n, np.uint8),
                born_out=np.zeros(n, np.int64), at=0, ids=np.zeros(n, np.int64),
                assets=np.arange(7, 7 + assets, dtype=np.uint32), next_oid=1000, owner=3,
                born=55)


def outputs(arguments):
    return [arguments[name].tobytes()
            for name in ("events", "rows_out", "flags_out", "born_out", "ids")]


def test_queue_orders_refuses_ranges_whose_sums_would_overflow():
    # start + count wrapped negative and passed the bounds test: a read far outside.
    arguments = queue_arguments()
    huge = 2**62
    for change in ({"start": huge, "at": huge, "count": huge}, {"at": huge, "count": huge},
                   {"count": huge}, {"start": 1, "count": 2**63 - 1}):
        with pytest.raises(IndexError, match="outside its arrays"):
            queue_orders(**{**arguments, **change})
    assert outputs(arguments) == outputs(queue_arguments())


@pytest.mark.parametrize("name, wrong", [
    ("ids", np.zeros(3, np.int32)), ("born_out", np.zeros(3, np.int32)),
    ("rows_out", np.zeros(3, np.int64)), ("flags_out", np.zeros(3, np.int64)),
    ("assets", np.arange(7, 8, dtype=np.int64)), ("events", np.zeros(200, np.uint8)),
    ("ids", np.zeros((3, 1), np.int64)), ("ids", np.zeros(3, np.int64)[::-1]),
    ("born_out", np.zeros(3, np.dtype(">i8"))),
])
def test_queue_orders_refuses_outputs_of_another_type(name, wrong):
    # Each was written through as if of the right type, past the end of a shorter one.
    arguments = queue_arguments()
    with pytest.raises(TypeError):
        queue_orders(**{**arguments, name: wrong})
    assert outputs(arguments) == outputs(queue_arguments())


def test_queue_orders_writes_nothing_when_a_row_is_outside_the_assets():
    arguments = queue_arguments()
    arguments["columns"][1][2] = 5          # the third order's row
    with pytest.raises(IndexError, match="row 5 of order 2 is outside the 1 assets"):
        queue_orders(**arguments)
    assert outputs(arguments) == outputs(queue_arguments())


def test_columns_must_be_int64_columns_of_one_length():
    n = 3
    good = int64_columns(None, np.zeros(n, np.int32), np.zeros(n, np.uint8),
                         np.zeros(n, np.uint8), np.ones(n), np.ones(n), None, None)
    with pytest.raises(ValueError, match="kinds holds 3 values for 1 rows"):
        int64_columns(np.zeros(3), np.zeros(1), np.zeros(1), np.zeros(1), np.ones(1),
                      np.ones(1), None, None)
    with pytest.raises(ValueError, match="oids holds 2 values for 3 rows"):
        int64_columns(None, np.zeros(3), np.zeros(3), np.zeros(3), np.ones(3), np.ones(3),
                      np.ones(2), None)
    short = [*good[:1], good[1][:1], *good[2:]]
    as_int32 = [column.astype(np.int32) for column in good]
    for columns, error in ((short, ValueError), (as_int32, TypeError), (good[:7], ValueError)):
        with pytest.raises(error):
            first_bad_order(columns, True, 3, 3)
        arguments = queue_arguments(n)
        with pytest.raises(error):
            queue_orders(**{**arguments, "columns": columns})
        assert outputs(arguments) == outputs(queue_arguments(n))


def test_flag_and_row_columns_are_not_cast():
    # Casting would read 256 as reason 0 (allowed), 1.9 as row 1, True as row 1.
    events = np.zeros(3, dtype=EVENT_DTYPE)
    events["oid"] = [11, 22, 33]
    results = np.zeros(3, dtype=RESULT_DTYPE)
    results["status"] = OrderStatus.RESTED
    with pytest.raises(TypeError, match="reasons must be .* uint8"):
        allowed_orders(np.array([256, 0, 512]), np.zeros(3, np.uint8), 1)
    with pytest.raises(TypeError, match="flags must be .* uint8"):
        allowed_orders(np.zeros(3, np.uint8), np.zeros(3, np.int64), 1)
    with pytest.raises(TypeError, match="flags must be .* uint8"):
        any_flagged(np.array([0x100]), 0x100)
    with pytest.raises(TypeError, match="sent must hold integer event numbers, not float64"):
        open_order_changes(results[:1], events, np.array([1.9]))
    with pytest.raises(TypeError, match="sent must hold integer event numbers, not bool"):
        open_order_changes(results, events, np.ones(3, bool))
    with pytest.raises(TypeError, match="unknown must hold integer event numbers"):
        trace_columns(events, np.zeros(3, np.uint8), [], np.array([0.5]))
    assert open_order_changes(results[:2], events, np.array([2, 0], np.uint8)) == ([33, 11], [])
    assert allowed_orders(np.array([3, 0], np.uint8)[::-1], np.ones(2, np.uint8), 1)[0].tolist() \
        == [0]
