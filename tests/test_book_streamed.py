"""Large batches write their tapes past the cache (non-temporal stores, see
obelisk/_core/book.pyx): a batch of STREAM_TAPES_FROM_EVENTS events or more must write,
byte for byte, the records the same events write in batches too small to stream, through
every path that writes a record: rests, fills, cancels, self-trade cancels, modifies,
rejections, a rest its level cannot hold (an event rewritten after it was streamed) and a
fill tape that grows in the middle of the batch."""

import numpy as np
import pytest

from obelisk import (
    EVENT_DTYPE,
    EventKind,
    OrderBook,
    OrderEventKind,
    OrderStatus,
    Reason,
    Side,
    TimeInForce,
)
from obelisk._core.book import MAX_QTY_LOTS, STREAM_TAPES_FROM_EVENTS
from obelisk.testing.workload import deep_mix, standard_mix

SMALL = 1_000       # events per batch of the unstreamed run


def in_small_batches(book: OrderBook, events: np.ndarray) -> tuple[bytes, bytes, bytes]:
    """The bytes of the results, fills and order events of `events` in batches of SMALL,
    their event indices made positions in `events`, as one batch's would be (bytes, as
    numpy drops the records' padding when it joins arrays)."""
    parts = []
    for start in range(0, len(events), SMALL):
        out = book.process(events[start:start + SMALL])
        for tape in (out.fills, out.order_events):
            tape["event_index"] += start
        parts.append((out.results.tobytes(), out.fills.tobytes(), out.order_events.tobytes()))
    return tuple(b"".join(column) for column in zip(*parts, strict=True))


def assert_streamed_batch_writes_the_same(events: np.ndarray, make_book=OrderBook,
                                          before: np.ndarray | None = None):
    """`events` in one batch and in small ones, on two books alike: the same bytes."""
    assert len(events) >= STREAM_TAPES_FROM_EVENTS
    whole_book, small_book = make_book(), make_book()
    if before is not None:
        whole_book.process(before)
        small_book.process(before)
    whole = whole_book.process(events)
    small = in_small_batches(small_book, events)
    for name, got, expected in zip(("results", "fills", "order_events"),
                                   (whole.results, whole.fills, whole.order_events), small,
                                   strict=True):
        assert got.tobytes() == expected, name
    assert whole_book.snapshot() == small_book.snapshot()
    return whole


def test_a_streamed_batch_of_the_deep_mix_writes_what_small_batches_write():
    whole = assert_streamed_batch_writes_the_same(deep_mix(60_000, resting=20_000).events)
    assert len(whole.fills) > 10_000 and len(whole.order_events) > 40_000


def owned_mix(events: int, seed: int) -> np.ndarray:
    """The standard mix with three owners (self-trade prevention at work), every
    time in force, unknown and duplicate ids, and modifies in place of some cancels."""
    rng = np.random.default_rng(seed)
    out = standard_mix(events, seed_orders=2_000, seed=seed).events.copy()
    out["owner"] = rng.integers(1, 4, len(out))
    limits = np.flatnonzero(out["kind"] == EventKind.LIMIT)
    out["tif"][limits] = rng.choice(list(TimeInForce), len(limits))
    cancels = np.flatnonzero(out["kind"] == EventKind.CANCEL)
    modifies = cancels[rng.random(len(cancels)) < 0.3]
    out["kind"][modifies] = EventKind.MODIFY
    out["price"][modifies] = 1_000_000 + rng.integers(-20, 21, len(modifies))
    out["qty"][modifies] = rng.integers(1, 50, len(modifies))
    out["owner"][cancels] = 0                       # any owner's order
    reused = limits[1::50]                          # the id of the limit just before
    out["oid"][reused] = out["oid"][limits[0::50][:len(reused)]]
    return out


@pytest.mark.parametrize("seed", [3, 11])
def test_self_trade_cancels_modifies_and_rejections_stream_alike(seed):
    whole = assert_streamed_batch_writes_the_same(owned_mix(STREAM_TAPES_FROM_EVENTS + 5_000,
                                                            seed))
    kinds = set(whole.order_events["kind"].tolist())
    reasons = set(whole.order_events["reason"].tolist())
    assert {OrderEventKind.RESTED, OrderEventKind.CANCELLED, OrderEventKind.MODIFIED,
            OrderEventKind.REJECTED} <= kinds
    assert {Reason.SELF_TRADE, Reason.DUPLICATE_OID, Reason.UNKNOWN_OID} <= reasons


def test_a_rest_its_level_cannot_hold_is_rewritten_as_its_cancel_in_a_streamed_batch():
    # 1,100 orders of 2**53 lots at one price: from the 1,024th the level would pass
    # 2**63 - 1, and each order's RESTED event, already written, becomes its cancel
    events = np.zeros(STREAM_TAPES_FROM_EVENTS + 1_100, EVENT_DTYPE)
    events["oid"] = np.arange(1, len(events) + 1)
    events["kind"], events["side"] = EventKind.LIMIT, Side.SELL
    events["price"], events["qty"] = 101, MAX_QTY_LOTS
    events["price"][1_100:] = 200 + np.arange(len(events) - 1_100) % 50
    events["qty"][1_100:] = 1
    whole = assert_streamed_batch_writes_the_same(events)
    refused = whole.order_events[1_023:1_100]
    assert (refused["kind"] == OrderEventKind.CANCELLED).all()
    assert (refused["reason"] == Reason.LEVEL_OVERFLOW).all()
    assert (whole.results["status"][1_023:1_100] == OrderStatus.CANCELLED).all()


def test_a_fill_tape_that_grows_mid_batch_keeps_what_was_streamed_before():
    # 60,000 resting asks of one lot, then a batch of sweeps: more fills than events, past
    # the room reserved up front, so the tape grows (and moves) part-way through
    resting = np.zeros(60_000, EVENT_DTYPE)
    resting["oid"] = np.arange(1, 60_001)
    resting["kind"], resting["side"] = EventKind.LIMIT, Side.SELL
    resting["price"], resting["qty"] = 1_000 + np.arange(60_000) % 400, 1
    sweeps = np.zeros(STREAM_TAPES_FROM_EVENTS, EVENT_DTYPE)
    sweeps["oid"] = 100_000 + np.arange(len(sweeps))
    sweeps["kind"], sweeps["side"], sweeps["qty"] = EventKind.LIMIT, Side.SELL, 1
    sweeps["price"] = 5_000 + np.arange(len(sweeps)) % 100
    sweeps["kind"][::1_000] = EventKind.MARKET
    sweeps["side"][::1_000] = Side.BUY
    sweeps["qty"][::1_000] = 2_500
    whole = assert_streamed_batch_writes_the_same(sweeps, before=resting)
    assert len(whole.fills) > len(sweeps)
