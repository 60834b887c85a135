"""Hardening of PositionBook, RiskChecks and LatencyHistogram (review issue 13).

One user at a time (ConcurrentUseError), no second __init__, no non-finite
number left in a book, risk that fails closed, and a sample count that never
wraps. Crash-prone reproductions run in a subprocess.
"""

import math
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from obelisk import Instrument, Portfolio, RiskLimits, RiskManager, RiskReason
from obelisk._core import histogram as histogram_module
from obelisk._core.histogram import HIGHEST_TRACKABLE_NS, LatencyHistogram
from obelisk._core.position import POSITION_FILL_DTYPE, PositionBook
from obelisk._core.risk import RISK_ORDER_DTYPE, RiskChecks
from obelisk.errors import ConcurrentUseError, MarketDataError, ObeliskError

INT64_MAX = 2**63 - 1
# every field a PositionBook stores or derives; liquidation_px is NaN for "none"
FINITE_FIELDS = ("size", "entry_px", "leverage", "margin", "realized_pnl", "fees", "funding",
                 "unrealized_pnl", "position_value", "initial_margin", "maintenance_margin")


def run_child(code: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter: a crash there fails the test, not the run."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120)


class CallsBack(np.ndarray):
    """An array whose ``dtype`` runs `callback` first: code that runs inside a call."""

    callback = None

    @property
    def dtype(self):
        type(self).callback()
        return super().dtype


def calling_back(array, callback):
    view = array.view(type("CallsBackNow", (CallsBack,), {}))
    type(view).callback = staticmethod(callback)
    return view


def round_trips(count: int, assets: int) -> np.ndarray:
    """Buys then sells of 1 at 100 on each asset: with zero fees the balance never moves."""
    fills = np.zeros(count, dtype=POSITION_FILL_DTYPE)
    fills["asset"] = (np.arange(count) // 2) % assets
    fills["size"] = np.where(np.arange(count) % 2 == 0, 1.0, -1.0)
    fills["price"] = 100.0
    return fills


# ------------------------------------------------------- one user at a time

def run_beside_batches(book, fills, attempt, batches=20):
    """Call `attempt()` in a loop while another thread applies `fills` `batches` times."""
    done = threading.Event()
    started = threading.Event()

    def fill_loop():
        started.set()
        for _ in range(batches):
            while True:
                try:
                    book.apply_fills(fills)
                    break
                except ConcurrentUseError:
                    pass
            time.sleep(0.001)       # room for the other thread between batches
        done.set()

    worker = threading.Thread(target=fill_loop)
    worker.start()
    started.wait()
    try:
        while not done.is_set():
            attempt()
    finally:
        worker.join()


def test_deposit_while_apply_fills_runs_lands_or_is_refused():
    book = PositionBook([[(0, 20)]] * 8, balance=1_000.0, taker_rate=0.0, maker_rate=0.0)
    outcomes = {"landed": 0, "refused": 0}

    def deposit():
        try:
            book.deposit(1.0)
            outcomes["landed"] += 1
        except ConcurrentUseError:
            outcomes["refused"] += 1

    run_beside_batches(book, round_trips(200_000, 8), deposit)
    assert outcomes["landed"] > 0
    assert book.balance == 1_000.0 + outcomes["landed"]    # not one landed deposit lost


def test_fills_written_by_another_thread_during_a_batch_never_apply_unchecked():
    # apply_fills checked the whole batch, released the GIL, then applied it: a thread
    # writing the caller's array in between got an asset index far outside the book
    # applied (a write out of bounds: the process crashed) or a negative price.
    child = run_child("""
        import sys, threading
        import numpy as np
        from obelisk import POSITION_FILL_DTYPE, PositionBook
        from obelisk.errors import InvalidFillError
        sys.setswitchinterval(1e-6)
        n, refused = 400_000, 0
        for attempt in range(40):
            book = PositionBook([[(0, 50)]], balance=1e12, taker_rate=0.0, maker_rate=0.0)
            fills = np.zeros(n, POSITION_FILL_DTYPE)
            fills["size"], fills["price"] = 1.0, 100.0
            stop = False
            def scribble():
                while not stop:
                    fills["asset"][n // 2:] = 100_000_000
                    fills["price"][n // 2:] = -5.0
                    fills["asset"][n // 2:] = 0
                    fills["price"][n // 2:] = 100.0
            writer = threading.Thread(target=scribble)
            writer.start()
            try:
                book.apply_fills(fills)
            except InvalidFillError:
                refused += 1
            stop = True
            writer.join()
            row = book.positions[0]
            assert row["size"] in (0.0, float(n)) and row["entry_px"] in (0.0, 100.0), row
        print("ok", refused)
    """)
    assert child.returncode == 0, child.stderr
    assert child.stdout.startswith("ok")


def test_a_call_is_claimed_before_any_python_code_runs():
    book = PositionBook([[(0, 20)]], balance=1_000.0)
    seen = []

    def deposit_meanwhile():
        try:
            book.deposit(5.0)
            seen.append("landed")
        except ConcurrentUseError:
            seen.append("refused")

    book.apply_fills(calling_back(round_trips(2, 1), deposit_meanwhile))
    assert seen and set(seen) == {"refused"}
    assert book.balance < 1_000.0           # the fees, and no deposit

    histogram = LatencyHistogram()
    refusals = []

    def record_meanwhile():
        try:
            histogram.record(7)
        except ConcurrentUseError as exc:
            refusals.append(exc)

    histogram.record_many(calling_back(np.arange(10, dtype=np.int64), record_meanwhile))
    assert refusals and histogram.count == 10


def test_a_risk_check_holds_the_book_it_reads():
    book = PositionBook([[(0, 20)]], balance=1_000.0)
    outcomes = []
    armed = []

    def clock():
        # runs inside the check: the checks and the book are both claimed
        if armed:
            for attempt in (lambda: book.deposit(1.0), lambda: book.apply_fill(0, 1.0, 100.0),
                            lambda: book.account_value, lambda: checks.check(0, 1, 1.0, 100.0),
                            lambda: setattr(checks, "kill_switch", True)):
                try:
                    attempt()
                    outcomes.append("ran")
                except ConcurrentUseError:
                    outcomes.append("refused")
        return 0

    checks = RiskChecks(book, {}, clock=clock)
    checks.update_market(0, 100.0)
    armed.append(True)
    assert checks.check(0, 1, 1.0, 100.0) == RiskReason.OK
    assert outcomes == ["refused"] * 5
    assert book.balance == 1_000.0 and not checks.kill_switch
    orders = np.zeros(1, dtype=RISK_ORDER_DTYPE)
    orders["side"], orders["size"], orders["price"] = 1, 1.0, 100.0
    outcomes.clear()
    assert checks.check_batch(orders).tolist() == [RiskReason.OK]
    assert outcomes == ["refused"] * 5
    book.deposit(1.0)                       # released afterwards
    assert book.balance == 1_001.0


def test_reading_a_book_while_a_batch_runs_is_refused_or_consistent():
    book = PositionBook([[(0, 20)]] * 4, balance=1_000.0, taker_rate=0.0, maker_rate=0.0)
    torn = []

    def read():
        try:
            positions = book.positions
        except ConcurrentUseError:
            return
        if not np.all(positions["size"] == 0.0):     # between batches every row is flat
            torn.append(positions["size"].copy())

    run_beside_batches(book, round_trips(200_000, 4), read)
    assert not torn


# ------------------------------------------------------------ one __init__

def test_init_twice_is_refused():
    book = PositionBook([[(0, 20)]] * 3, balance=1_000.0)
    with pytest.raises(RuntimeError, match="twice"):
        book.__init__([[(0, 20)]])
    assert book.asset_count == 3
    checks = RiskChecks(book, {})
    with pytest.raises(RuntimeError, match="twice"):
        checks.__init__(PositionBook([[(0, 20)]]), {})


def test_shrinking_a_book_under_its_risk_checks_cannot_crash():
    child = run_child("""
        from obelisk._core.position import PositionBook
        from obelisk._core.risk import RiskChecks
        book = PositionBook([[(0, 20)]] * 4096, balance=1_000.0)
        checks = RiskChecks(book, {})
        for i in range(4096):
            checks.update_market(i, 100.0)
        try:
            book.__init__([[(0, 20)]])
        except RuntimeError as exc:
            print("refused:", exc)
        for i in range(4096):
            checks.check(i, 1, 1.0, 100.0)
        print("survived")
    """)
    assert child.returncode == 0, child.stderr
    assert "refused:" in child.stdout and "survived" in child.stdout


def test_objects_made_without_init_refuse_instead_of_crashing():
    child = run_child("""
        import numpy as np
        from obelisk._core.risk import RISK_ORDER_DTYPE, RiskChecks
        from obelisk._core.position import PositionBook
        checks = RiskChecks.__new__(RiskChecks)
        for call in (lambda: checks.check_batch(np.zeros(1, dtype=RISK_ORDER_DTYPE)),
                     lambda: checks.reset_daily(),
                     lambda: PositionBook.__new__(PositionBook).deposit(1.0)):
            try:
                call()
            except RuntimeError as exc:
                print("refused:", exc)
    """)
    assert child.returncode == 0, child.stderr
    assert child.stdout.count("refused:") == 3


# ------------------------------------------------------- finite or refused

def one_position_portfolio():
    portfolio = Portfolio([Instrument("A", asset=0, sz_decimals=2, max_leverage=50)],
                          balance=1_000.0)
    portfolio.apply_fill("A", 1.0, 100.0)
    return portfolio


def test_funding_that_would_make_the_account_nan_is_refused_and_risk_stays_closed():
    portfolio = one_position_portfolio()
    risk = RiskManager(portfolio, RiskLimits(max_leverage=2))
    risk.update_market("A", 100.0)
    assert risk.check("A", 1, 1e9, 100.0).reason == RiskReason.LEVERAGE
    before = (portfolio.positions.tobytes(), portfolio.balance)
    with pytest.raises(ObeliskError, match="non-finite"):
        portfolio.apply_funding({"A": 1e300}, {"A": 1e300})
    with pytest.raises(ObeliskError, match="non-finite"):
        portfolio.apply_funding({"A": -1e300}, {"A": 1e300})
    assert (portfolio.positions.tobytes(), portfolio.balance) == before
    assert math.isfinite(portfolio.account_value)
    assert risk.check("A", 1, 1e9, 100.0).reason == RiskReason.LEVERAGE


def test_risk_fails_closed_on_a_non_finite_account():
    # each row is finite, but the account's total notional overflows to inf
    book = PositionBook([[(0, 20)]] * 2, balance=1_000.0)
    for asset in (0, 1):
        book.set_position(asset, 1e154, 1e154, leverage=20, isolated=False)
    assert math.isinf(book.total_position_value)
    checks = RiskChecks(book, {}, max_leverage=2.0)
    checks.update_market(0, 1e154)
    assert checks.check(0, 1, 1.0, 1e154) == RiskReason.NON_FINITE_ACCOUNT
    orders = np.zeros(1, dtype=RISK_ORDER_DTYPE)
    orders["side"], orders["size"], orders["price"] = 1, 1.0, 1e154
    assert checks.check_batch(orders).tolist() == [RiskReason.NON_FINITE_ACCOUNT]
    assert checks.check(0, -1, 1.0, 1e154) == RiskReason.OK    # reducing still passes


def test_a_batch_that_would_overflow_is_refused_whole():
    book = PositionBook([[(0, 20)]] * 2, balance=1_000.0)
    book.apply_fill(1, 2.0, 50.0)
    fills = np.zeros(3, dtype=POSITION_FILL_DTYPE)
    fills["asset"] = [0, 1, 0]
    fills["size"] = [1.0, 1.0, 1e300]
    fills["price"] = [100.0, 60.0, 1e300]
    before = (book.positions.tobytes(), book.balance, book.version)
    with pytest.raises(ObeliskError, match="non-finite"):
        book.apply_fills(fills)
    assert (book.positions.tobytes(), book.balance, book.version) == before


def test_each_change_keeps_the_book_finite_or_refuses():
    book = PositionBook([[(0, 20)]], balance=1e308)
    for attempt in (lambda: book.deposit(1e308), lambda: book.apply_fill(0, 1e300, 1e300),
                    lambda: book.set_position(0, 1e300, 1e300, leverage=20, isolated=False)):
        with pytest.raises(ObeliskError):
            attempt()
    book.apply_fill(0, 1e150, 1e150)
    with pytest.raises(ObeliskError):
        book.set_mark(0, 1e300)
    with pytest.raises(ObeliskError):
        book.mark([1e300])
    assert_finite(book)


def test_a_refused_mark_leaves_every_row_as_it_was():
    book = PositionBook([[(0, 20)], [(0, 10), (1e6, 5)]], balance=1e6)
    book.set_leverage(1, 5, isolated=True)
    book.apply_fill(0, 1e150, 1e150)
    book.apply_fill(1, -2.0, 50.0)
    book.mark([1e150, 55.0])
    def state():
        return (book.positions.tobytes(), book.balance, book.version, book.account_value,
                book.cross_maintenance_margin, book.total_position_value)

    before = state()
    with pytest.raises(MarketDataError, match="non-finite; nothing changed"):
        book.mark([1e300, 60.0])                 # asset 1's new mark alone would be fine
    assert state() == before


def assert_finite(book):
    rows = book.positions
    for name in FINITE_FIELDS:
        assert np.isfinite(rows[name]).all(), (name, rows[name])
    assert math.isfinite(book.balance)


huge = st.floats(-1e300, 1e300, allow_nan=False, allow_infinity=False)
positive = st.floats(1e-300, 1e300, allow_nan=False, allow_infinity=False)
operations = st.one_of(
    st.tuples(st.just("fill"), st.integers(0, 1), huge, positive, st.booleans()),
    st.tuples(st.just("fills"), st.lists(st.tuples(st.integers(0, 1), huge, positive),
                                         min_size=1, max_size=4)),
    st.tuples(st.just("funding"), huge, huge, positive, positive),
    st.tuples(st.just("mark"), positive, positive),
    st.tuples(st.just("set_mark"), st.integers(0, 1), positive),
    st.tuples(st.just("deposit"), positive),
    st.tuples(st.just("withdraw"), positive),
    st.tuples(st.just("position"), st.integers(0, 1), huge, positive, st.booleans(), positive),
    st.tuples(st.just("isolated_margin"), st.integers(0, 1), huge),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operations, max_size=12))
def test_huge_finite_inputs_never_leave_a_non_finite_value(steps):
    book = PositionBook([[(0, 20)], [(0, 10), (1e6, 5)]], balance=1_000.0)
    book.set_leverage(1, 5, isolated=True)
    for step in steps:
        kind, *args = step
        try:
            if kind == "fill":
                book.apply_fill(*args)
            elif kind == "fills":
                fills = np.zeros(len(args[0]), dtype=POSITION_FILL_DTYPE)
                fills["asset"], fills["size"], fills["price"] = zip(*args[0], strict=True)
                book.apply_fills(fills)
            elif kind == "funding":
                book.apply_funding(args[:2], args[2:])
            elif kind == "mark":
                book.mark(args)
            elif kind == "set_mark":
                book.set_mark(*args)
            elif kind == "deposit":
                book.deposit(*args)
            elif kind == "withdraw":
                book.withdraw(*args)
            elif kind == "position":
                asset, size, entry, isolated, margin = args
                book.set_position(asset, size, entry, leverage=5, isolated=isolated,
                                  margin=margin if isolated and size else 0.0)
            else:
                book.update_isolated_margin(*args)
        except (ObeliskError, ValueError):
            pass
        assert_finite(book)


# --------------------------------------------------- a count that never wraps

def test_a_corrected_record_cannot_wrap_the_count():
    histogram = LatencyHistogram()
    with pytest.raises(OverflowError):
        histogram.record_corrected(INT64_MAX, 1)
    assert histogram.count == 0
    histogram.record_corrected(2**62, 1)     # exactly 2^62 samples: allowed
    assert histogram.count == histogram_module.MAX_BULK_COUNT == 2**62
    assert histogram.percentiles([50, 100]) == [HIGHEST_TRACKABLE_NS, HIGHEST_TRACKABLE_NS]
    with pytest.raises(OverflowError):
        histogram.record_corrected(5, 1)
    with pytest.raises(OverflowError):
        histogram.record_many(np.array([5], dtype=np.int64))
    assert histogram.count == 2**62 and histogram.min == 1
    histogram.record(5)                 # 2^62 single records of room remain
    assert histogram.count == 2**62 + 1 and histogram.percentile(0) == 1


def test_merges_and_batches_cannot_wrap_the_count():
    half = LatencyHistogram()
    half.record_corrected(2**61, 1)
    total = half.copy()
    total.merge(half)
    assert total.count == 2**62
    with pytest.raises(OverflowError):
        total.merge(half)
    assert total.count == 2**62
    batch = LatencyHistogram()
    for values in ([2**61, 2**61 + 1], [INT64_MAX, INT64_MAX]):
        with pytest.raises(OverflowError):
            batch.record_many(np.array(values, dtype=np.int64), 1)
        assert batch.count == 0
    batch.record_many(np.array([2**61, 2**61], dtype=np.int64), 1)
    assert batch.count == 2**62
