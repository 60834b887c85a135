"""``obelisk stress``: a seeded order flow through the whole pipeline, judged by five
success criteria: at least 2,000 trades/s sustained, an average end-to-end latency
under 10 ms, at least 99.9 % of orders completed, peak memory under 2 GB, no crash.

Several assets, each quoted by another participant around a random-walk mid
that moves every round; the account sends aggressive IOC orders through the
quotes (they fill), passive GTC orders behind them (they rest) and cancels of
its older passive orders. Every order goes through the TradingEngine: risk
checks, the batch executor, the simulated exchange's core books (a `BatchVenue`),
the portfolio and, unless turned off, the trace store. Marks have one owner:
``RiskManager.update_market`` feeds the risk checks and the portfolio.
"""

from __future__ import annotations

import contextlib
import gc
import resource
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from obelisk._core.book import EVENT_DTYPE
from obelisk._core.codes import BUY as _BUY
from obelisk._core.codes import CANCEL as _CANCEL
from obelisk._core.codes import GTC as _GTC
from obelisk._core.codes import IOC as _IOC
from obelisk._core.codes import LIMIT as _LIMIT
from obelisk._core.codes import SELL as _SELL
from obelisk._core.histogram import LatencyHistogram
from obelisk.execution.engine import STAGES, TradingEngine
from obelisk.execution.venue import LIQUIDITY
from obelisk.fees import FeeRates
from obelisk.instruments import Instrument
from obelisk.monitor import LatencyStats, PerformanceMonitor
from obelisk.perf.settings import CRITERIA, CRITERION_FORMAT, StressConfig
from obelisk.portfolio import Portfolio
from obelisk.risk import AssetLimits, RiskLimits, RiskManager
from obelisk.sim.batch import SimBatchVenue

MID_TICKS = 1_000_000          # 100.0000 at 4 price decimals
QUOTE_LEVELS = 5
QUOTE_LOTS = 1_000_000         # deep enough for every taker of a round
MID_RANGE = 5                  # mids wander within +-5 ticks of where they started
PASSIVE_OFFSETS = (2 * MID_RANGE + 3, 2 * MID_RANGE + 9)   # ticks behind the mid


@dataclass(frozen=True)
class Criterion:
    name: str
    comparison: str
    target: float
    value: float
    passed: bool


@dataclass(frozen=True)
class StressReport:
    config: StressConfig
    trades: int
    seconds: float
    trades_per_second: float
    outcomes: dict[str, int]
    success_rate: float
    fills: int
    traces: int                 # trace records written, one per batch
    trace_failures: int
    peak_memory_mb: float
    stages_us: dict[str, dict[str, float]]
    errors: list[str]
    criteria: list[Criterion]
    # For plots: per stage, [percentile, latency us] from p0 to the maximum (HDR style),
    # and [seconds since start, trades sent] after every round.
    latency_curves_us: dict[str, list[list[float]]]
    timeline: list[list[float]]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.criteria)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["passed"] = self.passed
        return out


def run_stress(config: StressConfig, progress: Callable[[int, int], None] | None = None
               ) -> StressReport:
    """Run the flow and measure it; `progress(done, total)` after every round."""
    instruments = [Instrument(f"SIM{i}", i, 2, 50) for i in range(config.assets)]
    portfolio = Portfolio(instruments, balance=1e12, fees=FeeRates())
    limits = RiskLimits(default=AssetLimits(max_order_size=1e6, price_band=0.05),
                        max_leverage=50, max_data_age_s=3_600)
    risk = RiskManager(portfolio, limits)
    venue = SimBatchVenue(portfolio.instruments, fees=FeeRates())
    monitor = PerformanceMonitor()
    with tempfile.TemporaryDirectory() as scratch, _frozen_heap():
        store = _store(config, scratch)
        flow = _Flow(config, instruments)
        engine = _engine(config, portfolio, venue, risk, store, monitor, flow)
        pace = _Pace(config.arrival_rate) if config.arrival_rate > 0 else None
        crashes = 0
        timeline: list[list[float]] = []
        started = time.perf_counter()
        try:
            while flow.done < config.trades:
                mids = flow.move()
                venue.provide(flow.quotes(mids))
                engine.poll()               # the account fills those quotes caused, if any
                marks = mids * portfolio.instruments.tick
                for coin, mark in zip(portfolio.coins, marks.tolist(), strict=True):
                    risk.update_market(coin, mark)
                rows, sides, prices, qtys, tifs, kinds, oids = flow.orders(mids)
                if pace is None:
                    oids = engine.submit_batch(rows, sides, prices, qtys, tifs, kinds, oids)
                else:
                    oids = pace.submit(engine, (rows, sides, prices, qtys, tifs, kinds, oids))
                engine.flush()              # priced on this round's book: sent before it moves
                flow.rested(oids, rows, kinds, tifs)
                timeline.append([time.perf_counter() - started, flow.done])
                if progress is not None:
                    progress(flow.done, config.trades)
            engine.close()
        except Exception as exc:  # noqa: BLE001 - a crash is a reported result, not a traceback
            crashes += 1
            engine.stats.errors.append(f"crash: {type(exc).__name__}: {exc}")
        seconds = time.perf_counter() - started
        if store is not None:
            store.close()
    return _report(config, engine, monitor, seconds, crashes, timeline)


