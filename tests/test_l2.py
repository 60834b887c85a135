"""L2Book: differential tests against the reference, exact decimals, policies, bad input."""

import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from obelisk import (
    L2_DELTA_DTYPE,
    L2_TOP_DTYPE,
    CrossedPolicy,
    Instrument,
    L2Book,
    apply_l2_message,
)
from obelisk.errors import ConcurrentUseError, CrossedBookError, MarketDataError
from obelisk.testing.reference.l2 import ReferenceL2Book

BUY, SELL = 0, 1
FIXTURES = Path(__file__).parent / "fixtures"
ETH = Instrument("ETH", 1, 4, 25)          # prices with 2 decimals, sizes with 4


def state(book):
    """Everything observable about a compiled book's levels."""
    bids = book.depth(BUY, 10_000)
    asks = book.depth(SELL, 10_000)
    return (list(zip(bids[0].tolist(), bids[1].tolist(), strict=True)),
            list(zip(asks[0].tolist(), asks[1].tolist(), strict=True)))


def reference_state(reference):
    return reference.depth(BUY), reference.depth(SELL)


# ---------------------------------------------------------- differential

deltas = st.lists(st.tuples(
    st.sampled_from(["delta"] * 12 + ["snapshot"]),
    st.integers(0, 1),                       # side
    st.integers(95, 105),                    # price: a narrow band, so the book crosses
    st.sampled_from([0, 0, 1, 2, 3, 5, 8]),  # size (0 deletes)
    st.sampled_from([1, 1, 1, 1, 1, 2, 0, -1]),  # seq step: 1 in order, 2 a gap, -1 a replay
    st.sampled_from([1, 1, 1, 0, -1]),       # time step: -1 goes back in time
), min_size=1, max_size=80)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=deltas, policy=st.sampled_from(list(CrossedPolicy)),
       max_levels=st.sampled_from([100_000, 100_000, 2, 3, 5]))
def test_per_call_matches_reference(stream, policy, max_levels):
    gaps = []
    book = L2Book(ETH, crossed_policy=policy, on_gap=lambda e, g: gaps.append((e, g)),
                  max_levels=max_levels)
    reference = ReferenceL2Book(crossed_policy=policy, max_levels=max_levels)
    seq, time = 0, 1_000
    for kind, side, price, size, seq_step, time_step in stream:
        time += time_step
        if kind == "snapshot":
            bids = {p: s + 1 for p, s in [(price - 3, size), (price - 4, size + 2)]}
            asks = {p: s + 1 for p, s in [(price + 1 - 2 * side, size), (price + 3, 1)]}
            expected = reference.snapshot(bids, asks, time=time)
            try:
                got = book.apply_snapshot(list(bids), list(bids.values()), list(asks),
                                          list(asks.values()), time=time)
                got = "applied" if got else "stale"
            except CrossedBookError:
                got = "crossed"
            except MarketDataError:
                got = "too deep"
        else:
            seq = max(1, seq + seq_step) if seq_step else seq
            delta_seq = seq if seq_step else 0
            expected = reference.apply(side, price, size, seq=delta_seq, time=time)
            try:
                got = "applied" if book.apply(side, price, size, seq=delta_seq, time=time) \
                    else "stale"
            except CrossedBookError:
                got = "crossed"
            except MarketDataError:
                got = "too deep"
            if got == "applied" and expected == "gap":
                got = "gap"
        assert got == expected
        assert state(book) == reference_state(reference)
        assert book.bbo() == reference.bbo()
        assert book.valid == reference.valid
        assert (book.last_seq, book.last_time) == (reference.last_seq, reference.last_time)
    assert gaps == reference.gaps


@settings(max_examples=100, deadline=None)
@given(stream=st.lists(st.tuples(st.integers(0, 1), st.integers(95, 105),
                                 st.sampled_from([0, 1, 2, 7])), min_size=1, max_size=100),
       policy=st.sampled_from([CrossedPolicy.DROP_STALE, CrossedPolicy.INVALIDATE]))
