"""L2Book under hostile input and misuse: one user at a time, integer edges, big snapshots."""

import json
import subprocess
import sys
import textwrap
import threading
from decimal import Decimal

import numpy as np
import pytest

from obelisk import L2_DELTA_DTYPE, L2_TOP_DTYPE, CrossedPolicy, Instrument, L2Book
from obelisk._core.l2 import apply_hyperliquid_l2_frame
from obelisk.errors import ConcurrentUseError, MarketDataError
from obelisk.hyperliquid.l2frames import apply_l2_json, apply_l2_message

BUY, SELL = 0, 1
ETH = Instrument("ETH", 1, 4, 25)          # prices with 2 decimals, sizes with 4
DYDX = Instrument("DYDX", 4, 1, 50)
INT64_MAX = 2**63 - 1


def state(book):
    bids, asks = book.depth(BUY, 1_000_000), book.depth(SELL, 1_000_000)
    return (bids[0].tolist(), bids[1].tolist(), asks[0].tolist(), asks[1].tolist(),
            book.valid, book.last_seq, book.last_time)


def seeded(instrument=ETH, **options):
    book = L2Book(instrument, **options)
    book.apply_snapshot([100, 99], [1, 2], [101, 102], [3, 4], time=1_000)
    return book


# ------------------------------------------------------- one user at a time

CONCURRENT_SCRIPT = textwrap.dedent("""
    import json, sys, threading, time
    import numpy as np
    from obelisk import CrossedPolicy, L2Book
    from obelisk._core.l2 import apply_hyperliquid_l2_frame
    from obelisk.errors import ConcurrentUseError
    from obelisk.testing.workload import SYNTHETIC_GRID, l2_stream

    workload = l2_stream(20_000, levels=200, seed=5)
    deltas = np.tile(workload.deltas, 60)           # 1.2M deltas: a batch outlasts a thread start
    deltas["seq"] = 0
    book = L2Book(SYNTHETIC_GRID, crossed_policy=CrossedPolicy.INVALIDATE)
    workload.load(book)
    frame = json.dumps({"coin": SYNTHETIC_GRID.name, "levels": [
        [{"px": "0.5", "sz": "1", "n": 1}], [{"px": "0.7", "sz": "1", "n": 1}]]}).encode()
    stop = time.monotonic() + 2.0
    counts = {"batch": 0, "batch refused": 0, "query": 0, "query refused": 0}
    failures = []

    def batches():
        while time.monotonic() < stop:
            try:
                book.apply_batch(deltas)
                counts["batch"] += 1
            except ConcurrentUseError:
                counts["batch refused"] += 1
            except BaseException as exc:
                failures.append(repr(exc))
            time.sleep(0.002)                        # let the other thread have the book too

    def queries():
        calls = [
            book.bbo, book.mid, book.spread, book.microprice, book.imbalance,
            book.best_bid, book.best_ask, book.best_bid_size, book.best_ask_size,
            lambda: book.depth(0, 50), lambda: book.depth(1, 50), lambda: book.size_at(0, 1),
            lambda: book.impact(0, 10_000), lambda: book.impact_notional(1, 1e12),
            lambda: book.bid_levels, lambda: book.ask_levels,
            lambda: book.apply(0, 1, 5),
            lambda: workload.load(book),
            lambda: book.apply_snapshot(workload.bid_prices[::-1], workload.bid_sizes[::-1],
                                        workload.ask_prices, workload.ask_sizes,
                                        implied_deltas=True),
            lambda: apply_hyperliquid_l2_frame(book, frame),
            book.clear,
        ]
        k = 0
        while time.monotonic() < stop:
            try:
                calls[k % len(calls)]()
                counts["query"] += 1
            except ConcurrentUseError:
                counts["query refused"] += 1
            except BaseException as exc:
                failures.append(repr(exc))
            k += 1

    threads = [threading.Thread(target=batches), threading.Thread(target=queries)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bids, asks = book.depth(0, 10**6), book.depth(1, 10**6)
    consistent = (len(bids[0]) == book.bid_levels and len(asks[0]) == book.ask_levels
                  and bool(np.all(np.diff(bids[0]) < 0)) and bool(np.all(np.diff(asks[0]) > 0))
                  and bool(np.all(bids[1] > 0)) and bool(np.all(asks[1] > 0)))
    workload.load(book)
    reloaded = book.depth(0, 10**6)[0].tolist() == sorted(workload.bid_prices.tolist())[::-1]
    print(json.dumps({"counts": counts, "failures": failures[:5], "consistent": consistent,
                      "reloaded": reloaded}))
""")


