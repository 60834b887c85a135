"""Pre-trade risk checks: one order, or a numpy batch of them, against limits and the account.

Every check reads the account straight from the compiled PositionBook (its
derived values are refreshed only after a fill, mark or funding changed it),
so a decision costs well under a microsecond and is never stale. Orders that
only reduce a position pass every limit but the kill switch, the halted
state and the rate budget: a risk check must never block a stop-loss.

A check fails closed: an account whose equity, margins or notionals are not
finite (every comparison with NaN is false) refuses every order that is not
reducing, with NON_FINITE_ACCOUNT.

One user at a time: a check claims the RiskChecks and the PositionBook it
reads, together and in one step, and releases both when done. While either
is held by another thread (a fill being applied, another check) it raises
ConcurrentUseError; while it runs, the book refuses fills, marks and reads.
"""

from enum import IntEnum

import numpy as np

cimport cython
from cpython.time cimport PyTime_MonotonicRaw
from libc.math cimport INFINITY, NAN, fabs, isfinite
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t

from obelisk._core._buffers cimport const_data_of, data_of
from obelisk._core._gil cimport RELEASE_GIL_FROM, PyThreadState, release_gil_if, restore_gil
from obelisk._core._types cimport KIND_CANCEL, KIND_LIMIT, TIF_ALO, TIF_GTC, Event

from obelisk._core.position cimport (
    FillOutcome,
    PositionBook,
    PositionState,
    Totals,
    closes_whole,
    fill_outcome,
    liquidation_price,
    maintenance_margin,
    store_fill,
)

from obelisk._core._records import as_records, struct_dtype
from obelisk._core.book import EVENT_DTYPE as _EVENT_DTYPE
from obelisk._core.errors import (
    ConcurrentUseError,
    InvalidRiskLimitError,
    MarketDataError,
    UnknownAssetError,
)


class TradingState(IntEnum):
    """What the risk checks let through."""
    ACTIVE = STATE_ACTIVE
    REDUCING = STATE_REDUCING
    HALTED = STATE_HALTED


class OrderFlags(IntEnum):
    """Bits of RISK_ORDER_DTYPE's ``flags``."""
    REDUCE_ONLY = FLAG_REDUCE_ONLY
    PROTECTIVE = FLAG_PROTECTIVE
    IMMEDIATE = FLAG_IMMEDIATE


class RiskReason(IntEnum):
    """Why an order was refused (OK when it was not)."""
    OK = RISK_OK
    INVALID_ORDER = RISK_INVALID_ORDER
    UNKNOWN_ASSET = RISK_UNKNOWN_ASSET
    KILL_SWITCH = RISK_KILL_SWITCH
    HALTED = RISK_HALTED
    REDUCE_ONLY_INCREASES = RISK_REDUCE_ONLY_INCREASES
    STALE_MARKET_DATA = RISK_STALE_MARKET_DATA
    REDUCING_ONLY = RISK_REDUCING_ONLY
    DAILY_LOSS = RISK_DAILY_LOSS
    DRAWDOWN = RISK_DRAWDOWN
    PRICE_BAND = RISK_PRICE_BAND
    ORDER_SIZE = RISK_ORDER_SIZE
    ORDER_NOTIONAL = RISK_ORDER_NOTIONAL
    POSITION_SIZE = RISK_POSITION_SIZE
    POSITION_NOTIONAL = RISK_POSITION_NOTIONAL
    TOTAL_NOTIONAL = RISK_TOTAL_NOTIONAL
    LEVERAGE = RISK_LEVERAGE
    MARGIN = RISK_MARGIN
    LIQUIDATION_DISTANCE = RISK_LIQUIDATION_DISTANCE
    OPEN_ORDERS = RISK_OPEN_ORDERS
    RATE_LIMIT = RISK_RATE_LIMIT
    NON_FINITE_ACCOUNT = RISK_NON_FINITE_ACCOUNT


cdef RiskOrder _order

RISK_ORDER_DTYPE = struct_dtype(<RiskOrder[:1]> &_order)

PER_ASSET_LIMITS = ("max_order_size", "max_order_notional", "max_position_size",
                    "max_position_notional", "price_band")