@contextlib.contextmanager
def _frozen_heap() -> Iterator[None]:
    """Keep what exists before the flow starts (modules, connections, the pipeline) out of
    the collector's full passes during the run, as a long-running bot does with
    ``gc.freeze()`` after its setup: each full pass would walk it again (~70,000 objects,
    tens of ms of stall for the batch it falls in)."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class _Pace:
    """Orders handed to the engine at `rate` a second, evenly over the run: the engine
    then sends a batch when it is full or its oldest order has waited its max wait, so
    batch size and max wait trade latency against throughput as they would live."""

    SPIN_S = 0.0002            # below this the wait spins (sleep overshoots by ~0.1 ms)

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.start: float | None = None
        self.sent = 0

    def submit(self, engine: TradingEngine, columns: tuple[np.ndarray, ...]) -> np.ndarray:
        """Submit the round's orders as they fall due, polling the engine while waiting;
        the order ids."""
        clock = time.perf_counter
        if self.start is None:
            self.start = clock()
        count = len(columns[0])
        oids = np.empty(count, dtype=np.int64)
        done = 0
        while done < count:
            due = int((clock() - self.start) * self.rate) + 1 - self.sent
            if due <= 0:
                engine.poll()              # a batch whose oldest order waited long enough
                wait = (self.sent - (clock() - self.start) * self.rate) / self.rate
                batch_due = engine.batch_due_ns
                if batch_due is not None:  # wake for the batch's max wait, not only arrivals
                    wait = min(wait, (batch_due - engine.clock_ns()) / 1e9)
                if wait > self.SPIN_S:
                    time.sleep(wait - self.SPIN_S)
                continue
            take = min(due, count - done)
            part = slice(done, done + take)
            oids[part] = engine.submit_batch(*(column[part] for column in columns))
            engine.poll()
            done += take
            self.sent += take
        return oids


def _store(config: StressConfig, scratch: str) -> Any:
    if not config.trace:
        return None
    from obelisk.store import TraceStore

    return TraceStore(Path(config.trace_path or Path(scratch) / "stress.db"), batch_size=100)


class _Flow:
    """The seeded order flow: quotes around random-walk mids, then the account's orders."""

    def __init__(self, config: StressConfig, instruments: list[Instrument]) -> None:
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        self.assets = np.array([i.asset for i in instruments], dtype=np.uint32)
        self.mids = np.full(len(instruments), MID_TICKS, dtype=np.int64)
        self.quote_oids = np.zeros(0, dtype=np.int64)
        self.quote_assets = np.zeros(0, dtype=np.uint32)
        self.next_quote_oid = 1 << 40           # far from the engine's own ids
        # the account's passive orders, oldest first, as (oid, row); those no longer in
        # `live` have filled or been removed since: skipped when the flow picks cancels
        self.resting: deque[tuple[int, int]] = deque()
        self.live: set[int] = set()
        self.done = 0

    def move(self) -> np.ndarray:
        """A bounded random walk: passive orders placed PASSIVE_OFFSETS behind a mid can then
        never become marketable, so the account never trades with itself."""
        self.mids = np.clip(self.mids + self.rng.integers(-2, 3, len(self.mids)),
                            MID_TICKS - MID_RANGE, MID_TICKS + MID_RANGE)
        return self.mids.copy()

    def quotes(self, mids: np.ndarray) -> np.ndarray:
        """Cancel last round's quotes and post fresh ones, QUOTE_LEVELS per side per asset."""
        per_side = QUOTE_LEVELS * len(mids)
        events = np.zeros(len(self.quote_oids) + 2 * per_side, dtype=EVENT_DTYPE)
        cancels = events[:len(self.quote_oids)]
        cancels["kind"], cancels["oid"], cancels["owner"] = _CANCEL, self.quote_oids, \
            LIQUIDITY
        cancels["asset"] = self.quote_assets
        fresh = events[len(self.quote_oids):]
        levels = np.tile(np.arange(1, QUOTE_LEVELS + 1), len(mids))
        rows = np.repeat(np.arange(len(mids)), QUOTE_LEVELS)
        for half, side, sign in ((fresh[:per_side], _BUY, -1),
                                 (fresh[per_side:], _SELL, 1)):
            half["kind"], half["side"], half["tif"] = _LIMIT, side, _GTC
            half["asset"], half["price"] = self.assets[rows], mids[rows] + sign * levels
            half["qty"], half["owner"] = QUOTE_LOTS, LIQUIDITY
        fresh["oid"] = np.arange(self.next_quote_oid, self.next_quote_oid + len(fresh))
        self.next_quote_oid += len(fresh)
        self.quote_oids = fresh["oid"].copy()
        self.quote_assets = fresh["asset"].copy()
        return events

    def orders(self, mids: np.ndarray) -> tuple[np.ndarray, ...]:
        """One round of the account's orders, split by the mix (by default 60 % IOC takers,
        30 % passive GTC, 10 % cancels)."""
        n = min(self.config.batch_size, self.config.trades - self.done)
        rng = self.rng
        rows = rng.integers(0, len(mids), n)
        sides = rng.integers(0, 2, n).astype(np.uint8)
        draw = rng.random(n)
        kinds = np.full(n, _LIMIT, dtype=np.uint8)
        taker = draw < self.config.mix.take
        tifs = np.where(taker, _IOC, _GTC).astype(np.uint8)
        toward = np.where(sides == _BUY, 1, -1)
        # takers cross to the first quote level and no further; passive orders rest far
        # enough behind the mid to stay out of every taker's reach
        prices = np.where(taker, mids[rows] + toward,
                          mids[rows] - toward * rng.integers(*PASSIVE_OFFSETS, n))
        qtys = rng.integers(1, 50, n)
        oids = np.zeros(n, dtype=np.int64)
        cancel = draw >= 1.0 - self.config.mix.cancel
        old = self._oldest_resting(int(cancel.sum()))
        chosen = np.flatnonzero(cancel)[:len(old)]
        kinds[chosen] = _CANCEL
        oids[chosen], rows[chosen] = [oid for oid, _ in old], [row for _, row in old]
        tifs[cancel & (kinds != _CANCEL)] = _GTC   # nothing to cancel: rest
        self.done += n
        return rows, sides, prices, qtys, tifs, kinds, oids

    def _oldest_resting(self, count: int) -> list[tuple[int, int]]:
        """Up to `count` of the oldest passive orders still resting, taken off the queue."""
        taken: list[tuple[int, int]] = []
        while len(taken) < count and self.resting:
            order = self.resting.popleft()
            if order[0] in self.live:
                self.live.discard(order[0])
                taken.append(order)
        return taken

    def forget(self, oids: np.ndarray) -> None:
        """Passive orders that other participants traded with are not cancelled later
        (called inside the engine's batch: it costs what the batch reports, not the queue)."""
        self.live.difference_update(oids.tolist())

    def rested(self, oids: np.ndarray, rows: np.ndarray, kinds: np.ndarray,
               tifs: np.ndarray) -> None:
        passive = (kinds == _LIMIT) & (tifs == _GTC)
        placed = oids[passive].tolist()
        self.resting.extend(zip(placed, rows[passive].tolist(), strict=True))
        self.live.update(placed)


