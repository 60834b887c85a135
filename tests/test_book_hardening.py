"""OrderBook under adversarial use: threads sharing one book, non-integer
arguments, chosen order ids, and deep books meeting small orders (issue 13)."""

import subprocess
import sys
import textwrap
from decimal import Decimal

import numpy as np
import pytest

from obelisk import (
    EVENT_DTYPE,
    FILL_DTYPE,
    ORDER_EVENT_DTYPE,
    EventKind,
    L2Book,
    OrderBook,
    OrderStatus,
    Side,
)
from obelisk._core.sharded import process_sharded
from obelisk.errors import ConcurrentUseError, InvalidOrderError
from obelisk.testing.workload import FIBONACCI, SYNTHETIC_GRID, order_ids

BUY, SELL = Side.BUY, Side.SELL


# ------------------------------------------------------- one user at a time

_RACE = textwrap.dedent("""
    import sys, threading, time
    import numpy as np
    from obelisk import EVENT_DTYPE, EventKind, OrderBook, Side
    from obelisk.errors import ConcurrentUseError

    sys.setswitchinterval(1e-5)
    book = OrderBook(64)
    n = 4000
    adds = np.zeros(n, dtype=EVENT_DTYPE)
    adds["kind"] = EventKind.LIMIT
    adds["oid"] = np.arange(1, n + 1)
    adds["side"] = np.arange(n) % 2
    adds["price"] = np.where(adds["side"] == Side.BUY, 1000 - np.arange(n) % 50,
                             1001 + np.arange(n) % 50)
    adds["qty"] = 1
    cancels = adds.copy()
    cancels["kind"] = EventKind.CANCEL
    stop = time.monotonic() + float(sys.argv[1])
    refused = [0]
    other = []

    def batches():
        while time.monotonic() < stop:
            for events in (adds, cancels):
                try:
                    book.process(events)
                except ConcurrentUseError:
                    refused[0] += 1

    def readers():
        oid = 10**9
        calls = (book.orders, book.snapshot, book.bbo, lambda: book.depth(Side.BUY, 100),
                 book.last_fills, lambda: len(book), lambda: book.memory_usage(),
                 lambda: book.add(oid, Side.BUY, 1, 1), lambda: book.cancel(oid),
                 lambda: 5 in book, lambda: book.order(7), book.check_integrity)
        while time.monotonic() < stop:
            for call in calls:
                try:
                    call()
                except ConcurrentUseError:
                    refused[0] += 1
                except Exception as exc:  # only the refusal is allowed
                    if not (call is calls[8] and type(exc).__name__ == "UnknownOrderError"):
                        other.append(repr(exc))
            oid += 1

    threads = [threading.Thread(target=batches), threading.Thread(target=readers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    book.check_integrity()
    assert not other, other[:5]
    assert refused[0] > 0, "the threads never overlapped"
    print("refused", refused[0])
""")


