"""Position recovery: reconcile what this process believes with what the exchange holds.

Run at start-up (trading stays halted until it passes) and then periodically.
Each run fetches the venue's positions, balance, open orders and recent fills
in parallel, compares them with the local ledger and portfolio, and turns every
discrepancy into an action: protective stops first, then cancels of orphan
orders, then local resyncs. Venue actions go out in batches behind the recovery
circuit breaker.

What makes a pass safe to repeat, overlap and interrupt:

- one pass runs at a time; a caller that arrives during a pass gets its report;
- every venue call has a deadline and so does the pass; a pass that fails,
  times out or is cancelled concludes as failed, which halts trading;
- fills are deduplicated by trade id wherever they are applied (the ledger
  refuses a tid it knows), and fills are fetched from a look-back window before
  the checkpoint, so a fill that arrives late with an older time is still seen;
- a stop's cloid names the position, the size it protects and an attempt
  number; before placing, the venue is asked about the cloid, and a cloid the
  venue already used (its stop cancelled or triggered) moves on to the next
  attempt, so a vanished stop is placed again and a live one is never doubled;
- a stop protects only the size it covers: a smaller stop is topped up.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from cachetools import TTLCache

from obelisk.breaker import AlertDeduplicator, BreakerConfig, CircuitBreaker
from obelisk.envvars import env_number
from obelisk.errors import describe
from obelisk.execution.ledger import OrderLedger
from obelisk.execution.venue import OrderRequest, Venue, VenueFill, VenueOrder, VenuePosition
from obelisk.fees import FeeRates
from obelisk.instruments import Rounding
from obelisk.portfolio import Portfolio
from obelisk.risk import RiskManager, TradingState

STOP_CLOID_PREFIX = "0x5e"             # cloids of the stops recovery places: 0x5e + 30 hex
HISTORY = 100
MAX_STOP_ATTEMPTS = 64                 # cloids tried for one stop before the pass gives up

log = logging.getLogger(__name__)


class DiscrepancyKind(str, Enum):
    MISSED_FILL = "missed_fill"                  # a fill the ledger never applied
    UNKNOWN_ORDER = "unknown_order"              # open on the venue, unknown locally
    MISSING_ORDER = "missing_order"              # open locally, gone from the venue
    POSITION_MISMATCH = "position_mismatch"      # size or entry differ (after missed fills)
    LEVERAGE_MISMATCH = "leverage_mismatch"
    MARGIN_MODE_MISMATCH = "margin_mode_mismatch"
    BALANCE_MISMATCH = "balance_mismatch"        # the cross balance differs (after missed fills)
    UNKNOWN_COIN = "unknown_coin"                # a position or fill in a coin not traded here
    MISSING_STOP = "missing_stop"                # an open position without a protective stop


@dataclass(frozen=True)
class Discrepancy:
    kind: DiscrepancyKind
    coin: str
    detail: str


@dataclass(frozen=True, order=True)
class RecoveryAction:
    """One step that removes a discrepancy. Lower `priority` runs first; `key` names it."""

    priority: int
    key: str
    kind: str = field(compare=False)
    coin: str = field(compare=False)
    payload: Any = field(compare=False, default=None)


@dataclass(frozen=True)
class RecoveryReport:
    started: float                               # the clock's time when the run began
    seconds: float
    discrepancies: tuple[Discrepancy, ...]
    planned: tuple[RecoveryAction, ...]
    executed: tuple[RecoveryAction, ...]
    failed: tuple[tuple[RecoveryAction, str], ...]
    remaining: tuple[Discrepancy, ...]           # what the verification pass still found
    passed: bool
    dry_run: bool
    error: str | None = None                     # what ended the pass early, if anything
    # The venue's open orders as the pass last fetched them, each at what is left of it
    # (the ledger holds an order's size from its "open" frame).
    open_orders: tuple[VenueOrder, ...] = ()


@dataclass(frozen=True)
class _VenueState:
    positions: dict[str, VenuePosition]
    orders: dict[int, VenueOrder]
    fills: list[VenueFill]
    balance: float


@dataclass(frozen=True)
class _Stop:
    """A stop to place: what it protects, and how its cloids are derived."""

    coin: str
    is_buy: bool
    size: float                                  # the size it must cover
    price: float
    trigger_px: float
    position: str                                # the position it protects, for the cloid

    def request(self, attempt: int) -> OrderRequest:
        digest = hashlib.sha256(f"{self.position}|{self.size!r}|{attempt}".encode()).hexdigest()
        return OrderRequest(self.coin, is_buy=self.is_buy, size=self.size, price=self.price,
                            tif="Gtc", reduce_only=True, trigger_px=self.trigger_px,
                            cloid=STOP_CLOID_PREFIX + digest[:30])  # 0x and 32 hex digits


PLACE_STOP, CANCEL_ORPHAN, ADOPT_ORDER, APPLY_FILL, CLOSE_LOCAL_ORDER, RESYNC_POSITION, \
    RESYNC_BALANCE = ("place_stop", "cancel_orphan", "adopt_order", "apply_fill",
                      "close_local_order", "resync_position", "resync_balance")
_PRIORITY = {PLACE_STOP: 0, CANCEL_ORPHAN: 1, ADOPT_ORDER: 2, APPLY_FILL: 2,
             CLOSE_LOCAL_ORDER: 3, RESYNC_POSITION: 4, RESYNC_BALANCE: 5}
_VENUE_ACTIONS = {PLACE_STOP, CANCEL_ORPHAN}


class PositionRecovery:
    """Reconciles `portfolio` and `ledger` with `venue`; see the module docstring.

    Parameters
    ----------
    stop_distance : float, optional
        Place a reduce-only stop this fraction beyond the entry price for every
        position that has none (None: report missing stops, place nothing).
    dry_run : bool
        Plan the actions and report them, change nothing (not even the risk state).
    call_timeout, pass_timeout : float
        Seconds one venue call, and one whole pass, may take before the pass fails.
    fill_lookback_ms : int
        Fills are fetched from this long before the newest applied fill, so one that
        the venue reports late with an older time is still applied (once: by tid).
    balance_tolerance : float
        USDC by which the local and the venue's cross balance may differ.
    ours : callable, optional
        Whether an open order unknown to the ledger is one this process placed, whose
        "open" frame has not reached the ledger yet: adopted, not cancelled as an orphan.
    """

    def __init__(self, venue: Venue, portfolio: Portfolio, ledger: OrderLedger, *,
                 risk: RiskManager | None = None, breaker: CircuitBreaker | None = None,
                 stop_distance: float | None = None, stop_slippage: float = 0.05,
                 dry_run: bool = False, batch_size: int = 10,
                 call_timeout: float = 10.0, pass_timeout: float = 60.0,
                 fill_lookback_ms: int = 60_000, balance_tolerance: float = 1e-4,
                 cache_ttl_ms: float | None = None, alert_cooldown_ms: float | None = None,
                 alert_sink: Callable[[str], object] | None = None,
                 ours: Callable[[VenueOrder], bool] = lambda order: False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if stop_distance is not None and not 0 < stop_distance < 1:
            raise ValueError(f"stop_distance must be a fraction in (0, 1), got {stop_distance}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        for name, value in (("call_timeout", call_timeout), ("pass_timeout", pass_timeout)):
            if not 0 < value < math.inf:
                raise ValueError(f"{name} must be a positive number of seconds, got {value}")
        if not (isinstance(fill_lookback_ms, int) and fill_lookback_ms >= 0):
            raise ValueError(f"fill_lookback_ms must be an int >= 0, got {fill_lookback_ms!r}")
        if fill_lookback_ms > ledger.fill_memory_ms:
            raise ValueError(f"fill_lookback_ms ({fill_lookback_ms}) must not exceed the "
                             f"ledger's fill_memory_ms ({ledger.fill_memory_ms}): a fill "
                             f"fetched again from further back could be applied twice")
        if not 0 <= balance_tolerance < math.inf:
            raise ValueError(f"balance_tolerance must be >= 0, got {balance_tolerance}")
        self.venue, self.portfolio, self.ledger, self.risk = venue, portfolio, ledger, risk
        self.breaker = breaker or CircuitBreaker("position-recovery",
                                                 BreakerConfig.position_recovery())
        self.stop_distance, self.stop_slippage = stop_distance, stop_slippage
        self.dry_run, self.batch_size = dry_run, batch_size
        self.call_timeout, self.pass_timeout = call_timeout, pass_timeout
        self.fill_lookback_ms, self.balance_tolerance = fill_lookback_ms, balance_tolerance
        self.ours = ours
        ttl_ms = env_number("RECOVERY_CACHE_TTL_MS", cache_ttl_ms, default=1_000, minimum=0,
                            argument="cache_ttl_ms")
        self._cache: TTLCache[str, Any] = TTLCache(maxsize=8, ttl=ttl_ms / 1000, timer=clock)
        cooldown_ms = env_number("RECOVERY_ALERT_COOLDOWN_MS", alert_cooldown_ms,
                                 default=300_000, minimum=0, argument="alert_cooldown_ms")
        self._alerts = AlertDeduplicator(cooldown_ms / 1000, clock=clock)
        self.alert_sink = alert_sink
        self.clock = clock
        self.history: deque[RecoveryReport] = deque(maxlen=HISTORY)
        self._stop_attempts: dict[str, int] = {}  # first cloid attempt worth asking about
        self._running: asyncio.Future[RecoveryReport] | None = None
        self._asked = 0             # calls of reconcile() so far
        self._fresh_asked = 0       # the last of them with fresh=True
        self._running_answers = 0   # the calls the running pass answers (it began after them)
        self.passed = False
        if risk is not None and not dry_run:
            risk.set_state(TradingState.HALTED)  # until the first reconciliation passes

    # ------------------------------------------------------------------ run

    async def reconcile(self, *, fresh: bool = False) -> RecoveryReport:
        """One full pass: fetch, compare, act (unless dry run), verify.

        A call made while a pass runs waits for that pass and returns its report.
        Cancelling a caller does not cancel the pass; `run_periodically` stops it.
        `fresh` reads the venue anew rather than what a pass less than the cache's TTL
        ago read: a pass after a fault (a reconnect, a lost answer) must see what
        happened during it.
        """
        self._asked += 1
        asked = self._asked
        if fresh:
            self._fresh_asked = asked
        while True:
            running = self._running
            if running is None or running.done() or running.get_loop() is not \
                    asyncio.get_running_loop():
                self._running_answers = asked       # it reads the venue after every call so far
                running = self._running = asyncio.ensure_future(self._pass(fresh))
                return await asyncio.shield(running)
            if not fresh or self._running_answers >= asked:
                return await asyncio.shield(running)
            # The pass under way read the venue before this call's fault: its verdict is
            # stale (and it will not lift the halt, see _conclude); wait it out, then pass anew.
            await asyncio.gather(asyncio.shield(running), return_exceptions=True)

    async def run_periodically(self, interval: float, stop: asyncio.Event) -> None:
        """Reconcile every `interval` seconds until `stop` is set, which ends a pass in
        progress at once (it concludes as failed: trading stays halted)."""
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                reconciling = asyncio.ensure_future(self.reconcile())
                await asyncio.wait({reconciling, stopping},
                                   return_when=asyncio.FIRST_COMPLETED)
                if not reconciling.done():
                    reconciling.cancel()
                    if self._running is not None:
                        self._running.cancel()
                    await asyncio.gather(reconciling, return_exceptions=True)
                    if self._running is not None:
                        await asyncio.gather(self._running, return_exceptions=True)
                    return
                await asyncio.wait({stopping}, timeout=interval)
        finally:
            stopping.cancel()

    async def _pass(self, fresh: bool) -> RecoveryReport:
        started = self.clock()
        work = asyncio.ensure_future(self._reconcile(started, fresh))
        try:
            await asyncio.wait({work}, timeout=self.pass_timeout)
        except asyncio.CancelledError:
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            self._conclude(self._failed(started, "the pass was cancelled"))
            raise
        if not work.done():
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            report = self._failed(started, f"TimeoutError: the pass took more than "
                                  f"{self.pass_timeout} s")
        elif (error := work.exception()) is not None:
            report = self._failed(started, describe(error))
        else:
            report = work.result()
        if report.error is not None:
            log.warning("reconciliation failed: %s", report.error)
        self._conclude(report)
        return report

    def _failed(self, started: float, error: str) -> RecoveryReport:
        return RecoveryReport(started, self.clock() - started, (), (), (), (), (), False,
                              self.dry_run, error)

    async def _reconcile(self, started: float, fresh: bool) -> RecoveryReport:
        state = await self._fetch(fresh=fresh)
        discrepancies, actions = await self._analyse(state)
        executed: list[RecoveryAction] = []
        failed: list[tuple[RecoveryAction, str]] = []
        remaining = discrepancies
        if not self.dry_run and actions:
            executed, failed = await self._execute(actions)
            state = await self._fetch(fresh=True)
            remaining, _ = await self._analyse(state)
        blocking = [d for d in remaining
                    if d.kind is not DiscrepancyKind.MISSING_STOP or self.stop_distance]
        passed = not blocking and not failed
        return RecoveryReport(started, self.clock() - started, tuple(discrepancies),
                              tuple(actions), tuple(executed), tuple(failed), tuple(remaining),
                              passed, self.dry_run, open_orders=tuple(state.orders.values()))

    async def _call(self, fn: Callable[..., Awaitable[Any]], /, *args: Any,
                    **kwargs: Any) -> Any:
        """A venue call behind the breaker, with a deadline the breaker counts as a failure."""
        async def bounded() -> Any:
            try:
                return await asyncio.wait_for(fn(*args, **kwargs), self.call_timeout)
            except asyncio.TimeoutError:
                raise TimeoutError(f"venue call {getattr(fn, '__name__', fn)} took more than "
                                   f"{self.call_timeout} s") from None
        return await self.breaker.call_async(bounded)

    # ---------------------------------------------------------------- fetch

    async def _fetch(self, *, fresh: bool) -> _VenueState:
        """Positions, balance, open orders and the recent fills, in parallel."""
        if fresh:
            self._cache.clear()
        since = max(0, self.ledger.checkpoint_ms - self.fill_lookback_ms)
        positions, orders, fills, balance = await asyncio.gather(
            self._cached("positions", self.venue.positions),
            self._cached("orders", self.venue.open_orders),
            self._cached(f"fills:{since}", lambda: self.venue.fills_since(since)),
            self._cached("balance", self.venue.balance))
        unique = {f.tid: f for f in reversed(fills)}          # a fill listed twice is one fill
        return _VenueState({p.coin: p for p in positions if p.size != 0},
                           {o.oid: o for o in orders}, sorted(unique.values(), key=_fill_order),
                           float(balance))

    async def _cached(self, key: str, fetch: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return self._cache[key]
        except KeyError:
            value = self._cache[key] = await self._call(fetch)
            return value

    # -------------------------------------------------------------- compare

    async def _analyse(self, state: _VenueState
                       ) -> tuple[list[Discrepancy], list[RecoveryAction]]:
        found: list[Discrepancy] = []
        actions: list[RecoveryAction] = []
        traded = set(self.portfolio.coins)

        def add(kind: DiscrepancyKind, coin: str, detail: str, action: str | None = None,
                key: str = "", payload: Any = None) -> None:
            found.append(Discrepancy(kind, coin, detail))
            if action is not None:
                actions.append(RecoveryAction(_PRIORITY[action], f"{action}:{key}", action,
                                              coin, payload))

        missed = []
        for fill in state.fills:
            if self.ledger.knows_fill(fill.tid):
                continue
            if fill.coin not in traded:
                add(DiscrepancyKind.UNKNOWN_COIN, fill.coin,
                    f"fill {fill.tid} is in a coin the portfolio does not trade")
                continue
            missed.append(fill)
            add(DiscrepancyKind.MISSED_FILL, fill.coin,
                f"fill {fill.tid} of order {fill.oid}: {fill.size:+g} at {fill.price:g}",
                APPLY_FILL, f"{fill.time_ms:015d}:{fill.tid:020d}", fill)  # keys sort in time
        projected, balance = self._projected(missed)
        for coin in sorted(set(state.positions) | {c for c, p in projected.items() if p[0]}):
            self._compare_position(coin, state.positions.get(coin), projected.get(coin), add)
        if not math.isclose(balance, state.balance, rel_tol=0.0,
                            abs_tol=self.balance_tolerance):
            add(DiscrepancyKind.BALANCE_MISMATCH, "USDC",
                f"balance {balance:.6f} here, {state.balance:.6f} on the venue",
                RESYNC_BALANCE, repr(state.balance), state.balance)
        for oid, order in sorted(state.orders.items()):
            if oid in self.ledger.orders:
                continue
            if order.is_protective:       # never remove protection: adopt it instead
                add(DiscrepancyKind.UNKNOWN_ORDER, order.coin,
                    f"protective stop {oid} was never recorded", ADOPT_ORDER, str(oid), order)
            elif self.ours(order):        # placed here; its "open" frame is on its way
                add(DiscrepancyKind.UNKNOWN_ORDER, order.coin,
                    f"order {oid} placed here is not recorded yet", ADOPT_ORDER, str(oid), order)
            else:
                add(DiscrepancyKind.UNKNOWN_ORDER, order.coin,
                    f"order {oid} is open on the venue only", CANCEL_ORPHAN, str(oid), order)
        for oid, order in sorted(self.ledger.orders.items()):
            if oid in state.orders:
                continue
            status = await self._call(self.venue.order_status, oid=oid)
            if status != "open":          # confirmed by a targeted query before declaring it
                add(DiscrepancyKind.MISSING_ORDER, order.coin,
                    f"order {oid} is {status or 'unknown'} on the venue",
                    CLOSE_LOCAL_ORDER, str(oid), (oid, status or "missing"))
        for coin, position in sorted(state.positions.items()):
            if coin in traded:
                self._check_protection(position, state.orders.values(), add)
        return found, sorted(actions)

    def _check_protection(self, position: VenuePosition, orders: Any,
                          add: Callable[..., None]) -> None:
        """A position is protected by the stops that together cover its whole size."""
        instrument = self.portfolio.instruments[self.portfolio.index(position.coin)]
        closing_side = position.size < 0
        need = instrument.round_size_to_lots(abs(position.size), Rounding.NEAREST)
        covered = sum(instrument.round_size_to_lots(o.size, Rounding.NEAREST, allow_zero=True)
                      for o in orders
                      if o.coin == position.coin and o.is_protective and o.is_buy == closing_side)
        if covered >= need:
            return
        short = float(instrument.lots_to_size(need - covered))
        detail = (f"position {position.size:+g} has no protective stop" if not covered else
                  f"position {position.size:+g} has stops for only "
                  f"{float(instrument.lots_to_size(covered)):g}")
        stop = self._stop_for(position, short) if self.stop_distance else None
        add(DiscrepancyKind.MISSING_STOP, position.coin, detail,
            PLACE_STOP if stop else None, stop.position if stop else "", stop)

    def _projected(self, missed: list[VenueFill]
                   ) -> tuple[dict[str, tuple[float, float, int, bool]], float]:
        """Each coin's local (size, entry, leverage, isolated), and the cross balance, once
        the missed fills are in."""
        book = self.portfolio.book
        scratch = Portfolio(self.portfolio.instruments, balance=self.portfolio.balance,
                            fees=FeeRates(taker=book.taker_rate, maker=book.maker_rate))
        for position in self.portfolio.open_positions():
            scratch.book.set_position(scratch.index(position.coin), position.size,
                                      position.entry_px, leverage=position.leverage,
                                      isolated=position.isolated, margin=position.margin)
        for fill in missed:
            scratch.apply_fill(fill.coin, fill.size, fill.price, maker=fill.maker)
        out = {}
        for coin in scratch.coins:
            p = scratch.position(coin)
            local = self.portfolio.position(coin)
            out[coin] = (p.size, p.entry_px, local.leverage, local.isolated)
        return out, scratch.balance

    def _compare_position(self, coin: str, venue: VenuePosition | None,
                          local: tuple[float, float, int, bool] | None,
                          add: Callable[..., None]) -> None:
        size, entry, leverage, isolated = local or (0.0, 0.0, 0, False)
        theirs = venue or VenuePosition(coin, 0.0, 0.0, leverage, isolated)
        if coin not in self.portfolio.coins:
            add(DiscrepancyKind.UNKNOWN_COIN, coin,
                f"the venue holds {theirs.size:+g} of a coin the portfolio does not trade")
            return
        differs = []
        if not math.isclose(size, theirs.size, rel_tol=1e-9, abs_tol=1e-12):
            differs.append((DiscrepancyKind.POSITION_MISMATCH, f"size {size:+g} here, "
                            f"{theirs.size:+g} on the venue"))
        elif theirs.size and not math.isclose(entry, theirs.entry_px, rel_tol=1e-9):
            differs.append((DiscrepancyKind.POSITION_MISMATCH, f"entry {entry:g} here, "
                            f"{theirs.entry_px:g} on the venue"))
        if venue is not None and leverage != venue.leverage:
            differs.append((DiscrepancyKind.LEVERAGE_MISMATCH,
                            f"leverage {leverage} here, {venue.leverage} on the venue"))
        if venue is not None and isolated != venue.isolated:
            differs.append((DiscrepancyKind.MARGIN_MODE_MISMATCH,
                            f"{'isolated' if isolated else 'cross'} here, "
                            f"{'isolated' if venue.isolated else 'cross'} on the venue"))
        for i, (kind, detail) in enumerate(differs):
            last = i == len(differs) - 1        # one resync fixes them all
            key = f"{coin}:{theirs.size!r}:{theirs.entry_px!r}:{theirs.leverage}:{theirs.isolated}"
            add(kind, coin, detail, RESYNC_POSITION if last else None, key, theirs)

    def _stop_for(self, position: VenuePosition, size: float) -> _Stop:
        """A reduce-only stop for `size` of the position, `stop_distance` beyond entry."""
        assert self.stop_distance is not None
        instrument = self.portfolio.instruments[self.portfolio.index(position.coin)]
        long = position.size > 0
        away = -self.stop_distance if long else self.stop_distance
        trigger = instrument.round_price(position.entry_px * (1 + away),
                                         Rounding.DOWN if long else Rounding.UP)
        limit = instrument.round_price(float(trigger) * (1 + away / abs(away)
                                                         * self.stop_slippage),
                                       Rounding.DOWN if long else Rounding.UP)
        return _Stop(position.coin, not long, size, float(limit), float(trigger),
                     _position_key(position))

    # -------------------------------------------------------------- execute

    async def _execute(self, actions: list[RecoveryAction]
                       ) -> tuple[list[RecoveryAction], list[tuple[RecoveryAction, str]]]:
        """Run the actions in priority order: venue ones in parallel batches, local ones in turn."""
        executed: list[RecoveryAction] = []
        failed: list[tuple[RecoveryAction, str]] = []
        fill_failed = False
        for priority in sorted({a.priority for a in actions}):
            group = [a for a in actions if a.priority == priority]
            batches = ([group[i:i + self.batch_size] for i in range(0, len(group), self.batch_size)]
                       if group[0].kind in _VENUE_ACTIONS else [[a] for a in group])
            for batch in batches:
                if fill_failed and batch[0].kind == APPLY_FILL:
                    # a later fill would move the checkpoint past the one that failed
                    failed.append((batch[0], "not applied: an earlier fill failed"))
                    continue
                results = await asyncio.gather(*(self._run(a) for a in batch),
                                               return_exceptions=True)
                for action, result in zip(batch, results, strict=True):
                    if isinstance(result, asyncio.CancelledError):
                        raise result
                    if isinstance(result, BaseException):
                        log.error("recovery action %s failed: %r", action.key, result)
                        failed.append((action, repr(result)))
                        fill_failed |= action.kind == APPLY_FILL
                    else:
                        log.info("recovery action %s done", action.key)
                        executed.append(action)
        return executed, failed

    async def _run(self, action: RecoveryAction) -> None:
        if action.kind == PLACE_STOP:
            await self._place_stop(action.payload)
        elif action.kind == CANCEL_ORPHAN:
            order: VenueOrder = action.payload
            await self._call(self.venue.cancel, order.coin, order.oid)
        elif action.kind == APPLY_FILL:
            fill: VenueFill = action.payload
            if self.ledger.fill_applied(fill):     # journaled first; a known tid is skipped
                self.portfolio.apply_fill(fill.coin, fill.size, fill.price, maker=fill.maker)
        elif action.kind == CLOSE_LOCAL_ORDER:
            oid, status = action.payload
            self.ledger.order_closed(oid, status)
        elif action.kind == ADOPT_ORDER:
            self.ledger.order_opened(action.payload)
        elif action.kind == RESYNC_POSITION:
            p: VenuePosition = action.payload
            self.portfolio.book.set_position(self.portfolio.index(p.coin), p.size, p.entry_px,
                                             leverage=p.leverage, isolated=p.isolated,
                                             margin=p.margin if p.isolated and p.size else 0.0)
        elif action.kind == RESYNC_BALANCE:
            self.portfolio.set_balance(action.payload)

    async def _place_stop(self, stop: _Stop) -> None:
        """Place `stop` under the first cloid the venue has never seen.

        A cloid the venue knows was placed before: if its stop is still open the
        fetch missed it (the next pass adopts it), otherwise it is gone and the
        next attempt's cloid is tried.
        """
        key = f"{stop.position}|{stop.size!r}"
        first = self._stop_attempts.get(key, 0)
        for attempt in range(first, first + MAX_STOP_ATTEMPTS):
            request = stop.request(attempt)
            status = await self._call(self.venue.order_status, cloid=request.cloid)
            if status is None:
                break
            if status == "open":
                self._stop_attempts[key] = attempt
                raise RuntimeError(f"stop {request.cloid} is open on the venue but was not "
                                   "listed; the next pass adopts it")
        else:
            raise RuntimeError(f"no unused cloid for the stop of {stop.position} in "
                               f"{MAX_STOP_ATTEMPTS} attempts")
        self._stop_attempts[key] = attempt + 1     # this cloid is spent whatever happens now
        result = await self._call(self.venue.place, request)
        if result.status != "open":
            raise RuntimeError(f"the venue answered {result.status!r} to stop {request.cloid}")
        self.ledger.order_opened(VenueOrder(
            result.oid, request.coin, request.is_buy, request.size, request.price,
            reduce_only=True, trigger_px=request.trigger_px, cloid=request.cloid))

    # --------------------------------------------------------------- report

    def _conclude(self, report: RecoveryReport) -> None:
        for d in report.discrepancies:      # still there after the actions: a warning
            log.log(logging.WARNING if d in report.remaining else logging.INFO, "%s on %s: %s",
                    d.kind.value, d.coin, d.detail)
        log.info("reconciliation %s%s: %d discrepancies, %d actions, %d done, %d failed, "
                 "%d remaining", "passed" if report.passed else "did not pass",
                 " (dry run)" if report.dry_run else "", len(report.discrepancies),
                 len(report.planned), len(report.executed), len(report.failed),
                 len(report.remaining))
        self.history.append(report)
        self.passed = report.passed
        if self.risk is not None and not report.dry_run:
            # a fresh call made during the pass saw a fault the pass may have missed: trading
            # stays halted until the pass that call waits for says otherwise
            stale = self._fresh_asked > self._running_answers
            self.risk.set_state(TradingState.ACTIVE if report.passed and not stale
                                else TradingState.HALTED)
        if report.error is not None:
            self._alert(("error", report.error.split(":")[0]),
                        f"reconciliation failed: {report.error}")
        for d in report.discrepancies:
            self._alert((d.kind, d.coin), f"{d.kind.value} on {d.coin}: {d.detail}")
        for action, error in report.failed:
            self._alert(("failed", action.kind), f"recovery action {action.key} failed: {error}")

    def _alert(self, cause: object, message: str) -> None:
        if self.alert_sink is not None and self._alerts.admit(cause):
            self.alert_sink(message)


def _position_key(position: VenuePosition) -> str:
    return f"{position.coin}|{position.size!r}|{position.entry_px!r}"


def _fill_order(fill: VenueFill) -> tuple[int, int]:
    return fill.time_ms, fill.tid