def _report(config: StressConfig, engine: TradingEngine, monitor: PerformanceMonitor,
            seconds: float, crashes: int, timeline: list[list[float]],
            network: tuple[str, ...] = ()) -> StressReport:
    stats = engine.stats
    histograms = {name: monitor.operation(name).histogram()
                  for name in (*STAGES, *network, "end_to_end")}
    stages = {name: _micros(LatencyStats.of(h, seconds)) for name, h in histograms.items()}
    curves = {name: latency_curve(h) for name, h in histograms.items()}
    attempted = stats.submitted - stats.refused
    success = 100.0 * stats.completed / stats.submitted if stats.submitted else 0.0
    memory_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (
        1024 * 1024 if sys.platform == "darwin" else 1024)
    rate = stats.submitted / seconds if seconds else 0.0
    values = {"sustained trades/s": rate,
              "average end-to-end latency ms": stages["end_to_end"]["avg"] / 1000,
              "success rate %": success, "peak memory MB": memory_mb, "crashes": crashes}
    criteria = [Criterion(name, op, target, values[name], _holds(values[name], op, target))
                for name, op, target in CRITERIA]
    outcomes = {"submitted": stats.submitted, "filled": stats.filled, "rested": stats.rested,
                "cancelled": stats.cancelled, "unfilled": stats.unfilled,
                "refused": stats.refused,
                "rejected": stats.rejected, "failed": stats.failed, "unknown": stats.unknown,
                "sent_to_venue": attempted}
    return StressReport(config, stats.submitted, seconds, rate, outcomes, success, stats.fills,
                        stats.traces, stats.trace_failures, memory_mb, stages,
                        list(stats.errors), criteria, curves, timeline)


