"""Position recovery: reconcile what this process believes with what the exchange holds.

Run at start-up (trading stays halted until it passes) and then periodically.
Each run fetches the venue's positions, open orders and recent fills in
parallel, compares them with the local ledger and portfolio, and turns every
discrepancy into an action with an idempotency key: protective stops first,
then cancels of orphan orders, then local resyncs. Venue actions go out in
batches behind the recovery circuit breaker; a stop is placed with a cloid
derived from the position, so a retried or repeated placement places once.
"""

from __future__ import annotations

import asyncio
import hashlib
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
from obelisk.execution.ledger import OrderLedger
from obelisk.execution.venue import OrderRequest, Venue, VenueFill, VenueOrder, VenuePosition
from obelisk.instruments import Rounding
from obelisk.portfolio import Portfolio
from obelisk.risk import RiskManager, TradingState

STOP_CLOID_PREFIX = "0x5e"             # cloids of the stops recovery places: 0x5e + 30 hex
HISTORY = 100


class DiscrepancyKind(str, Enum):
    MISSED_FILL = "missed_fill"                  # a fill the ledger never applied
    UNKNOWN_ORDER = "unknown_order"              # open on the venue, unknown locally
    MISSING_ORDER = "missing_order"              # open locally, gone from the venue
    POSITION_MISMATCH = "position_mismatch"      # size or entry differ (after missed fills)
    LEVERAGE_MISMATCH = "leverage_mismatch"
    MARGIN_MODE_MISMATCH = "margin_mode_mismatch"
    MISSING_STOP = "missing_stop"                # an open position without a protective stop


@dataclass(frozen=True)
class Discrepancy:
    kind: DiscrepancyKind
    coin: str
    detail: str


@dataclass(frozen=True, order=True)
class RecoveryAction:
    """One step that removes a discrepancy. Lower `priority` runs first; `key` makes it
    idempotent: an action whose key already ran is never run again."""

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


@dataclass(frozen=True)
class _VenueState:
    positions: dict[str, VenuePosition]
    orders: dict[int, VenueOrder]
    fills: list[VenueFill]


PLACE_STOP, CANCEL_ORPHAN, ADOPT_ORDER, APPLY_FILL, CLOSE_LOCAL_ORDER, RESYNC_POSITION = (
    "place_stop", "cancel_orphan", "adopt_order", "apply_fill", "close_local_order",
    "resync_position")
_PRIORITY = {PLACE_STOP: 0, CANCEL_ORPHAN: 1, ADOPT_ORDER: 2, APPLY_FILL: 2,
             CLOSE_LOCAL_ORDER: 3, RESYNC_POSITION: 4}
_VENUE_ACTIONS = {PLACE_STOP, CANCEL_ORPHAN}


