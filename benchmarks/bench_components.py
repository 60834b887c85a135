"""asv benchmarks of the components around the book: circuit breaker, latency
histogram and monitor, trace store, Hyperliquid signing, l2Book frame decoding,
the transport's cached info call, position recovery over SimVenue and the trading
engine's cost per batch.

Conventions (as in bench_book.py):

- Everything a timed call needs is built in ``setup`` (or ``setup_cache``), never
  in the timed method; each sample starts from fresh state (see ``FreshState``).
- Every timed call does a fixed, loop-sized amount of work (a few ms to a few
  tens of ms) so one sample is well above timer resolution on a noisy 2-core VM.
- Workloads and replay loops are the ones of ``obelisk bench`` (obelisk.perf.rows),
  with fewer calls per sample.
- obelisk modules are imported inside ``setup`` (or ``setup_cache``): an older
  commit in a history run that lacks a component then reports that suite as
  failed for that commit instead of breaking the import of this whole file.
"""

import asyncio
import os
import shutil
import tempfile
import time

from .common import FreshState

CALLS = 20_000          # breaker / histogram / monitor calls per timed run


# ---------------------------------------------------------------- breaker


class BreakerSuite(FreshState):
    """The closed path of a CircuitBreaker around ``x + 1``, sync and async, vs the bare call."""

    timeout = 60
    repeat = (3, 10, 10.0)

    def setup(self):
        from obelisk.perf.rows.breaker import (
            add_one,
            add_one_async,
            await_loop,
            call_loop,
            closed_breaker,
        )

        self.call_loop, self.await_loop = call_loop, await_loop
        self.bare = add_one
        self.guarded = closed_breaker()(add_one)      # window already full of successes
        self.bare_async = add_one_async
        self.guarded_async = closed_breaker()(add_one_async)
        self.loop = asyncio.new_event_loop()

    def teardown(self):
        self.loop.close()

    def time_bare_call(self):
        self.call_loop(self.bare, CALLS)

    def time_closed_call(self):
        self.call_loop(self.guarded, CALLS)

    def time_bare_await(self):
        self.await_loop((self.loop, self.bare_async), CALLS)

    def time_closed_await(self):
        self.await_loop((self.loop, self.guarded_async), CALLS)


# ------------------------------------------------------ histogram, monitor


class LatencySuite(FreshState):
    """LatencyHistogram per call and batched, percentile queries, and PerformanceMonitor.measure."""

    timeout = 60
    repeat = (3, 10, 10.0)

    def setup(self):
        from obelisk._core.histogram import LatencyHistogram
        from obelisk.monitor import PerformanceMonitor
        from obelisk.perf.rows.monitor import latency_samples, measure_empty_blocks, record_each

        self.record_each, self.measure_empty_blocks = record_each, measure_empty_blocks
        self.latencies = latency_samples(CALLS)
        self.values = self.latencies.tolist()
        self.histogram = LatencyHistogram()
        self.full = LatencyHistogram()
        self.full.record_many(self.latencies)
        self.monitor = PerformanceMonitor()

    def time_histogram_record_per_call(self):
        self.record_each(self.histogram, self.values)

    def time_histogram_record_many(self):
        self.histogram.record_many(self.latencies)

    def time_histogram_percentiles(self):
        percentiles = self.full.percentiles
        for _ in range(1_000):
            percentiles((50.0, 90.0, 99.0, 99.9))

    def time_monitor_measure(self):
        self.measure_empty_blocks(self.monitor, CALLS)


# ---------------------------------------------------------------- store


TRACES = 10_000


class _TraceStoreSuite(FreshState):
    """The traces of ``obelisk bench`` into a fresh database per sample, opened in setup,
    closed and removed in teardown, outside the timing."""

    timeout = 120

    def setup_cache(self):
        from obelisk.perf.rows.store import trace_workload
        return trace_workload(TRACES)

    def open_store(self, **settings):
        from obelisk.store import TraceStore

        self.folder = tempfile.mkdtemp(prefix="obelisk-asv-")
        self.store = TraceStore(os.path.join(self.folder, "traces.db"), queue_size=2 * TRACES,
                                **settings)

    def teardown(self, traces, *params):
        self.store.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class TraceRecordSuite(_TraceStoreSuite):
    """TraceStore.record: what a trace costs the caller's thread (serialize and enqueue).

    Batch size and flush interval are large enough that the writer thread does not
    commit while the sample runs.
    """

    repeat = (3, 10, 20.0)

    def setup(self, traces):
        from obelisk.perf.rows.store import record_all

        self.record_all = record_all
        self.open_store(batch_size=2 * TRACES, batch_flush_ms=3_600_000)

    def time_record_callers_thread(self, traces):
        self.record_all(self.store, traces)


