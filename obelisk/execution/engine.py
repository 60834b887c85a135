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

The engine never drops an order whose id it returned. Bad input is refused
before an id is given; after that, every order ends counted once in
`EngineStats` and traced with its outcome, whatever fails on the way (the risk
manager, the venue, the trace store). When the venue was called and raised, its
answer is lost and the orders may have executed: their outcome is *unknown*,
trading halts, and the owner reconciles with the venue before it resumes.
"""

from __future__ import annotations

import logging
import operator
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from obelisk._core.book import EVENT_DTYPE, EventKind, Side, TimeInForce
from obelisk._core.codes import ALO as _ALO
from obelisk._core.codes import GTC as _GTC
from obelisk._core.codes import LIMIT as _LIMIT
from obelisk._core.codes import REDUCE_ONLY as _REDUCE_ONLY
from obelisk._core.risk import OrderFlags, RiskReason
from obelisk._core.stage import (
    BAD_KIND,
    BAD_OID,
    BAD_PRICE,
    BAD_QTY,
    BAD_ROW,
    BAD_SIDE,
    BAD_TIF,
    CANCEL_WITHOUT_ID,
    STATUS_NOT_SENT,
    STATUS_UNKNOWN,
    allowed_orders,
    any_flagged,
    first_bad_order,
    int64_columns,
    open_order_changes,
    queue_orders,
    tally_outcomes,
    trace_columns,
)
from obelisk.breaker import BreakerConfig, CircuitBreaker
from obelisk.errors import CallbackError, InvalidOrderError, describe
from obelisk.execution.venue import ACCOUNT, BatchReport, BatchVenue
from obelisk.monitor import PerformanceMonitor
from obelisk.portfolio import Portfolio
from obelisk.risk import RiskManager, TradingState

__all__ = ["STAGES", "STATUS_NOT_SENT", "STATUS_UNKNOWN", "EngineStats", "TradingEngine"]

logger = logging.getLogger(__name__)

STAGES = ("risk", "venue", "portfolio", "trace", "batch")

_INT64_MAX = np.iinfo(np.int64).max
_TIFS = frozenset(int(t) for t in TimeInForce)
_TIF_MAX = len(_TIFS) - 1               # TimeInForce values are 0..n-1: a range check suffices
_SIDES = frozenset((int(Side.BUY), int(Side.SELL)))
_NONE = np.zeros(0, np.int64)           # no orders (indices into a batch)


def _resting(events: np.ndarray) -> np.ndarray:
    """Limit orders that may rest (GTC, ALO); market orders never do."""
    tif = events["tif"]
    return (events["kind"] == _LIMIT) & ((tif == _GTC) | (tif == _ALO))


def _callback_error(exc: Exception, oids: np.ndarray) -> CallbackError:
    """What `submit`/`submit_batch` raise when a batch they flushed raised in a callback."""
    return CallbackError(f"a callback raised during a batch this call sent ({describe(exc)}); "
                         f"the call's {len(oids)} orders are queued or sent (see .oids)", oids)


def _copy_records(records: np.ndarray) -> np.ndarray:
    """A copy of a contiguous record array, made as bytes: numpy copies a record dtype
    field by field (13 us for 600 events, against 2 us as bytes). ``np.take`` is the
    fast way to pick records for the same reason (``records[indices]`` takes 30 us)."""
    return records.view(np.uint8).copy().view(records.dtype)


def _fill_columns(report: BatchReport) -> dict[str, np.ndarray]:
    """The report's fills as trace columns."""
    fills = report.fills
    return {"fill_oid": np.ascontiguousarray(report.fill_oids),
            "fill_asset": np.ascontiguousarray(fills["asset"]),
            "fill_size": np.ascontiguousarray(fills["size"]),
            "fill_price": np.ascontiguousarray(fills["price"]),
            "fill_fee": np.ascontiguousarray(report.fees)}


