"""asv benchmarks of the components around the book: circuit breaker, latency
histogram and monitor, trace store, Hyperliquid signing, l2Book frame decoding,
the transport's cached info call and position recovery over SimVenue.

Conventions (as in bench_book.py):

- Everything a timed call needs is built in ``setup`` (or ``setup_cache``), never
  in the timed method. asv_runner re-runs ``setup``/``teardown`` around every
  sample, so each sample starts from fresh state (a new L2 book, a new trace
  database, ...) and state-changing work can be timed with ``number = 1``.
- ``warmup_time = 0``: a warm-up call would change that state before the sample.
- Every timed call does a fixed, loop-sized amount of work (a few ms to a few
  tens of ms) so one sample is well above timer resolution on a noisy 2-core VM.
- obelisk modules are imported inside ``setup``: an older commit in a history
  run that lacks a component then reports that suite as failed for that commit
  instead of breaking the import of this whole file.
"""

import asyncio
import json
import os
import shutil
import tempfile
import threading

import numpy as np

CALLS = 20_000          # breaker / histogram / monitor calls per timed run


def _new_loop():
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop


def _close_loop(loop):
    asyncio.set_event_loop(None)
    loop.close()


# ---------------------------------------------------------------- breaker


class BreakerSuite:
    """The closed path of a CircuitBreaker around ``x + 1``, sync and async, vs the bare call."""

    timeout = 60
    number = 1
    warmup_time = 0
    repeat = (3, 10, 10.0)

    def setup(self):
        from obelisk.perf.rows.breaker import add_one, add_one_async, closed_breaker

        self.bare = add_one
        self.guarded = closed_breaker()(add_one)      # window already full of successes
        self.bare_async = add_one_async
        self.guarded_async = closed_breaker()(add_one_async)
        self.loop = _new_loop()

    def teardown(self):
        _close_loop(self.loop)

    @staticmethod
    def _calls(fn):
        result = 0
        for _ in range(CALLS):
            result = fn(1)
        return result

    def _awaits(self, fn):
        async def run():
            result = 0
            for _ in range(CALLS):
                result = await fn(1)
            return result

        return self.loop.run_until_complete(run())

    def time_bare_call(self):
        self._calls(self.bare)

    def time_closed_call(self):
        self._calls(self.guarded)

    def time_bare_await(self):
        self._awaits(self.bare_async)

    def time_closed_await(self):
        self._awaits(self.guarded_async)


# ------------------------------------------------------ histogram, monitor


class LatencySuite:
    """LatencyHistogram per call and batched, percentile queries, and PerformanceMonitor.measure."""

    timeout = 60
    number = 1
    warmup_time = 0
    repeat = (3, 10, 10.0)

    def setup(self):
        from obelisk._core.histogram import LatencyHistogram
        from obelisk.monitor import PerformanceMonitor

        self.latencies = np.random.default_rng(7).lognormal(10, 1.5, CALLS).astype(np.int64)
        self.values = self.latencies.tolist()
        self.histogram = LatencyHistogram()
        self.full = LatencyHistogram()
        self.full.record_many(self.latencies)
        self.monitor = PerformanceMonitor()

    def time_histogram_record_per_call(self):
        record = self.histogram.record
        for value in self.values:
            record(value)

    def time_histogram_record_many(self):
        self.histogram.record_many(self.latencies)

    def time_histogram_percentiles(self):
        percentiles = self.full.percentiles
        for _ in range(1_000):
            percentiles((50.0, 90.0, 99.0, 99.9))

    def time_monitor_measure(self):
        measure = self.monitor.measure
        for _ in range(CALLS):
            with measure("block"):
                pass


# ---------------------------------------------------------------- store


TRACES = 10_000


def _trace_store(folder, name, **settings):
    from obelisk.store import TraceStore
    return TraceStore(os.path.join(folder, name), queue_size=2 * TRACES, **settings)


class TraceRecordSuite:
    """TraceStore.record: what a trace costs the caller's thread (serialize and enqueue).

    Batch size and flush interval are large enough that the writer thread does not
    commit while the sample runs. Each sample gets a fresh database (setup), closed
    and removed in teardown, outside the timing.
    """

    timeout = 120
    number = 1
    warmup_time = 0
    repeat = (3, 10, 20.0)

    def setup_cache(self):
        from obelisk.perf.rows.store import trace_workload
        return trace_workload(TRACES)

    def setup(self, traces):
        self.folder = tempfile.mkdtemp(prefix="obelisk-asv-")
        self.store = _trace_store(self.folder, "record.db", batch_size=2 * TRACES,
                                  batch_flush_ms=3_600_000)

    def teardown(self, traces):
        self.store.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def time_record_callers_thread(self, traces):
        record = self.store.record
        for kind, payload, asset, order_id in traces:
            record(kind, payload, asset=asset, order_id=order_id)


class TraceSustainedSuite:
    """TraceStore sustained: record every trace, then the flush that commits them,
    with the writer committing in batches of `batch_size`."""

    timeout = 120
    number = 1
    warmup_time = 0
    repeat = (2, 5, 20.0)
    params = [100, 10_000]
    param_names = ["batch_size"]

    def setup_cache(self):
        from obelisk.perf.rows.store import trace_workload
        return trace_workload(TRACES)

    def setup(self, traces, batch_size):
        self.folder = tempfile.mkdtemp(prefix="obelisk-asv-")
        self.store = _trace_store(self.folder, "sustained.db", batch_size=batch_size)

    def teardown(self, traces, batch_size):
        self.store.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def time_record_and_flush(self, traces, batch_size):
        record = self.store.record
        for kind, payload, asset, order_id in traces:
            record(kind, payload, asset=asset, order_id=order_id)
        self.store.flush()