def test_batch_writes_the_top_after_every_delta(stream, policy):
    events = np.zeros(len(stream), dtype=L2_DELTA_DTYPE)
    for i, (side, price, size) in enumerate(stream):
        events[i] = (price, size, 0, 0, side)
    book = L2Book(ETH, crossed_policy=policy)
    top = np.zeros(len(stream), dtype=L2_TOP_DTYPE)
    assert book.apply_batch(events, top) == len(stream)
    reference = ReferenceL2Book(crossed_policy=policy)
    for i, (side, price, size) in enumerate(stream):
        reference.apply(side, price, size)
        bid, bid_size, ask, ask_size = reference.bbo()
        assert top[i].tolist() == (bid or 0, bid_size, ask or 0, ask_size)
    assert state(book) == reference_state(reference)


@settings(max_examples=150, deadline=None)
@given(stream=st.lists(st.tuples(st.integers(0, 1), st.integers(90, 110),
                                 st.sampled_from([0, 1, 2, 7])), min_size=1, max_size=120),
       policy=st.sampled_from(list(CrossedPolicy)), max_levels=st.integers(1, 6))
def test_a_batch_stops_at_a_level_past_max_levels(stream, policy, max_levels):
    # Deltas were not bounded by max_levels (only snapshots were): a feed could grow a
    # side without limit. Now the delta that would add a level past it stops the batch,
    # as a crossing one does, the deltas before it staying applied.
    events = np.zeros(len(stream), dtype=L2_DELTA_DTYPE)
    for i, (side, price, size) in enumerate(stream):
        events[i] = (price, size, 0, 0, side)
    book = L2Book(ETH, crossed_policy=policy, max_levels=max_levels)
    reference = ReferenceL2Book(crossed_policy=policy, max_levels=max_levels)
    outcomes = [reference.apply(side, price, size) for side, price, size in stream]
    stop = next((i for i, o in enumerate(outcomes) if o in ("crossed", "too deep")), None)
    reference = ReferenceL2Book(crossed_policy=policy, max_levels=max_levels)
    for side, price, size in stream[:stop]:
        reference.apply(side, price, size)
    if stop is None:
        assert book.apply_batch(events) == len(stream)
    elif outcomes[stop] == "crossed":
        with pytest.raises(CrossedBookError, match=f"delta {stop} "):
            book.apply_batch(events)
    else:
        with pytest.raises(MarketDataError, match=f"delta {stop} would be a level past "
                                                  f"max_levels={max_levels}"):
            book.apply_batch(events)
    assert state(book) == reference_state(reference)
    assert max(len(reference.depth(BUY)), len(reference.depth(SELL))) <= max_levels


def test_a_deleted_level_coming_back_counts_against_max_levels():
    # A level deleted below the best keeps its slot (size 0); bringing it back was taken
    # as an update of the slot, past the max_levels test, and once past the bound the
    # side grew without limit.
    steps = [(BUY, 100, 1), (BUY, 99, 1), (BUY, 99, 0), (BUY, 98, 1), (BUY, 99, 1)]
    book, reference = L2Book(ETH, max_levels=2), ReferenceL2Book(max_levels=2)
    for side, price, size in steps[:-1]:
        assert book.apply(side, price, size) and reference.apply(side, price, size) == "applied"
    with pytest.raises(MarketDataError, match="past max_levels=2; nothing changed"):
        book.apply(*steps[-1])
    assert reference.apply(*steps[-1]) == "too deep"
    assert state(book) == reference_state(reference) == ([(100, 1), (98, 1)], [])
    events = np.zeros(len(steps), dtype=L2_DELTA_DTYPE)
    for i, (side, price, size) in enumerate(steps):
        events[i] = (price, size, 0, 0, side)
    batch = L2Book(ETH, max_levels=2)
    with pytest.raises(MarketDataError, match="delta 4 would be a level past"):
        batch.apply_batch(events)
    assert state(batch) == state(book)


wide_stream = st.lists(st.tuples(
    st.integers(0, 1),                       # side
    st.integers(0, 299),                     # price offset: the whole 300-tick ladder
    st.sampled_from([0, 0, 0, 1, 4, 9]),     # size: mostly deletes, so slots empty out
    st.sampled_from([1, 1, 1, 1, 2, 0]),     # seq step (2 a gap, 0 none)
    st.sampled_from([1, 1, 1, 0, -1]),       # time step (-1 stale)
), min_size=1, max_size=400)