def test_two_threads_hammering_one_book_get_concurrent_use_errors_and_no_damage():
    done = subprocess.run([sys.executable, "-c", CONCURRENT_SCRIPT], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]          # no crash
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["failures"] == []                           # only ConcurrentUseError
    counts = report["counts"]
    assert counts["batch"] > 0 and counts["query"] > 0
    assert counts["query refused"] > 0                        # the contract was exercised
    assert report["consistent"] and report["reloaded"]


class _StartsABatchWhenRead(dict):
    """A level whose lookup starts a long batch in another thread and waits until it runs."""

    def __init__(self, book, deltas):
        super().__init__(px="1.00", sz="1")
        self.book, self.deltas, self.thread = book, deltas, None

    def __getitem__(self, key):
        if self.thread is None:
            self.thread = threading.Thread(target=self.book.apply_batch, args=(self.deltas,))
            self.thread.start()
            while True:                       # until the batch holds the book
                try:
                    self.book.best_bid()
                except RuntimeError:
                    break
        return super().__getitem__(key)


def test_a_snapshot_claims_the_book_after_running_python_code():
    """apply_levels runs the levels' own code; a batch started meanwhile must not race it."""
    from obelisk.testing.workload import SYNTHETIC_GRID, l2_stream

    workload = l2_stream(20_000, levels=200, seed=5)
    deltas = np.tile(workload.deltas, 250)               # 5M deltas: a long batch
    deltas["seq"] = 0
    book = L2Book(SYNTHETIC_GRID, crossed_policy=CrossedPolicy.INVALIDATE)
    workload.load(book)
    level = _StartsABatchWhenRead(book, deltas)
    with pytest.raises(ConcurrentUseError, match="another thread"):
        book.apply_levels([[level], []])
    level.thread.join()
    assert book.bid_levels > 1                           # the batch's result, not the snapshot


def test_every_entry_point_during_a_batch_raises_concurrent_use_error():
    from obelisk.testing.workload import SYNTHETIC_GRID, l2_stream

    workload = l2_stream(20_000, levels=200, seed=5)
    deltas = np.tile(workload.deltas, 100)               # 2M deltas: tens of milliseconds
    deltas["seq"] = 0
    book = L2Book(SYNTHETIC_GRID, crossed_policy=CrossedPolicy.INVALIDATE)
    workload.load(book)
    frame = json.dumps({"coin": SYNTHETIC_GRID.name, "levels": [[], []]}).encode()
    calls = {
        "apply": lambda: book.apply(BUY, 1, 1), "apply_batch": lambda: book.apply_batch(deltas[:1]),
        "apply_snapshot": lambda: workload.load(book), "clear": book.clear,
        "apply_levels": lambda: book.apply_levels([[], []]),
        "frame": lambda: apply_hyperliquid_l2_frame(book, frame),
        "bbo": book.bbo, "mid": book.mid, "spread": book.spread, "microprice": book.microprice,
        "imbalance": book.imbalance, "depth": lambda: book.depth(BUY, 5),
        "size_at": lambda: book.size_at(BUY, 1), "impact": lambda: book.impact(BUY, 5),
        "impact_notional": lambda: book.impact_notional(BUY, 1e9),
        "best_bid": book.best_bid, "bid_levels": lambda: book.bid_levels,
    }
    refused = set()
    for name, call in calls.items():
        for _attempt in range(5):                # until the call lands while a batch runs
            worker = threading.Thread(target=book.apply_batch, args=(deltas,))
            worker.start()
            while worker.is_alive():
                try:
                    book.best_ask()
                except ConcurrentUseError:
                    break
            try:
                call()
            except ConcurrentUseError:
                refused.add(name)
            worker.join()
            if name in refused:
                break
    assert refused == set(calls)


