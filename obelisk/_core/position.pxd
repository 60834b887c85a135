# Positions, margin, liquidation and funding of one Hyperliquid account.

cimport cython
from libc.math cimport NAN, copysign, fabs, isfinite
from libc.stdint cimport int32_t, int64_t, uint8_t


# The recompute's kernel and its layout: each position's stored numbers in one 64-byte
# line, marks and what is derived from them in columns (see _recompute.h for why).
cdef extern from "_recompute.h":
    ctypedef struct PositionCore "obelisk_position_core":
        double size                # signed, + long
        double entry_px            # size-weighted average of the opening fills; 0 when flat
        double leverage            # the user's setting, an integer in [1, max leverage]
        double margin              # isolated collateral excluding uPnL; 0 for cross
        double realized_pnl        # closed parts of fills, before fees
        double fees                # paid; negative for net rebates
        double funding             # paid; negative when received
        uint8_t isolated
        int32_t tiers              # where its margin table starts in MarginTables

    ctypedef struct PositionColumns "obelisk_position_columns":
        double* mark_px
        double* unrealized_pnl
        double* position_value
        double* initial_margin
        double* maintenance_margin
        double* liquidation_px     # NaN when no price liquidates the position

    ctypedef struct MarginTables "obelisk_margin_tables":
        const double* lower
        const double* mmr
        const double* deduction
        const double* low_bound
        const double* high_bound
        int32_t depth

    # Account totals from the last recompute.
    ctypedef struct Totals "obelisk_totals":
        double cross_unrealized_pnl
        double cross_position_value
        double cross_initial_margin
        double cross_maintenance_margin
        double isolated_equity          # isolated margins plus their uPnL
        double isolated_position_value

    enum: RECOMPUTE_BLOCK "OBELISK_RECOMPUTE_BLOCK"

    bint recompute_rows "obelisk_recompute"(
        const PositionCore* rows, int64_t count, int64_t padded, const PositionColumns* c,
        const double* marks, double* old_marks, const MarginTables* t, double balance,
        int legacy, Totals* totals) noexcept nogil


cdef inline PositionColumns columns_in(double* block, int64_t rows) noexcept nogil:
    """The six columns of `rows` values each that `block` holds, in PositionColumns' order."""
    cdef PositionColumns columns
    columns.mark_px = block
    columns.unrealized_pnl = block + rows
    columns.position_value = block + 2 * rows
    columns.initial_margin = block + 3 * rows
    columns.maintenance_margin = block + 4 * rows
    columns.liquidation_px = block + 5 * rows
    return columns


# A row with what the recompute derives from it: the risk checks play a batch's orders
# through copies of these.
cdef struct PositionState:
    PositionCore core
    double mark_px
    double unrealized_pnl
    double position_value
    double initial_margin
    double maintenance_margin


# One asset's position and what the last recompute derived from it, as users read it
# (POSITION_DTYPE, 112 bytes). Sizes are signed (+ long), money is USDC.
cdef struct Position:
    double size
    double entry_px            # size-weighted average of the opening fills; 0 when flat
    double leverage            # the user's setting, an integer in [1, max leverage]
    double margin              # isolated collateral excluding uPnL; 0 for cross
    double realized_pnl        # closed parts of fills, before fees
    double fees                # paid; negative for net rebates
    double funding             # paid; negative when received
    double mark_px
    double unrealized_pnl
    double position_value
    double initial_margin
    double maintenance_margin
    double liquidation_px      # NaN when no price liquidates the position
    uint8_t isolated
    uint8_t _pad[7]


# One fill to apply (POSITION_FILL_DTYPE, 24 bytes).
cdef struct PositionFill:
    double size                # signed: + buys
    double price
    int32_t asset
    uint8_t maker
    uint8_t _pad[3]


# Margin tier tables: asset i uses rows first[i] .. first[i] + count[i] - 1,
# each a lower notional bound, its maintenance rate and its deduction.
cdef struct TierTables:
    const double* lower
    const double* mmr
    const double* deduction
    const int32_t* first
    const int32_t* count


# The fee of one fill, the one rule behind the kernels and fill_fee/fill_fees.

cdef inline double fill_fee_at_rate(double size, double price, double rate) noexcept nogil:
    """|size| x price x rate in USDC; negative for a rebate."""
    return fabs(size) * price * rate


# Margin math shared with the risk checks (header-style: inlined where cimported).

