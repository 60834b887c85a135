"""The recompute kernel (_recompute.h) bit for bit against a plain-Python model of it.

The kernel sweeps two rows per SSE2 instruction (or, in the debug build and off
x86-64, one at a time) and sums the totals in two lanes, row i into lane i % 2.
Python floats are the same IEEE doubles, so the model below, the same operations
in the same order, must give the very same bits: every derived field, every total.
Tolerance-based agreement with the reference is tested in test_position.py.
"""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from obelisk import PositionBook
from obelisk._core.limit import RecomputeLimitLoop
from obelisk.errors import MarketDataError

TABLES = (
    ((0.0, 50),),
    ((0.0, 40), (150e6, 20)),
    ((0.0, 10), (3e6, 5)),
    ((0.0, 20), (1_000.0, 10), (5_000.0, 5)),
    ((0.0, 25), (100.0, 20), (400.0, 10), (2_000.0, 3)),
)


def tiers_of(table):
    """(lower, mmr, deduction) per tier, as PositionBook derives them."""
    tiers, previous_mmr, previous_deduction = [], 0.0, 0.0
    for bound, leverage in table:
        rate = 1.0 / (2.0 * leverage)
        previous_deduction += 0.0 if bound == 0 else bound * (rate - previous_mmr)
        previous_mmr = rate
        tiers.append((bound, rate, previous_deduction))
    return tiers


def model(rows, tables, marks, balance, legacy):
    """Each row's derived numbers and the totals, as the kernel computes them."""
    lanes = [dict.fromkeys(("cu", "cv", "ci", "cm", "ie", "iv"), 0.0) for _ in range(2)]
    derived = []
    for i, (row, table) in enumerate(zip(rows, tables, strict=True)):
        mark = marks[i] if marks[i] == marks[i] else row["mark_px"]
        size = row["size"]
        if size == 0:
            derived.append((mark, 0.0, 0.0, 0.0, 0.0))
            continue
        upnl = size * (mark - row["entry_px"])
        value = abs(size) * mark
        initial = value / row["leverage"]
        _, mmr, deduction = [tier for tier in tiers_of(table) if value >= tier[0]][-1]
        maintenance = value * mmr - deduction
        isolated = float(row["isolated"])
        cross = 1.0 - isolated
        lane = lanes[i % 2]
        lane["ie"] += isolated * (row["margin"] + upnl)
        lane["iv"] += isolated * value
        lane["cu"] += cross * upnl
        lane["cv"] += cross * value
        lane["ci"] += cross * initial
        lane["cm"] += cross * maintenance
        derived.append((mark, upnl, value, initial, maintenance))
    totals = {name: lanes[0][name] + lanes[1][name] for name in lanes[0]}
    equity = balance + totals["cu"]
    liquidation = []
    for row, table, (mark, upnl, _, _, maintenance) in zip(rows, tables, derived, strict=True):
        size = row["size"]
        if size == 0:
            liquidation.append(math.nan)
            continue
        isolated = float(row["isolated"])
        cross = 1.0 - isolated
        available = isolated * (row["margin"] + upnl) + cross * equity \
            - cross * (totals["cm"] - maintenance)
        amount, side = abs(size), (1.0 if size > 0 else -1.0)
        price = math.nan
        if legacy:
            price = mark - side * (available - maintenance) / amount
        else:
            tiers = tiers_of(table)
            for k, (lower, mmr, deduction) in enumerate(tiers):
                notional_times_rate = amount * mark - side * (available + deduction)
                rate = 1.0 - side * mmr
                high = tiers[k + 1][0] * (1 + 1e-12) if k + 1 < len(tiers) else math.inf
                if lower * (1 - 1e-12) * rate <= notional_times_rate <= high * rate:
                    price = notional_times_rate / (amount * rate)
                    break
        liquidation.append(price if math.isfinite(price) and price > 0 else math.nan)
    return derived, liquidation, totals


def same_bits(a, b):
    return np.array([a], dtype=np.float64).view(np.uint64)[0] == \
        np.array([b], dtype=np.float64).view(np.uint64)[0] or (a != a and b != b)