def test_callbacks_run_after_the_claim_is_released():
    seen = []
    book = L2Book(ETH, on_gap=lambda expected, got: seen.append(book.bbo()),
                  checksum=lambda b: b.depth(BUY, 1)[0].tolist() != [])
    book.apply_snapshot([100], [1], [101], [1])
    book.apply(BUY, 99, 1, seq=5)
    book.apply(BUY, 98, 1, seq=7)                         # a gap: on_gap queries the book
    assert seen == [(100, 1, 101, 1)] and book.gaps == 1


# ------------------------------------------------------ exact integer arguments

@pytest.mark.parametrize("inexact", [float, np.float64, Decimal, lambda v: v + 0.7])
@pytest.mark.parametrize("argument", ["side", "price", "size", "seq", "time"])
def test_apply_refuses_non_integers(argument, inexact):
    book = seeded()
    before = state(book)
    arguments = {"side": BUY, "price": 98, "size": 1, "seq": 3, "time": 2_000}
    arguments[argument] = inexact(arguments[argument])
    with pytest.raises(TypeError, match=argument):
        book.apply(**arguments)
    assert state(book) == before


@pytest.mark.parametrize("kind", [np.int64, np.int32, np.uint16, int])
def test_apply_takes_numpy_integers(kind):
    book = seeded()
    assert book.apply(kind(BUY), kind(98), kind(5), seq=kind(3), time=kind(2_000))
    assert book.size_at(kind(BUY), kind(98)) == 5 and book.last_seq == 3


# Exact ints are read straight from the object up to two machine digits (2**60 with
# 30-bit digits); each side of each digit boundary, and the bigger ints of the slow path.
DIGIT_EDGES = sorted({v for e in (15, 30, 45, 60, 62) for v in (2**e - 1, 2**e, 2**e + 1)}
                     | {1, 2, 9_007_199_254_740_992})


@pytest.mark.parametrize("value", DIGIT_EDGES)
def test_apply_keeps_ints_exact_at_every_digit_boundary(value):
    book = L2Book(ETH)
    price, size = min(value, 9_007_199_254_740_992), min(value, 9_007_199_254_740_992)
    assert book.apply(SELL, price, size, seq=value, time=value)
    assert book.size_at(SELL, price) == size and book.best_ask() == price
    assert (book.last_seq, book.last_time) == (value, value)
    with pytest.raises(MarketDataError, match=f"got {-value}$"):    # read exactly, sign too
        book.apply(BUY, -value, 1)
    with pytest.raises(MarketDataError, match=f"got {-value}$"):
        book.apply(BUY, 5, -value)


def test_queries_refuse_non_integers():
    book = seeded()
    for call in (lambda: book.size_at(BUY, 100.0), lambda: book.impact(BUY, 1.5),
                 lambda: book.depth(0.0, 5), lambda: book.imbalance(2.0),
                 lambda: book.apply_snapshot([100], [1], [101], [1], time=5.5),
                 lambda: book.apply_levels([[], []], time=Decimal(5))):
        with pytest.raises(TypeError):
            call()


def test_side_out_of_any_int_range_is_refused_not_truncated():
    book = seeded()
    for side in (2**32, -(2**32), 2**32 + 1):
        with pytest.raises(MarketDataError):
            book.depth(side, 5)
        with pytest.raises(MarketDataError):
            book.apply(side, 98, 1)


@pytest.mark.parametrize("argument", ["side", "price", "size", "seq", "time"])
@pytest.mark.parametrize("value", [2**64, -(2**64), 2**63])
def test_arguments_past_int64_are_market_data_errors(argument, value):
    # They raised OverflowError from the conversion, unlike every other bad argument.
    book = seeded()
    before = state(book)
    arguments = {"side": BUY, "price": 98, "size": 1, "seq": 0, "time": 0, argument: value}
    with pytest.raises(MarketDataError, match=f"{argument} .* is outside int64"):
        book.apply(**arguments)
    assert state(book) == before


# ------------------------------------------------------------- sequences

