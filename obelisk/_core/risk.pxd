# Pre-trade risk checks of orders against limits and an account's positions.

cimport cython
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t

from obelisk._core._types cimport Event
from obelisk._core.position cimport PositionBook, PositionState


# Codes that cross into Python: obelisk/_core/risk.pyx builds the IntEnums
# RiskReason, TradingState and OrderFlags from these values, so each is
# defined once.

# Why an order was refused (RISK_OK when it was not), in order of precedence.
cdef enum:
    RISK_OK = 0
    RISK_INVALID_ORDER = 1
    RISK_UNKNOWN_ASSET = 2
    RISK_KILL_SWITCH = 3
    RISK_HALTED = 4
    RISK_REDUCE_ONLY_INCREASES = 5
    RISK_STALE_MARKET_DATA = 6
    RISK_REDUCING_ONLY = 7
    RISK_DAILY_LOSS = 8
    RISK_DRAWDOWN = 9
    RISK_PRICE_BAND = 10
    RISK_ORDER_SIZE = 11
    RISK_ORDER_NOTIONAL = 12
    RISK_POSITION_SIZE = 13
    RISK_POSITION_NOTIONAL = 14
    RISK_TOTAL_NOTIONAL = 15
    RISK_LEVERAGE = 16
    RISK_MARGIN = 17
    RISK_LIQUIDATION_DISTANCE = 18
    RISK_OPEN_ORDERS = 19
    RISK_RATE_LIMIT = 20
    RISK_NON_FINITE_ACCOUNT = 21   # equity, margins or notionals not finite: fail closed

# What the checks let through.
cdef enum:
    STATE_ACTIVE = 0       # every order within the limits
    STATE_REDUCING = 1     # only orders that shrink a position
    STATE_HALTED = 2       # nothing

# Bits of RiskOrder.flags.
cdef enum:
    FLAG_REDUCE_ONLY = 1   # must not grow the position
    FLAG_PROTECTIVE = 2    # a take-profit or stop-loss
    FLAG_IMMEDIATE = 4     # IOC or market: never rests, so never counts as an open order


# One order to check (RISK_ORDER_DTYPE, 32 bytes).
cdef struct RiskOrder:
    int32_t asset
    int8_t side                # +1 buys, -1 sells
    uint8_t flags              # FLAG_REDUCE_ONLY | FLAG_PROTECTIVE | FLAG_IMMEDIATE
    uint8_t _pad[2]
    double size                # > 0
    double price               # limit price; for market orders the protection price
    double trigger_price       # 0 when the order has no trigger


@cython.final
cdef class RiskChecks:
    cdef PositionBook book
    cdef int32_t count
    cdef object _arrays
    cdef double* max_order_size
    cdef double* max_order_notional
    cdef double* max_position_size
    cdef double* max_position_notional
    cdef double* price_band
    cdef double* marks
    cdef double* oracles
    cdef int64_t* mark_times
    # A batch judges each order after its earlier allowed orders, as if they had filled at
    # their prices: the rows they touched as the fills leave them (`shadow`, for the assets
    # `shadowed`, listed in `touched`), and what they add to the book's totals.
    cdef PositionState* shadow
    cdef uint8_t* shadowed
    cdef int32_t* touched
    cdef int32_t touched_count
    cdef double pending_balance             # cross balance (PnL, fees, isolated margin),
    cdef double pending_cross_upnl          # cross uPnL,
    cdef double pending_cross_value         # cross notional,
    cdef double pending_cross_im            # cross initial margin,
    cdef double pending_cross_mm            # cross maintenance margin,
    cdef double pending_isolated_equity     # isolated margins and uPnL,
    cdef double pending_isolated_value      # isolated notional,
    cdef int64_t pending_open               # resting orders
    cdef bint batching
    cdef readonly double max_total_notional
    cdef readonly double max_leverage
    cdef readonly double min_liquidation_distance
    cdef readonly double daily_loss_limit
    cdef readonly double max_drawdown
    cdef readonly int64_t max_open_orders
    cdef readonly int64_t max_data_age_ns
    cdef readonly double orders_per_second
    cdef readonly double burst
    cdef double tokens
    cdef int64_t refilled_at
    cdef int trading_state          # TradingState: ACTIVE, REDUCING or HALTED
    cdef bint kill_engaged          # every order is refused until it is released
    cdef int64_t resting_orders
    cdef readonly double peak_equity
    cdef readonly double day_start_equity
    cdef object clock
    cdef readonly double last_value
    """The number the last refused order broke its limit with."""
    cdef readonly double last_limit
    """The limit the last refused order broke."""
    cdef bint busy
    """Claimed by a caller: every other caller gets ConcurrentUseError."""
    cdef bint initialized
    cdef int _init(self, PositionBook book, per_asset, double max_total_notional,
                   double max_leverage, double min_liquidation_distance,
                   double daily_loss_limit, double max_drawdown, int64_t max_open_orders,
                   double max_data_age_s, double orders_per_second, double burst,
                   clock) except -1
    cdef int _claim(self, bint with_book) except -1
    cdef int _refuse(self) except -1
    cdef inline int _check_idle(self) except -1
    cdef object _check_batch(self, orders)
    cdef object _check_events(self, events, rows, flags, ticks, lots)
    cdef void _end_batch(self) noexcept nogil
    cdef void _check_orders(self, const RiskOrder* o, Py_ssize_t n, int64_t now,
                            uint8_t* reasons) noexcept nogil
    cdef void _check_event_rows(self, const Event* e, const int32_t* row_of, const uint8_t* flag,
                                const double* tick, const double* lot, Py_ssize_t n,
                                int64_t now, uint8_t* reasons) noexcept nogil
    cdef int64_t _now(self) except? -1
    cdef int _check(self, const RiskOrder* order, int64_t now) noexcept nogil
    cdef int _check_claimed(self, const RiskOrder* order) except -1
    cdef inline int _deny(self, int reason, double value, double limit) noexcept nogil
    cdef inline const PositionState* _row(self, int32_t asset,
                                          PositionState* book_row) noexcept nogil
    cdef void _count_row(self, const PositionState* p, double weight) noexcept nogil
    cdef double _distance_after(self, const RiskOrder* o, const PositionState* p, double after,
                                double mark, double cross_equity) noexcept nogil
    cdef void _commit(self, const RiskOrder* o) noexcept nogil
    cdef inline int _take_token(self, int64_t now) noexcept nogil
