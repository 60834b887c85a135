"""MatchingEngine: a mixed-asset batch gives exactly what separate books give."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obelisk import EVENT_DTYPE, EventKind, MatchingEngine, OrderBook, OrderStatus, Reason
from obelisk.testing.workload import interleave, standard_mix


def per_asset_reference(events, assets):
    """Each asset's events through its own book, mapped back to input positions."""
    results = np.zeros(len(events), dtype=[("status", "u1"), ("filled", "i8")])
    fills = []
    for asset in assets:
        index = np.flatnonzero(events["asset"] == asset)
        out = OrderBook(64).process(events[index])
        results["status"][index] = out.results["status"]
        results["filled"][index] = out.results["filled_qty"]
        for fill in out.fills:
            position = int(index[fill["event_index"]])
            fills.append((position, int(fill["maker_oid"]), int(fill["qty"])))
    return results, sorted(fills, key=lambda f: f[0])


@pytest.mark.parametrize("threads", [1, 2])
def test_engine_equals_separate_books(threads):
    mixed = interleave([standard_mix(3_000, 200, seed=s).with_asset(s) for s in (0, 1, 2)])
    with MatchingEngine([0, 1, 2], capacity=64, threads=threads) as engine:
        engine.process(mixed.seed_events)
        out = engine.process(mixed.events)
    seeded = np.concatenate([mixed.seed_events, mixed.events])
    results, fills = per_asset_reference(seeded, [0, 1, 2])
    tail = results[len(mixed.seed_events):]
    assert out.results["status"].tolist() == tail["status"].tolist()
    assert out.results["filled_qty"].tolist() == tail["filled"].tolist()
    offset = len(mixed.seed_events)
    expected = [(i - offset, maker, qty) for i, maker, qty in fills if i >= offset]
    got = [(int(f["event_index"]), int(f["maker_oid"]), int(f["qty"])) for f in out.fills]
    assert got == expected
    assert np.all(np.diff(out.order_events["event_index"]) >= 0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0, 1, 5]), st.integers(1, 30), st.integers(0, 1),
                          st.integers(98, 102), st.integers(1, 5)), min_size=1, max_size=60))
def test_engine_random_batches_match_and_reject_unknown_assets(rows):
    events = np.zeros(len(rows), dtype=EVENT_DTYPE)
    for i, (asset, oid, side, price, qty) in enumerate(rows):
        events[i] = (oid, price, qty, 0, asset, EventKind.LIMIT, side, 0)
    with MatchingEngine([0, 1], threads=2) as engine:
        out = engine.process(events)
    unknown = events["asset"] == 5
    assert (out.results["reason"][unknown] == Reason.UNKNOWN_ASSET).all()
    assert (out.results["status"][unknown] == OrderStatus.REJECTED).all()
    rejected = out.order_events[out.order_events["reason"] == Reason.UNKNOWN_ASSET]
    assert rejected["event_index"].tolist() == np.flatnonzero(unknown).tolist()
    results, _ = per_asset_reference(events, [0, 1])
    assert out.results["status"][~unknown].tolist() == results["status"][~unknown].tolist()


def test_engine_books_and_errors():
    engine = MatchingEngine([3, 1], threads=1)
    assert engine.assets == [1, 3]
    assert isinstance(engine.book(3), OrderBook)
    with pytest.raises(KeyError, match="no book for asset 2"):
        engine.book(2)
    with pytest.raises(ValueError, match="at least one asset"):
        MatchingEngine([])
    with pytest.raises(TypeError, match="EVENT_DTYPE"):
        engine.process(np.zeros(2, dtype=np.int64))
    out = engine.process(np.zeros(0, dtype=EVENT_DTYPE))
    assert len(out.results) == len(out.fills) == len(out.order_events) == 0


def test_engine_handles_the_largest_asset_ids():
    events = np.zeros(3, dtype=EVENT_DTYPE)
    events["asset"] = [0xFFFFFFFF, 3, 0xFFFFFFFE]
    events["kind"], events["oid"], events["price"], events["qty"] = EventKind.LIMIT, 1, 100, 1
    with MatchingEngine([0xFFFFFFFF, 3], threads=2) as engine:
        out = engine.process(events)
        assert out.results["status"].tolist() == [OrderStatus.RESTED, OrderStatus.RESTED,
                                                  OrderStatus.REJECTED]
        assert out.results["reason"][2] == Reason.UNKNOWN_ASSET
        assert engine.book(0xFFFFFFFF).best_bid() == 100


def test_engine_releases_its_books_after_a_batch():
    events = np.zeros(2, dtype=EVENT_DTYPE)
    events["asset"] = [0, 1]
    events["kind"], events["oid"], events["price"], events["qty"] = EventKind.LIMIT, 1, 100, 1
    with MatchingEngine([0, 1], threads=2) as engine:
        engine.process(events)
        assert engine.book(0).add(2, 0, 99, 1) == OrderStatus.RESTED


def test_engine_with_many_books_matches_separate_books():
    assets = list(range(12))  # above the per-book scan threshold: one sorted lookup
    mixed = interleave([standard_mix(400, 50, seed=s).with_asset(s) for s in assets])
    with MatchingEngine(assets, capacity=64, threads=2) as engine:
        engine.process(mixed.seed_events)
        out = engine.process(mixed.events)
    seeded = np.concatenate([mixed.seed_events, mixed.events])
    results, fills = per_asset_reference(seeded, assets)
    offset = len(mixed.seed_events)
    assert out.results["status"].tolist() == results["status"][offset:].tolist()
    expected = [(i - offset, maker, qty) for i, maker, qty in fills if i >= offset]
    got = [(int(f["event_index"]), int(f["maker_oid"]), int(f["qty"])) for f in out.fills]
    assert got == expected


@pytest.mark.parametrize("threads", [1, 2])
def test_a_book_without_events_in_a_batch_adds_nothing_to_its_tapes(threads):
    events = np.zeros(2, dtype=EVENT_DTYPE)
    events["asset"], events["oid"], events["price"], events["qty"] = [0, 1], [1, 1], 100, 1
    events["kind"], events["side"] = EventKind.LIMIT, [0, 0]
    with MatchingEngine([0, 1], threads=threads) as engine:
        engine.process(events)
        taker = events[1:].copy()
        taker["oid"], taker["side"] = 2, 1
        assert len(engine.process(taker).fills) == 1   # asset 1 trades
        only_zero = events[:1].copy()
        only_zero["oid"], only_zero["price"] = 3, 90
        out = engine.process(only_zero)                # asset 1 has no events now
        assert len(out.fills) == 0 and out.order_events["oid"].tolist() == [3]