@pytest.mark.parametrize("seq", [INT64_MAX, -1, -(2**63)])
def test_a_seq_that_cannot_be_followed_is_refused(seq):
    book = seeded()
    before = state(book)
    with pytest.raises(MarketDataError, match="seq"):
        book.apply(BUY, 98, 1, seq=seq)
    deltas = np.zeros(1, dtype=L2_DELTA_DTYPE)
    deltas["side"], deltas["price"], deltas["size"], deltas["seq"] = BUY, 98, 1, seq
    with pytest.raises(MarketDataError, match="seq"):
        book.apply_batch(deltas)
    assert state(book) == before


def test_the_last_followable_seq_is_accepted_and_followed():
    book = seeded()
    assert book.apply(BUY, 98, 1, seq=INT64_MAX - 1)
    assert book.last_seq == INT64_MAX - 1 and book.valid
    book.apply(BUY, 97, 1, seq=1)                         # a replay from the start: a gap
    assert book.gaps == 1 and book.last_seq == 1


def test_negative_times_are_refused():
    book = seeded()
    with pytest.raises(MarketDataError, match="time"):
        book.apply(BUY, 98, 1, time=-1)
    with pytest.raises(MarketDataError, match="time"):
        book.apply_snapshot([100], [1], [101], [1], time=-1)


# --------------------------------------------------------- float -> int casts

@pytest.mark.parametrize("notional", [1e30, 1e300, float("inf")])
def test_a_huge_notional_takes_the_whole_side(notional):
    book = seeded()
    average, worst, size = book.impact_notional(BUY, notional)
    assert (worst, size) == (102, 7) and average == pytest.approx((101 * 3 + 102 * 4) / 7)
    average, worst, size = book.impact_notional(SELL, notional)
    assert (worst, size) == (99, 3)


def test_a_small_notional_takes_part_of_a_level():
    book = seeded()
    assert book.impact_notional(BUY, 101 * 2 + 50) == (101.0, 101, 2)


# ---------------------------------------------------------- malformed levels

@pytest.mark.parametrize("levels", [
    [{"0": 1}, []], [None, None], [[], None], [None, []], [{}, {}], ["ab", []],
    [[None], []], [[[]], []], [[{"px": "1.00"}], []], [[1], []],
])
def test_malformed_levels_raise_market_data_error_and_change_nothing(levels):
    book = seeded()
    before = state(book)
    with pytest.raises(MarketDataError):
        book.apply_levels(levels)
    assert state(book) == before


# ------------------------------------------------------------ big snapshots

def test_a_200k_level_shuffled_snapshot_equals_the_sorted_one():
    book = L2Book(ETH, max_levels=200_000)
    rng = np.random.default_rng(1)
    bid_prices = np.arange(1, 200_001, dtype=np.int64)
    ask_prices = np.arange(300_001, 500_001, dtype=np.int64)
    bid_sizes = rng.integers(1, 1_000, len(bid_prices))
    ask_sizes = rng.integers(1, 1_000, len(ask_prices))
    bid_order, ask_order = rng.permutation(len(bid_prices)), rng.permutation(len(ask_prices))
    assert book.apply_snapshot(bid_prices[bid_order], bid_sizes[bid_order],
                               ask_prices[ask_order], ask_sizes[ask_order])
    bids, asks = book.depth(BUY, 10**6), book.depth(SELL, 10**6)
    expected = np.argsort(-bid_prices, kind="stable")       # the reference sort: best first
    assert np.array_equal(bids[0], bid_prices[expected])
    assert np.array_equal(bids[1], bid_sizes[expected])
    assert np.array_equal(asks[0], ask_prices) and np.array_equal(asks[1], ask_sizes)
    # reversed (worst first) and best first give the same book
    for order in (slice(None), slice(None, None, -1)):
        again = L2Book(ETH, max_levels=200_000)
        again.apply_snapshot(bid_prices[order], bid_sizes[order],
                             ask_prices[order], ask_sizes[order])
        assert np.array_equal(again.depth(BUY, 10**6)[0], bids[0])
        assert np.array_equal(again.depth(SELL, 10**6)[1], asks[1])