CURVE_NINES = 6             # latency curves reach p99.9999 when the samples do


def latency_curve(histogram: LatencyHistogram) -> list[list[float]]:
    """[percentile, latency us] pairs at 0, 50, 75, 90 ... % up to the maximum.

    The HDR way to show a latency distribution: the percentiles are spaced evenly
    in 1 / (1 - p), four per decade, and stop where the samples run out, so the
    tail is drawn from what was measured rather than from interpolation.
    """
    if histogram.count == 0:
        return []
    steps = [k for k in range(4 * CURVE_NINES + 1) if 10 ** (k / 4) <= histogram.count]
    percentiles = [100.0 * (1.0 - 10 ** (-k / 4)) for k in steps]
    values = histogram.percentiles(percentiles)
    curve = [[round(p, 6), v / 1000] for p, v in zip(percentiles, values, strict=True)]
    return [*curve, [100.0, histogram.max / 1000]]


def _micros(stats: LatencyStats) -> dict[str, float]:
    return {"count": stats.count, "avg": stats.mean_ns / 1000, "p50": stats.p50_ns / 1000,
            "p99": stats.p99_ns / 1000, "p999": stats.p999_ns / 1000, "max": stats.max_ns / 1000}


def _holds(value: float, op: str, target: float) -> bool:
    return {">=": value >= target, "<": value < target, "==": value == target}[op]


# How each criterion's value prints: (format, unit). Counts are whole numbers.
_OUTCOMES = {
    "submitted": "submitted", "sent_to_venue": "sent to venue", "filled": "filled",
    "rested": "rested", "cancelled": "cancelled", "unfilled": "unfilled (ended untraded)",
    "refused": "refused by risk", "rejected": "rejected by venue", "failed": "failed",
    "unknown": "unknown outcome",
}
_TIMED_PER = {"end_to_end": "order", "sign": "action", "exchange": "action",
              "ws post": "action", "http": "request", "ws delivery": "fill"}
WIDTH = 96                 # report lines stay under 100 columns


