"""The live loop: a strategy trading Hyperliquid through the engine, on one asyncio loop.

Market data arrives as :class:`~obelisk.L2Book` s kept current from the
websocket's ``l2Book`` frames; the strategy is called on each book update and on
each report of fills, and submits orders to :attr:`LiveLoop.engine`.

The engine's batches go to the exchange from a worker thread, so that the loop
reads the websocket, renews the dead man's switch and keeps its books current
while an order is on its way. The engine and what it owns (portfolio, risk,
venue) are used by one party at a time, its *turn*: a flush in its thread, or
the loop's own code. A book that changes during a flush reaches the risk checks
and the strategy once it is over; the strategy's callbacks always run on the
loop, and a coroutine of the strategy that touches the engine holds the turn
(``async with loop.turn():``).

Safety. Trading starts HALTED: a :class:`PositionRecovery` pass brings the
portfolio to the exchange's truth (positions, balance, fills missed while away)
and only a pass that passes sets risk ACTIVE. The same happens after every
websocket reconnect and whenever the engine loses an answer (``on_unknown``).
While the loop runs, ``scheduleCancel`` is renewed as a dead man's switch: if
the process dies, the exchange cancels every open order at the last deadline. A
clean :meth:`LiveLoop.stop` cancels the strategy's resting orders, asks the exchange
again until none is left, and only then unsets it.

Fills are applied once. The loop subscribes ``userFills`` and ``orderUpdates``
itself and hands live frames to the venue, recording each fill's trade id and
each open order in the recovery ledger as it does; snapshots (history) are left
to recovery. During a reconciliation the frames wait, and afterwards those whose
fill recovery already applied are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Protocol

from obelisk._core.l2 import L2Book
from obelisk.breaker import CircuitOpenError
from obelisk.execution.engine import TradingEngine
from obelisk.execution.ledger import OrderLedger
from obelisk.execution.recovery import PositionRecovery, RecoveryReport
from obelisk.execution.venue import BatchReport, VenueFill, VenueOrder
from obelisk.hyperliquid.batch_venue import HyperliquidBatchVenue
from obelisk.hyperliquid.errors import HyperliquidError
from obelisk.hyperliquid.exchange import AsyncExchange, Exchange
from obelisk.hyperliquid.info import AsyncInfo, Info
from obelisk.hyperliquid.transport import AsyncTransport, Transport, TransportConfig
from obelisk.hyperliquid.venue import HyperliquidVenue
from obelisk.hyperliquid.wallet import Wallet
from obelisk.hyperliquid.ws import WebsocketClient
from obelisk.instruments import InstrumentTable
from obelisk.portfolio import Portfolio
from obelisk.risk import RiskLimits, RiskManager, TradingState

__all__ = ["LiveConfig", "LiveLoop", "Strategy"]

log = logging.getLogger(__name__)


# The account's state as info requests name it. Recovery reads it through its own
# (async) transport, whose cache the engine's orders, sent through the synchronous
# client, never invalidate: a cached read could "correct" the portfolio to the past.
ACCOUNT_STATE = frozenset({"clearinghouseState", "spotClearinghouseState", "openOrders",
                           "frontendOpenOrders", "orderStatus", "activeAssetData"})


def _uncached_account(config: TransportConfig | None) -> TransportConfig:
    """`config` without caching of the account's state."""
    config = config or TransportConfig()
    return replace(config, ttls={kind: ttl for kind, ttl in config.ttls.items()
                                 if kind not in ACCOUNT_STATE})


class Strategy(Protocol):
    """What the live loop calls; orders go to ``loop.engine`` (flushed after each call)."""

    def on_book(self, coin: str, book: L2Book, loop: LiveLoop) -> None:
        """`coin`'s book changed (called only while trading is ACTIVE)."""

    def on_fills(self, report: BatchReport, loop: LiveLoop) -> None:
        """The account traded: ``report.fills`` (rows of the table), ``report.fill_oids``."""