def test_a_shuffled_snapshot_with_a_repeated_price_is_refused():
    book = seeded()
    before = state(book)
    prices = np.array([5, 9, 3, 7, 9, 1, 2], dtype=np.int64)
    with pytest.raises(MarketDataError, match="repeats a bid"):
        book.apply_snapshot(prices, np.ones(len(prices), dtype=np.int64), [101], [1])
    assert state(book) == before


def test_more_levels_than_max_levels_are_refused_and_change_nothing():
    book = seeded(max_levels=3)
    assert book.max_levels == 3
    before = state(book)
    with pytest.raises(MarketDataError, match="max_levels=3"):
        book.apply_snapshot([99, 98, 97, 96], [1, 1, 1, 1], [101], [1])
    with pytest.raises(MarketDataError, match="max_levels=3"):
        book.apply_levels([[], [{"px": f"{p}.00", "sz": "1"} for p in (1, 2, 3, 4)]])
    assert state(book) == before
    assert book.apply_snapshot([99, 98, 97], [1, 1, 1], [101], [1])
    with pytest.raises(ValueError, match="max_levels"):
        L2Book(ETH, max_levels=0)


def test_max_levels_holds_on_the_frame_path_too():
    book = L2Book(DYDX, max_levels=2)
    levels = [[{"px": f"1.{i:04d}", "sz": "1.0", "n": 1} for i in range(3, 0, -1)], []]
    raw = json.dumps({"coin": "DYDX", "time": 5, "levels": levels}).encode()
    for apply in (apply_l2_message, apply_l2_json):
        with pytest.raises(MarketDataError, match="max_levels=2"):
            apply(book, raw)
    assert book.bid_levels == 0 and book.last_time == 0


# ---------------------------------------------------- frame integer edges

def frame(time_text: str, n_text: str = "1") -> bytes:
    return (b'{"coin":"DYDX","time":' + time_text.encode() + b',"levels":[[{"px":"1.0000",'
            b'"sz":"1.0","n":' + n_text.encode() + b'}],[{"px":"2.0000","sz":"1.0","n":1}]]}')


def outcome(apply, raw):
    book = L2Book(DYDX)
    book.apply_snapshot([10_000], [10], [30_000], [10], time=1_700_000_000_000)
    try:
        result = ("ok", apply(book, raw))
    except Exception as exc:  # noqa: BLE001 - the two paths must fail alike
        result = ("error", type(exc).__name__, str(exc))
    return result, state(book)


INTEGER_EDGES = ["0", "1", "1700000000001", str(2**62), str(INT64_MAX), str(2**63),
                 str(2**64 - 1), str(2**64), "22446744073709551616", "9" * 40,
                 "00", "01700000000001", "-1", "-0", str(-(2**63)), "1.0", "1e3"]


@pytest.mark.parametrize("time_text", INTEGER_EDGES)
def test_both_paths_agree_on_integer_edges_in_time(time_text):
    raw = frame(time_text)
    assert outcome(apply_l2_message, raw) == outcome(apply_l2_json, raw)


@pytest.mark.parametrize("n_text", INTEGER_EDGES)
def test_both_paths_agree_on_integer_edges_in_n(n_text):
    raw = frame("1700000000001", n_text)
    assert outcome(apply_l2_message, raw) == outcome(apply_l2_json, raw)


def test_a_time_past_int64_never_freezes_the_book():
    book = L2Book(DYDX)
    for huge in ("22446744073709551616", str(2**64 - 1), str(2**63)):
        assert apply_hyperliquid_l2_frame(book, frame(huge)) is None     # the JSON path decides
        with pytest.raises(MarketDataError, match="time"):
            apply_l2_message(book, frame(huge))
    assert book.last_time == 0 and not book.valid
    assert apply_l2_message(book, frame("1700000000001"))              # real frames still apply
    assert book.valid and book.last_time == 1_700_000_000_001


def test_the_largest_time_is_read_exactly():
    book = L2Book(DYDX)
    assert apply_hyperliquid_l2_frame(book, frame(str(INT64_MAX))) is True
    assert book.last_time == INT64_MAX


