"""asv benchmarks of the order book, the matching engine, the pure-Python reference and
the physical limit (a minimal C matcher) on a deep book.

Workloads are built once per environment in `setup_cache`; each timed call
starts from a book restored from the seeded snapshot (the deep mix: from an
empty book), so every sample replays the same stream over the same book.
The replay loops are the ones of ``obelisk bench`` (obelisk.perf).
"""

import time

import numpy as np

from obelisk import MatchingEngine, OrderBook, Side

from .common import FreshState

EVENTS = 50_000
SEED_ORDERS = 5_000
CHUNK = 4_096


class BookSuite(FreshState):
    """The standard L3 mix through the batch and per-call paths."""

    timeout = 120
    repeat = (3, 10, 20.0)

    def setup_cache(self):
        from obelisk.testing.workload import standard_mix

        workload = standard_mix(EVENTS, SEED_ORDERS, seed=42)
        book = OrderBook(2 * SEED_ORDERS)
        book.process(workload.seed_events)
        return workload, book.snapshot()

    def setup(self, cache):
        from obelisk.perf.bench import chunked, process_chunks, replay_per_call

        self.process_chunks, self.replay_per_call = process_chunks, replay_per_call
        workload, snapshot = cache
        self.events = workload.events
        self.chunks = chunked(workload.events, CHUNK)
        fields = ["kind", "oid", "side", "price", "qty", "tif", "owner"]
        self.tuples = workload.events[fields].tolist()
        self.book = OrderBook.restore(snapshot, capacity=2 * SEED_ORDERS)

    def time_batch_one_call(self, cache):
        self.book.process(self.events)

    def time_batch_chunked(self, cache):
        self.process_chunks(self.book, self.chunks)

    def time_per_call(self, cache):
        self.replay_per_call(self.book, self.tuples)

    def track_batch_ns_per_event(self, cache):
        """Nanoseconds per event on the chunked batch path (lower is better, unlike events/s)."""
        start = time.perf_counter()
        self.process_chunks(self.book, self.chunks)
        return (time.perf_counter() - start) / len(self.events) * 1e9

    track_batch_ns_per_event.unit = "ns/event"

    def peakmem_batch(self, cache):
        self.book.process(self.events)


class DeepBookSuite(FreshState):
    """The deep mix from an empty book: a fresh OrderBook per sample, as a backtest makes
    one, a book preallocated for the stream, and the limit loop that bounds them both."""

    timeout = 120
    repeat = (3, 10, 20.0)

    def setup_cache(self):
        from obelisk.testing.workload import deep_mix

        return deep_mix(seed=42).events

    def setup(self, events):
        from obelisk._core.limit import LimitLoop
        from obelisk.perf.rows.deep import fresh_run, preallocated_book

        self.fresh_run = fresh_run
        self.book = preallocated_book(events)
        self.loop = LimitLoop(events)

    def time_fresh_book(self, events):
        self.kept = self.fresh_run(events)     # kept, so freeing the book is not timed

    def time_preallocated_book(self, events):
        self.book.process(events)

    def time_limit_loop(self, events):
        self.loop.run()


class OrderIdSuite(FreshState):
    """100,000 adds, then as many cancels, per call, under three sets of order ids:
    counters, random ids, and ids chosen to share one home under the id index's
    unkeyed hash. Chosen ids should cost at most 2x random ones (issue 13)."""

    params = ["counter", "random", "chosen"]
    param_names = ["ids"]
    timeout = 120

    def setup(self, ids):
        from obelisk.testing.workload import order_ids

        self.ids = order_ids(ids, 100_000)

    def time_add_then_cancel(self, ids):
        book = OrderBook(1024)
        add, cancel = book.add, book.cancel
        for k, oid in enumerate(self.ids):
            add(oid, Side.BUY, 1_000 + k % 100, 1)
        for oid in self.ids:
            cancel(oid)


class ReferenceSuite(FreshState):
    """The pure-Python reference on a prefix of the same stream, for the speedup ratio."""

    timeout = 300

    def setup(self):
        from obelisk.testing.reference import ReferenceBook
        from obelisk.testing.workload import standard_mix

        workload = standard_mix(5_000, 1_000, seed=42)
        self.events = workload.events
        self.reference = ReferenceBook(2_000)
        self.reference.process(workload.seed_events)

    def time_reference_batch(self):
        self.reference.process(self.events)


