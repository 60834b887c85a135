"""The trading pipeline: strategy orders -> risk -> batch executor -> venue -> fills ->
portfolio -> trace store, every stage timed by the performance monitor.

Orders collect in a batch (in the core's ticks and lots) until `batch_size`
orders or `max_batch_wait_ms`, whichever comes first; then the batch is
checked by the compiled risk manager, sent to any `BatchVenue` in one call
through the circuit breaker, and the venue's report (outcomes, the account's
fills, removed orders) applied to the portfolio in one call and recorded as one
trace. Activity the venue reports later (a network venue's fills, fills that
other participants caused) is collected by :meth:`TradingEngine.poll` and takes
the same path. Reduce-only orders are enforced here against the live position:
each is clipped to the position it reduces, or refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from obelisk._core.book import EVENT_DTYPE, EventKind, OrderStatus, Side, TimeInForce
from obelisk._core.risk import RISK_ORDER_DTYPE, OrderFlags, RiskReason
from obelisk.breaker import BreakerConfig, CircuitBreaker
from obelisk.errors import ObeliskError
from obelisk.execution.venue import ACCOUNT, BatchReport, BatchVenue
from obelisk.monitor import PerformanceMonitor
from obelisk.portfolio import Portfolio
from obelisk.risk import RiskManager, TradingState

__all__ = ["STAGES", "EngineStats", "TradingEngine"]

STAGES = ("risk", "venue", "portfolio", "trace", "batch")
# What a venue call may raise when the venue, not the engine, is at fault.
_VENUE_FAILURES = (ObeliskError, ConnectionError, TimeoutError, OSError)


def _resting(events: np.ndarray) -> np.ndarray:
    """Limit orders that may rest (GTC, ALO); market orders never do."""
    tif = events["tif"]
    return (events["kind"] == EventKind.LIMIT) & ((tif == TimeInForce.GTC)
                                                  | (tif == TimeInForce.ALO))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _fill_columns(report: BatchReport) -> dict[str, np.ndarray]:
    """The report's fills as trace columns."""
    fills = report.fills
    return {"fill_oid": report.fill_oids,
            "fill_asset": np.ascontiguousarray(fills["asset"]),
            "fill_size": np.ascontiguousarray(fills["size"]),
            "fill_price": np.ascontiguousarray(fills["price"]),
            "fill_fee": report.fees}


@dataclass
class EngineStats:
    """Outcomes of every order the engine has taken, by kind."""

    submitted: int = 0
    filled: int = 0                 # fully or partly filled at once
    rested: int = 0
    cancelled: int = 0              # cancel requests that removed their order
    unfilled: int = 0               # IOC and market orders that found nothing to trade with
    refused: int = 0                # by the risk manager or the reduce-only rule
    rejected: int = 0               # by the venue (bad order, unknown oid, ...)
    failed: int = 0                 # the venue call itself failed (breaker open, error)
    fills: int = 0                  # every fill applied, at once or later
    batches: int = 0
    traces: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def completed(self) -> int:
        """Orders that did what they were sent for: traded, rested, or cancelled theirs."""
        return self.filled + self.rested + self.cancelled