def test_clear_forgets_the_last_time_and_seq():
    book = L2Book(DYDX)
    assert apply_l2_message(book, frame("1700000000001"))
    book.apply(BUY, 5_000, 1, seq=9)
    book.clear()
    assert (book.last_time, book.last_seq, book.valid) == (0, 0, False)
    assert apply_l2_message(book, frame("1600000000000"))              # an older feed: fresh start
    assert book.valid and book.last_time == 1_600_000_000_000


# ------------------------------------------------------------- batches and crossed books

def deltas_of(*rows):
    deltas = np.zeros(len(rows), dtype=L2_DELTA_DTYPE)
    for i, (side, price, size) in enumerate(rows):
        deltas[i]["side"], deltas[i]["price"], deltas[i]["size"] = side, price, size
    return deltas


@pytest.mark.parametrize("policy", [CrossedPolicy.DROP_STALE, CrossedPolicy.INVALIDATE])
@pytest.mark.parametrize("rows", [[(BUY, 90, 1)], [(BUY, 90, 0)], [(SELL, 110, 2), (BUY, 90, 1)],
                                  [(BUY, 105, 0), (BUY, 99, 1)]])
def test_a_batch_on_a_crossed_book_does_what_apply_does(policy, rows):
    # A crossed snapshot is kept under these policies; apply() then dropped the stale side
    # on the next delta, but apply_batch's fast path only tested the new level.
    def crossed():
        book = L2Book(ETH, crossed_policy=policy)
        book.apply_snapshot([105], [1], [100], [1])
        return book
    one_by_one, batch = crossed(), crossed()
    tops = np.zeros(len(rows), dtype=L2_TOP_DTYPE)
    expected_tops = []
    for side, price, size in rows:
        one_by_one.apply(side, price, size)
        expected_tops.append(one_by_one.bbo())
    batch.apply_batch(deltas_of(*rows), tops)
    assert state(batch) == state(one_by_one)
    assert [tuple(int(v) for v in top) for top in tops.tolist()] == \
        [tuple(0 if v is None else v for v in top) for top in expected_tops]


@pytest.mark.parametrize("make_top", [
    lambda: np.zeros((4, 1), dtype=L2_TOP_DTYPE)[:, :0],     # shape (4, 0): no bytes at all
    lambda: np.zeros((4, 2), dtype=L2_TOP_DTYPE),
    lambda: np.zeros(4, dtype=L2_TOP_DTYPE)[::-1].copy()[None, :],
])
def test_a_top_array_that_is_not_one_row_per_delta_is_refused(make_top):
    # The (4, 0) view was written through into its parent (and a large one crashed).
    book = seeded()
    before = state(book)
    top = make_top()
    parent = top.base if top.base is not None else top
    parent_bytes = parent.tobytes()
    with pytest.raises(TypeError, match="one-dimensional"):
        book.apply_batch(deltas_of((BUY, 98, 1), (BUY, 97, 1), (SELL, 103, 1), (SELL, 104, 1)),
                         top)
    assert state(book) == before and parent.tobytes() == parent_bytes


def test_a_read_only_top_array_is_a_type_error_like_any_other_bad_top():
    top = np.zeros(1, dtype=L2_TOP_DTYPE)
    top.flags.writeable = False
    book = seeded()
    with pytest.raises(TypeError, match="writable"):
        book.apply_batch(deltas_of((BUY, 98, 1)), top)


def test_taking_more_lots_than_int64_holds_is_an_overflow_error_not_a_negative_size():
    levels = 1_025                                  # of 2**53 lots each: past 2**63 - 1
    book = L2Book(ETH, max_levels=2_000)
    book.apply_snapshot([], [], np.arange(100, 100 + levels), np.full(levels, 2**53))
    with pytest.raises(OverflowError, match="2\\*\\*63 - 1 lots"):
        book.impact_notional(BUY, float("inf"))
    assert book.impact_notional(BUY, 1e9)[2] > 0


def test_an_empty_side_may_be_an_empty_list():
    # np.ascontiguousarray([]) is float64, and an empty side was refused as non-integer.
    book = L2Book(ETH)
    assert book.apply_snapshot([100], [1], [], [])
    assert book.bbo() == (100, 1, None, 0)
    with pytest.raises(TypeError, match="integer"):
        book.apply_snapshot([100.0], [1], [], [])