def expected_impact(levels, wanted):
    filled, cost, worst = 0, 0, None
    for price, size in levels:
        if filled == wanted:
            break
        take = min(size, wanted - filled)
        filled, cost, worst = filled + take, cost + price * take, price
    return (None, None, 0) if filled == 0 else (pytest.approx(cost / filled), worst, filled)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=wide_stream, policy=st.sampled_from(list(CrossedPolicy)), cut=st.integers(0, 400),
       emptied=st.integers(0, 149))
def test_batches_over_a_wide_ladder_match_the_reference(stream, policy, cut, emptied):
    """Deletes all over a 300-level ladder (emptied slots; past 108 of the 150 bids they
    are compacted), in two batches: every query, and the deltas a snapshot implies, agree."""
    stream = [(BUY, offset, 0, 1, 1) for offset in range(emptied)] + stream
    bids = {1_000 + p: 5 for p in range(150)}
    asks = {1_151 + p: 5 for p in range(149)}
    book = L2Book(ETH, crossed_policy=policy)
    book.apply_snapshot(list(bids), list(bids.values()), list(asks), list(asks.values()))
    reference = ReferenceL2Book(crossed_policy=policy)
    reference.snapshot(bids, asks)
    events = np.zeros(len(stream), dtype=L2_DELTA_DTYPE)
    seq, time, outcomes = 0, 1_000, []
    for i, (side, offset, size, seq_step, time_step) in enumerate(stream):
        seq, time = seq + seq_step, time + time_step
        events[i] = (1_000 + offset, size, seq if seq_step else 0, time, side)
        outcomes.append(reference.apply(side, 1_000 + offset, size, seq if seq_step else 0,
                                        time))
    start = 0
    for end in sorted({min(cut, len(stream)), len(stream)}):
        while start < end:
            crossed = [i for i in range(start, end) if outcomes[i] == "crossed"]
            try:
                taken = book.apply_batch(events[start:end])
                assert not crossed
                assert taken == sum(outcome != "stale" for outcome in outcomes[start:end])
                start = end
            except CrossedBookError as error:
                assert f"delta {crossed[0] - start} " in str(error)
                start = crossed[0] + 1
    assert state(book) == reference_state(reference)
    assert book.bbo() == reference.bbo()
    assert (book.bid_levels, book.ask_levels) == tuple(map(len, reference_state(reference)))
    assert (book.last_seq, book.last_time) == (reference.last_seq, reference.last_time)
    for levels in (1, 3, 500):
        bid = sum(size for _, size in reference.depth(BUY)[:levels])
        ask = sum(size for _, size in reference.depth(SELL)[:levels])
        assert book.imbalance(levels) == (None if bid + ask == 0
                                          else pytest.approx((bid - ask) / (bid + ask)))
    for wanted in (1, 7, 10_000):
        assert book.impact(BUY, wanted) == expected_impact(reference.depth(SELL), wanted)
        assert book.impact(SELL, wanted) == expected_impact(reference.depth(BUY), wanted)
    for offset in range(0, 300, 7):
        assert book.size_at(BUY, 1_000 + offset) == reference.levels[BUY].get(1_000 + offset, 0)
    before = {side: dict(reference.depth(side)) for side in (BUY, SELL)}
    fresh = {BUY: {price: 3 for price in bids if price % 3}, SELL: {1_299: 1}}
    changes = book.apply_snapshot(list(fresh[BUY]), list(fresh[BUY].values()), [1_299], [1],
                                  time=reference.last_time, implied_deltas=True)
    implied = sorted(changes[["side", "price", "size"]].tolist())
    assert implied == sorted(
        [(side, price, 0) for side in (BUY, SELL) for price in before[side]
         if price not in fresh[side]]
        + [(side, price, size) for side in (BUY, SELL) for price, size in fresh[side].items()
           if before[side].get(price) != size])


def test_a_crossing_bid_under_drop_stale_skips_emptied_asks_behind_the_dropped_ones():
    book = L2Book(ETH, crossed_policy=CrossedPolicy.DROP_STALE)
    book.apply_snapshot([99], [1], [101, 102, 103], [1, 2, 3])
    book.apply(SELL, 102, 0)                          # behind the best: its slot empties
    book.apply(BUY, 101, 4)                           # drops the ask at 101
    assert book.bbo() == (101, 4, 103, 3)
    assert state(book) == ([(101, 4), (99, 1)], [(103, 3)])