class EngineSuite(FreshState):
    """Two assets through MatchingEngine on one and two threads."""

    params = [1, 2]
    param_names = ["threads"]
    timeout = 120

    def setup_cache(self):
        from obelisk.testing.workload import interleave, standard_mix

        return interleave([standard_mix(EVENTS, SEED_ORDERS, seed=s).with_asset(s) for s in (0, 1)])

    def setup(self, mixed, threads):
        from obelisk.perf.bench import chunked, process_chunks

        self.process_chunks = process_chunks
        self.engine = MatchingEngine([0, 1], capacity=2 * SEED_ORDERS, threads=threads)
        self.engine.process(mixed.seed_events)
        self.chunks = chunked(mixed.events, 4 * CHUNK)

    def teardown(self, mixed, threads):
        self.engine.close()

    def time_engine(self, mixed, threads):
        self.process_chunks(self.engine, self.chunks)


class PoolSuite:
    def setup(self):
        from obelisk._core.pool import OrderPool
        self.pool = OrderPool(1024, growable=False)

    def time_acquire_release(self):
        acquire, release = self.pool.acquire, self.pool.release
        for _ in range(1000):
            release(acquire())


class L2Suite(FreshState):
    """The standard L2 stream through L2Book per call and in one batch, and the limit loop
    that bounds the batch."""

    timeout = 120

    def setup_cache(self):
        from obelisk.testing.workload import l2_stream
        return l2_stream(50_000, seed=42)

    def setup(self, workload):
        from obelisk import L2_TOP_DTYPE, L2Book
        from obelisk.perf.rows.l2 import apply_and_read_top, l2_limit_loop
        from obelisk.testing.workload import SYNTHETIC_GRID

        self.apply_and_read_top = apply_and_read_top
        self.book = L2Book(SYNTHETIC_GRID)
        workload.load(self.book)
        self.loop = l2_limit_loop(workload)
        self.rows = workload.deltas[["side", "price", "size"]].tolist()
        self.top = np.zeros(len(workload.deltas), dtype=L2_TOP_DTYPE)

    def time_apply_per_call(self, workload):
        self.apply_and_read_top(self.book, self.rows)

    def time_apply_batch(self, workload):
        self.book.apply_batch(workload.deltas, self.top)

    def time_limit_loop(self, workload):
        self.loop.run()


class PositionSuite(FreshState):
    """Fills through a PositionBook per call and in one batch, and a full margin recompute
    with its limit loop (the same numbers over columns, nothing checked or kept)."""

    timeout = 120

    def setup_cache(self):
        from obelisk.testing.workload import fill_stream
        return fill_stream(50_000, 200, seed=42), fill_stream(20_000, 10_000, seed=42)

    def setup(self, workloads):
        from obelisk.perf.rows.position import apply_each_fill

        self.apply_each_fill = apply_each_fill
        account, many = workloads
        self.book = account.fresh_book()
        self.rows = account.fills[["asset", "size", "price", "maker"]].tolist()
        self.many = many.fresh_book()
        self.many.apply_fills(many.fills)
        from obelisk._core.limit import RecomputeLimitLoop

        self.limit = RecomputeLimitLoop(self.many)
        self.limit_marks = self.limit.padded_marks(many.marks)

    def time_apply_fill_per_call(self, workloads):
        self.apply_each_fill(self.book, self.rows)

    def time_apply_fills_batch(self, workloads):
        self.book.apply_fills(workloads[0].fills)

    def time_recompute_10k_positions(self, workloads):
        self.many.mark(workloads[1].marks)

    def time_recompute_limit_10k_positions(self, workloads):
        self.limit.run(self.limit_marks)


class RiskSuite(FreshState):
    """Pre-trade checks with every limit on, one at a time and in a batch."""

    timeout = 120

    def setup(self):
        from obelisk.perf.rows.risk import check_each, risk_workload

        self.check_each = check_each
        fresh, self.named, self.batch = risk_workload(50_000, seed=42)
        self.risk = fresh()

    def time_check_per_call(self):
        self.check_each(self.risk, self.named)

    def time_check_batch(self):
        self.risk.check_batch(self.batch)