cdef inline bint closes_whole(double amount, double held, double dust) noexcept nogil:
    """Whether an opposite fill of `amount` closes a position of `held` (both > 0) exactly:
    decimal sizes leave float residue (0.3 - 0.1 - 0.2 != 0), and a fill within 1e-12 of
    the held size, or within `dust` (half the asset's lot: residue that larger sizes held
    before left), closes it rather than leaving or flipping to a dust position."""
    cdef double gap = fabs(amount - held)
    return gap <= 1e-12 * (amount + held) or gap < dust


# The fill kernel: the position book applies fills with it, and the risk checks play a
# batch's earlier orders through it.

cdef struct FillOutcome:
    # A row's stored numbers after one fill, and the fill's realized PnL
    double size
    double entry_px
    double margin
    double realized_pnl
    double fees
    double balance
    double realized


cdef inline void fill_outcome(const PositionCore* p, double size, double price, double rate,
                              double dust, double balance, FillOutcome* out) noexcept nogil:
    """What one fill makes of the row and the balance, the row untouched.

    A fill through zero closes, then opens the rest. Opens, adds, closes and
    flips come in no predictable order, so every quantity is computed and the
    right one selected, without branches.
    """
    cdef double held = fabs(p.size)
    cdef double amount = fabs(size)
    cdef bint closing = (p.size > 0 and size < 0) or (p.size < 0 and size > 0)
    cdef bint whole = closing and closes_whole(amount, held, dust)
    # A comparison, not fmin: both are finite here, and fmin is a libm call that makes the
    # compiler spill every live register around it.
    cdef double closed = held if whole else ((amount if amount < held else held) if closing
                                             else 0.0)
    cdef double opened = 0.0 if whole else amount - closed
    cdef double realized = (price - p.entry_px) * closed * (1.0 if p.size > 0 else -1.0)
    cdef double average = (held * p.entry_px + amount * price) / (held + amount)
    cdef double remaining = 0.0 if whole else p.size + size
    cdef double kept = p.entry_px if remaining != 0 else 0.0
    # Isolated margin leaves pro rata with the closed part (all of it on a full
    # close: closed / held is then exactly 1) and comes in for the opened part.
    cdef double released = p.margin * (closed / (held if held > 0 else 1.0))
    cdef double added = opened * price / p.leverage * p.isolated
    cdef double fee = fill_fee_at_rate(size, price, rate)
    out.size = remaining
    out.entry_px = (price if opened > 0 else kept) if closing else average
    out.margin = p.margin + (added - released)
    out.realized_pnl = p.realized_pnl + realized
    out.fees = p.fees + fee
    out.balance = balance + (released - added + realized - fee)
    out.realized = realized


cdef inline void store_fill(PositionCore* p, const FillOutcome* out) noexcept nogil:
    p.size = out.size
    p.entry_px = out.entry_px
    p.margin = out.margin
    p.realized_pnl = out.realized_pnl
    p.fees = out.fees


cdef inline int32_t tier_of(const double* lower, int32_t first, int32_t count,
                            double notional) noexcept nogil:
    """Index of the margin tier that holds `notional`."""
    cdef int32_t k = first + count - 1
    while k > first and notional < lower[k]:
        k -= 1
    return k


cdef inline double maintenance_margin(const TierTables* tiers, int32_t asset,
                                      double notional) noexcept nogil:
    """Maintenance margin of `notional` under the asset's tiers (continuous across them)."""
    cdef int32_t k = tier_of(tiers.lower, tiers.first[asset], tiers.count[asset], notional)
    return notional * tiers.mmr[k] - tiers.deduction[k]


cdef inline double liquidation_price(const TierTables* tiers, int32_t asset, double size,
                                     double mark, double maintenance, double available,
                                     bint legacy) noexcept nogil:
    """The mark at which the position's equity equals the maintenance margin it needs.

    `available` is the equity less the other positions' maintenance margin.
    Solved in each tier: the answer is the one whose notional lies in its own
    tier. NaN when no positive price solves it: a position the account can
    always carry, or a short whose account is already under water.
    """
    cdef double amount = fabs(size)
    cdef double side = (1.0 if size > 0 else -1.0)
    cdef double price
    cdef double notional_times_rate, rate
    cdef int32_t first = tiers.first[asset]
    cdef int32_t last = first + tiers.count[asset] - 1
    cdef int32_t k
    if legacy:
        price = mark - side * (available - maintenance) / amount
    else:
        # In tier k the price is (amount x mark - side x (available + deduction))
        # / (amount x rate) with rate = 1 - side x mmr > 0; its notional is that
        # times amount, so the tier test needs no division.
        for k in range(first, last + 1):
            notional_times_rate = amount * mark - side * (available + tiers.deduction[k])
            rate = 1.0 - side * tiers.mmr[k]
            if notional_times_rate >= tiers.lower[k] * (1 - 1e-12) * rate and (
                    k == last
                    or notional_times_rate <= tiers.lower[k + 1] * (1 + 1e-12) * rate):
                price = notional_times_rate / (amount * rate)
                break
        else:
            return NAN      # only a price <= 0 would do
    return price if isfinite(price) and price > 0 else NAN