# --------------------------------------------------------------- signing


class SigningSuite:
    """Build one order action and sign it as an L1 action with a fresh nonce, 200 times."""

    timeout = 60
    number = 1
    warmup_time = 0
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
        from obelisk.perf.rows.signing import CLOID, KEY, ORDER

        self.sign = sign_l1_action
        self.to_wire = order_request_to_order_wire
        self.to_action = order_wires_to_order_action
        self.wallet = Wallet(KEY)
        self.order = dict(ORDER, cloid=Cloid.from_int(CLOID))
        self.action = self.to_action([self.to_wire(self.order, 4)])

    def time_build_and_sign_order(self):
        sign, to_wire, to_action = self.sign, self.to_wire, self.to_action
        wallet, order = self.wallet, self.order
        for nonce in range(1_700_000_000_000, 1_700_000_000_000 + self.SIGNATURES):
            sign(wallet, to_action([to_wire(order, 4)]), None, nonce, None, True)

    def time_sign_prebuilt_action(self):
        sign, wallet, action = self.sign, self.wallet, self.action
        for nonce in range(1_700_000_000_000, 1_700_000_000_000 + self.SIGNATURES):
            sign(wallet, action, None, nonce, None, True)


# ------------------------------------------------------- l2Book frames


FRAMES = 1_000


def _l2_frames(count):
    """`count` 20x20 DYDX l2Book websocket frames with increasing times, as the exchange sends."""
    rng = np.random.default_rng(7)
    frames = []
    for i in range(count):
        mid = 2_110_000 + int(rng.integers(-50, 50))

        def level(ticks):
            return {"px": f"{ticks / 10_000:.4f}", "sz": f"{rng.integers(1, 30_000) / 10:.1f}",
                    "n": int(rng.integers(1, 9))}

        data = {"coin": "DYDX", "time": 1_700_000_000_000 + i,
                "levels": [[level(mid - 5 - 3 * k) for k in range(20)],
                           [level(mid + 5 + 3 * k) for k in range(20)]]}
        frames.append(json.dumps({"channel": "l2Book", "data": data},
                                 separators=(",", ":")).encode())
    return frames


class L2FrameSuite:
    """Whole Hyperliquid l2Book frames, bytes to an updated L2Book, on a fresh book each sample."""

    timeout = 60
    number = 1
    warmup_time = 0
    repeat = (3, 10, 10.0)

    def setup_cache(self):
        return _l2_frames(FRAMES)

    def setup(self, frames):
        from obelisk import L2Book
        from obelisk.instruments import Instrument

        dydx = Instrument("DYDX", 4, 1, 50)
        self.book = L2Book(dydx)          # frames carry increasing times: a used book rejects them
        self.json_book = L2Book(dydx)

    def time_apply_l2_message(self, frames):
        from obelisk.hyperliquid.l2frames import apply_l2_message
        book = self.book
        for frame in frames:
            apply_l2_message(book, frame)

    def time_apply_l2_json_general_path(self, frames):
        from obelisk.hyperliquid.l2frames import apply_l2_json
        book = self.json_book
        for frame in frames:
            apply_l2_json(book, frame)


# -------------------------------------------------------------- transport


class TransportSuite:
    """Transport.post_info against a 127.0.0.1 HTTP server started in setup (no internet).

    ``time_post_info_cached`` is the cache-hit path (allMids with a long TTL);
    ``time_post_info_uncached`` is a full local HTTP round trip per call.
    """

    timeout = 60
    number = 1
    warmup_time = 0
    repeat = (3, 10, 10.0)
    CACHED_CALLS = 5_000
    ROUND_TRIPS = 100

    def setup(self):
        from http.server import ThreadingHTTPServer

        from obelisk.hyperliquid.transport import Transport, TransportConfig
        from obelisk.perf.rows.transport import _Mids

        class Mids(_Mids):
            # One buffered write per response, no Nagle: otherwise every uncached call
            # waits out a ~40 ms delayed ACK between the header and body writes.
            wbufsize = 1 << 16
            disable_nagle_algorithm = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Mids)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.01,),
                                       daemon=True)
        self.thread.start()
        url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.body = {"type": "allMids"}
        self.cached = Transport(url, TransportConfig(ttls={"allMids": 3600.0}))
        self.uncached = Transport(url, TransportConfig(ttls={}, rate_limit=10**9))
        self.cached.post_info(self.body)           # fill the cache, open the connection
        self.uncached.post_info(self.body)

    def teardown(self):
        self.cached.close()
        self.uncached.close()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def time_post_info_cached(self):
        post, body = self.cached.post_info, self.body
        for _ in range(self.CACHED_CALLS):
            post(body)

    def time_post_info_uncached(self):
        post, body = self.uncached.post_info, self.body
        for _ in range(self.ROUND_TRIPS):
            post(body)


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


class RecoverySuite:
    """PositionRecovery.reconcile over SimVenue: a clean pass, and a dry run that finds
    and plans (but does not execute) orphan cancels and missed fills on every coin.

    Both leave venue and local state unchanged, so each sample runs RECONCILES passes;
    the fetch cache is off (cache_ttl_ms=0) so every pass queries the venue.
    """

    timeout = 120
    number = 1
    warmup_time = 0
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
        self.loop = _new_loop()
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
        _close_loop(self.loop)

    def _reconcile(self, recovery):
        async def passes():
            for _ in range(self.RECONCILES):
                await recovery.reconcile()

        self.loop.run_until_complete(passes())

    def time_reconcile_clean(self, coins):
        self._reconcile(self.recoveries[False])

    def time_reconcile_dry_run_discrepancies(self, coins):
        self._reconcile(self.recoveries[True])