def format_stress(report: StressReport) -> str:
    c = report.config
    stages_per_batch = [name for name in report.stages_us if name != "end_to_end"]
    lines = [f"obelisk stress: {report.trades:,} trades (orders sent) over {c.assets} assets, "
             f"batches of {c.batch_size:,}, seed {c.seed}, venue {c.venue}", "",
             f"throughput      {report.trades_per_second:>12,.0f} trades/s   "
             f"({report.trades:,} trades in {report.seconds:.3f} s)",
             f"success rate    {report.success_rate:>12.3f} %          "
             "(filled, rested or cancelled as sent)",
             f"fills           {report.fills:>12,}            (applied to the portfolio)",
             f"peak memory     {report.peak_memory_mb:>12,.1f} MB         (max resident set)"]
    if c.trace:
        lines.append(f"trace store     {report.traces:>12,} records    "
                     f"(one per batch of orders; {report.trace_failures:,} failed)")
    else:
        lines.append("trace store              off")
    lines += ["", "latency in microseconds: the " + ", ".join(
                  name for name in stages_per_batch if name not in _TIMED_PER)
              + " rows time whole batches,", "end_to_end times each order from submit to outcome",
              f"{'stage':<12}{'timed per':>10}{'count':>9}{'avg us':>10}{'p50 us':>10}"
              f"{'p99 us':>10}{'p99.9 us':>10}{'max us':>10}"]
    for name, s in report.stages_us.items():
        unit = _TIMED_PER.get(name, "batch")
        lines.append(f"{name:<12}{unit:>10}{int(s['count']):>9,}{s['avg']:>10.1f}"
                     f"{s['p50']:>10.1f}{s['p99']:>10.1f}{s['p999']:>10.1f}{s['max']:>10.1f}")
    lines += ["", "outcomes (orders):"]
    line = " "
    for key in sorted(report.outcomes, key=list(_OUTCOMES).index):
        item = f"  {_OUTCOMES[key]} {report.outcomes[key]:,}"
        if len(line) + len(item) > WIDTH:
            lines.append(line)
            line = " "
        line += item
    lines += [line, "", "success criteria:"]
    for criterion in report.criteria:
        number, unit = CRITERION_FORMAT.get(criterion.name, ("{:,.3f}", ""))
        label = criterion.name.removesuffix(f" {unit}") if unit else criterion.name
        rule = f"{label} {criterion.comparison} {criterion.target:,g} {unit}"
        lines.append(f"  {'PASS' if criterion.passed else 'FAIL'}  {rule.rstrip():<44}"
                     f"{number.format(criterion.value):>12} {unit}".rstrip())
    lines += [f"  error: {e}"[:WIDTH] for e in report.errors[:10]]
    return "\n".join(lines)


# ------------------------------------------------------------------ over the network

NETWORK_STAGES = ("sign", "exchange", "ws post", "http", "ws delivery")
TAKE_THROUGH = 0.01            # takers cross this fraction past the mid (through the makers)
PASSIVE_BEHIND = (0.02, 0.03)  # passive orders rest this far behind the mid
ORDER_USDC = 20.0              # one lot of the flow is about this much notional
LOCAL_MAKERS = 16              # market makers of the local exchange
TESTNET_KEY_VARIABLE = "OBELISK_TESTNET_KEY"


def run_local_stress(config: StressConfig, progress: Callable[[int, int], None] | None = None
                     ) -> StressReport:
    """The flow through HyperliquidBatchVenue against `obelisk serve` started as a subprocess
    on a free loopback port: signed bulk actions over HTTP, fills over the websocket."""
    from obelisk.server.market import DEFAULT_COINS
    from obelisk.server.runner import serve

    coins = DEFAULT_COINS[:max(1, min(config.assets, len(DEFAULT_COINS)))]
    config = replace(config, assets=len(coins))
    # The makers requote when the oracle moves, once a second. In that second the takers
    # (60 % of the orders, ~$500 each) take ~$50 a side per coin per trade/s: ~$1M at 20k
    # trades/s. LOCAL_MAKERS ladders of 5 x $20k ($1.6M a side) leave room for ~30k.
    with serve(port=0, in_subprocess=True, coins=coins, makers=LOCAL_MAKERS,
               seed=config.seed, ip_weight_per_minute=1 << 40) as url:
        import requests

        from obelisk.hyperliquid.wallet import Wallet

        wallet = Wallet(f"0x{0x5E55 + config.seed:064x}")
        requests.post(url.admin_url + "/deposit", json={"user": wallet.address, "usdc": 1e9},
                      timeout=10).raise_for_status()
        return run_network_stress(config, url, wallet, coins, progress, metered=False)