class TraceSustainedSuite(_TraceStoreSuite):
    """TraceStore sustained: record every trace, then the flush that commits them,
    with the writer committing in batches of `batch_size`."""

    repeat = (2, 5, 20.0)
    params = [100, 10_000]
    param_names = ["batch_size"]

    def setup(self, traces, batch_size):
        from obelisk.perf.rows.store import record_and_flush

        self.record_and_flush = record_and_flush
        self.open_store(batch_size=batch_size)

    def time_record_and_flush(self, traces, batch_size):
        self.record_and_flush(self.store, traces)


# --------------------------------------------------------------- signing


class SigningSuite(FreshState):
    """Build one order action and sign it as an L1 action with a fresh nonce, 200 times."""

    timeout = 60
    repeat = (3, 10, 10.0)
    SIGNATURES = 200

    def setup(self):
        from obelisk.hyperliquid.signing import sign_l1_action
        from obelisk.hyperliquid.wallet import Wallet
        from obelisk.hyperliquid.wire import (
            Cloid,
            order_request_to_order_wire,
            order_wires_to_order_action,
        )
        from obelisk.perf.rows.signing import CLOID, KEY, NONCE, ORDER, sign_orders

        self.sign, self.sign_orders = sign_l1_action, sign_orders
        self.to_wire, self.to_action = order_request_to_order_wire, order_wires_to_order_action
        self.wallet = Wallet(KEY)
        self.order = dict(ORDER, cloid=Cloid.from_int(CLOID))
        self.action = self.to_action([self.to_wire(self.order, 4)])
        self.nonces = range(NONCE, NONCE + self.SIGNATURES)

    def time_build_and_sign_order(self):
        self.sign_orders(self.sign, self.to_wire, self.to_action, self.wallet, self.order,
                         self.SIGNATURES)

    def time_sign_prebuilt_action(self):
        sign, wallet, action = self.sign, self.wallet, self.action
        for nonce in self.nonces:
            sign(wallet, action, None, nonce, None, True)


# ------------------------------------------------------- l2Book frames


FRAMES = 1_000


class L2FrameSuite(FreshState):
    """Whole Hyperliquid l2Book frames, bytes to an updated L2Book, on a fresh book each sample."""

    timeout = 60
    repeat = (3, 10, 10.0)

    def setup_cache(self):
        from obelisk.perf.rows.l2 import l2_frames
        return l2_frames(FRAMES)

    def setup(self, frames):
        from obelisk import L2Book
        from obelisk.hyperliquid.l2frames import apply_l2_json, apply_l2_message
        from obelisk.perf.rows.l2 import DYDX

        self.apply_l2_message, self.apply_l2_json = apply_l2_message, apply_l2_json
        self.book = L2Book(DYDX)          # frames carry increasing times: a used book rejects them
        self.json_book = L2Book(DYDX)

    def time_apply_l2_message(self, frames):
        apply, book = self.apply_l2_message, self.book
        for frame in frames:
            apply(book, frame)

    def time_apply_l2_json_general_path(self, frames):
        apply, book = self.apply_l2_json, self.json_book
        for frame in frames:
            apply(book, frame)


# -------------------------------------------------------------- transport


class TransportSuite(FreshState):
    """Transport.post_info against a 127.0.0.1 HTTP server started in setup (no internet).

    ``time_post_info_cached`` is the cache-hit path (allMids with a long TTL);
    ``time_post_info_uncached`` is a full local HTTP round trip per call.
    """

    timeout = 60
    repeat = (3, 10, 10.0)
    CACHED_CALLS = 5_000
    ROUND_TRIPS = 100

    def setup(self):
        from obelisk.hyperliquid.transport import Transport, TransportConfig
        from obelisk.perf.rows.transport import post_all_mids, serve_mids

        self.post_all_mids = post_all_mids
        self.server, url = serve_mids()
        self.cached = Transport(url, TransportConfig(ttls={"allMids": 3600.0}))
        self.uncached = Transport(url, TransportConfig(ttls={}, rate_limit=10**9))
        post_all_mids(self.cached, 1)           # fill the cache, open the connection
        post_all_mids(self.uncached, 1)

    def teardown(self):
        self.cached.close()
        self.uncached.close()
        self.server.shutdown()
        self.server.server_close()

    def time_post_info_cached(self):
        self.post_all_mids(self.cached, self.CACHED_CALLS)

    def time_post_info_uncached(self):
        self.post_all_mids(self.uncached, self.ROUND_TRIPS)