@dataclass
class EngineStats:
    """Outcomes of every order the engine has taken, by kind.

    Each order sent through a batch is counted in exactly one outcome, so
    ``submitted == filled + rested + cancelled + unfilled + refused + rejected
    + failed + unknown`` after every ``flush``.
    """

    submitted: int = 0
    filled: int = 0                 # fully or partly filled at once
    rested: int = 0
    cancelled: int = 0              # cancel requests that removed their order
    unfilled: int = 0               # ended without trading or resting (IOC, market, FOK...)
    refused: int = 0                # by the risk manager or the reduce-only rule
    rejected: int = 0               # by the venue (bad order, unknown oid, ...)
    failed: int = 0                 # never reached the venue (breaker open, risk check broke)
    unknown: int = 0                # reached the venue, which raised: may have executed
    fills: int = 0                  # every fill applied, at once or later
    batches: int = 0
    traces: int = 0
    trace_failures: int = 0         # traces the store failed to record
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
        report of later activity (fills). A store that fails is logged and counted
        (``stats.trace_failures``); it never stops the pipeline.
    on_fills : callable(report), optional; the strategy's view of each report with fills
        (``report.fills``, ``report.fees``, ``report.fill_oids``).
    on_removed : callable(oids), optional; the account's resting orders the venue removed
        (self-trade prevention), which the strategy must stop tracking.
    first_oid : the id of the engine's first order (1). A restarted engine that trades on
        the same venue or records into the same trace store continues after the last id
        its predecessor used, so that no id names two orders.
    on_unknown : callable(oids), optional; orders whose outcome is unknown because the venue
        raised after it was called. The engine has already halted trading
        (``risk.set_state(TradingState.HALTED)``) and added them to ``unknown_oids``; those
        that may rest count as open orders meanwhile. Wire it to reconciliation, e.g.
        schedule ``PositionRecovery.reconcile()`` on the same RiskManager: a pass that
        passes sets it ACTIVE again and trading resumes; then hand the oids it settled, and
        which of them rest, to ``settle_unknown``.

    Outcomes of a venue call that raised: when the breaker refused it (the venue was never
    called) its orders are *failed*; once the venue was called, any exception may have come
    after the exchange executed them, so they are *unknown* (a venue cannot yet say "nothing
    was sent"; being wrong that way costs one reconciliation, the other way a wrong
    portfolio). An exception from the risk manager fails its batch closed: the orders are
    counted failed, traced with the error and logged, and ``flush`` does not raise, because
    callers already hold their ids (and ``submit_batch`` may be halfway through a call).

    Callbacks run after their batch is counted and traced; what they raise reaches the caller:
    from ``flush`` and ``poll`` as it is; from a ``submit`` or ``submit_batch`` that filled a
    batch, as `CallbackError` (its cause), once the call has queued all its orders, with
    their ids in ``.oids``.
    One thread drives an engine: it calls ``submit*``, ``flush`` and ``poll``.
    """

    def __init__(self, portfolio: Portfolio, venue: BatchVenue, risk: RiskManager, *,
                 store: Any = None, monitor: PerformanceMonitor | None = None,
                 breaker: CircuitBreaker | None = None, batch_size: int = 5000,
                 max_batch_wait_ms: float = 50.0,
                 on_fills: Callable[[BatchReport], object] | None = None,
                 on_removed: Callable[[np.ndarray], object] | None = None,
                 on_unknown: Callable[[np.ndarray], object] | None = None,
                 clock_ns: Callable[[], int] = time.perf_counter_ns,
                 first_oid: int = 1) -> None:
        if batch_size < 1 or not max_batch_wait_ms >= 0:
            raise ValueError("batch_size must be >= 1 and max_batch_wait_ms >= 0")
        if not 1 <= operator.index(first_oid) <= _INT64_MAX:
            raise ValueError(f"first_oid must be an order id (>= 1), got {first_oid}")
        if risk.portfolio is not portfolio:
            raise ValueError("the risk manager must check this portfolio (risk.portfolio is "
                             "another one): its limits would judge an account never traded")
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
        self.on_unknown = on_unknown
        self.clock_ns = clock_ns
        self.stats = EngineStats()
        self.unknown_oids: set[int] = set()   # sent, answer lost; the owner discards settled ones
        self._instruments = portfolio.instruments
        self._assets = len(portfolio.instruments.assets)
        self._events = np.zeros(batch_size, dtype=EVENT_DTYPE)
        self._rows = np.zeros(batch_size, dtype=np.int32)
        self._flags = np.zeros(batch_size, dtype=np.uint8)
        self._born = np.zeros(batch_size, dtype=np.int64)
        self._count = 0
        self._next_oid = operator.index(first_oid)
        self._stages = {name: self.monitor.operation(name) for name in STAGES}
        self._end_to_end = self.monitor.operation("end_to_end")
        self._open: set[int] = set()          # the account's resting orders, for risk

    # ------------------------------------------------------------ orders in

    def submit(self, row: int, side: int, price_ticks: int, qty_lots: int, *,
               tif: int = TimeInForce.GTC, reduce_only: bool = False,
               market: bool = False) -> int:
        """Queue one order (row = the asset's row in the InstrumentTable); its order id.

        A market order's price is its protection (0: none). Raises InvalidOrderError, with
        nothing queued and no id used, for a row outside the table, an unknown side or time
        in force, a size <= 0, or a price <= 0 (< 0 for a market order).
        """
        kind = EventKind.MARKET if market else EventKind.LIMIT
        self._validate(kind, row, side, price_ticks, qty_lots, tif)
        oid = self._next_oid
        self._next_oid += 1
        try:
            self._push(kind, oid, row, side, price_ticks, qty_lots, tif,
                       OrderFlags.REDUCE_ONLY if reduce_only else 0)
        except Exception as exc:
            raise _callback_error(exc, np.array([oid], np.int64)) from exc
        return oid

    def cancel(self, row: int, oid: int) -> None:
        """Queue a cancel of order `oid` on the asset at `row`; InvalidOrderError for a row
        outside the table or an oid < 1, with nothing queued."""
        self._validate(EventKind.CANCEL, row, Side.BUY, 0, 0, TimeInForce.GTC, oid)
        self._push(EventKind.CANCEL, oid, row, Side.BUY, 0, 0, TimeInForce.GTC, 0)

    def submit_batch(self, rows: np.ndarray, sides: np.ndarray, prices: np.ndarray,
                     qtys: np.ndarray, tifs: np.ndarray, kinds: np.ndarray | None = None,
                     oids: np.ndarray | None = None,
                     reduce_only: np.ndarray | None = None) -> np.ndarray:
        """Queue many orders at once (cancels name `oids`); the order ids.

        All or nothing: the whole call is checked first, as `submit` and `cancel` check one
        order, and a bad row anywhere raises InvalidOrderError naming its index and value,
        with nothing queued and no id used.
        """
        n = len(rows)
        columns = self._validate_batch(rows, sides, prices, qtys, tifs, kinds, oids,
                                       reduce_only)
        ids = np.empty(n, np.int64)
        start = 0
        raised: Exception | None = None
        while start < n:
            take = min(n - start, self.batch_size - self._count)
            self._next_oid = queue_orders(
                columns, start, take, self._events, self._rows, self._flags, self._born,
                self._count, ids, self._instruments.assets, self._next_oid, ACCOUNT,
                self.clock_ns())
            self._count += take
            start += take
            if self._count == self.batch_size:
                try:
                    self.flush()
                except Exception as exc:    # the call still queues all it accepted
                    if raised is not None:
                        logger.error("a callback raised again during submit_batch: %s",
                                     describe(exc))
                    raised = raised or exc
        if raised is not None:
            raise _callback_error(raised, ids) from raised
        return ids

    @property
    def batch_due_ns(self) -> int | None:
        """When (on `clock_ns`) the queued batch's oldest order will have waited
        `max_batch_wait_ms`, so an event loop knows when to call :meth:`poll`; None with
        nothing queued."""
        return int(self._born[0]) + self.max_batch_wait_ns if self._count else None

    def poll(self) -> None:
        """Apply what the venue reported since the last call (late fills, fills that others'
        orders caused), then send the batch if its oldest order has waited
        `max_batch_wait_ms`."""
        self._collect()
        due = self.batch_due_ns
        if due is not None and self.clock_ns() >= due:
            self.flush()

    def _validate(self, kind: int, row: int, side: int, price: int, qty: int, tif: int,
                  oid: int = 1) -> None:
        """Refuse one order that the batch arrays could not hold or the venue would
        misread (a negative row would index from the end), before it gets an id."""
        row, price, qty, oid = (operator.index(v) for v in (row, price, qty, oid))
        if not 0 <= row < self._assets:
            raise InvalidOrderError(f"row {row} is outside the InstrumentTable "
                                    f"(0..{self._assets - 1})")
        if kind == EventKind.CANCEL:
            if not 0 < oid <= _INT64_MAX:
                raise InvalidOrderError(f"cannot cancel order id {oid}: ids are >= 1")
            return
        if side not in _SIDES:
            raise InvalidOrderError(f"side {side!r} is neither BUY nor SELL")
        if tif not in _TIFS:
            raise InvalidOrderError(f"time in force {tif!r} is not a TimeInForce")
        if not 0 < qty <= _INT64_MAX:
            raise InvalidOrderError(f"size {qty} lots must be > 0")
        lowest = 0 if kind == EventKind.MARKET else 1       # a market's 0 = no protection
        if not lowest <= price <= _INT64_MAX:
            raise InvalidOrderError(f"price {price} ticks must be >= {lowest}")

    def _validate_batch(self, rows: np.ndarray, sides: np.ndarray, prices: np.ndarray,
                        qtys: np.ndarray, tifs: np.ndarray, kinds: np.ndarray | None,
                        oids: np.ndarray | None, reduce_only: np.ndarray | None
                        ) -> list[np.ndarray]:
        """`_validate` for a whole call, compiled; raises on the first bad row, else
        returns the columns as int64 arrays (``stage.int64_columns``)."""
        n = len(rows)
        given = {"rows": rows, "sides": sides, "prices": prices, "qtys": qtys,
                 "tifs": tifs, "kinds": kinds, "oids": oids, "reduce_only": reduce_only}
        for name, column in given.items():
            if column is None:
                continue
            if not isinstance(column, np.ndarray) or column.shape != (n,):
                raise InvalidOrderError(f"{name} must be an array of {n} values, one per order")
            if not (column.dtype.kind in "bi" or column.dtype.kind == "u"
                    and column.dtype.itemsize < 8):          # np.can_cast, 10x cheaper
                raise InvalidOrderError(f"{name} must hold integers that fit int64, "
                                        f"not {column.dtype}")
        columns = int64_columns(kinds, rows, sides, tifs, qtys, prices, oids, reduce_only)
        bad = first_bad_order(columns, oids is None, self._assets, _TIF_MAX)
        if bad is None:
            return columns
        check, i = bad
        if check == CANCEL_WITHOUT_ID:
            raise InvalidOrderError(f"kinds[{i}] is a cancel but no oids were given")
        name, column, why = {
            BAD_KIND: ("kinds", columns[0], "is not LIMIT, MARKET or CANCEL"),
            BAD_ROW: ("rows", rows, f"is outside the InstrumentTable (0..{self._assets - 1})"),
            BAD_SIDE: ("sides", sides, "is neither BUY nor SELL"),
            BAD_TIF: ("tifs", tifs, "is not a TimeInForce"),
            BAD_QTY: ("qtys", qtys, "lots: a size must be > 0"),
            BAD_PRICE: ("prices", prices, "ticks: a limit price must be > 0, a market's >= 0"),
            BAD_OID: ("oids", columns[6], "cannot be cancelled: ids are >= 1"),
        }[check]
        raise InvalidOrderError(f"{name}[{i}] = {column[i].item()!r} {why}; "
                                "nothing of this call was queued")

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
        """Run the queued orders through the pipeline now.

        The queue is emptied first and every order in it ends counted and traced, whatever
        fails; so a failure is never retried by sending the same orders twice.
        """
        n = self._count
        if not n:
            return
        self._count = 0
        # copies, not views: a callback during the batch may queue orders into these slots
        events, rows = _copy_records(self._events[:n]), self._rows[:n].copy()
        flags, born = self._flags[:n].copy(), self._born[:n].copy()
        start = self.clock_ns()
        try:
            reasons = self._check(events, rows, flags)
            broken = None
        except Exception as exc:     # noqa: BLE001 - fail closed: none of them is sent
            logger.exception("the risk check failed; %d orders were not sent", n)
            reasons = np.zeros(n, np.uint8)
            broken = describe(exc)
        after_risk = self.clock_ns()
        if broken is None:
            sent, unknown, report, error, applied = self._execute(events, rows, flags,
                                                                  reasons)
        else:
            sent, unknown, report, error, applied = _NONE, _NONE, None, broken, False
        if len(unknown):
            self._halt(events[unknown], error)
        after_venue = self.clock_ns()
        if report is not None and not applied:
            self._apply(report)
        after_portfolio = self.clock_ns()
        self._count_outcomes(events, reasons, sent, unknown, report, error)
        self._track_open_orders(events, sent, report)
        if self.store is not None:
            self._trace(events, reasons, sent, unknown, report, error)
        done = self.clock_ns()
        for name, began, ended in (("risk", start, after_risk), ("venue", after_risk, after_venue),
                                   ("portfolio", after_venue, after_portfolio),
                                   ("trace", after_portfolio, done), ("batch", start, done)):
            self._stages[name].record(ended - began)
        self._end_to_end.record_many(done - born)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("batch of %d orders: %d refused, %d sent, %d unknown, %.0f us",
                         n, int((reasons != 0).sum()), len(sent), len(unknown),
                         (done - start) / 1000)
        try:
            if report is not None:
                self._notify(report)
        finally:        # a callback that raises must not keep the unknown orders untold
            if len(unknown) and self.on_unknown is not None:
                self.on_unknown(events["oid"][unknown])

    def _check(self, events: np.ndarray, rows: np.ndarray, flags: np.ndarray) -> np.ndarray:
        """Risk reasons per order (0 = allowed), judged for the batch as a whole.

        Cancels are never checked. Reduce-only orders are judged in _execute
        against the position each one meets; here only a halt or the kill
        switch stops them, as for any order that only reduces.
        """
        reasons = self.risk.check_events(events, rows, flags)
        if not any_flagged(flags, _REDUCE_ONLY):
            return reasons
        reduce_only = (flags & _REDUCE_ONLY).astype(bool)
        stopped = self.risk.kill_switch or self.risk.state == TradingState.HALTED
        reasons[reduce_only] = RiskReason.HALTED if stopped else 0     # cancels carry no flags
        reasons[reduce_only & _resting(events) & (reasons == 0)] = \
            RiskReason.REDUCE_ONLY_INCREASES        # a resting one could grow a position later
        return reasons

    def _execute(self, events: np.ndarray, rows: np.ndarray, flags: np.ndarray,
                 reasons: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, BatchReport | None, str | None, bool]:
        """Send the allowed orders through the breaker: the indices sent and answered (in
        order), the indices sent whose answer was lost, the venue's report for the answered
        ones, the error that stopped the rest, and whether the report is already applied.
        Reduce-only orders go one at a time, clipped to the position left by the orders
        before them."""
        allowed, reduce_only = allowed_orders(reasons, flags, _REDUCE_ONLY)
        if not len(allowed):
            return allowed, _NONE, None, None, False
        if not reduce_only:
            report, error, called = self._send(
                events if len(allowed) == len(events) else np.take(events, allowed))
            if report is not None:
                return allowed, _NONE, report, None, False
            return _NONE, allowed if called else _NONE, None, error, False
        return self._execute_with_reduce_only(events, rows, flags, reasons, allowed)

    def _execute_with_reduce_only(self, events: np.ndarray, rows: np.ndarray,
                                  flags: np.ndarray, reasons: np.ndarray, allowed: np.ndarray
                                  ) -> tuple[np.ndarray, np.ndarray, BatchReport | None,
                                             str | None, bool]:
        """`_execute` in runs between reduce-only orders; the first venue call that raises
        stops the batch: its orders are unknown (or failed, if the venue was never called),
        the rest failed, and what ran before stays counted, traced and applied."""
        parts: list[BatchReport] = []
        sent: list[int] = []
        block: list[int] = []
        unknown = _NONE
        error = None

        def run(indices: list[int]) -> bool:
            nonlocal unknown, error
            if not indices:
                return True
            part, error, called = self._send(np.take(events, indices))
            if part is None:
                if called:
                    unknown = np.asarray(indices, dtype=np.int64)
                return False
            parts.append(part)
            sent.extend(indices)
            self._apply(part)          # the next clip sees its fills
            return True

        for i in allowed.tolist():
            if not flags[i] & OrderFlags.REDUCE_ONLY:
                block.append(i)
                continue
            if not run(block):
                break
            block = []
            lots = self.portfolio.reducible_lots(int(rows[i]), events["side"][i] == Side.BUY)
            if lots == 0:
                reasons[i] = RiskReason.REDUCE_ONLY_INCREASES
                continue
            events["qty"][i] = min(int(events["qty"][i]), lots)
            if not run([i]):
                break
        else:
            run(block)
        report = BatchReport.concat(parts) if parts else None
        return np.asarray(sent, dtype=np.int64), unknown, report, error, True

    def _send(self, batch: np.ndarray) -> tuple[BatchReport | None, str | None, bool]:
        """``venue.execute(batch)`` through the breaker: its report, or None, the error and
        whether the venue was called. Only a call the venue never saw is known not to have
        reached the exchange; a report that does not answer every event counts as lost."""
        called = False

        def execute(events: np.ndarray) -> BatchReport:
            nonlocal called
            called = True
            report = self.venue.execute(events)
            if len(report.results) != len(events):
                raise ValueError(f"the venue answered {len(report.results)} of "
                                 f"{len(events)} events")
            return report

        try:
            return self.breaker.call(execute, batch), None, False
        except Exception as exc:   # noqa: BLE001 - any venue failure is an outcome, not a crash
            return None, describe(exc), called

    def _halt(self, events: np.ndarray, error: str | None) -> None:
        """Orders that may have executed unseen: halt trading until the owner reconciles.
        Those that may rest count as open meanwhile (an open-order limit errs on the safe
        side) until ``settle_unknown`` says otherwise."""
        logger.error("the venue raised after it was called (%s): the outcome of %d orders is "
                     "unknown; trading halted until reconciliation", error, len(events))
        self.unknown_oids.update(events["oid"].tolist())
        self._open.update(events["oid"][_resting(events)].tolist())
        self.risk.set_open_orders(len(self._open))
        self.risk.set_state(TradingState.HALTED)

    def settle_unknown(self, oids: Iterable[int], still_open: Iterable[int] = ()) -> None:
        """After a reconciliation: `oids` are no longer unknown, and of them only those in
        `still_open` (the venue lists them as resting) keep counting as open orders."""
        settled = set(oids) & self.unknown_oids
        self.unknown_oids -= settled
        self._open -= settled - set(still_open)
        self.risk.set_open_orders(len(self._open))

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
            self._record("fills", _fill_columns(report))
        self._notify(report)

    def _record(self, kind: str, payload: dict[str, Any]) -> None:
        """One trace into the store. A store that fails loses the trace, not the batch: the
        failure is logged and counted, and the pipeline goes on (the orders are already
        done at the venue; raising would hide that from the caller)."""
        try:
            self.store.record(kind, payload)
        except Exception as exc:   # noqa: BLE001 - the store is an observer, never a gate
            self.stats.trace_failures += 1
            logger.error("the trace store failed to record a %r trace: %s", kind,
                         describe(exc))
            return
        self.stats.traces += 1

    def _notify(self, report: BatchReport) -> None:
        try:
            if self.on_fills is not None and len(report.fills):
                self.on_fills(report)
        finally:
            if self.on_removed is not None and len(report.removed_oids):
                self.on_removed(report.removed_oids)

    def _count_outcomes(self, events: np.ndarray, reasons: np.ndarray, sent: np.ndarray,
                        unknown: np.ndarray, report: BatchReport | None,
                        error: str | None) -> None:
        """Each order of the batch into exactly one outcome of `EngineStats`."""
        s = self.stats
        s.submitted += len(events)
        s.batches += 1
        refused = int(np.count_nonzero(reasons))   # (count_nonzero: ~5x a bool .sum())
        s.refused += refused
        if refused and logger.isEnabledFor(logging.WARNING):
            codes, counts = np.unique(reasons[reasons != 0], return_counts=True)
            logger.warning("%d of %d orders refused by the risk checks: %s", refused,
                           len(events), ", ".join(f"{RiskReason(code).name} {count}" for
                                                  code, count in zip(codes, counts, strict=True)))
        s.unknown += len(unknown)
        s.failed += len(events) - refused - len(sent) - len(unknown)   # never reached the venue
        if error is not None and len(s.errors) < 100:
            s.errors.append(error)
        if error is not None and len(events) - refused - len(sent) - len(unknown):
            logger.warning("%d orders were not sent: %s", len(events) - refused - len(sent)
                           - len(unknown), error)
        if report is None:
            return
        traded, rested, cancelled, rejected = tally_outcomes(report.results, events, sent)
        s.filled += traded
        s.rested += rested
        s.cancelled += cancelled
        s.rejected += rejected
        s.unfilled += len(sent) - traded - rested - cancelled - rejected   # ended with nothing

    def _track_open_orders(self, events: np.ndarray, sent: np.ndarray,
                           report: BatchReport | None) -> None:
        """Keep the risk manager's open-order count: rested orders in, closed ones out."""
        if report is None:
            return
        rested, closed = open_order_changes(report.results, events, sent)
        self._open.update(rested)
        self._open.difference_update(closed)
        self._forget(report)

    def _trace(self, events: np.ndarray, reasons: np.ndarray, sent: np.ndarray,
               unknown: np.ndarray, report: BatchReport | None, error: str | None) -> None:
        """One trace per batch: every order, its outcome, and every fill, as columns."""
        payload: dict[str, Any] = trace_columns(
            events, reasons, sent, unknown, None if report is None else report.results)
        payload["error"] = error
        if report is not None:
            payload.update(_fill_columns(report))
        self._record("batch", payload)

    def close(self) -> None:
        """Send what is queued, apply what the venue still has to report, flush the traces."""
        self.flush()
        self._collect()
        if self.store is not None:
            self.store.flush()