def run_network_stress(config: StressConfig, url: str, wallet: Any, coins: tuple[str, ...],
                       progress: Callable[[int, int], None] | None = None, *,
                       metered: bool = True) -> StressReport:
    """The seeded flow over a Hyperliquid API at `url`, priced around the exchange's mids.
    `metered`: the client keeps Hyperliquid's request-weight and websocket message
    budgets; off against the local exchange, which the stress starts unmetered."""
    from obelisk.hyperliquid.batch_venue import HyperliquidBatchVenue, WebsocketThread
    from obelisk.hyperliquid.exchange import Exchange
    from obelisk.hyperliquid.info import Info
    from obelisk.hyperliquid.transport import Transport, TransportConfig
    from obelisk.hyperliquid.ws import MESSAGES_PER_MINUTE

    monitor = PerformanceMonitor()
    transport = Transport(url, TransportConfig(rate_limit=1 << 30) if not metered
                          else TransportConfig())
    exchange = Exchange(wallet, Info(transport))
    instruments = [exchange.directory.instrument(coin) for coin in coins]
    portfolio = Portfolio(instruments)
    _time_network(monitor, exchange, transport)
    messages_per_minute = MESSAGES_PER_MINUTE if metered else None
    with WebsocketThread(url.replace("http", "ws", 1) + "/ws",
                         messages_per_minute=messages_per_minute) as websocket, \
            tempfile.TemporaryDirectory() as scratch, _frozen_heap():
        venue = HyperliquidBatchVenue(exchange, instruments, websocket=websocket.client,
                                      loop=websocket.loop,         # a new session: new cloids
                                      post_via=config.post_via, max_inflight=config.inflight,
                                      max_orders_per_action=config.action_size)
        _time_delivery(monitor, venue)
        _time_posts(monitor, venue.poster)
        latest_mids = _follow_mids(websocket)
        limits = RiskLimits(default=AssetLimits(max_order_size=1e9, price_band=0.05),
                            max_leverage=50, max_data_age_s=3_600)
        state = transport.post_info({"type": "clearinghouseState", "user": exchange.account})
        portfolio.deposit(float(state["marginSummary"]["accountValue"]))
        risk = RiskManager(portfolio, limits)
        store = _store(config, scratch)
        flow = _Flow(config, instruments)
        engine = _engine(config, portfolio, venue, risk, store, monitor, flow)
        crashes = 0
        timeline: list[list[float]] = []
        started = time.perf_counter()
        try:
            while flow.done < config.trades:
                mids = latest_mids()
                prices = np.array([float(mids[coin]) for coin in coins])
                engine.poll()
                for coin, mid in zip(coins, prices.tolist(), strict=True):
                    risk.update_market(coin, mid)
                rows, sides, ticks, qtys, tifs, kinds, oids = flow.orders(flow.mids)
                ticks, qtys = _priced(instruments, prices, rows, sides, tifs, qtys, flow.rng)
                oids = engine.submit_batch(rows, sides, ticks, qtys, tifs, kinds, oids)
                engine.flush()
                flow.rested(oids, rows, kinds, tifs)
                timeline.append([time.perf_counter() - started, flow.done])
                if progress is not None:
                    progress(flow.done, config.trades)
            venue.wait_for_fills(10.0)
            engine.close()
        except Exception as exc:  # noqa: BLE001 - a crash is a reported result, not a traceback
            crashes += 1
            engine.stats.errors.append(f"crash: {type(exc).__name__}: {exc}")
        seconds = time.perf_counter() - started
        if store is not None:
            store.close()
        venue.close()
    errors = list(dict.fromkeys(venue.last_errors.values()))[:5]
    engine.stats.errors.extend(f"venue: {text}" for text in errors)
    transport.close()
    return _report(config, engine, monitor, seconds, crashes, timeline, NETWORK_STAGES)


def _follow_mids(websocket: Any, timeout: float = 10.0) -> Callable[[], dict[str, str]]:
    """Follow ``allMids`` on the websocket (a bot's marks come from the feed, not from an
    HTTP request per batch); what reads the latest mids, once the first have come."""
    latest: list[dict[str, str]] = []
    arrived = threading.Event()

    def on_mids(data: Any) -> None:
        latest[:] = [data["mids"]]
        arrived.set()

    websocket.call(websocket.client.subscribe({"type": "allMids"}, on_mids))
    if not arrived.wait(timeout):
        raise TimeoutError(f"no allMids frame within {timeout:g} s")
    return lambda: latest[0]


def _engine(config: StressConfig, portfolio: Portfolio, venue: Any, risk: RiskManager,
            store: Any, monitor: PerformanceMonitor, flow: _Flow) -> TradingEngine:
    """The pipeline under test, whatever the venue: the flow forgets orders that ended."""
    return TradingEngine(portfolio, venue, risk, store=store, monitor=monitor,
                         batch_size=config.batch_size, max_batch_wait_ms=config.max_batch_wait_ms,
                         on_fills=lambda report: flow.forget(report.fill_oids),
                         on_removed=flow.forget)