position = st.tuples(
    st.sampled_from([0.0, 0.001, -0.5, 1.25, -3.0, 12.0, -40.0, 250.0]),     # size
    st.floats(50.0, 150.0),                                                  # entry
    st.booleans(),                                                          # isolated
    st.floats(0.0, 0.2),                                                    # margin per value
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(range(len(TABLES))), position), min_size=1,
                max_size=11),
       st.lists(st.one_of(st.just(math.nan), st.floats(20.0, 400.0)), min_size=11,
                max_size=11),
       st.floats(0.0, 1e5), st.booleans(), st.booleans())
def test_the_recompute_matches_its_model_bit_for_bit(assets, marks, balance, legacy, refresh):
    tables = [TABLES[table] for table, _ in assets]
    book = PositionBook([list(t) for t in tables], balance=balance,
                        legacy_liquidation=legacy)
    for asset, (table, (size, entry, isolated, margin)) in enumerate(assets):
        leverage = min(3, int(TABLES[table][0][1]))
        book.set_position(asset, size, entry, leverage=leverage, isolated=isolated,
                          margin=margin * abs(size) * entry if isolated and size else 0.0)
    before = book.positions
    new_marks = np.array(marks[:len(assets)])
    if refresh:                 # the fills' path: marks set one by one, derived when read
        for asset, mark in enumerate(new_marks):
            if mark == mark:
                book.set_mark(asset, mark)
    else:
        book.mark(new_marks)
    after = book.positions
    derived, liquidation, totals = model(before, tables, new_marks, balance, legacy)
    for i, row in enumerate(after):
        for name, expected in zip(("mark_px", "unrealized_pnl", "position_value",
                                   "initial_margin", "maintenance_margin"), derived[i],
                                  strict=True):
            assert same_bits(row[name], expected), (i, name, row[name], expected)
        assert same_bits(row["liquidation_px"], liquidation[i]), (i, row, liquidation[i])
    assert same_bits(book.cross_position_value, totals["cv"])
    assert same_bits(book.cross_initial_margin, totals["ci"])
    assert same_bits(book.cross_maintenance_margin, totals["cm"])
    assert same_bits(book.cross_account_value, balance + totals["cu"])
    assert same_bits(book.account_value, balance + totals["cu"] + totals["ie"])
    assert same_bits(book.total_position_value, totals["cv"] + totals["iv"])


def test_a_refused_mark_leaves_every_row_as_it_was():
    book = PositionBook([list(TABLES[3])] * 5, balance=1e4)
    for asset in range(5):
        book.set_position(asset, (-1.0) ** asset * (asset + 1), 100.0, leverage=3,
                          isolated=asset % 2 == 1, margin=50.0 if asset % 2 else 0.0)
    book.mark(np.full(5, 101.0))
    before = book.positions
    for bad in (np.array([101.0, 102.0, -1.0, 103.0, 104.0]),     # the third mark, negative
                np.array([101.0, 102.0, 103.0, 104.0, 1e308])):   # the last: value inf
        with pytest.raises(MarketDataError):
            book.mark(bad)
        assert before.tobytes() == book.positions.tobytes()


def test_the_limit_loop_derives_what_the_book_derives():
    """RecomputeLimitLoop, obelisk bench's yardstick, over an odd number of rows with flat
    ones, isolated and cross, tables of different depths: the book's numbers, bit for bit."""
    tables = [list(TABLES[i % len(TABLES)]) for i in range(7)]
    book = PositionBook(tables, balance=5_000.0)
    for asset, size in enumerate((1.5, 0.0, -2.0, 40.0, -0.25, 0.0, 7.0)):
        book.set_position(asset, size, 90.0 + asset, leverage=2, isolated=asset % 3 == 0,
                          margin=30.0 if asset % 3 == 0 and size else 0.0)
    loop = RecomputeLimitLoop(book)
    marks = np.linspace(80.0, 120.0, 7)
    book.mark(marks)
    loop.run(loop.padded_marks(marks))
    for name, column in loop.derived.items():
        assert np.array_equal(book.positions[name], column, equal_nan=True), name
    assert loop.cross_maintenance_margin == book.cross_maintenance_margin
    with pytest.raises(ValueError, match="takes 8 float64 marks"):
        loop.run(marks)