@cython.final
cdef class PositionBook:
    cdef PositionCore* rows         # padded rows; those past count stay flat
    cdef object rows_array          # owns rows; never handed out (copies are)
    cdef PositionColumns columns    # marks and what the recompute derives, padded rows long
    cdef object columns_array
    cdef PositionCore* saved        # rows and marks before a change that may have to be undone
    cdef double* saved_marks        # (a mark() keeps only the marks)
    cdef object saved_array
    cdef double saved_balance
    cdef int32_t count
    cdef int64_t padded             # count rounded up to the recompute's block
    cdef TierTables tiers           # each table once: one row's margin and liquidation math
    # the same tables, padded to one depth: the recompute's
    cdef MarginTables margin_tables
    cdef object margin_tables_array
    cdef double* max_leverage
    cdef double* dust               # per asset: half its lot, below which a close is whole
    cdef object dust_array
    cdef object _tier_arrays
    cdef object margin_tiers        # as given, for pickling
    cdef int default_leverage
    cdef double cross_balance
    """Cross collateral in USDC: deposits and realized PnL less fees, funding, isolated margin."""
    cdef readonly double taker_rate
    cdef readonly double maker_rate
    cdef readonly bint legacy_liquidation
    """Use the 2023 liquidation price (no (1 - l x side) factor) the exchange reported then."""
    cdef Totals totals
    cdef bint dirty
    cdef unsigned long long changes
    """Bumped by every change: fills, marks, funding, leverage, transfers."""
    cdef bint busy
    """Claimed by a caller (the risk checks too): every other caller gets ConcurrentUseError."""
    cdef bint initialized
    cdef int _init(self, margin_tiers, double balance, double taker_rate, double maker_rate,
                   int default_leverage, bint legacy_liquidation, lots) except -1
    cdef int _allocate_rows(self) except -1
    cdef int _set_margin_tables(self, arrays) except -1
    cdef int _claim(self) except -1
    cdef int _refuse(self) except -1
    cdef inline void _changed(self) noexcept nogil
    cdef int _check_asset(self, Py_ssize_t asset) except -1
    cdef int _check_mark(self, Py_ssize_t asset, double price) except -1
    cdef Py_ssize_t _first_unsettable_row(self) noexcept nogil
    cdef void _set_mark(self, Py_ssize_t asset, double price) noexcept
    cdef int _refuse_fill(self, Py_ssize_t asset, double size, double price) except -1
    cdef inline void _save(self) noexcept nogil
    cdef inline void _restore(self) noexcept nogil
    cdef bint _all_finite(self) noexcept nogil
    cdef int _load_rows(self, const unsigned char[::1] rows) except -1
    cdef double _apply_batch(self, fills) except? -1
    cdef Py_ssize_t _apply_rows(self, const PositionFill* f, Py_ssize_t n) noexcept nogil
    cdef int _mark(self, prices) except -1
    cdef bint _mark_rows(self, const double* marks) noexcept nogil
    cdef double _apply_funding(self, rates, oracle_prices) except? -1
    cdef bint _pay_funding(self, const double* rate, const double* oracle,
                           double* paid) noexcept nogil
    cdef int _set_leverage(self, Py_ssize_t asset, leverage, isolated) except -1
    cdef int _set_position(self, Py_ssize_t asset, double size, double entry_px, leverage,
                           bint isolated, double margin) except -1
    cdef int _update_isolated_margin(self, Py_ssize_t asset, double amount) except -1
    cdef bint _recompute(self, const double* marks, double* old_marks) noexcept nogil
    cdef void _state_of(self, int32_t asset, PositionState* out) noexcept nogil
    cdef object _records(self, Py_ssize_t start, Py_ssize_t stop)
    cdef int _refresh(self) except -1
    cdef double _cross_account_value(self) except? -1
    cdef double _account_value(self) except? -1
    cdef double _transfer_margin_required(self) except? -1
    cdef double _withdrawable(self) except? -1