class TradingEngine:
    """Runs orders through risk, any batch venue, the portfolio and the trace store in batches.

    Parameters
    ----------
    portfolio, risk : the account and its pre-trade checks (``risk.portfolio`` is `portfolio`).
    venue : a `BatchVenue` over the same InstrumentTable as the portfolio.
    store : TraceStore, optional; one trace per batch (orders, outcomes, fills) and one per
        report of later activity (fills).
    on_fills : callable(report), optional; the strategy's view of each report with fills
        (``report.fills``, ``report.fees``, ``report.fill_oids``).
    on_removed : callable(oids), optional; the account's resting orders the venue removed
        (self-trade prevention), which the strategy must stop tracking.

    One thread drives an engine: it calls ``submit*``, ``flush`` and ``poll``.
    """

    def __init__(self, portfolio: Portfolio, venue: BatchVenue, risk: RiskManager, *,
                 store: Any = None, monitor: PerformanceMonitor | None = None,
                 breaker: CircuitBreaker | None = None, batch_size: int = 5000,
                 max_batch_wait_ms: float = 50.0,
                 on_fills: Callable[[BatchReport], object] | None = None,
                 on_removed: Callable[[np.ndarray], object] | None = None,
                 clock_ns: Callable[[], int] = time.perf_counter_ns) -> None:
        if batch_size < 1 or not max_batch_wait_ms >= 0:
            raise ValueError("batch_size must be >= 1 and max_batch_wait_ms >= 0")
        if venue.instruments != portfolio.instruments:
            raise ValueError("the venue and the portfolio must trade the same instruments in "
                             f"the same order: {venue.instruments} vs {portfolio.instruments}")
        self.portfolio, self.venue, self.risk, self.store = portfolio, venue, risk, store
        self.monitor = monitor or PerformanceMonitor()
        self.breaker = breaker or CircuitBreaker("venue", BreakerConfig())
        self.batch_size = batch_size
        self.max_batch_wait_ns = int(max_batch_wait_ms * 1e6)
        self.on_fills = on_fills
        self.on_removed = on_removed
        self.clock_ns = clock_ns
        self.stats = EngineStats()
        self._instruments = portfolio.instruments
        self._events = np.zeros(batch_size, dtype=EVENT_DTYPE)
        self._rows = np.zeros(batch_size, dtype=np.int32)
        self._flags = np.zeros(batch_size, dtype=np.uint8)
        self._born = np.zeros(batch_size, dtype=np.int64)
        self._count = 0
        self._next_oid = 1
        self._stages = {name: self.monitor.operation(name) for name in STAGES}
        self._end_to_end = self.monitor.operation("end_to_end")
        self._open: set[int] = set()          # the account's resting orders, for risk

    # ------------------------------------------------------------ orders in

    def submit(self, row: int, side: int, price_ticks: int, qty_lots: int, *,
               tif: int = TimeInForce.GTC, reduce_only: bool = False,
               market: bool = False) -> int:
        """Queue one order (row = the asset's row in the InstrumentTable); its order id."""
        oid = self._next_oid
        self._next_oid += 1
        self._push(EventKind.MARKET if market else EventKind.LIMIT, oid, row, side,
                   price_ticks, qty_lots, tif, OrderFlags.REDUCE_ONLY if reduce_only else 0)
        return oid

    def cancel(self, row: int, oid: int) -> None:
        self._push(EventKind.CANCEL, oid, row, Side.BUY, 0, 0, TimeInForce.GTC, 0)

    def submit_batch(self, rows: np.ndarray, sides: np.ndarray, prices: np.ndarray,
                     qtys: np.ndarray, tifs: np.ndarray, kinds: np.ndarray | None = None,
                     oids: np.ndarray | None = None,
                     reduce_only: np.ndarray | None = None) -> np.ndarray:
        """Queue many orders at once (cancels name `oids`); the order ids."""
        n = len(rows)
        kinds = np.full(n, EventKind.LIMIT, np.uint8) if kinds is None else kinds
        oids = np.zeros(n, np.int64) if oids is None else oids.copy()
        new = kinds != EventKind.CANCEL
        fresh = int(new.sum())
        oids[new] = np.arange(self._next_oid, self._next_oid + fresh)
        self._next_oid += fresh
        flags = np.zeros(n, np.uint8) if reduce_only is None else reduce_only.astype(np.uint8)
        assets = self._instruments.assets
        start = 0
        while start < n:
            take = min(n - start, self.batch_size - self._count)
            part = slice(start, start + take)
            here = slice(self._count, self._count + take)
            e = self._events[here]
            e["oid"], e["asset"], e["side"] = oids[part], assets[rows[part]], sides[part]
            e["price"], e["qty"], e["tif"], e["kind"] = prices[part], qtys[part], tifs[part], \
                kinds[part]
            e["owner"] = ACCOUNT
            self._rows[here] = rows[part]
            self._flags[here] = flags[part]
            self._born[here] = self.clock_ns()
            self._count += take
            start += take
            if self._count == self.batch_size:
                self.flush()
        return oids

    def poll(self) -> None:
        """Apply what the venue reported since the last call (late fills, fills that others'
        orders caused), then send the batch if its oldest order has waited
        `max_batch_wait_ms`."""
        self._collect()
        if self._count and self.clock_ns() - self._born[0] >= self.max_batch_wait_ns:
            self.flush()

    def _push(self, kind: int, oid: int, row: int, side: int, price: int, qty: int, tif: int,
              flags: int) -> None:
        i = self._count
        self._events[i] = (oid, price, qty, ACCOUNT, self._instruments.assets[row], kind, side,
                           tif)
        self._rows[i] = row
        self._flags[i] = flags
        self._born[i] = now = self.clock_ns()
        self._count += 1
        if self._count == self.batch_size or now - self._born[0] >= self.max_batch_wait_ns:
            self.flush()

    # ------------------------------------------------------------- pipeline

    def flush(self) -> None:
        """Run the queued orders through the pipeline now."""
        n = self._count
        if not n:
            return
        self._count = 0
        events, rows = self._events[:n].copy(), self._rows[:n]
        flags, born = self._flags[:n], self._born[:n]
        start = self.clock_ns()
        reasons = self._check(events, rows, flags)
        after_risk = self.clock_ns()
        sent, report, error, applied = self._execute(events, rows, flags, reasons)
        after_venue = self.clock_ns()
        if report is not None and not applied:
            self._apply(report)
        after_portfolio = self.clock_ns()
        self._count_outcomes(events, reasons, sent, report, error)
        self._track_open_orders(events, sent, report)
        if self.store is not None:
            self._trace(events, reasons, sent, report, error)
        done = self.clock_ns()
        for name, began, ended in (("risk", start, after_risk), ("venue", after_risk, after_venue),
                                   ("portfolio", after_venue, after_portfolio),
                                   ("trace", after_portfolio, done), ("batch", start, done)):
            self._stages[name].record(ended - began)
        self._end_to_end.record_many(done - born)
        if report is not None:
            self._notify(report)

    def _check(self, events: np.ndarray, rows: np.ndarray, flags: np.ndarray) -> np.ndarray:
        """Risk reasons per order (0 = allowed), judged for the batch as a whole.

        Cancels are never checked. Reduce-only orders are judged in _execute
        against the position each one meets; here only a halt or the kill
        switch stops them, as for any order that only reduces.
        """
        reasons = np.zeros(len(events), dtype=np.uint8)
        kind = events["kind"]
        reduce_only = (flags & OrderFlags.REDUCE_ONLY).astype(bool)
        checked = np.flatnonzero((kind != EventKind.CANCEL) & ~reduce_only)
        if len(checked):
            chosen = events[checked]
            chosen_rows = rows[checked]
            tick = self._instruments.tick[chosen_rows]
            orders = np.empty(len(chosen), dtype=RISK_ORDER_DTYPE)
            orders["asset"] = chosen_rows
            orders["side"] = 1 - 2 * chosen["side"].astype(np.int8)   # BUY 0 -> +1, SELL -> -1
            orders["size"] = np.maximum(chosen["qty"], 1) * self._instruments.lot[chosen_rows]
            # a market order without a protection price is judged at the mark
            marks = self.portfolio.marks[chosen_rows]
            orders["price"] = np.where(chosen["price"] > 0, chosen["price"] * tick,
                                       np.where(np.isnan(marks), tick, marks))
            orders["trigger_price"] = 0.0
            orders["flags"] = np.where(_resting(chosen), 0, OrderFlags.IMMEDIATE)
            reasons[checked] = self.risk.check_batch(orders)
        if reduce_only.any():
            stopped = self.risk.kill_switch or self.risk.state == TradingState.HALTED
            reasons[reduce_only & (kind != EventKind.CANCEL)] = (
                RiskReason.HALTED if stopped else 0)
            reasons[reduce_only & _resting(events) & (reasons == 0)] = \
                RiskReason.REDUCE_ONLY_INCREASES        # a resting one could grow a position later
        return reasons

    def _execute(self, events: np.ndarray, rows: np.ndarray, flags: np.ndarray,
                 reasons: np.ndarray) -> tuple[np.ndarray, BatchReport | None, str | None, bool]:
        """Send the allowed orders through the breaker: the indices sent (in order), the
        venue's report for them, the error that stopped the rest, and whether the report
        is already applied. Reduce-only orders go one at a time, clipped to the position
        left by the orders before them."""
        allowed = np.flatnonzero(reasons == 0)
        if not len(allowed):
            return allowed, None, None, False
        if not (flags[allowed] & OrderFlags.REDUCE_ONLY).any():
            try:
                report = self.breaker.call(self.venue.execute, events[allowed])
            except _VENUE_FAILURES as exc:
                return allowed[:0], None, _describe(exc), False
            return allowed, report, None, False
        return self._execute_with_reduce_only(events, rows, flags, reasons, allowed)

    def _execute_with_reduce_only(self, events: np.ndarray, rows: np.ndarray,
                                  flags: np.ndarray, reasons: np.ndarray, allowed: np.ndarray
                                  ) -> tuple[np.ndarray, BatchReport | None, str | None, bool]:
        parts: list[BatchReport] = []
        sent: list[int] = []
        block: list[int] = []

        def run(indices: list[int]) -> None:
            if indices:
                part = self.breaker.call(self.venue.execute, events[indices])
                parts.append(part)
                sent.extend(indices)
                self._apply(part)          # the next clip sees its fills

        error = None
        try:
            for i in allowed.tolist():
                if not flags[i] & OrderFlags.REDUCE_ONLY:
                    block.append(i)
                    continue
                run(block)
                block = []
                lots = self.portfolio.reducible_lots(int(rows[i]),
                                                     events["side"][i] == Side.BUY)
                if lots == 0:
                    reasons[i] = RiskReason.REDUCE_ONLY_INCREASES
                    continue
                events["qty"][i] = min(int(events["qty"][i]), lots)
                run([i])
            run(block)
        except _VENUE_FAILURES as exc:    # what ran stays counted, traced and applied
            error = _describe(exc)
        if not parts:
            return np.zeros(0, np.int64), None, error, True
        return np.asarray(sent, dtype=np.int64), BatchReport.concat(parts), error, True

    def _apply(self, report: BatchReport) -> None:
        """The account's fills into the portfolio."""
        if len(report.fills):
            self.portfolio.apply_fills(report.fills)
            self.stats.fills += len(report.fill_oids)

    def _forget(self, report: BatchReport) -> None:
        """Resting orders the venue completed or removed leave the open-order count."""
        self._open.difference_update(report.done_oids.tolist())
        self._open.difference_update(report.removed_oids.tolist())
        self.risk.set_open_orders(len(self._open))

    def _collect(self) -> None:
        """Activity reported after its batch: applied, traced and told as a batch's is."""
        report = self.venue.collect()
        if report is None:
            return
        self._apply(report)
        self._forget(report)
        if self.store is not None and len(report.fills):
            self.store.record("fills", _fill_columns(report))
            self.stats.traces += 1
        self._notify(report)

    def _notify(self, report: BatchReport) -> None:
        if self.on_fills is not None and len(report.fills):
            self.on_fills(report)
        if self.on_removed is not None and len(report.removed_oids):
            self.on_removed(report.removed_oids)

    def _count_outcomes(self, events: np.ndarray, reasons: np.ndarray, sent: np.ndarray,
                        report: BatchReport | None, error: str | None) -> None:
        s = self.stats
        s.submitted += len(events)
        s.batches += 1
        s.refused += int((reasons != 0).sum())
        s.failed += int((reasons == 0).sum()) - len(sent)   # allowed, never reached the venue
        if error is not None and len(s.errors) < 100:
            s.errors.append(error)
        if report is None:
            return
        results = report.results
        status = results["status"]
        filled = results["filled_qty"] > 0
        immediate = ~_resting(events[sent])
        cancels = events["kind"][sent] == EventKind.CANCEL
        s.filled += int(filled.sum())
        s.rested += int(((status == OrderStatus.RESTED) & ~filled).sum())
        s.cancelled += int((cancels & (status == OrderStatus.CANCELLED)).sum())
        s.unfilled += int((~cancels & immediate & ~filled
                           & (status != OrderStatus.REJECTED)).sum())
        s.rejected += int((status == OrderStatus.REJECTED).sum())

    def _track_open_orders(self, events: np.ndarray, sent: np.ndarray,
                           report: BatchReport | None) -> None:
        """Keep the risk manager's open-order count: rested orders in, closed ones out."""
        if report is None:
            return
        status = report.results["status"]
        oids = events["oid"][sent]
        self._open.update(oids[status == OrderStatus.RESTED].tolist())
        closed = oids[(events["kind"][sent] == EventKind.CANCEL)
                      & (status == OrderStatus.CANCELLED)]
        self._open.difference_update(closed.tolist())
        self._forget(report)

    def _trace(self, events: np.ndarray, reasons: np.ndarray, sent: np.ndarray,
               report: BatchReport | None, error: str | None) -> None:
        """One trace per batch: every order, its outcome, and every fill, as columns."""
        status = np.full(len(events), -1, np.int16)       # -1: refused or never sent
        filled = np.zeros(len(events), np.int64)
        if report is not None:
            status[sent] = report.results["status"]
            filled[sent] = report.results["filled_qty"]
        payload: dict[str, Any] = {
            "oid": events["oid"], "asset": events["asset"], "side": events["side"],
            "kind": events["kind"], "tif": events["tif"], "price": events["price"],
            "qty": events["qty"], "risk_reason": reasons, "status": status,
            "filled_qty": filled, "error": error}
        if report is not None:
            payload.update(_fill_columns(report))
        self.store.record("batch", {k: np.ascontiguousarray(v) if isinstance(v, np.ndarray)
                                    else v for k, v in payload.items()})
        self.stats.traces += 1

    def close(self) -> None:
        """Send what is queued, apply what the venue still has to report, flush the traces."""
        self.flush()
        self._collect()
        if self.store is not None:
            self.store.flush()