def test_a_snapshot_implies_no_delete_for_a_level_already_gone():
    book = L2Book(ETH)
    book.apply_snapshot([99], [1], [101, 102, 103], [1, 2, 3])
    book.apply(SELL, 102, 0)
    changes = book.apply_snapshot([99], [1], [101, 103], [1, 3], implied_deltas=True)
    assert len(changes) == 0


def test_batch_stops_at_a_crossing_delta_under_raise():
    book = L2Book(ETH)
    events = np.zeros(3, dtype=L2_DELTA_DTYPE)
    events["side"], events["price"], events["size"] = [0, 1, 0], [100, 101, 102], [1, 1, 1]
    with pytest.raises(CrossedBookError, match="delta 2"):
        book.apply_batch(events)
    assert book.bbo() == (100, 1, 101, 1)


def test_batch_bad_input_changes_nothing():
    book = L2Book(ETH)
    book.apply(BUY, 100, 1)
    events = np.zeros(2, dtype=L2_DELTA_DTYPE)
    events["side"], events["price"], events["size"] = [0, 0], [99, -5], [1, 1]
    with pytest.raises(MarketDataError):
        book.apply_batch(events)
    assert state(book) == ([(100, 1)], [])
    with pytest.raises(TypeError, match="L2_DELTA_DTYPE"):
        book.apply_batch(np.zeros(2, dtype=np.int64))


# --------------------------------------------------------------- snapshots

def test_snapshot_reports_implied_deltas():
    book = L2Book(ETH)
    book.apply_snapshot([100, 99, 98], [1, 2, 3], [101, 102], [4, 5])
    changes = book.apply_snapshot([100, 98, 97], [1, 9, 1], [102], [5], implied_deltas=True)
    assert sorted(changes[["side", "price", "size"]].tolist()) == [
        (0, 97, 1), (0, 98, 9), (0, 99, 0), (1, 101, 0)]
    replay = L2Book(ETH)
    replay.apply_snapshot([100, 99, 98], [1, 2, 3], [101, 102], [4, 5])
    for side, price, size in changes[["side", "price", "size"]].tolist():
        replay.apply(side, price, size)
    assert state(replay) == state(book)


def test_snapshot_bad_input_changes_nothing():
    book = L2Book(ETH)
    book.apply_snapshot([100], [1], [101], [1])
    before = state(book)
    for args in (([100, 100], [1, 2], [101], [1]), ([0], [1], [101], [1]), ([99], [-1], [101], [1]),
                 ([99, 98], [1], [101], [1])):
        with pytest.raises(MarketDataError):
            book.apply_snapshot(*args)
    with pytest.raises(CrossedBookError):
        book.apply_snapshot([102], [1], [101], [1])
    with pytest.raises(TypeError):
        book.apply_snapshot(np.array([99.5]), [1], [101], [1])
    assert state(book) == before


def test_stale_snapshot_is_ignored():
    book = L2Book(ETH)
    assert book.apply_snapshot([100], [1], [101], [1], time=10)
    assert not book.apply_snapshot([90], [1], [91], [1], time=9)
    assert book.bbo() == (100, 1, 101, 1) and book.valid


def test_checksum_hook_marks_the_book_invalid():
    book = L2Book(ETH, checksum=lambda b: b.best_bid_size() < 5)
    book.apply_snapshot([100], [1], [101], [1])
    assert book.valid
    book.apply(BUY, 100, 7)
    assert not book.valid


# ------------------------------------------------------------ exact strings

@pytest.mark.parametrize(("px", "sz", "ticks", "lots"), [
    ("3120.5", "0.3", 312050, 3000),
    ("3120.50", "0.3000", 312050, 3000),
    ("3120.500000", "0.30000000", 312050, 3000),   # zeros past the grid are harmless
    ("0.01", "0.0001", 1, 1),
    ("17", "5", 1700, 50000),
])
def test_decimal_strings_convert_exactly(px, sz, ticks, lots):
    book = L2Book(ETH)
    book.apply_levels([[{"px": px, "sz": sz, "n": 1}], []])
    assert book.bbo() == (ticks, lots, None, 0)
    assert ETH.price_to_ticks(px) == ticks and ETH.size_to_lots(sz) == lots