def test_two_threads_on_one_book_get_concurrent_use_errors_never_corruption():
    # A subprocess, so that heap corruption (the failure before the fix) fails
    # this test instead of killing pytest.
    done = subprocess.run([sys.executable, "-c", _RACE, "2.0"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    assert done.stdout.startswith("refused")


def test_a_held_book_refuses_every_entry_point():
    book = OrderBook(8)
    book.add(1, SELL, 100, 2)
    calls = {
        "add": lambda: book.add(2, BUY, 90, 1), "market": lambda: book.market(3, BUY, 1),
        "cancel": lambda: book.cancel(1), "modify": lambda: book.modify(1, 101, 1),
        "process": lambda: book.process(np.zeros(0, dtype=EVENT_DTYPE)),
        "orders": book.orders, "snapshot": book.snapshot, "bbo": book.bbo,
        "best_bid": book.best_bid, "best_ask_qty": book.best_ask_qty, "spread": book.spread,
        "mid": book.mid, "depth": lambda: book.depth(SELL),
        "size_at": lambda: book.size_at(SELL, 100),
        "order": lambda: book.order(1), "queue_ahead": lambda: book.queue_ahead(1),
        "contains": lambda: 1 in book, "len": lambda: len(book),
        "order_count": lambda: book.order_count, "sequence": lambda: book.sequence,
        "last_status": lambda: book.last_status, "last_fills": book.last_fills,
        "last_order_events": book.last_order_events, "last_fill_rows": book.last_fill_rows,
        "last_order_event_rows": book.last_order_event_rows,
        "reserve": lambda: book.reserve(4, 4),
        "pool_stats": book.pool_stats, "memory_usage": book.memory_usage,
        "check_integrity": book.check_integrity, "init": lambda: book.__init__(8),
    }
    refused = []

    def run_in_parallel(tasks):
        if not refused:
            for name, call in calls.items():
                with pytest.raises(ConcurrentUseError, match="another thread"):
                    call()
                refused.append(name)
        return [task() for task in tasks]

    process_sharded([book], np.zeros(0, dtype=EVENT_DTYPE), [list], run_in_parallel)
    assert refused == list(calls)
    assert book.bbo() == (None, 0, 100, 2)       # released afterwards
    book.check_integrity()


# --------------------------------------------------------- integer arguments

@pytest.mark.parametrize("bad", [100.99, np.float64(100.0), Decimal("100"), "100", None])
@pytest.mark.parametrize("call", [
    lambda b, x: b.add(x, BUY, 100, 1), lambda b, x: b.add(3, BUY, x, 1),
    lambda b, x: b.add(3, BUY, 100, x), lambda b, x: b.add(3, BUY, 100, 1, owner=x),
    lambda b, x: b.add(3, x, 100, 1), lambda b, x: b.market(x, BUY, 1),
    lambda b, x: b.market(3, BUY, x), lambda b, x: b.market(3, BUY, 1, protection_price=x),
    lambda b, x: b.cancel(x), lambda b, x: b.modify(x, 90, 1), lambda b, x: b.modify(1, x, 1),
    lambda b, x: b.modify(1, 90, x), lambda b, x: b.order(x), lambda b, x: b.queue_ahead(x),
    lambda b, x: b.size_at(BUY, x), lambda b, x: x in b,
], ids=["add.oid", "add.price", "add.qty", "add.owner", "add.side", "market.oid", "market.qty",
        "market.protection", "cancel.oid", "modify.oid", "modify.price", "modify.qty",
        "order.oid", "queue_ahead.oid", "size_at.price", "contains.oid"])
def test_non_integer_arguments_raise_type_error_and_change_nothing(call, bad):
    book = OrderBook(8)
    book.add(1, BUY, 100, 5)
    before = book.snapshot()
    with pytest.raises(TypeError, match="must be an integer"):
        call(book, bad)
    assert book.snapshot() == before


def test_fractional_prices_and_ids_are_not_truncated():
    book = OrderBook(8)
    book.add(1, BUY, 90, 5)
    with pytest.raises(TypeError):
        book.add(3, SELL, 100.99, 7.8)
    with pytest.raises(TypeError):
        book.cancel(1.9)
    assert len(book) == 1 and book.order(1).qty == 5


@pytest.mark.parametrize("nan", [float("nan"), np.float64("nan"), Decimal("NaN")])
def test_a_nan_id_raises_invalid_order_error(nan):
    book = OrderBook(8)
    with pytest.raises(InvalidOrderError, match="NaN"):
        book.add(nan, BUY, 100, 1)
    with pytest.raises(InvalidOrderError, match="NaN"):
        book.cancel(nan)
    assert len(book) == 0


def test_numpy_integers_and_enums_are_accepted():
    book = OrderBook(8)
    assert book.add(np.int64(1), np.uint8(BUY), np.int32(100), np.uint64(3), tif=np.int8(0),
                    owner=np.uint32(7)) == OrderStatus.RESTED
    assert book.add(2, Side.SELL, 101, True) == OrderStatus.RESTED
    assert book.modify(np.int16(1), np.int64(100), np.int64(2)) == OrderStatus.MODIFIED
    assert book.order(np.int64(1)).owner == 7 and np.int32(2) in book
    assert book.cancel(np.int64(1)) == 2
    with pytest.raises(OverflowError):
        book.add(5, BUY, 100, 1, owner=2**32)
    with pytest.raises(OverflowError):
        book.add(2**63, BUY, 100, 1)


@pytest.mark.parametrize("value", sorted(
    {v for e in (15, 30, 45, 60, 62) for v in (2**e - 1, 2**e, 2**e + 1)} | {1, 2**63 - 1}))
def test_ids_prices_and_quantities_stay_exact_at_every_digit_boundary(value):
    # small exact ints are read straight from the int object (one or two digits); the
    # rest take the slow path: both must give the same integer
    book = OrderBook(8)
    price = min(value, 2**53)
    qty = min(value, 2**53)
    assert book.add(value, SELL, price, qty, owner=min(value, 2**32 - 1)) == OrderStatus.RESTED
    resting = book.order(value)
    assert (resting.oid, resting.price, resting.qty) == (value, price, qty)
    assert resting.owner == min(value, 2**32 - 1)
    assert book.cancel(value) == qty and len(book) == 0
    with pytest.raises(InvalidOrderError):
        book.add(1, BUY, -min(value, 2**53), 1)


# ------------------------------------------------------------- id flooding

def _fill_and_empty(ids):
    book = OrderBook(1024)
    assert book._id_index_max_probe() == 0
    for k, oid in enumerate(ids):
        book.add(oid, BUY, 1000 + k % 100, 1)
    longest = book._id_index_max_probe()
    for oid in ids[::2]:
        assert book.cancel(oid) == 1
    book.check_integrity()
    for oid in ids[1::2]:
        assert book.cancel(oid) == 1
    assert len(book) == 0
    return longest


def test_chosen_ids_cannot_flood_the_id_index():
    chosen = _fill_and_empty(order_ids("chosen", 100_000))
    random = _fill_and_empty(order_ids("random", 100_000, seed=13))
    # Under Fibonacci hashing every chosen id shares one home: a probe of up to
    # 100,000 buckets. The index switches to its keyed hash, and both sets probe
    # a few dozen at most.
    assert random < 100 and chosen < 100, (chosen, random)


def test_chosen_ids_switch_the_hash_within_a_few_hundred_ids():
    book = OrderBook(1024)
    for k, oid in enumerate(order_ids("chosen", 2_000)):
        book.add(oid, BUY, 1000 + k % 100, 1)
        if k == 100:
            assert not book._id_index_keyed()     # 100 walks of up to 100 steps: no debt yet
    assert book._id_index_keyed()
    assert book._id_index_max_probe() < 100      # unswitched: 1,999


def test_counter_ids_keep_fibonacci_hashing_and_spread_perfectly():
    """The reason for starting unkeyed: a keyed hash clusters ids 1, 2, 3, ... (a longest
    probe of about 15 at 100k ids), and uneven walks mispredict branches on every call."""
    book = OrderBook(1024)
    ids = order_ids("counter", 100_000)
    for k, oid in enumerate(ids):
        book.add(oid, BUY, 1000 + k % 100, 1)
    for oid in ids[::3]:
        book.cancel(oid)
    assert book._id_index_max_probe() == 0
    assert not book._id_index_keyed()


def _ids_with_homes(first_home, count, buckets):
    """Positive int64 ids whose Fibonacci homes in a map of `buckets` (a power of two)
    are consecutive: the hash's top bits are the home, the rest are free."""
    bits = buckets.bit_length() - 1
    inverse = pow(FIBONACCI, -1, 2**64)
    ids = []
    for home in range(first_home, first_home + count):
        free = 0
        while not 0 < (oid := (((home << (64 - bits)) | free) * inverse) % 2**64) < 2**63:
            free += 1
        ids.append(oid)
    return ids


def test_a_run_of_ids_each_at_its_home_cannot_make_deletes_quadratic():
    """Ids at consecutive homes probe nothing when added, but without the switch each
    cancel from the run's start walks to its end: 40,000 of them walk 800 million buckets."""
    book = OrderBook(60_000)                 # 131,072 buckets at load <= 3/4
    ids = _ids_with_homes(1, 40_000, 131_072)
    for k, oid in enumerate(ids):
        book.add(oid, BUY, 1000 + k % 100, 1)
    assert not book._id_index_keyed() and book._id_index_max_probe() == 0
    for oid in ids[:50]:
        assert book.cancel(oid) == 1
    assert book._id_index_keyed()
    for oid in ids[50:]:
        assert book.cancel(oid) == 1
    assert len(book) == 0


def test_the_hash_key_is_not_part_of_the_books_state():
    ids = order_ids("chosen", 500)
    books = [OrderBook(16), OrderBook(16)]
    for book in books:
        for k, oid in enumerate(ids):
            book.add(oid, SELL if k % 2 else BUY, 500 + (k % 7) if k % 2 else 400 - k % 7, 1 + k)
        book.cancel(ids[10])
    assert books[0].snapshot() == books[1].snapshot()
    again = OrderBook.restore(books[0].snapshot())
    assert again.snapshot() == books[0].snapshot()
    assert all(oid in again for oid in ids if oid != ids[10])


# ----------------------------------------------- tapes sized by the order

def _deep_book(orders, owner=0):
    book = OrderBook(orders)
    for k in range(orders):               # one by one: each call starts the tapes afresh
        book.add(k + 1, SELL, 1000 + k // 4, 2, owner=owner)   # four orders a level
    return book


_SMALL_TAPES = 64 * 1024


@pytest.mark.parametrize("owner", [0, 9])
def test_a_small_order_against_a_deep_book_reserves_small_tapes(owner):
    book = _deep_book(200_000, owner=1)
    assert book.memory_usage()["tapes"] < _SMALL_TAPES
    assert book.market(900_001, BUY, 3, owner=owner) == OrderStatus.FILLED
    assert book.last_fill_count == 2
    assert book.add(900_002, BUY, 900, 10**9, owner=owner) == OrderStatus.RESTED  # no cross
    events = np.zeros(1, dtype=EVENT_DTYPE)
    events[["oid", "price", "qty", "owner", "kind", "side"]] = (
        900_003, 1001, 5, owner, EventKind.LIMIT, BUY)
    assert book.process(events).results["filled_qty"].tolist() == [5]
    assert book.memory_usage()["tapes"] < _SMALL_TAPES
    book.check_integrity()


def test_a_sweep_reserves_what_it_trades_not_the_side():
    book = _deep_book(200_000)
    assert book.market(900_001, BUY, 2_000) == OrderStatus.FILLED    # 1,000 makers
    assert book.last_fill_count == 1_000
    assert book.memory_usage()["tapes"] < 4_000 * (FILL_DTYPE.itemsize + ORDER_EVENT_DTYPE.itemsize)
    fills, events = book._tape_capacity()
    assert 1_000 <= fills < 4_000 and events < 4_000


def test_self_trade_cancels_beyond_the_initial_tape_are_all_recorded():
    # 600 own orders at the touch (more than the tapes start with), then others.
    book = OrderBook(2048)
    for k in range(600):
        book.add(k + 1, SELL, 100, 1, owner=5)
    for k in range(600):
        book.add(1000 + k, SELL, 101, 1, owner=6)
    assert book.market(9999, BUY, 700, owner=5) == OrderStatus.CANCELLED
    events = book.last_order_events()
    assert len(events) == 601 == book.last_order_event_count and book.last_fill_count == 600
    assert events["oid"][:600].tolist() == list(range(1, 601))
    assert len(book) == 0
    book.check_integrity()


@pytest.mark.parametrize("price", [2**63 - 1, -2**63 + 1, 2**62, -2**62, 0])
def test_a_lookup_at_any_int64_price_finds_no_level_and_the_levels_stay_found(price):
    """A ladder places a key from its distance to the best level: a key at the far edge
    of int64 must not wrap that distance into a wrong place."""
    book, depth = OrderBook(), L2Book(SYNTHETIC_GRID)
    for i, level in enumerate((100, 103, 110)):
        book.add(i + 1, Side.SELL, level, 5)
        book.add(i + 10, Side.BUY, level - 50, 7)
        depth.apply(Side.SELL, level, 5)
        depth.apply(Side.BUY, level - 50, 7)
    for side in (Side.BUY, Side.SELL):
        assert book.size_at(side, price) == 0 and depth.size_at(side, price) == 0
        assert OrderBook().size_at(side, price) == 0    # its windows never centred
    one_sided = OrderBook()
    one_sided.add(1, Side.BUY, 100, 5)
    assert one_sided.size_at(Side.SELL, price) == 0
    assert [book.size_at(Side.SELL, p) for p in (100, 101, 103, 110)] == [5, 0, 5, 5]
    assert [depth.size_at(Side.BUY, p) for p in (50, 53, 60, 61)] == [7, 7, 7, 0]


def test_a_side_that_never_held_a_level_passes_the_integrity_check():
    # A new book leaves its price windows unwritten until a level centres them; the check
    # must not count a never-centred window's (undefined) entries as levels.
    for _ in range(50):                     # fresh blocks and reused ones
        book = OrderBook()
        book.check_integrity()
        book.add(1, Side.BUY, 100, 5)
        book.check_integrity()
        book.cancel(1)
        book.add(2, Side.SELL, 101, 5)
        book.check_integrity()