class PositionRecovery:
    """Reconciles `portfolio` and `ledger` with `venue`; see the module docstring.

    Parameters
    ----------
    stop_distance : float, optional
        Place a reduce-only stop this fraction beyond the entry price for every
        position that has none (None: report missing stops, place nothing).
    dry_run : bool
        Plan the actions and report them, change nothing.
    """

    def __init__(self, venue: Venue, portfolio: Portfolio, ledger: OrderLedger, *,
                 risk: RiskManager | None = None, breaker: CircuitBreaker | None = None,
                 stop_distance: float | None = None, stop_slippage: float = 0.05,
                 dry_run: bool = False, batch_size: int = 10,
                 cache_ttl_ms: float | None = None, alert_cooldown_ms: float | None = None,
                 alert_sink: Callable[[str], object] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if stop_distance is not None and not 0 < stop_distance < 1:
            raise ValueError(f"stop_distance must be a fraction in (0, 1), got {stop_distance}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.venue, self.portfolio, self.ledger, self.risk = venue, portfolio, ledger, risk
        self.breaker = breaker or CircuitBreaker("position-recovery",
                                                 BreakerConfig.position_recovery())
        self.stop_distance, self.stop_slippage = stop_distance, stop_slippage
        self.dry_run, self.batch_size = dry_run, batch_size
        ttl_ms = env_number("RECOVERY_CACHE_TTL_MS", cache_ttl_ms, default=1_000, minimum=0,
                            argument="cache_ttl_ms")
        self._cache: TTLCache[str, Any] = TTLCache(maxsize=8, ttl=ttl_ms / 1000, timer=clock)
        cooldown_ms = env_number("RECOVERY_ALERT_COOLDOWN_MS", alert_cooldown_ms,
                                 default=300_000, minimum=0, argument="alert_cooldown_ms")
        self._alerts = AlertDeduplicator(cooldown_ms / 1000, clock=clock)
        self.alert_sink = alert_sink
        self.clock = clock
        self.history: deque[RecoveryReport] = deque(maxlen=HISTORY)
        self.done: set[str] = set()              # keys of the venue actions that ran
        self._stop_attempts: dict[str, int] = {}  # refused stops per position: a new cloid
        self.passed = False
        if risk is not None:
            risk.set_state(TradingState.HALTED)  # until the first reconciliation passes

    # ------------------------------------------------------------------ run

    async def reconcile(self) -> RecoveryReport:
        """One full pass: fetch, compare, act (unless dry run), verify."""
        started = self.clock()
        state = await self._fetch(fresh=False)
        discrepancies, actions = await self._analyse(state)
        executed: list[RecoveryAction] = []
        failed: list[tuple[RecoveryAction, str]] = []
        remaining = discrepancies
        if not self.dry_run and actions:
            executed, failed = await self._execute(actions, state)
            remaining, _ = await self._analyse(await self._fetch(fresh=True))
        blocking = [d for d in remaining
                    if d.kind is not DiscrepancyKind.MISSING_STOP or self.stop_distance]
        passed = not blocking and not failed
        report = RecoveryReport(started, self.clock() - started, tuple(discrepancies),
                                tuple(actions), tuple(executed), tuple(failed),
                                tuple(remaining), passed, self.dry_run)
        self._conclude(report)
        return report

    async def run_periodically(self, interval: float, stop: asyncio.Event) -> None:
        """Reconcile every `interval` seconds until `stop` is set; a failed run is retried."""
        while not stop.is_set():
            try:
                await self.reconcile()
            except Exception as exc:  # noqa: BLE001 - one failed pass must not end the loop
                self._alert(("error", type(exc).__name__), f"reconciliation failed: {exc!r}")
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except asyncio.TimeoutError:
                continue

    # ---------------------------------------------------------------- fetch

    async def _fetch(self, *, fresh: bool) -> _VenueState:
        """Positions, open orders and the fills since the ledger's checkpoint, in parallel."""
        if fresh:
            self._cache.clear()
        positions, orders, fills = await asyncio.gather(
            self._cached("positions", self.venue.positions),
            self._cached("orders", self.venue.open_orders),
            self._cached(f"fills:{self.ledger.checkpoint_ms}",
                         lambda: self.venue.fills_since(self.ledger.checkpoint_ms)))
        return _VenueState({p.coin: p for p in positions if p.size != 0},
                           {o.oid: o for o in orders}, sorted(fills, key=_fill_order))

    async def _cached(self, key: str, fetch: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return self._cache[key]
        except KeyError:
            value = self._cache[key] = await self.breaker.call_async(fetch)
            return value

    # -------------------------------------------------------------- compare

    async def _analyse(self, state: _VenueState
                       ) -> tuple[list[Discrepancy], list[RecoveryAction]]:
        found: list[Discrepancy] = []
        actions: list[RecoveryAction] = []

        def add(kind: DiscrepancyKind, coin: str, detail: str, action: str | None = None,
                key: str = "", payload: Any = None) -> None:
            found.append(Discrepancy(kind, coin, detail))
            if action is not None:
                actions.append(RecoveryAction(_PRIORITY[action], f"{action}:{key}", action,
                                              coin, payload))

        missed = [f for f in state.fills if not self.ledger.knows_fill(f.tid)]
        for fill in missed:
            add(DiscrepancyKind.MISSED_FILL, fill.coin,
                f"fill {fill.tid} of order {fill.oid}: {fill.size:+g} at {fill.price:g}",
                APPLY_FILL, f"{fill.time_ms:015d}:{fill.tid:020d}", fill)  # keys sort in time
        projected = self._projected(missed)
        for coin in sorted(set(state.positions) | {c for c, p in projected.items() if p[0]}):
            self._compare_position(coin, state.positions.get(coin), projected.get(coin), add)
        for oid, order in sorted(state.orders.items()):
            if oid in self.ledger.orders:
                continue
            if order.is_protective:       # never remove protection: adopt it instead
                add(DiscrepancyKind.UNKNOWN_ORDER, order.coin,
                    f"protective stop {oid} was never recorded", ADOPT_ORDER, str(oid), order)
            else:
                add(DiscrepancyKind.UNKNOWN_ORDER, order.coin,
                    f"order {oid} is open on the venue only", CANCEL_ORPHAN, str(oid), order)
        for oid, order in sorted(self.ledger.orders.items()):
            if oid in state.orders:
                continue
            status = await self.breaker.call_async(self.venue.order_status, oid=oid)
            if status != "open":          # confirmed by a targeted query before declaring it
                add(DiscrepancyKind.MISSING_ORDER, order.coin,
                    f"order {oid} is {status or 'unknown'} on the venue",
                    CLOSE_LOCAL_ORDER, str(oid), (oid, status or "missing"))
        for coin, position in sorted(state.positions.items()):
            closing_side = position.size < 0
            if not any(o.coin == coin and o.is_protective and o.is_buy == closing_side
                       for o in state.orders.values()):
                stop = self._stop_for(position) if self.stop_distance else None
                add(DiscrepancyKind.MISSING_STOP, coin,
                    f"position {position.size:+g} has no protective stop",
                    PLACE_STOP if stop else None, (stop and stop.cloid) or "",
                    (stop, _position_key(position)))
        return found, sorted(actions)

    def _projected(self, missed: list[VenueFill]) -> dict[str, tuple[float, float, int, bool]]:
        """Each coin's local (size, entry, leverage, isolated) once the missed fills are in."""
        scratch = Portfolio(self.portfolio.instruments, balance=1e18)
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
        return out

    def _compare_position(self, coin: str, venue: VenuePosition | None,
                          local: tuple[float, float, int, bool] | None,
                          add: Callable[..., None]) -> None:
        size, entry, leverage, isolated = local or (0.0, 0.0, 0, False)
        theirs = venue or VenuePosition(coin, 0.0, 0.0, leverage, isolated)
        if coin not in self.portfolio.coins:
            add(DiscrepancyKind.POSITION_MISMATCH, coin,
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

    def _stop_for(self, position: VenuePosition) -> OrderRequest:
        """A reduce-only stop `stop_distance` beyond entry; its cloid names the position."""
        assert self.stop_distance is not None
        instrument = self.portfolio.instruments[self.portfolio.index(position.coin)]
        long = position.size > 0
        away = -self.stop_distance if long else self.stop_distance
        trigger = instrument.round_price(position.entry_px * (1 + away),
                                         Rounding.DOWN if long else Rounding.UP)
        limit = instrument.round_price(float(trigger) * (1 + away / abs(away)
                                                         * self.stop_slippage),
                                       Rounding.DOWN if long else Rounding.UP)
        attempt = self._stop_attempts.get(_position_key(position), 0)  # a new cloid per retry
        digest = hashlib.sha256(f"{position.coin}|{position.size!r}|{position.entry_px!r}|"
                                f"{attempt}".encode()).hexdigest()
        return OrderRequest(position.coin, is_buy=not long, size=abs(position.size),
                            price=float(limit), tif="Gtc", reduce_only=True,
                            trigger_px=float(trigger),
                            cloid=STOP_CLOID_PREFIX + digest[:30])  # 0x and 32 hex digits

    # -------------------------------------------------------------- execute

    async def _execute(self, actions: list[RecoveryAction], state: _VenueState
                       ) -> tuple[list[RecoveryAction], list[tuple[RecoveryAction, str]]]:
        """Run the actions in priority order: venue ones in parallel batches, local ones in turn."""
        executed: list[RecoveryAction] = []
        failed: list[tuple[RecoveryAction, str]] = []
        # Venue actions run once per key; local ones are idempotent and simply rerun.
        pending = [a for a in actions if a.key not in self.done]
        fill_failed = False
        for priority in sorted({a.priority for a in pending}):
            group = [a for a in pending if a.priority == priority]
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
                    if isinstance(result, BaseException):
                        failed.append((action, repr(result)))
                        fill_failed |= action.kind == APPLY_FILL
                    else:
                        if action.kind in _VENUE_ACTIONS:
                            self.done.add(action.key)
                        executed.append(action)
        return executed, failed

    async def _run(self, action: RecoveryAction) -> None:
        if action.kind in _VENUE_ACTIONS:
            await self._run_on_venue(action)
            return
        if action.kind == APPLY_FILL:
            fill: VenueFill = action.payload
            self.ledger.fill_applied(fill)     # journaled first: never applied twice
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

    async def _run_on_venue(self, action: RecoveryAction) -> None:
        if action.kind == CANCEL_ORPHAN:
            order: VenueOrder = action.payload
            await self.breaker.call_async(self.venue.cancel, order.coin, order.oid)
            return
        stop, position_key = action.payload
        result = await self.breaker.call_async(self.venue.place, stop)
        if result.status != "open":
            self._stop_attempts[position_key] = self._stop_attempts.get(position_key, 0) + 1
            raise RuntimeError(f"the venue answered {result.status!r} to stop {stop.cloid}")
        self.ledger.order_opened(VenueOrder(
            result.oid, stop.coin, stop.is_buy, stop.size, stop.price,
            reduce_only=True, trigger_px=stop.trigger_px, cloid=stop.cloid))

    # --------------------------------------------------------------- report

    def _conclude(self, report: RecoveryReport) -> None:
        self.history.append(report)
        self.passed = report.passed
        if self.risk is not None and not report.dry_run:
            self.risk.set_state(TradingState.ACTIVE if report.passed else TradingState.HALTED)
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