cdef inline double _grown(double held, double after) noexcept nogil:
    """How much a position of `held` opens on its way to `after`: the growth on the same
    side, or the whole new side after a flip (negative for a reduction)."""
    return fabs(after) - fabs(held) if (after > 0) == (held > 0) else fabs(after)


@cython.final
cdef class RiskChecks:
    """The compiled checks behind :class:`obelisk.RiskManager`; limits off are ``inf``.

    Parameters
    ----------
    book : PositionBook
        The account the orders are checked against (read, never changed).
    per_asset : dict of name -> array
        ``PER_ASSET_LIMITS``, one float per asset: sizes in the asset's units,
        notionals in USDC, ``price_band`` as a fraction of the mark.
    clock : callable returning int nanoseconds, optional
        Replaces the monotonic clock (tests).
    """

    def __init__(self, PositionBook book, per_asset, *, double max_total_notional=INFINITY,
                 double max_leverage=INFINITY, double min_liquidation_distance=0.0,
                 double daily_loss_limit=INFINITY, double max_drawdown=INFINITY,
                 int64_t max_open_orders=1 << 62, double max_data_age_s=INFINITY,
                 double orders_per_second=INFINITY, double burst=INFINITY, clock=None) -> None:
        if self.initialized:      # a second call could leave the checks sized for another book
            raise RuntimeError("RiskChecks.__init__ must not be called twice")
        self.initialized = True
        try:
            self._init(book, per_asset, max_total_notional, max_leverage,
                       min_liquidation_distance, daily_loss_limit, max_drawdown, max_open_orders,
                       max_data_age_s, orders_per_second, burst, clock)
        except BaseException:
            self.initialized = False
            raise
        self.busy = False

    def __cinit__(self):
        self.busy = True            # refused until __init__ has run

    cdef int _init(self, PositionBook book, per_asset, double max_total_notional,
                   double max_leverage, double min_liquidation_distance,
                   double daily_loss_limit, double max_drawdown, int64_t max_open_orders,
                   double max_data_age_s, double orders_per_second, double burst,
                   clock) except -1:
        if book is None:
            raise TypeError("RiskChecks needs a PositionBook, got None")
        self.book = book
        self.count = book.asset_count
        arrays = {}
        for name in PER_ASSET_LIMITS:
            values = np.ascontiguousarray(per_asset.get(name, np.full(self.count, np.inf)),
                                          dtype=np.float64)
            if values.shape != (self.count,) or np.isnan(values).any() or (values < 0).any():
                raise InvalidRiskLimitError(
                    f"{name} must be one number >= 0 per asset ({self.count})")
            arrays[name] = values
        for name, value in (("max_total_notional", max_total_notional),
                            ("max_leverage", max_leverage), ("daily_loss_limit", daily_loss_limit),
                            ("max_drawdown", max_drawdown), ("max_data_age_s", max_data_age_s),
                            ("orders_per_second", orders_per_second), ("burst", burst),
                            ("min_liquidation_distance", min_liquidation_distance)):
            if not value >= 0:
                raise InvalidRiskLimitError(f"{name} must be >= 0, got {value}")
        if max_open_orders < 0:
            raise InvalidRiskLimitError(f"max_open_orders must be >= 0, got {max_open_orders}")
        arrays["marks"] = np.full(self.count, np.nan)
        arrays["oracles"] = np.full(self.count, np.nan)
        arrays["mark_times"] = np.zeros(self.count, dtype=np.int64)
        arrays["shadow"] = np.zeros(self.count * sizeof(PositionState), dtype=np.uint8)
        arrays["shadowed"] = np.zeros(self.count, dtype=np.uint8)
        arrays["touched"] = np.zeros(self.count, dtype=np.int32)
        self._arrays = arrays
        self.max_order_size = _pointer(arrays["max_order_size"])
        self.max_order_notional = _pointer(arrays["max_order_notional"])
        self.max_position_size = _pointer(arrays["max_position_size"])
        self.max_position_notional = _pointer(arrays["max_position_notional"])
        self.price_band = _pointer(arrays["price_band"])
        self.marks = _pointer(arrays["marks"])
        self.oracles = _pointer(arrays["oracles"])
        self.shadow = <PositionState*> data_of(arrays["shadow"])
        self.shadowed = <uint8_t*> data_of(arrays["shadowed"])
        self.touched = <int32_t*> data_of(arrays["touched"])
        self.touched_count = 0
        self.batching = False
        cdef int64_t[::1] times = arrays["mark_times"]
        self.mark_times = &times[0]
        self.max_total_notional = max_total_notional
        self.max_leverage = max_leverage
        self.min_liquidation_distance = min_liquidation_distance
        self.daily_loss_limit = daily_loss_limit
        self.max_drawdown = max_drawdown
        self.max_open_orders = max_open_orders
        # past 2**62 ns (146 years) an age is as good as none, and int64 would overflow
        self.max_data_age_ns = <int64_t> (max_data_age_s * 1e9) \
            if max_data_age_s * 1e9 < <double> (1 << 62) else 1 << 62
        self.orders_per_second = orders_per_second
        # a rate without a burst holds one second's worth, not an unlimited bucket
        self.burst = burst if isfinite(burst) or not isfinite(orders_per_second) \
            else max(1.0, orders_per_second)
        self.clock = clock
        self.tokens = self.burst
        self.refilled_at = self._now()
        self.trading_state = STATE_ACTIVE
        self.kill_engaged = False
        self.resting_orders = 0
        self.peak_equity = book.account_value
        self.day_start_equity = self.peak_equity
        return 0

    # ------------------------------------------------------ one user at a time

    cdef int _claim(self, bint with_book) except -1:
        """Check and claim these checks (and the book they read) in one step, GIL held."""
        if self.busy or (with_book and self.book.busy):
            self._refuse()
        self.busy = True
        if with_book:
            self.book.busy = True
        return 0

    cdef int _refuse(self) except -1:
        if not self.initialized:
            raise RuntimeError("RiskChecks.__init__ has not run")
        raise ConcurrentUseError(
            "these RiskChecks, or the PositionBook they read, are in use by another thread; "
            "use them from one thread at a time")

    cdef inline int _check_idle(self) except -1:
        if self.busy:
            self._refuse()
        return 0

    @property
    def state(self) -> int:
        """TradingState: ACTIVE, REDUCING or HALTED."""
        self._check_idle()
        return self.trading_state

    @state.setter
    def state(self, value) -> None:
        cdef int state = value
        if state != STATE_ACTIVE and state != STATE_REDUCING and state != STATE_HALTED:
            raise ValueError(f"state must be a TradingState (ACTIVE, REDUCING or HALTED), "
                             f"got {value!r}")
        self._check_idle()
        self.trading_state = state

    @property
    def kill_switch(self) -> bool:
        """Engaged: every order is refused until it is released."""
        self._check_idle()
        return self.kill_engaged

    @kill_switch.setter
    def kill_switch(self, value) -> None:
        cdef bint engaged = value
        self._check_idle()
        self.kill_engaged = engaged

    @property
    def open_orders(self) -> int:
        """Resting orders of the account, as the order tracker counts them."""
        self._check_idle()
        return self.resting_orders

    @open_orders.setter
    def open_orders(self, value) -> None:
        cdef int64_t count = value
        if count < 0:
            raise ValueError(f"open orders cannot be negative, got {count}")
        self._check_idle()
        self.resting_orders = count

    cdef int64_t _now(self) except? -1:
        return PyTime_MonotonicRaw() if self.clock is None else self.clock()

    # ---------------------------------------------------------- market data

    def update_market(self, Py_ssize_t asset, double mark, double oracle=NAN, *,
                      bint mark_book=False) -> None:
        """Record a fresh mark (and oracle) price for `asset`, stamped now; with `mark_book`,
        move the book's mark too, both or neither (a mark the book refuses changes
        nothing here)."""
        if not 0 <= asset < self.count:
            raise UnknownAssetError(f"asset must be an index in 0..{self.count - 1}, got {asset}")
        if not (isfinite(mark) and mark > 0) or (oracle == oracle and not (
                isfinite(oracle) and oracle > 0)):
            raise MarketDataError(
                f"mark and oracle prices must be positive, got {mark}, {oracle}")
        self._claim(mark_book)
        try:
            if mark_book:
                self.book._check_mark(asset, mark)
                self.book._set_mark(asset, mark)
            self.marks[asset] = mark
            self.oracles[asset] = oracle
            self.mark_times[asset] = self._now()
        finally:
            self.busy = False
            if mark_book:
                self.book.busy = False

    def reset_daily(self, equity=None) -> None:
        """Start a new trading day (and drawdown peak) from `equity` or the account value now."""
        cdef double value = NAN if equity is None else float(equity)
        self._claim(True)
        try:
            if equity is None:
                value = self.book._account_value()
            if not isfinite(value):
                raise InvalidRiskLimitError(f"equity must be finite, got {value}")
            self.day_start_equity = value
            self.peak_equity = value
        finally:
            self.busy = self.book.busy = False

    # --------------------------------------------------------------- checks

    def check(self, Py_ssize_t asset, int side, double size, double price,
              double trigger_price=0.0, int flags=0) -> int:
        """The RiskReason code of one order (0 when it may be sent); the budget is consumed."""
        cdef RiskOrder order
        if self.busy or self.book.busy:
            self._refuse()
        # From the check above, C code under the GIL: nothing can run in between.
        if not 0 <= asset < self.count:
            self.last_value = asset
            self.last_limit = self.count
            return RISK_UNKNOWN_ASSET
        order.asset = <int32_t> asset
        order.side = <int8_t> side if side == 1 or side == -1 else 0     # 0: INVALID_ORDER
        order.size = size
        order.price = price
        order.trigger_price = trigger_price
        order.flags = <uint8_t> flags if 0 <= flags < 256 else 255
        if self.book.dirty or self.clock is not None:
            return self._check_claimed(&order)
        # Nothing to derive and no clock to call: the check above is the claim.
        return self._check(&order, PyTime_MonotonicRaw())

    cdef int _check_claimed(self, const RiskOrder* order) except -1:
        """Check one order holding the claim, for when the book is refreshed or a clock called."""
        self.busy = self.book.busy = True
        try:
            self.book._refresh()
            return self._check(order, self._now())
        finally:
            self.busy = self.book.busy = False

    def check_batch(self, orders) -> np.ndarray:
        """RiskReason codes (uint8) of a RISK_ORDER_DTYPE array.

        Each order is judged as if every allowed order before it in the batch
        had filled in full at its price, paying the taker fee (the position
        book's own fill rule): limits hold for the batch as a whole, and a
        batch is judged as its orders would be one by one after each filled.
        """
        self._claim(True)
        try:
            return self._check_batch(orders)
        finally:
            self.busy = self.book.busy = False

    cdef object _check_batch(self, orders):
        orders = as_records(orders, RISK_ORDER_DTYPE, "orders", "obelisk.RISK_ORDER_DTYPE")
        cdef Py_ssize_t n = len(orders)
        out = np.zeros(n, dtype=np.uint8)
        if n == 0:
            return out
        cdef const RiskOrder* o = <const RiskOrder*> const_data_of(orders)
        cdef uint8_t* reasons = <uint8_t*> data_of(out)
        self.book._refresh()
        cdef int64_t now = self._now()
        self.batching = True            # pending totals are zero here: cleared after each batch
        cdef PyThreadState* released = release_gil_if(n >= RELEASE_GIL_FROM)
        try:
            self._check_orders(o, n, now, reasons)
        finally:
            restore_gil(released)
            self._end_batch()
        return out

    def check_events(self, events, rows, flags, ticks, lots) -> np.ndarray:
        """RiskReason codes (uint8) of an EVENT_DTYPE batch as a trading engine sends it,
        judged as :meth:`check_batch` judges orders, without building them in numpy.

        `rows` are the events' asset rows, `flags` their OrderFlags, `ticks` and `lots`
        the price of a tick and the size of a lot per row. Cancels and reduce-only
        orders are not judged here (0: the engine judges a reduce-only order against
        the position it meets). Every other event is the order of its row and side,
        of its lots (at least one) in coin, at its price in ticks, or, for a market
        order without a protection price, at the position book's mark (a tick before
        there is one); IMMEDIATE unless it is a GTC or ALO limit order.
        """
        self._claim(True)
        try:
            return self._check_events(events, rows, flags, ticks, lots)
        finally:
            self.busy = self.book.busy = False

    cdef object _check_events(self, events, rows, flags, ticks, lots):
        events = as_records(events, _EVENT_DTYPE, "events", "obelisk.EVENT_DTYPE")
        cdef Py_ssize_t n = len(events)
        cdef const int32_t[::1] row_of = np.ascontiguousarray(rows, dtype=np.int32)
        cdef const uint8_t[::1] flag = np.ascontiguousarray(flags, dtype=np.uint8)
        cdef const double[::1] tick = np.ascontiguousarray(ticks, dtype=np.float64)
        cdef const double[::1] lot = np.ascontiguousarray(lots, dtype=np.float64)
        if row_of.shape[0] != n or flag.shape[0] != n:
            raise ValueError(f"rows and flags need one value per event: {n} events, "
                             f"{row_of.shape[0]} rows, {flag.shape[0]} flags")
        if tick.shape[0] != self.count or lot.shape[0] != self.count:
            raise ValueError(f"ticks and lots need one value per asset ({self.count}), got "
                             f"{tick.shape[0]} and {lot.shape[0]}")
        out = np.zeros(n, dtype=np.uint8)
        if n == 0:
            return out
        cdef const Event* e = <const Event*> const_data_of(events)
        cdef uint8_t* reasons = <uint8_t*> data_of(out)
        self.book._refresh()
        cdef int64_t now = self._now()
        cdef PyThreadState* released = release_gil_if(n >= RELEASE_GIL_FROM)
        self.batching = True            # pending totals are zero here: cleared after each batch
        try:
            self._check_event_rows(e, &row_of[0], &flag[0], &tick[0], &lot[0], n, now,
                                   reasons)
        finally:
            restore_gil(released)
            self._end_batch()
        return out

    cdef void _end_batch(self) noexcept nogil:
        """Forget what the batch's orders added: the next one starts from the book alone."""
        cdef int32_t i
        self.batching = False
        for i in range(self.touched_count):
            self.shadowed[self.touched[i]] = 0
        self.touched_count = 0
        self.pending_balance = self.pending_cross_upnl = self.pending_cross_value = 0.0
        self.pending_cross_im = self.pending_cross_mm = 0.0
        self.pending_isolated_equity = self.pending_isolated_value = 0.0
        self.pending_open = 0

    cdef void _check_orders(self, const RiskOrder* o, Py_ssize_t n, int64_t now,
                            uint8_t* reasons) noexcept nogil:
        cdef Py_ssize_t i
        for i in range(n):
            reasons[i] = <uint8_t> self._check(&o[i], now)

    cdef void _check_event_rows(self, const Event* e, const int32_t* row_of, const uint8_t* flag,
                                const double* tick, const double* lot, Py_ssize_t n,
                                int64_t now, uint8_t* reasons) noexcept nogil:
        """check_events' loop: each event's RiskOrder, judged; 0 for cancels and
        reduce-only orders."""
        cdef const double* marks = self.book.columns.mark_px
        cdef RiskOrder o
        cdef Py_ssize_t i
        cdef int32_t row
        cdef double mark
        o.trigger_price = 0.0
        for i in range(n):
            if e[i].kind == KIND_CANCEL or flag[i] & FLAG_REDUCE_ONLY:
                continue
            row = row_of[i]
            o.asset = row
            # a side byte other than BUY (0) or SELL (1) is an invalid order (side 0)
            o.side = <int8_t> (1 - 2 * <int> e[i].side) if e[i].side <= 1 else 0
            o.flags = 0 if e[i].kind == KIND_LIMIT and (
                e[i].tif == TIF_GTC or e[i].tif == TIF_ALO) else FLAG_IMMEDIATE
            o.size = o.price = 1.0      # an unknown row is refused before they count
            if 0 <= row < self.count:
                o.size = (e[i].qty if e[i].qty > 1 else 1) * lot[row]
                mark = marks[row]
                o.price = e[i].price * tick[row] if e[i].price > 0 else (
                    tick[row] if mark != mark else mark)
            reasons[i] = <uint8_t> self._check(&o, now)

    cdef inline int _deny(self, int reason, double value, double limit) noexcept nogil:
        self.last_value = value
        self.last_limit = limit
        return reason

    cdef int _check(self, const RiskOrder* o, int64_t now) noexcept nogil:
        """Every check in order of precedence; the first that fails names the reason."""
        if not (0 <= o.asset < self.count):
            return self._deny(RISK_UNKNOWN_ASSET, o.asset, self.count)
        if not (o.side == 1 or o.side == -1) or not (isfinite(o.size) and o.size > 0) \
                or not (isfinite(o.price) and o.price > 0) \
                or not (isfinite(o.trigger_price) and o.trigger_price >= 0) \
                or o.flags & ~(FLAG_REDUCE_ONLY | FLAG_PROTECTIVE | FLAG_IMMEDIATE):
            return self._deny(RISK_INVALID_ORDER, o.size, 0.0)
        if self.kill_engaged:
            return self._deny(RISK_KILL_SWITCH, 0.0, 0.0)
        if self.trading_state == STATE_HALTED:
            return self._deny(RISK_HALTED, 0.0, 0.0)
        cdef PositionState row
        cdef const PositionState* p = self._row(o.asset, &row)
        cdef double held = p.core.size
        cdef double change = o.side * o.size
        cdef double after = held + change
        # An order that closes the position exactly, as its fill will (closes_whole), reduces
        # it even when float residue leaves the held size a hair below the order's.
        cdef bint closing = held != 0 and (held > 0) != (change > 0)
        cdef bint whole = closing and closes_whole(o.size, fabs(held), self.book.dust[o.asset])
        cdef bint reducing = whole or (closing and o.size <= fabs(held))
        if whole:
            after = 0.0
        cdef double mark = self.marks[o.asset]
        cdef int verdict
        if o.flags & FLAG_REDUCE_ONLY and not reducing:
            return self._deny(RISK_REDUCE_ONLY_INCREASES, o.size, fabs(held))
        if reducing:
            verdict = self._take_token(now)
            if verdict == RISK_OK:
                self._commit(o)
            return verdict
        if mark != mark or now - self.mark_times[o.asset] > self.max_data_age_ns:
            return self._deny(RISK_STALE_MARKET_DATA, (now - self.mark_times[o.asset]) / 1e9,
                              self.max_data_age_ns / 1e9)
        if self.trading_state == STATE_REDUCING:
            return self._deny(RISK_REDUCING_ONLY, fabs(after), fabs(held))
        cdef const Totals* t = &self.book.totals
        # The account as it is keeps its peak and is judged for loss and drawdown; the
        # batch's earlier orders, as filled, count in the margin and leverage checks only
        # (what they would make or lose has not happened).
        cdef double held_equity = self.book.cross_balance + t.cross_unrealized_pnl \
            + t.isolated_equity
        cdef double cross_equity = self.book.cross_balance + self.pending_balance \
            + t.cross_unrealized_pnl + self.pending_cross_upnl
        cdef double equity = cross_equity + t.isolated_equity + self.pending_isolated_equity
        # Fail closed: every comparison with NaN is false, so a NaN account would pass them
        # all. x * 0 is 0 for finite x, NaN otherwise.
        if (equity * 0.0 + held_equity * 0.0 + t.cross_position_value * 0.0
                + t.isolated_position_value * 0.0
                + t.cross_initial_margin * 0.0 + t.cross_maintenance_margin * 0.0
                + p.unrealized_pnl * 0.0 + p.maintenance_margin * 0.0 + p.core.margin * 0.0
                + self.peak_equity * 0.0 + self.day_start_equity * 0.0) != 0.0:
            return self._deny(RISK_NON_FINITE_ACCOUNT, equity, 0.0)
        if held_equity > self.peak_equity:
            self.peak_equity = held_equity
        if self.day_start_equity - held_equity > self.daily_loss_limit:
            self.trading_state = STATE_REDUCING
            return self._deny(RISK_DAILY_LOSS, self.day_start_equity - held_equity,
                              self.daily_loss_limit)
        if self.peak_equity > 0 and (self.peak_equity - held_equity) / self.peak_equity \
                > self.max_drawdown:
            self.trading_state = STATE_REDUCING
            return self._deny(RISK_DRAWDOWN,
                              (self.peak_equity - held_equity) / self.peak_equity,
                              self.max_drawdown)
        cdef double band = self.price_band[o.asset]
        cdef double oracle = self.oracles[o.asset]
        if fabs(o.price - mark) > band * mark:
            return self._deny(RISK_PRICE_BAND, fabs(o.price - mark) / mark, band)
        if oracle == oracle and fabs(o.price - oracle) > band * oracle:
            return self._deny(RISK_PRICE_BAND, fabs(o.price - oracle) / oracle, band)
        if o.trigger_price > 0 and fabs(o.trigger_price - mark) > band * mark:
            return self._deny(RISK_PRICE_BAND, fabs(o.trigger_price - mark) / mark, band)
        if o.size > self.max_order_size[o.asset]:
            return self._deny(RISK_ORDER_SIZE, o.size, self.max_order_size[o.asset])
        if o.size * o.price > self.max_order_notional[o.asset]:
            return self._deny(RISK_ORDER_NOTIONAL, o.size * o.price,
                              self.max_order_notional[o.asset])
        if fabs(after) > self.max_position_size[o.asset]:
            return self._deny(RISK_POSITION_SIZE, fabs(after), self.max_position_size[o.asset])
        cdef double value_after = fabs(after) * mark
        if value_after > self.max_position_notional[o.asset]:
            return self._deny(RISK_POSITION_NOTIONAL, value_after,
                              self.max_position_notional[o.asset])
        cdef double value_held = fabs(held) * mark
        cdef double total_after = t.cross_position_value + t.isolated_position_value \
            + self.pending_cross_value + self.pending_isolated_value - value_held + value_after
        if total_after * 0.0 != 0.0:
            return self._deny(RISK_NON_FINITE_ACCOUNT, total_after, 0.0)
        if total_after > self.max_total_notional:
            return self._deny(RISK_TOTAL_NOTIONAL, total_after, self.max_total_notional)
        if equity <= 0 or total_after > self.max_leverage * equity:
            return self._deny(RISK_LEVERAGE, total_after / equity if equity > 0 else INFINITY,
                              self.max_leverage)
        cdef double grown = _grown(held, after)
        cdef double cross_im = t.cross_initial_margin + self.pending_cross_im
        cdef double cross_im_after = cross_im + (value_after - value_held) / p.core.leverage
        cdef double free = cross_equity - max(
            cross_im, 0.1 * (t.cross_position_value + self.pending_cross_value))
        cdef double needed
        if cross_im_after * 0.0 + free * 0.0 != 0.0:
            return self._deny(RISK_NON_FINITE_ACCOUNT, cross_im_after, free)
        if p.core.isolated:
            needed = grown * o.price / p.core.leverage if grown > 0 else 0.0
            if p.core.size != 0 and (after > 0) != (p.core.size > 0):
                free += p.core.margin   # a flip: the closed side's margin comes back first
            if needed > free:
                return self._deny(RISK_MARGIN, needed, free)
        elif cross_im_after > cross_equity:
            return self._deny(RISK_MARGIN, cross_im_after, cross_equity)
        if self.min_liquidation_distance > 0:
            needed = self._distance_after(o, p, after, mark, cross_equity)
            if needed < self.min_liquidation_distance:
                return self._deny(RISK_LIQUIDATION_DISTANCE, needed, self.min_liquidation_distance)
        cdef int64_t open_after = self.resting_orders + self.pending_open + 1
        if not o.flags & FLAG_IMMEDIATE and open_after > self.max_open_orders:
            return self._deny(RISK_OPEN_ORDERS, open_after, self.max_open_orders)
        verdict = self._take_token(now)
        if verdict == RISK_OK:
            self._commit(o)
        return verdict

    cdef inline const PositionState* _row(self, int32_t asset,
                                          PositionState* book_row) noexcept nogil:
        """An asset's position as the batch's earlier orders leave it: its shadow, or the
        book's row, read into `book_row`."""
        if self.shadowed[asset]:
            return &self.shadow[asset]
        self.book._state_of(asset, book_row)
        return book_row

    cdef void _count_row(self, const PositionState* p, double weight) noexcept nogil:
        """Add a row's part of the book's totals, times `weight`, to the batch's."""
        if p.core.isolated:
            self.pending_isolated_equity += weight * (p.core.margin + p.unrealized_pnl)
            self.pending_isolated_value += weight * p.position_value
        else:
            self.pending_cross_upnl += weight * p.unrealized_pnl
            self.pending_cross_value += weight * p.position_value
            self.pending_cross_im += weight * p.initial_margin
            self.pending_cross_mm += weight * p.maintenance_margin

    cdef void _commit(self, const RiskOrder* o) noexcept nogil:
        """In a batch, fill an allowed order at its price (the taker's fee) for the orders
        after it, as the position book would: its row moves to the shadow, and its part of
        the totals with it, recomputed at the row's own mark (the fill's price when it has
        none yet)."""
        if not self.batching:
            return
        cdef int32_t asset = o.asset
        cdef PositionState* s = &self.shadow[asset]
        cdef FillOutcome out
        cdef double mark
        if not self.shadowed[asset]:
            self.book._state_of(asset, s)
            self.shadowed[asset] = 1
            self.touched[self.touched_count] = asset
            self.touched_count += 1
        self._count_row(s, -1.0)
        fill_outcome(&s.core, o.side * o.size, o.price, self.book.taker_rate,
                     self.book.dust[asset], 0.0, &out)
        store_fill(&s.core, &out)
        self.pending_balance += out.balance
        mark = s.mark_px if s.mark_px == s.mark_px else o.price
        s.mark_px = mark
        if s.core.size == 0:
            s.unrealized_pnl = s.position_value = s.initial_margin = s.maintenance_margin = 0.0
        else:
            s.unrealized_pnl = s.core.size * (mark - s.core.entry_px)
            s.position_value = fabs(s.core.size) * mark
            s.initial_margin = s.position_value / s.core.leverage
            s.maintenance_margin = maintenance_margin(&self.book.tiers, asset,
                                                      s.position_value)
        self._count_row(s, 1.0)
        if not o.flags & FLAG_IMMEDIATE:
            self.pending_open += 1

    cdef double _distance_after(self, const RiskOrder* o, const PositionState* p, double after,
                                double mark, double cross_equity) noexcept nogil:
        """How far (a fraction of the mark) the liquidation price would be after the fill."""
        cdef FillOutcome out
        fill_outcome(&p.core, o.side * o.size, o.price, self.book.taker_rate,
                     self.book.dust[o.asset], 0.0, &out)
        cdef double value = fabs(after) * mark
        cdef double maintenance = maintenance_margin(&self.book.tiers, o.asset, value)
        cdef double upnl = after * (mark - out.entry_px)
        cdef double available
        if p.core.isolated:
            available = out.margin + upnl
        else:       # the other cross positions' maintenance, the batch's earlier orders' too
            available = cross_equity + out.balance - p.unrealized_pnl + upnl \
                - (self.book.totals.cross_maintenance_margin + self.pending_cross_mm
                   - p.maintenance_margin)
        cdef double liquidation = liquidation_price(&self.book.tiers, o.asset, after, mark,
                                                    maintenance, available,
                                                    self.book.legacy_liquidation)
        if liquidation != liquidation:
            return INFINITY
        return max((mark - liquidation) * (1.0 if after > 0 else -1.0), 0.0) / mark

    cdef inline int _take_token(self, int64_t now) noexcept nogil:
        """Spend one order of the rate budget (a token bucket), or refuse."""
        if self.orders_per_second == INFINITY:
            return RISK_OK
        self.tokens = min(self.burst, self.tokens
                          + (now - self.refilled_at) * 1e-9 * self.orders_per_second)
        self.refilled_at = now
        if self.tokens < 1.0:
            return self._deny(RISK_RATE_LIMIT, self.orders_per_second, self.orders_per_second)
        self.tokens -= 1.0
        return RISK_OK


cdef double* _pointer(array) except NULL:
    cdef double[::1] view = array
    return &view[0]