def _priced(instruments: list[Instrument], mids: np.ndarray, rows: np.ndarray,
            sides: np.ndarray, tifs: np.ndarray, qtys: np.ndarray, rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray]:
    """Prices on each coin's grid around the exchange's mid, and sizes of ORDER_USDC lots:
    takers cross TAKE_THROUGH past the mid, passive orders rest PASSIVE_BEHIND it."""
    from obelisk.instruments import Rounding

    def grid(row: int, fraction: float, buy: bool) -> int:
        return instruments[row].round_price_to_ticks(
            mids[row] * fraction, Rounding.DOWN if buy else Rounding.UP)

    n = len(instruments)
    take = np.array([[grid(r, 1 + TAKE_THROUGH, False), grid(r, 1 - TAKE_THROUGH, True)]
                     for r in range(n)], dtype=np.int64)        # [row, side]: BUY 0, SELL 1
    behind = np.linspace(*PASSIVE_BEHIND, 4)
    passive = np.array([[[grid(r, 1 - b, True) for b in behind],
                         [grid(r, 1 + b, False) for b in behind]] for r in range(n)],
                       dtype=np.int64)
    unit = np.array([max(1, round(ORDER_USDC / mids[r] * 10 ** instruments[r].sz_decimals))
                     for r in range(n)], dtype=np.int64)
    is_taker = tifs == _IOC
    level = rng.integers(0, len(behind), len(rows))
    ticks = np.where(is_taker, take[rows, sides], passive[rows, sides, level])
    return ticks, qtys * unit[rows]


def _time_network(monitor: PerformanceMonitor, exchange: Any, transport: Any) -> None:
    """Time the signing of each action; each action from its post to its parsed answer (HTTP
    and the exchange's work; over the websocket, from when the venue waits for it); each
    HTTP round trip."""
    signing, acting = monitor.operation("sign"), monitor.operation("exchange")
    http = monitor.operation("http")

    def timed(fn: Callable[..., Any], operation: Any) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter_ns()
            try:
                return fn(*args, **kwargs)
            finally:
                operation.record(time.perf_counter_ns() - began)
        return call

    for name in ("sign_order_wires", "sign_cancels_by_cloid"):
        setattr(exchange, name, timed(getattr(exchange, name), signing))
    exchange.send = timed(exchange.send, acting)
    transport.post_exchange = timed(transport.post_exchange, http)


def _time_posts(monitor: PerformanceMonitor, poster: Any) -> None:
    """Each action posted on the websocket, from its write to its answer's arrival."""
    if poster is None:
        return
    posting = monitor.operation("ws post")
    dispatch = poster.dispatch

    def timed(body: Any, **options: Any) -> Any:
        began = time.perf_counter_ns()
        future = dispatch(body, **options)
        if future is not None:
            future.add_done_callback(
                lambda _: posting.record(time.perf_counter_ns() - began))
        return future

    poster.dispatch = timed


def _time_delivery(monitor: PerformanceMonitor, venue: Any) -> None:
    """Websocket delivery: from a fill's exchange time to its frame reaching the venue."""
    delivery = monitor.operation("ws delivery")
    receive = venue.receive

    def timed(channel: str, data: Any) -> None:
        if channel == "userFills" and isinstance(data, dict) and not data.get("isSnapshot"):
            now_ms = time.time_ns() / 1e6
            for fill in data.get("fills") or ():
                delivery.record(int(max(0.0, now_ms - float(fill["time"])) * 1e6))
        receive(channel, data)

    venue.receive = timed


def run_testnet_stress(config: StressConfig, progress: Callable[[int, int], None] | None = None
                       ) -> StressReport:
    """The flow on Hyperliquid testnet, signed with the key in ``OBELISK_TESTNET_KEY``."""
    import os

    from obelisk.hyperliquid.transport import TESTNET_URL
    from obelisk.hyperliquid.wallet import Wallet

    wallet = Wallet(os.environ[TESTNET_KEY_VARIABLE])
    coins = ("BTC", "ETH", "SOL", "DOGE")[:max(1, min(config.assets, 4))]
    return run_network_stress(config, TESTNET_URL, wallet, coins, progress)
