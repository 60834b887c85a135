"""The L2 limit loop, the measuring stick of ``L2Book.apply_batch``, and its bench rows.

A stick must do the book's work: the top it writes after every delta is
checked against L2Book's, on the standard stream and on small random streams
that empty a side, delete the best, delete levels that are not there and
start from any snapshot.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obelisk import L2_DELTA_DTYPE, L2_TOP_DTYPE, L2Book
from obelisk._core.limit import L2LimitLoop
from obelisk.perf.rows.l2 import (
    L2_BATCH,
    L2_LIMIT,
    fresh_l2_book,
    l2_batch_rows,
    l2_limit_agrees,
    l2_limit_loop,
)
from obelisk.testing.workload import SYNTHETIC_GRID, l2_stream

MID = 100                       # bids below it and asks above it never cross


def book_tops(snapshot, deltas):
    book = L2Book(SYNTHETIC_GRID)
    book.apply_snapshot(*snapshot)
    top = np.zeros(len(deltas), dtype=L2_TOP_DTYPE)
    assert book.apply_batch(deltas, top) == len(deltas)
    return top


def limit_tops(snapshot, deltas):
    loop = L2LimitLoop(*snapshot, deltas)
    assert loop.run() == len(deltas)
    return loop.tops


def as_deltas(stream):
    deltas = np.zeros(len(stream), dtype=L2_DELTA_DTYPE)
    for i, (side, offset, size) in enumerate(stream):
        deltas[i] = (MID - offset if side == 0 else MID + offset, size, 0, 0, side)
    return deltas


def as_snapshot(bids, asks):
    return (np.array([MID - o for o in bids], dtype=np.int64), np.ones(len(bids), np.int64) * 3,
            np.array([MID + o for o in asks], dtype=np.int64), np.ones(len(asks), np.int64) * 4)


def test_the_limit_writes_l2books_top_on_the_standard_stream():
    workload = l2_stream(30_000, seed=7)
    loop = l2_limit_loop(workload)
    top = np.zeros(len(workload.deltas), dtype=L2_TOP_DTYPE)
    fresh_l2_book(workload).apply_batch(workload.deltas, top)
    loop.run()
    assert np.array_equal(loop.tops, top)
    assert l2_limit_agrees(l2_stream(5_000, seed=3))


@settings(max_examples=200, deadline=None)
@given(stream=st.lists(st.tuples(st.integers(0, 1), st.integers(1, 12),
                                 st.sampled_from([0, 0, 1, 5, 9])), max_size=80),
       bids=st.sets(st.integers(1, 12), max_size=6), asks=st.sets(st.integers(1, 12), max_size=6))
def test_the_limit_writes_l2books_top_after_every_delta(stream, bids, asks):
    snapshot, deltas = as_snapshot(sorted(bids), sorted(asks)), as_deltas(stream)
    assert limit_tops(snapshot, deltas).tolist() == book_tops(snapshot, deltas).tolist()


def test_deleting_the_best_moves_to_the_next_level_and_an_empty_side_reads_zero():
    snapshot = as_snapshot([1, 4], [2])
    deltas = as_deltas([(0, 1, 0), (0, 4, 0), (1, 2, 0), (0, 3, 8), (1, 9, 2)])
    assert limit_tops(snapshot, deltas).tolist() == [
        (MID - 4, 3, MID + 2, 4), (0, 0, MID + 2, 4), (0, 0, 0, 0),
        (MID - 3, 8, 0, 0), (MID - 3, 8, MID + 9, 2)]


@pytest.mark.parametrize("change", [
    {"side": 2}, {"price": 0}, {"size": -1}, {"price": MID + (1 << 22)},
], ids=str)
def test_the_limit_refuses_deltas_it_cannot_apply(change):
    deltas = as_deltas([(0, 1, 5)])
    for field, value in change.items():
        deltas[0][field] = value
    with pytest.raises(ValueError):
        L2LimitLoop(*as_snapshot([1], [1]), deltas)


def test_the_limit_refuses_a_bad_snapshot():
    bids, bid_sizes, asks, ask_sizes = as_snapshot([1, 2], [1])
    deltas = as_deltas([])
    with pytest.raises(ValueError, match="one size per price"):
        L2LimitLoop(bids, bid_sizes[:1], asks, ask_sizes, deltas)
    with pytest.raises(ValueError, match="positive"):
        L2LimitLoop(bids, bid_sizes * 0, asks, ask_sizes, deltas)
    with pytest.raises(TypeError):
        L2LimitLoop(bids, bid_sizes, asks, ask_sizes, np.zeros(1, dtype=np.int64))


def test_the_limit_runs_once_is_made_once_and_an_empty_stream_runs():
    loop = L2LimitLoop(*as_snapshot([1], [1]), as_deltas([(0, 2, 1)]))
    assert loop.tops.tolist() == [(0, 0, 0, 0)]            # nothing written before run
    loop.run()
    with pytest.raises(RuntimeError, match="once"):
        loop.run()
    with pytest.raises(RuntimeError, match="twice"):
        loop.__init__(*as_snapshot([1], [1]), as_deltas([]))
    with pytest.raises(RuntimeError, match="not initialised"):
        L2LimitLoop.__new__(L2LimitLoop).run()
    empty = L2LimitLoop(*as_snapshot([], []), as_deltas([]))
    assert empty.run() == 0 and empty.tops.dtype == L2_TOP_DTYPE


def test_the_batch_rows_time_the_book_and_the_limit_on_the_same_deltas():
    workload = l2_stream(2_000, seed=5)
    rows = l2_batch_rows(workload, 2)
    assert [row.name for row in rows] == [L2_BATCH, L2_LIMIT]
    assert all(row.events == 2_000 and row.events_per_second > 0 for row in rows)