@dataclass(frozen=True)
class LiveConfig:
    """Timings of the live loop, in seconds."""

    dead_man_s: float = 30.0        # scheduleCancel deadline, ahead of now (exchange: >= 5 s)
    renew_s: float = 10.0           # how often the deadline is pushed forward
    poll_s: float = 0.05            # how often late fills are applied and orders flushed
    watch_s: float = 0.1            # how often the websocket's connection is checked
    retry_s: float = 1.0            # wait before a reconciliation or a stop's cancels are retried
    stop_s: float = 10.0            # longest a stop retries cancels before leaving the switch set
    snapshot_s: float = 10.0        # longest wait for a (re)connection's userFills snapshot

    def __post_init__(self) -> None:
        if not self.dead_man_s > 5 or not 0 < self.renew_s < self.dead_man_s - 5:
            raise ValueError("need dead_man_s > 5 and 0 < renew_s < dead_man_s - 5 "
                             f"(got {self.dead_man_s}, {self.renew_s})")
        if not (self.retry_s > 0 and self.stop_s >= 0):
            raise ValueError(f"need retry_s > 0 and stop_s >= 0 (got {self.retry_s}, "
                             f"{self.stop_s})")


async def _outlast(thread: asyncio.Future[Any]) -> None:
    """Wait for a worker thread's future through any number of cancellations (the thread
    holds the engine until it returns); a cancellation is raised once it has returned."""
    cancelled = False
    while True:
        try:
            await asyncio.shield(thread)
            break
        except asyncio.CancelledError:
            cancelled = True
            if thread.done():
                break
    if cancelled:
        if thread.exception() is not None:
            log.error("a flush cancelled while its thread ran failed: %r", thread.exception())
        raise asyncio.CancelledError
    thread.result()


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class LiveLoop:
    """A strategy on Hyperliquid through :class:`TradingEngine`; build it with :meth:`connect`.

    Attributes: ``engine``, ``portfolio``, ``risk``, ``instruments``, ``books`` (coin ->
    L2Book), ``recovery`` (its ``history`` holds every pass), ``venue``.
    """

    def __init__(self, strategy: Strategy, *, exchange: Exchange, async_exchange: AsyncExchange,
                 websocket: WebsocketClient, coins: Sequence[str],
                 limits: RiskLimits | None = None, session: int | None = None,
                 config: LiveConfig | None = None,
                 clock_ms: Callable[[], int] = wall_clock_ms) -> None:
        self.strategy = strategy
        self.config = config or LiveConfig()
        self.clock_ms = clock_ms
        self.exchange, self.async_exchange, self.websocket = exchange, async_exchange, websocket
        self.account = exchange.account.lower()
        self.instruments = InstrumentTable([exchange.directory.instrument(c) for c in coins])
        # the venue hears the account's frames from this loop (see _on_user_frame); it never
        # polls userFillsByTime after the first collect
        self.venue = HyperliquidBatchVenue(exchange, self.instruments, session=session,
                                           poll_interval=math.inf)
        self.portfolio = Portfolio(self.instruments)     # recovery brings in the balance
        self.risk = RiskManager(self.portfolio, limits or RiskLimits())
        self._turn = asyncio.Lock()     # held while one party uses the engine (see the module)
        self._flushing = False          # a flush runs in a worker thread
        self._flush_task: asyncio.Task[None] | None = None
        self._changed: dict[str, None] = {}     # coins whose book changed during a flush
        self._reports: list[BatchReport] = []   # the engine's reports, for the strategy
        self._lost_answers = False              # the engine called on_unknown
        self._halt_after_flush = False          # a halt asked for during a flush
        self._state_in_flush = TradingState.HALTED  # the risk state as the flush began
        self.engine = TradingEngine(self.portfolio, self.venue, self.risk, batch_size=1000,
                                    max_batch_wait_ms=1e9, on_fills=self._reports.append,
                                    on_unknown=self._answers_lost)
        self.ledger = OrderLedger()
        self.recovery = PositionRecovery(
            HyperliquidVenue(async_exchange.info, async_exchange, self.account),
            self.portfolio, self.ledger, risk=self.risk,
            ours=lambda order: self.venue.engine_oid(order.cloid) is not None)
        self.books = {i.name: L2Book(i) for i in self.instruments}
        self._tick: list[float] = self.instruments.tick.tolist()     # price of a tick, per row
        self._held: list[tuple[str, Any]] | None = None   # frames waiting out a reconciliation
        self._reconciling: asyncio.Task[RecoveryReport] | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._first_pass = True
        self._snapshot_connect = 0     # the websocket connection the last fills snapshot came on
        self._snapshot_arrived = asyncio.Event()
        self.running = False

    @classmethod
    async def connect(cls, strategy: Strategy, wallet: Wallet, base_url: str,
                      coins: Sequence[str], *, ws_url: str | None = None,
                      transport_config: TransportConfig | None = None,
                      **options: Any) -> LiveLoop:
        """Clients for `base_url` (``/info``, ``/exchange``, ``/ws``) and a loop over them."""
        ws_url = ws_url or base_url.replace("http", "ws", 1).rstrip("/") + "/ws"
        info = await asyncio.to_thread(Info, Transport(base_url, transport_config))
        exchange = await asyncio.to_thread(Exchange, wallet, info)
        async_info = AsyncInfo(AsyncTransport(base_url, _uncached_account(transport_config)))
        async_exchange = await AsyncExchange.create(wallet, async_info)
        return cls(strategy, exchange=exchange, async_exchange=async_exchange,
                   websocket=WebsocketClient(ws_url), coins=coins, **options)

    # ------------------------------------------------------------ life

    @property
    def trading(self) -> bool:
        """Whether the loop is running and trading ACTIVE (during a flush: as the flush found
        it, and no halt asked for since). Safe to read at any time."""
        if self._flushing:
            return self.running and not self._halt_after_flush and \
                self._state_in_flush == TradingState.ACTIVE
        return self.running and self.risk.state == TradingState.ACTIVE

    async def start(self) -> RecoveryReport:
        """Connect, subscribe, reconcile until a pass passes, then arm the dead man's switch;
        the first passing report."""
        self.websocket.start()
        for coin, book in self.books.items():
            await self.websocket.track_book(book, partial(self._on_book, coin))
        for kind in ("userFills", "orderUpdates"):
            await self.websocket.subscribe({"type": kind, "user": self.account},
                                           partial(self._on_user_frame, kind))
        await self.websocket.wait_connected()
        self.running = True
        await self._renew_dead_man()
        await self._fills_subscribed()
        report = await self.reconcile()
        self._tasks = [asyncio.create_task(coro) for coro in
                       (self._pump(), self._keep_dead_man(), self._watch_connection())]
        return report

    async def run(self, seconds: float | None = None) -> None:
        """Start, trade for `seconds` (None: until cancelled or :meth:`stop`), then stop
        cleanly. Cancelling the task that runs it abandons the loop as a crash would: the
        resting orders stay, and the dead man's switch cancels them at its deadline."""
        self._stopped = asyncio.Event()
        try:
            await self.start()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), seconds)
        except asyncio.CancelledError:
            await asyncio.shield(self._abandon())
            raise
        await self.stop()

    async def stop(self) -> None:
        """Cancel the strategy's resting orders, unset the dead man's switch once the exchange
        lists none of them, close. Orders the strategy queued but the engine has not sent
        are refused (trading is HALTED first), so none is placed after the cancels.

        Cancels the exchange refused or never received (a network fault, an open breaker)
        are sent again every ``retry_s`` for up to ``stop_s``. Orders still open then stay
        under the dead man's switch, which cancels them at its deadline; the error log
        says how many.
        """
        if not self.running:
            return
        self.running = False
        self._halt()                    # orders still queued are refused, not sent
        if hasattr(self, "_stopped"):
            self._stopped.set()
        await self._end_tasks()
        try:
            left = await self._cancel_until_none_rest()
            if left == 0:
                await self.async_exchange.schedule_cancel(None)
            else:
                log.error("%s resting orders %s still open %.1f s into the stop; the dead "
                          "man's switch stays set and cancels them by its deadline",
                          "an unknown number of" if left is None else left,
                          "may be" if left is None else "were", self.config.stop_s)
        finally:
            await self._close()

    async def _cancel_until_none_rest(self) -> int | None:
        """Cancel resting orders until a listing shows none (0), or until `stop_s` passes:
        how many were open at the last listing (None: it failed)."""
        clock = asyncio.get_running_loop().time
        deadline = clock() + self.config.stop_s
        while True:
            try:
                left: int | None = await self.cancel_resting()
            except (HyperliquidError, CircuitOpenError) as exc:
                log.warning("cancelling resting orders failed: %s: %s", type(exc).__name__, exc)
                left = None
            if left == 0 or clock() >= deadline:
                return left
            await asyncio.sleep(self.config.retry_s)

    async def cancel_resting(self) -> int:
        """Cancel, through the engine, every open order that carries this session's cloids;
        how many there were."""
        async with self._turn:
            self._poll()
        self.async_exchange.transport.invalidate_user(self.account)      # asked fresh
        orders = await self.async_exchange.info.frontend_open_orders(self.account)
        async with self._turn:
            ours = [(self.instruments.index(o.coin), oid) for o in orders
                    if o.coin in self.instruments.coins
                    and (oid := self.venue.engine_oid(o.cloid)) is not None]
            for row, oid in ours:
                self.engine.cancel(row, oid)
            await self._flush_queued()
        return len(ours)

    def turn(self) -> asyncio.Lock:
        """The engine's turn, for a coroutine that uses the engine, portfolio or risk outside
        the strategy's callbacks: ``async with loop.turn(): loop.engine.submit(...)``."""
        return self._turn

    async def _abandon(self) -> None:
        """Stop every task and close the connections, touching nothing on the exchange."""
        self.running = False
        await self._end_tasks()
        self.risk.set_state(TradingState.HALTED)    # closing the engine sends no order
        await self._close()

    async def _end_tasks(self) -> None:
        tasks = [*self._tasks, *(task for task in (self._reconciling, self._flush_task) if task)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks = []

    async def _close(self) -> None:
        self.engine.close()
        await self.websocket.close()
        transport = self.async_exchange.transport
        if isinstance(transport, AsyncTransport):
            await transport.aclose()
        self.exchange.info.transport.close()

    # ------------------------------------------------------------ reconciliation

    def schedule_reconcile(self) -> None:
        """Halt now and reconcile soon (the engine's ``on_unknown``, a reconnect)."""
        self._halt()
        if self.running and (self._reconciling is None or self._reconciling.done()):
            self._reconciling = asyncio.get_running_loop().create_task(self.reconcile())

    async def reconcile(self) -> RecoveryReport:
        """Reconcile until a pass passes (trading stays HALTED until then); its report."""
        self._halt()
        async with self._turn:      # the passes correct the portfolio: no flush meanwhile
            return await self._reconcile()

    async def _reconcile(self) -> RecoveryReport:
        self.risk.set_state(TradingState.HALTED)    # again: a pass before this one may have
        self._held = []                             # set it ACTIVE while this one waited
        try:
            while True:
                self._poll()                # all the ledger knows is in the portfolio
                unknown = set(self.engine.unknown_oids)     # those lost during the pass stay
                report = await self.recovery.reconcile(fresh=True)   # it follows a fault
                self._release()
                self._held = []
                if report.passed:
                    self._poll()            # what the venue heard before the pass's truth
                    self.venue.resync(self._open_orders(report), unknown,
                                      self.ledger.closed_filled)
                    self.engine.settle_unknown(unknown, still_open=self._resting_oids())
                    self._poll()            # and what the resync found gone
                    if self._first_pass:
                        self.risk.reset_daily()
                        self._first_pass = False
                    self._release()
                    for coin, book in self.books.items():   # what changed while halted
                        self._on_book(coin, book)
                    return report
                log.warning("reconciliation did not pass (%s); again in %.1f s",
                            report.error or f"{len(report.remaining)} discrepancies left",
                            self.config.retry_s)
                await asyncio.sleep(self.config.retry_s)
        finally:
            self._release()
            self._held = None

    def _open_orders(self, report: RecoveryReport) -> list[VenueOrder]:
        """The account's open orders after a passing reconciliation: those the ledger holds
        (frames handed over after the pass's fetch included), each at what the fetch found
        left of it where it listed the order (the ledger holds the size of its "open" frame)."""
        fetched = {order.oid: order for order in report.open_orders}
        return [fetched.get(oid, order) for oid, order in self.ledger.orders.items()]

    def _resting_oids(self) -> set[int]:
        """The engine's ids of the account's orders the ledger holds open (a passing
        reconciliation left it as the exchange lists them)."""
        return {oid for order in self.ledger.orders.values()
                if (oid := self.venue.engine_oid(order.cloid)) is not None}

    def _release(self) -> None:
        held, self._held = self._held or [], None
        for kind, data in held:
            self._hand_over(kind, data)

    # ------------------------------------------------------------ tasks

    async def _pump(self) -> None:
        while True:
            try:
                async with self._turn:
                    self._poll()
                    await self._flush_queued()
            except Exception:           # the next round tries again; a dead pump sends nothing
                log.exception("polling or flushing the engine failed")
            await asyncio.sleep(self.config.poll_s)

    def _halt(self) -> None:
        """Halt trading now, or, while a flush's thread holds the risk checks, as soon as it
        returns (the batch in flight was judged already)."""
        if self._flushing:
            self._halt_after_flush = True
        else:
            self.risk.set_state(TradingState.HALTED)

    def _poll(self) -> None:
        """The engine's poll, on the loop (late fills into the portfolio, then the strategy)."""
        self.engine.poll()
        self._tell_strategy()

    def _request_flush(self) -> None:
        """Send the orders the engine holds, soon, from a task of its own."""
        if self.engine.batch_due_ns is not None and (
                self._flush_task is None or self._flush_task.done()):
            self._flush_task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        async with self._turn:
            await self._flush_queued()

    async def _flush_queued(self) -> None:
        """With the turn held: flush the engine in a worker thread until nothing is queued,
        then hand the strategy its reports and the books that changed meanwhile (which may
        queue more orders). The thread holds the engine until it returns, even when this
        task is cancelled."""
        while self.engine.batch_due_ns is not None:
            self._state_in_flush = self.risk.state
            self._flushing = True
            try:
                await _outlast(asyncio.ensure_future(asyncio.to_thread(self.engine.flush)))
            finally:
                self._flushing = False
                if self._halt_after_flush:
                    self._halt_after_flush = False
                    self.risk.set_state(TradingState.HALTED)
            self._tell_strategy()
            changed, self._changed = self._changed, {}
            for coin in changed:
                self._on_book(coin, self.books[coin])

    def _answers_lost(self, oids: Any) -> None:
        """The engine's on_unknown, which may run in a flush's thread: reconciled after it."""
        self._lost_answers = True

    def _tell_strategy(self) -> None:
        """After an engine call, on the loop: a reconciliation if answers were lost, and the
        strategy's reports. A strategy that raises is logged; the loop goes on."""
        if self._lost_answers:
            self._lost_answers = False
            self.schedule_reconcile()
        reports = self._reports.copy()
        self._reports.clear()
        for report in reports:
            if len(report.fills):
                try:
                    self.strategy.on_fills(report, self)
                except Exception:
                    log.exception("the strategy's on_fills raised; the loop goes on")

    async def _renew_dead_man(self) -> None:
        deadline = self.clock_ms() + int(self.config.dead_man_s * 1000)
        result = await self.async_exchange.schedule_cancel(deadline)
        if not result.ok:
            log.warning("scheduleCancel was refused: %s", result.error)

    async def _keep_dead_man(self) -> None:
        while True:
            await asyncio.sleep(self.config.renew_s)
            try:
                await self._renew_dead_man()
            except Exception as exc:    # noqa: BLE001 - the previous deadline still holds
                log.warning("scheduleCancel could not be renewed: %s: %s",
                            type(exc).__name__, exc)

    async def _watch_connection(self) -> None:
        """Halt while the websocket is down; reconcile once it is back."""
        seen = self.websocket.connects
        while True:
            await asyncio.sleep(self.config.watch_s)
            if not self.websocket.connected:
                if self.trading:
                    log.warning("websocket down: trading halted until reconciled")
                self._halt()
            elif self.websocket.connects != seen:
                seen = self.websocket.connects
                self._halt()
                await self._fills_subscribed()
                self.schedule_reconcile()

    async def _fills_subscribed(self) -> None:
        """Wait for the userFills snapshot of the connection now up. The exchange sends it
        once the subscription holds, so every later fill comes live and a reconciliation
        started after it fetches every earlier one; a pass started before it could miss a
        fill made between its fetch and the subscription."""
        deadline = time.monotonic() + self.config.snapshot_s
        while self._snapshot_connect != self.websocket.connects:
            self._snapshot_arrived.clear()      # frames come on this loop: none can slip in
            try:
                await asyncio.wait_for(self._snapshot_arrived.wait(),
                                       max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                if self._snapshot_connect != self.websocket.connects:
                    log.warning("no userFills snapshot within %.1f s of connecting; "
                                "reconciling anyway", self.config.snapshot_s)
                return

    # ------------------------------------------------------------ callbacks

    def _on_book(self, coin: str, book: L2Book) -> None:
        if self._flushing:
            self._changed[coin] = None      # the risk checks and the strategy hear it after
            return
        mid = book.mid()
        if mid is None:
            return
        self.risk.update_market(coin, mid * self._tick[self.instruments.index(coin)])
        if self.trading:
            try:
                self.strategy.on_book(coin, book, self)
            except Exception:
                log.exception("the strategy's on_book raised; the loop goes on")
            self._request_flush()

    def _on_user_frame(self, kind: str, data: Any) -> None:
        if not isinstance(data, (Mapping, list)):
            return
        if kind == "userFills" and isinstance(data, Mapping) and data.get("isSnapshot"):
            self._snapshot_connect = self.websocket.connects
            self._snapshot_arrived.set()
            return                      # history: recovery's job
        if self._held is not None:
            self._held.append((kind, data))
        else:
            self._hand_over(kind, data)

    def _hand_over(self, kind: str, data: Any) -> None:
        """Record a live frame in the ledger and pass it on to the venue (the engine applies
        it at its next poll); fills recovery already applied are dropped."""
        if kind == "userFills":
            fresh = [fill for fill in data.get("fills") or () if self._record_fill(fill)]
            if fresh:
                self.venue.receive(kind, {"fills": fresh, "isSnapshot": False})
        else:
            self._record_orders(data)
            self.venue.receive(kind, data)

    def _record_fill(self, fill: Mapping[str, Any]) -> bool:
        if fill.get("coin") not in self.instruments.coins or fill.get("tid") is None:
            return True
        size = float(fill["sz"])
        return self.ledger.fill_applied(VenueFill(
            int(fill["tid"]), int(fill["oid"]), str(fill["coin"]),
            size if fill["side"] == "B" else -size, float(fill["px"]),
            float(fill.get("fee", 0.0)), int(fill["time"]), not fill.get("crossed", True)))

    def _record_orders(self, updates: Iterable[Mapping[str, Any]]) -> None:
        for update in updates:
            order, status = update.get("order") or {}, update.get("status")
            if "oid" not in order:
                continue
            oid = int(order["oid"])
            if status == "open" and order.get("coin") in self.instruments.coins:
                trigger = order.get("triggerPx") if order.get("isTrigger") else None
                self.ledger.order_opened(VenueOrder(
                    oid, str(order["coin"]), order.get("side") == "B", float(order["sz"]),
                    float(order["limitPx"]), bool(order.get("reduceOnly")),
                    None if trigger is None else float(trigger), order.get("cloid")))
            elif status != "open" and oid in self.ledger.orders:
                self.ledger.order_closed(oid, str(status))
