"""The compiled books pickle (for `obelisk serve --state`, and to send them to other
processes): a loaded book is the book that was saved, and goes on exactly as it would."""

import pickle

import numpy as np
import pytest

from obelisk._core.book import EVENT_DTYPE, EventKind, OrderBook, Side, TimeInForce
from obelisk._core.position import PositionBook
from obelisk.testing.workload import fill_stream, standard_mix


def test_an_order_book_pickles_to_the_same_book_that_goes_on_the_same_way():
    work = standard_mix(events=20_000, seed_orders=2_000, seed=5)
    book = OrderBook(4_096, growable=True)
    book.process(work.seed_events)
    book.process(work.events[:10_000])
    loaded = pickle.loads(pickle.dumps(book))
    assert loaded.snapshot() == book.snapshot() and loaded.sequence == book.sequence
    assert loaded.pool_stats()["capacity"] == book.pool_stats()["capacity"]
    rest = work.events[10_000:]
    ours, theirs = book.process(rest), loaded.process(rest)
    for name in ("results", "fills", "order_events"):
        assert getattr(ours, name).tobytes() == getattr(theirs, name).tobytes()
    loaded.check_integrity()


def test_a_fixed_pool_stays_fixed_after_pickling():
    book = OrderBook(3, growable=False)
    book.add(1, Side.BUY, 100, 5)
    loaded = pickle.loads(pickle.dumps(book))
    assert loaded.pool_stats()["growable"] is False and loaded.pool_stats()["capacity"] == 3
    events = np.zeros(4, EVENT_DTYPE)
    events["oid"], events["side"], events["price"], events["qty"] = [2, 3, 4, 5], 0, 90, 1
    events["kind"], events["tif"] = EventKind.LIMIT, TimeInForce.GTC
    assert (loaded.process(events).results["reason"] != 0).sum() == 2     # 2 fit, 2 refused


def test_a_position_book_pickles_its_settings_and_rows():
    work = fill_stream(fills=5_000, assets=40, seed=3)
    book = work.fresh_book()
    book.apply_fills(work.fills[:2_500])
    book.set_fee_rates(0.0005, -0.0001)
    book.mark(work.marks)
    loaded = pickle.loads(pickle.dumps(book))
    assert loaded.positions.tobytes() == book.positions.tobytes()
    assert (loaded.balance, loaded.version, loaded.taker_rate, loaded.maker_rate) == \
        (book.balance, book.version, book.taker_rate, book.maker_rate)
    assert loaded.account_value == book.account_value
    rest = work.fills[2_500:]
    assert loaded.apply_fills(rest) == book.apply_fills(rest)
    assert loaded.positions.tobytes() == book.positions.tobytes()
    assert loaded.max_leverage_of(1) == book.max_leverage_of(1)


def test_pickled_rows_that_do_not_fit_or_are_not_finite_are_refused():
    book = PositionBook([[(0, 20)], [(0, 10), (1e6, 5)]], balance=100.0)
    book.apply_fill(0, 1.0, 50.0)
    function, (*settings, rows, lots) = book.__reduce__()    # _position_book_from_state
    with pytest.raises(ValueError, match="need"):
        function(*settings, rows[:-8], lots)
    broken = np.frombuffer(rows, dtype=book.positions.dtype).copy()
    broken["entry_px"][0] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        function(*settings, broken.tobytes(), lots)
    assert function(*settings, rows, lots).positions.tobytes() == book.positions.tobytes()



@pytest.mark.parametrize("field, value", [
    ("leverage", np.nan), ("leverage", 0.0), ("leverage", 21.0), ("leverage", 2.5),
    ("isolated", 7), ("entry_px", -5.0),
])
def test_pickled_rows_with_settings_no_call_could_make_are_refused(field, value):
    # Only finiteness was checked: a NaN or zero leverage made margins NaN or inf, and an
    # isolated flag of 7 weighed the row 7 and -6 in the account's totals.
    book = PositionBook([[(0, 20)]], balance=1_000.0)
    book.apply_fill(0, 1.0, 100.0)
    function, (*settings, rows, lots) = book.__reduce__()
    broken = np.frombuffer(rows, dtype=book.positions.dtype).copy()
    broken[field][0] = value
    with pytest.raises(ValueError, match="pickled row 0 holds what no book can"):
        function(*settings, broken.tobytes(), lots)
    negative_margin = np.frombuffer(rows, dtype=book.positions.dtype).copy()
    negative_margin["margin"][0] = -50.0            # funding can take margin below zero
    assert function(*settings, negative_margin.tobytes(), lots).positions["margin"][0] == -50.0