# --------------------------------------------------------------- recovery


async def _open_account(venue, portfolio, ledger, coins, orphans):
    """A position, a resting order and a protective stop per coin, all known locally;
    with `orphans`, also an order per coin placed behind the account's back and a fill
    of the resting order that the local side missed."""
    from obelisk.execution.venue import OrderRequest, VenueOrder

    async def send(request):
        result = await venue.place(request)
        if result.status == "open":
            ledger.order_opened(VenueOrder(result.oid, request.coin, request.is_buy,
                                           request.size - result.filled, request.price,
                                           request.reduce_only, request.trigger_px,
                                           request.cloid))
        return result

    for coin in coins:
        venue.add_liquidity(coin, False, 1_001, 10.0)
        venue.add_liquidity(coin, True, 990, 10.0)
        await send(OrderRequest(coin, True, 1.0, 1_001, tif="Ioc"))
        await send(OrderRequest(coin, True, 0.5, 995))
        await send(OrderRequest(coin, False, 1.0, 900, reduce_only=True, trigger_px=950))
    for fill in await venue.fills_since(ledger.checkpoint_ms):
        if not ledger.knows_fill(fill.tid):
            portfolio.apply_fill(fill.coin, fill.size, fill.price, maker=fill.maker)
            ledger.fill_applied(fill)
    if orphans:
        for coin in coins:
            await venue.place(OrderRequest(coin, False, 0.25, 1_050))
            venue.external_fill(coin, False, 0.1, 995)


class RecoverySuite(FreshState):
    """PositionRecovery.reconcile over SimVenue: a clean pass, and a dry run that finds
    and plans (but does not execute) orphan cancels and missed fills on every coin.

    Both leave venue and local state unchanged, so each sample runs RECONCILES passes;
    the fetch cache is off (cache_ttl_ms=0) so every pass queries the venue.
    """

    timeout = 120
    repeat = (3, 10, 20.0)
    params = [2, 32]
    param_names = ["coins"]
    RECONCILES = 20

    def setup(self, coins):
        from obelisk import FeeRates, Instrument, Portfolio, SimVenue
        from obelisk.execution.ledger import OrderLedger
        from obelisk.execution.recovery import PositionRecovery

        instruments = [Instrument(f"C{i}", i, 2, 20) for i in range(coins)]
        names = [i.name for i in instruments]
        fees = FeeRates(0.00045, 0.00015)
        self.loop = asyncio.new_event_loop()
        self.recoveries = {}
        for dirty in (False, True):
            venue = SimVenue(instruments, balance=10_000_000, fees=fees)
            portfolio = Portfolio(instruments, balance=10_000_000, fees=fees)
            ledger = OrderLedger()
            self.loop.run_until_complete(_open_account(venue, portfolio, ledger, names, dirty))
            recovery = PositionRecovery(venue, portfolio, ledger, dry_run=dirty,
                                        cache_ttl_ms=0, alert_sink=lambda message: None)
            report = self.loop.run_until_complete(recovery.reconcile())
            if report.passed == dirty or bool(report.discrepancies) != dirty:
                raise RuntimeError(f"recovery benchmark set-up is not as intended: {report}")
            self.recoveries[dirty] = recovery

    def teardown(self, coins):
        self.loop.close()

    def _reconcile(self, recovery):
        async def passes():
            for _ in range(self.RECONCILES):
                await recovery.reconcile()

        self.loop.run_until_complete(passes())

    def time_reconcile_clean(self, coins):
        self._reconcile(self.recoveries[False])

    def time_reconcile_dry_run_discrepancies(self, coins):
        self._reconcile(self.recoveries[True])


# ---------------------------------------------------------------- engine


class TradingEngineSuite(FreshState):
    """TradingEngine over SimBatchVenue: 2,000 batches of one order (the engine's fixed cost
    per batch, goal <= 50 us) and of 100, as ``obelisk bench``'s engine rows run them."""

    timeout = 120
    repeat = (3, 10, 20.0)
    params = [1, 100]
    param_names = ["orders_per_batch"]

    def setup(self, orders_per_batch):
        from obelisk.perf.rows.engine import BATCHES, prepare_batches, run_batches

        self.batches = BATCHES
        self.run_batches = run_batches
        self.state = prepare_batches(orders_per_batch)

    def time_batches(self, orders_per_batch):
        self.run_batches(self.state)

    def track_microseconds_per_batch(self, orders_per_batch):
        start = time.perf_counter()
        self.run_batches(self.state)
        return (time.perf_counter() - start) / self.batches * 1e6

    track_microseconds_per_batch.unit = "us"