@pytest.mark.parametrize("px", ["0.30000000000000004", "3120.505", "1e3", "-1", "", ".",
                                "1.2.3", " 1", "1,0", "99999999999999999999", 3120.5])
def test_malformed_or_off_grid_strings_are_refused(px):
    book = L2Book(ETH)
    book.apply_levels([[{"px": "100", "sz": "1", "n": 1}], []])
    with pytest.raises(MarketDataError):
        book.apply_levels([[{"px": px, "sz": "1", "n": 1}], []])
    assert state(book) == ([(10000, 10000)], [])


def test_hyperliquid_l2book_message_from_bytes():
    # Recorded by the official Hyperliquid Python SDK's tests (MIT); see fixtures/README.md.
    raw = (FIXTURES / "l2book_dydx.json").read_bytes()
    message = json.loads(raw)
    dydx = Instrument("DYDX", 4, 1, 50)
    book = L2Book(dydx)
    assert apply_l2_message(book, raw)
    bids, asks = book.depth(BUY, 20), book.depth(SELL, 20)
    assert [dydx.ticks_to_price(int(p)) for p in bids[0]] == \
        [Decimal(level["px"]) for level in message["levels"][0]]
    assert [dydx.lots_to_size(int(s)) for s in asks[1]] == \
        [Decimal(level["sz"]) for level in message["levels"][1]]
    assert book.last_time == message["time"] and book.valid
    older = dict(message, time=message["time"] - 1)
    assert not apply_l2_message(book, json.dumps({"channel": "l2Book", "data": older}))
    newer = dict(message, time=message["time"] + 1, levels=[message["levels"][0][:1], []])
    assert apply_l2_message(book, json.dumps({"channel": "l2Book", "data": newer}).encode())
    assert book.bid_levels == 1 and book.ask_levels == 0
    with pytest.raises(MarketDataError, match="for 'DYDX'"):
        apply_l2_message(L2Book(ETH), raw)
    with pytest.raises(MarketDataError, match="not JSON"):
        apply_l2_message(book, b"{nope")


# ------------------------------------------------------------------ queries

def test_queries():
    book = L2Book(ETH)
    book.apply_snapshot([100, 99], [3, 10], [102, 103], [1, 4])
    assert book.mid() == 101.0 and book.spread() == 2
    assert book.microprice() == pytest.approx((100 * 1 + 102 * 3) / 4)
    assert book.imbalance(1) == pytest.approx((3 - 1) / 4)
    assert book.imbalance(2) == pytest.approx((13 - 5) / 18)
    assert book.size_at(BUY, 99) == 10 and book.size_at(BUY, 98) == 0
    assert book.impact(BUY, 3) == (pytest.approx((102 + 2 * 103) / 3), 103, 3)
    assert book.impact(BUY, 50) == (pytest.approx((102 + 4 * 103) / 5), 103, 5)
    assert book.impact_notional(SELL, 100 * 3 + 99 * 2 + 50) == (pytest.approx(498 / 5), 99, 5)
    empty = L2Book(ETH)
    assert empty.mid() is None and empty.impact(BUY, 1) == (None, None, 0)
    with pytest.raises(MarketDataError):
        book.apply(2, 100, 1)


def test_other_callers_are_refused_while_a_batch_runs_without_the_gil():
    import threading

    from obelisk.testing.workload import SYNTHETIC_GRID, l2_stream

    workload = l2_stream(20_000, levels=200, seed=5)
    deltas = np.tile(workload.deltas, 100)               # 2M deltas: tens of milliseconds
    deltas["seq"] = 0
    book = L2Book(SYNTHETIC_GRID, crossed_policy=CrossedPolicy.INVALIDATE)  # replays may cross
    workload.load(book)
    started = threading.Event()

    failures = []

    def run():
        started.set()
        try:
            assert book.apply_batch(deltas) == len(deltas)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    started.wait()
    refused = 0
    while worker.is_alive():
        try:
            book.best_bid()
        except ConcurrentUseError as exc:
            assert "another thread" in str(exc)
            refused += 1
    worker.join()
    assert refused > 0 and not failures
    assert book.best_bid() is not None                    # usable again once it is done
