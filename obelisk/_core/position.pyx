"""Positions, margin, liquidation prices and funding, as Hyperliquid computes them.

One row per asset: its stored numbers in a 64-byte C struct, its mark and what is
derived from it in columns (the recompute sweeps those, two rows per instruction);
fills, marks and funding are applied by compiled loops (without the GIL for large
batches). Money is float64 USDC: the exchange reports these values as decimals
rounded to about 1e-8, far coarser than float64's 1e-16, so doubles reproduce them
(tested to 1e-9 relative).
"""

from enum import IntEnum

import numpy as np

cimport cython
from libc.math cimport INFINITY, NAN, fabs, floor, isfinite
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t
from libc.string cimport memcpy

from obelisk._core._buffers cimport const_data_of, data_of
from obelisk._core._gil cimport RELEASE_GIL_FROM, PyThreadState, release_gil_if, restore_gil
from obelisk._core._sorted cimport prefetch
from obelisk._core._types cimport (
    OEV_CANCELLED,
    REASON_SELF_TRADE,
    SIDE_BUY,
    Fill,
    OrderEvent,
)

from obelisk._core._records import as_records, struct_dtype
from obelisk._core.book import FILL_DTYPE as _FILL_DTYPE
from obelisk._core.book import ORDER_EVENT_DTYPE as _ORDER_EVENT_DTYPE
from obelisk._core.errors import (
    ConcurrentUseError,
    InvalidFeeRateError,
    InvalidFillError,
    InvalidFundingError,
    MarginError,
    MarketDataError,
    UnknownAssetError,
)


class MarginMode(IntEnum):
    """How a position is margined."""
    CROSS = 0       # shares the account's collateral with other cross positions
    ISOLATED = 1    # has its own margin; only it is lost on liquidation


cdef Position _position
cdef PositionFill _fill

POSITION_DTYPE = struct_dtype(<Position[:1]> &_position)
POSITION_FILL_DTYPE = struct_dtype(<PositionFill[:1]> &_fill)

TRANSFER_VALUE_FRACTION = 0.1   # withdrawals keep max(initial margin, 10% of position value)

cdef enum:
    PREFETCH_AHEAD = 8           # fills between asking for a row and using it
    NOT_FINITE = -1              # _apply_rows: the fills would leave a non-finite number


# ---------------------------------------------------------------- kernels

cdef inline double _apply_fill(PositionCore* p, double size, double price, double rate,
                               double dust, double* balance) noexcept nogil:
    """Apply one fill to the row and the balance; its realized PnL."""
    cdef FillOutcome out
    fill_outcome(p, size, price, rate, dust, balance[0], &out)
    store_fill(p, &out)
    balance[0] = out.balance
    return out.realized


cdef inline bint _outcome_finite(const FillOutcome* out, double mark) noexcept nogil:
    """The row a fill leaves is finite, and so are its uPnL and value at `mark` (finite).

    Finite uPnL covers the entry price too: with a size it is size x (mark - entry),
    and a size of 0 has an entry of 0. The numbers' sum times zero is zero only when
    every one is finite (a NaN or an infinity makes it NaN): one chain of adds off the
    stores' path, ~1-2 ns a per-call fill less than a comparison per number (measured
    alternately). A sum past DBL_MAX (~1.8e308 USDC) is refused too; no account gets
    near it.
    """
    cdef double upnl = out.size * (mark - out.entry_px)
    cdef double value = fabs(out.size) * mark
    return ((upnl + value) + (out.margin + out.realized_pnl) + (out.fees + out.balance)) \
        * 0.0 == 0.0


cdef inline bint _valid_fill(const PositionFill* f, int32_t count) noexcept nogil:
    # Bitwise, not short-circuit: the check runs over whole batches without branching.
    return (<int> (f.asset >= 0) & <int> (f.asset < count) & <int> (fabs(f.size) < INFINITY)
            & <int> (f.size != 0) & <int> (f.price > 0) & <int> (f.price < INFINITY)
            & <int> (f.maker <= 1))


cdef inline bint _row_finite(const PositionCore* p, double mark) noexcept nogil:
    """Every number the row stores is finite, and so are its value and uPnL at `mark`
    (its mark).

    x * 0 is 0 for a finite x and NaN for inf or NaN, so one sum tests them all,
    with no false alarm where a plain sum of large finite values would overflow.
    """
    mark = mark if p.size != 0 else 0.0
    return (p.size * 0.0 + p.entry_px * 0.0 + p.margin * 0.0 + p.realized_pnl * 0.0
            + p.fees * 0.0 + p.funding * 0.0 + mark * 0.0 + p.size * (mark - p.entry_px) * 0.0
            + fabs(p.size) * mark * 0.0) == 0.0


@cython.final
cdef class PositionBook:
    """One account's positions (a row per asset), cross balance and fee rates.

    Fills, funding and marks change the rows; uPnL, margins, liquidation
    prices and account totals are derived again, lazily, before they are
    read. Bad input raises before anything changes, and so does input whose
    result would not be finite (an overflow to inf, or NaN): the book never
    holds a non-finite number but the liquidation price's NaN ("none").

    One user at a time: every call claims the book first, in one step, and
    releases it when done; another thread's call meanwhile raises
    ConcurrentUseError (as do the risk checks reading the book).

    Parameters
    ----------
    margin_tiers : sequence of per-asset tier lists
        Each ``[(lower_bound_usd, max_leverage), ...]`` starts at 0 with
        ascending bounds (Hyperliquid's ``marginTables``); a single tier
        ``[(0, max_leverage)]`` is the common case.
    balance : float
        Cross collateral in USDC.
    taker_rate, maker_rate : float
        Fee rates as fractions (0.00045 is 0.045 %); a negative maker rate is a rebate.
    default_leverage : int
        Leverage of every asset until set_leverage (capped at the asset's maximum).
    legacy_liquidation : bool
        Liquidation prices as the exchange reported them in 2023, without
        the ``(1 - l x side)`` factor of today's documented formula.
    lots : sequence of float, optional
        Each asset's lot size. A closing fill within half a lot of the position
        closes it whole: lot-sized fills that sum to zero leave no dust (the
        float residue of the larger sizes held before them). None: 0 for all.
    """

    def __cinit__(self):
        self.rows = NULL
        self.count = 0
        self.busy = True            # refused until __init__ has run

    def __init__(self, margin_tiers, *, double balance=0.0, double taker_rate=0.00045,
                 double maker_rate=0.00015, int default_leverage=20,
                 bint legacy_liquidation=False, lots=None) -> None:
        if self.initialized:        # a second call would free the rows the risk checks read
            raise RuntimeError("PositionBook.__init__ must not be called twice")
        self.initialized = True
        try:
            self._init(margin_tiers, balance, taker_rate, maker_rate, default_leverage,
                       legacy_liquidation, lots)
        except BaseException:
            self.initialized = False
            raise
        self.busy = False

    cdef int _init(self, margin_tiers, double balance, double taker_rate, double maker_rate,
                   int default_leverage, bint legacy_liquidation, lots) except -1:
        tiers = [list(asset_tiers) for asset_tiers in margin_tiers]
        if not tiers:
            raise MarginError("a PositionBook needs at least one asset")
        _check_money(balance, "balance")
        _check_rates(taker_rate, maker_rate)
        if default_leverage < 1:
            raise MarginError(f"default_leverage must be at least 1, got {default_leverage}")
        lower, mmr, deduction, first, count, top = [], [], [], [], [], []
        known = {}      # assets share tables: each is stored once, so the recompute stays in cache
        for asset, asset_tiers in enumerate(tiers):
            top.append(float(asset_tiers[0][1]) if asset_tiers else 0.0)
            count.append(len(asset_tiers))
            key = tuple(map(tuple, asset_tiers))
            if key in known:
                first.append(known[key])
                continue
            known[key] = len(lower)
            first.append(len(lower))
            previous_mmr = previous_deduction = 0.0
            for bound, leverage in _checked_tiers(asset, asset_tiers):
                rate = 1.0 / (2.0 * leverage)
                # deduction(n) = deduction(n-1) + lowerBound(n) x (mmr(n) - mmr(n-1)): continuous
                previous_deduction += 0.0 if bound == 0 else bound * (rate - previous_mmr)
                previous_mmr = rate
                lower.append(bound)
                mmr.append(rate)
                deduction.append(previous_deduction)
        arrays = (np.array(lower, dtype=np.float64), np.array(mmr, dtype=np.float64),
                  np.array(deduction, dtype=np.float64), np.array(first, dtype=np.int32),
                  np.array(count, dtype=np.int32), np.array(top, dtype=np.float64))
        self._tier_arrays = arrays
        # as validated above (every table once), for pickling
        self.margin_tiers = tuple(tuple((float(b), int(l)) for b, l in t) for t in tiers)
        self.default_leverage = default_leverage
        cdef double[::1] lower_view = arrays[0]
        cdef double[::1] mmr_view = arrays[1]
        cdef double[::1] deduction_view = arrays[2]
        cdef int32_t[::1] first_view = arrays[3]
        cdef int32_t[::1] count_view = arrays[4]
        cdef double[::1] top_view = arrays[5]
        self.tiers.lower = &lower_view[0]
        self.tiers.mmr = &mmr_view[0]
        self.tiers.deduction = &deduction_view[0]
        self.tiers.first = &first_view[0]
        self.tiers.count = &count_view[0]
        self.max_leverage = &top_view[0]
        self.padded = (len(tiers) + RECOMPUTE_BLOCK - 1) // RECOMPUTE_BLOCK * RECOMPUTE_BLOCK
        self._allocate_rows()
        self._set_margin_tables(arrays)
        dust = np.zeros(len(tiers)) if lots is None else np.array(lots, dtype=np.float64) / 2
        if dust.shape != (len(tiers),) or not np.all(np.isfinite(dust) & (dust >= 0)):
            raise MarginError(f"lots must be {len(tiers)} finite sizes >= 0, one per asset, "
                              f"got {lots!r}")
        self.dust_array = dust
        self.dust = <double*> data_of(dust)
        self.count = len(tiers)
        cdef int32_t i
        for i in range(self.count):
            self.rows[i].leverage = min(<double> default_leverage, self.max_leverage[i])
        self.cross_balance = balance
        self.taker_rate = taker_rate
        self.maker_rate = maker_rate
        self.legacy_liquidation = legacy_liquidation
        self._changed()
        return 0

    cdef int _allocate_rows(self) except -1:
        """Rows, columns and their saved copies, `padded` long and each on a cache line:
        rows past the assets are flat at leverage 1, every mark and liquidation price
        NaN (none yet)."""
        cdef Py_ssize_t n = self.padded
        self.rows_array = _aligned_zeros(n * sizeof(PositionCore))
        self.rows = <PositionCore*> data_of(self.rows_array)
        cdef Py_ssize_t i
        for i in range(n):
            self.rows[i].leverage = 1.0
        self.columns_array = _aligned_zeros(6 * n * sizeof(double)).view(np.float64).reshape(6, n)
        self.columns = columns_in(<double*> data_of(self.columns_array), n)
        self.columns_array[0] = NAN
        self.columns_array[5] = NAN
        self.saved_array = _aligned_zeros(n * (sizeof(PositionCore) + sizeof(double)))
        self.saved = <PositionCore*> data_of(self.saved_array)
        self.saved_marks = <double*> (self.saved + n)
        return 0

    cdef int _set_margin_tables(self, arrays) except -1:
        """The margin tables padded to the deepest (see MarginTables), and each row's."""
        lower, mmr, deduction, first, count = arrays[:5]
        starts, first_asset, table_of = np.unique(first, return_index=True, return_inverse=True)
        tier_count = count[first_asset][:, None]
        cdef int32_t depth = int(count.max())
        tier_number = np.arange(depth)[None, :]
        tier = starts[:, None] + np.minimum(tier_number, tier_count - 1)
        inside = tier_number < tier_count
        tables = np.empty((5, len(starts), depth), dtype=np.float64)
        tables[0] = np.where(inside, lower[tier], INFINITY)
        tables[1] = mmr[tier]
        tables[2] = deduction[tier]
        # the liquidation search's bounds, as liquidation_price tests them
        tables[3] = np.where(inside, lower[tier] * (1 - 1e-12), INFINITY)
        tables[4] = np.where(tier_number + 1 < tier_count,
                             lower[np.minimum(tier + 1, len(lower) - 1)] * (1 + 1e-12), INFINITY)
        self.margin_tables_array = tables
        cdef double* table = <double*> data_of(tables)
        cdef Py_ssize_t size = len(starts) * depth
        self.margin_tables.lower = table
        self.margin_tables.mmr = table + size
        self.margin_tables.deduction = table + 2 * size
        self.margin_tables.low_bound = table + 3 * size
        self.margin_tables.high_bound = table + 4 * size
        self.margin_tables.depth = depth
        cdef const int64_t[::1] table_number = table_of.astype(np.int64).ravel()
        cdef Py_ssize_t i
        for i in range(table_number.shape[0]):     # rows past the assets keep table 0
            self.rows[i].tiers = <int32_t> (table_number[i] * depth)
        return 0

    # ------------------------------------------------------ one user at a time

    cdef int _claim(self) except -1:
        """Check that nobody holds the book and take it, in one step (GIL held throughout)."""
        if self.busy:
            self._refuse()
        self.busy = True
        return 0

    cdef int _refuse(self) except -1:
        if not self.initialized:
            raise RuntimeError("PositionBook.__init__ has not run")
        raise ConcurrentUseError(
            "this PositionBook is in use by another thread (or by risk checks reading it); "
            "use one book from one thread at a time")

    # -------------------------------------------------------------- checks

    cdef int _check_asset(self, Py_ssize_t asset) except -1:
        if not 0 <= asset < self.count:
            raise UnknownAssetError(f"asset must be an index in 0..{self.count - 1}, got {asset}")
        return 0

    cdef inline void _save(self) noexcept nogil:
        """Keep the rows, marks and balance, to put back if a change leaves a non-finite
        number."""
        memcpy(self.saved, self.rows, self.count * sizeof(PositionCore))
        memcpy(self.saved_marks, self.columns.mark_px, self.count * sizeof(double))
        self.saved_balance = self.cross_balance

    cdef inline void _restore(self) noexcept nogil:
        memcpy(self.rows, self.saved, self.count * sizeof(PositionCore))
        memcpy(self.columns.mark_px, self.saved_marks, self.count * sizeof(double))
        self.cross_balance = self.saved_balance

    cdef bint _all_finite(self) noexcept nogil:
        cdef int32_t i
        cdef int32_t bad = 0
        for i in range(self.count):
            bad += not _row_finite(&self.rows[i], self.columns.mark_px[i])
        return bad == 0 and isfinite(self.cross_balance)

    # ------------------------------------------------------------ changes

    def apply_fill(self, Py_ssize_t asset, double size, double price, bint maker=False) -> float:
        """Apply one fill of `size` (signed, + buys) at `price`; its realized PnL in USDC."""
        # The hot path: it runs no Python code and keeps the GIL from this check to its
        # last touch of the rows, so the check is the claim (nothing can run in between).
        # One test for every refusal; _refuse_fill says which it was.
        if (self.busy or not 0 <= asset < self.count or not (isfinite(size) and size != 0)
                or not (isfinite(price) and price > 0)):
            self._refuse_fill(asset, size, price)
        cdef PositionCore* p = &self.rows[asset]
        # no mark yet: the fill's price is the best one known
        cdef double mark = self.columns.mark_px[asset]
        mark = price if mark != mark else mark
        cdef FillOutcome out
        fill_outcome(p, size, price, self.maker_rate if maker else self.taker_rate,
                     self.dust[asset], self.cross_balance, &out)
        # Only what the kernel computes can have left the finite range (funding does not
        # change, and the mark is the old finite one or the price): checked before it is
        # stored, so a refused fill leaves nothing to undo.
        if not _outcome_finite(&out, mark):
            self._refuse_fill(asset, size, price)
        self.columns.mark_px[asset] = mark
        store_fill(p, &out)
        self.cross_balance = out.balance
        self._changed()
        return out.realized

    cdef int _refuse_fill(self, Py_ssize_t asset, double size, double price) except -1:
        """Why apply_fill refuses, in the order it checks: out of its hot path on purpose."""
        if self.busy:
            self._refuse()
        self._check_asset(asset)
        if not (isfinite(size) and size != 0):
            raise InvalidFillError(f"fill size must be finite and non-zero, got {size}")
        if not (isfinite(price) and price > 0):
            raise InvalidFillError(f"fill price must be finite and positive, got {price}")
        raise InvalidFillError(f"fill of {size} at {price} on asset {asset} would leave a "
                               f"non-finite position or balance; nothing applied")

    def apply_fills(self, fills) -> float:
        """Apply a POSITION_FILL_DTYPE array in order in one loop; the balance change.

        Every fill is checked first, so a bad one raises before any is applied;
        a batch whose result would not be finite is undone whole and raises.
        """
        self._claim()
        try:
            return self._apply_batch(fills)
        finally:
            self.busy = False

    cdef double _apply_batch(self, fills) except? -1:
        fills = as_records(fills, POSITION_FILL_DTYPE, "fills", "obelisk.POSITION_FILL_DTYPE")
        cdef Py_ssize_t n = len(fills)
        if n == 0:
            return 0.0
        cdef const PositionFill* f = <const PositionFill*> const_data_of(fills)
        cdef double before = self.cross_balance
        cdef PyThreadState* released = release_gil_if(n >= RELEASE_GIL_FROM)
        cdef Py_ssize_t stopped = self._apply_rows(f, n)
        restore_gil(released)
        if stopped == NOT_FINITE:
            raise InvalidFillError("the fills would leave a non-finite position or balance; "
                                   "nothing applied")
        if stopped < n:
            raise InvalidFillError(
                f"fill {stopped} (asset {f[stopped].asset}, size {f[stopped].size}, price "
                f"{f[stopped].price}, maker {f[stopped].maker}) is invalid; nothing applied")
        self._changed()
        return self.cross_balance - before

    cdef Py_ssize_t _apply_rows(self, const PositionFill* f, Py_ssize_t n) noexcept nogil:
        """Check each fill and apply it to the rows and the balance; `n` when all were
        applied and stayed finite, else (everything as it was) the index of the first
        invalid fill, or NOT_FINITE. Each fill is read once, checked and applied from that
        copy: without the GIL, another thread may write the caller's array meanwhile, and
        what is applied must be what was checked (an asset index above all)."""
        cdef double balance = self.cross_balance     # a local, so the loop keeps it in a register
        cdef double rates[2]
        rates[0] = self.taker_rate
        rates[1] = self.maker_rate
        cdef PositionFill fill
        cdef double* mark = self.columns.mark_px
        cdef Py_ssize_t i
        self._save()
        for i in range(n):
            # Rows are hit at random: ask for the one a few fills ahead early (a prefetch
            # never faults, so its index needs no check).
            if i + PREFETCH_AHEAD < n:
                prefetch(&self.rows[f[i + PREFETCH_AHEAD].asset])
            fill = f[i]
            if not _valid_fill(&fill, self.count):
                self._restore()
                return i
            if mark[fill.asset] != mark[fill.asset]:
                mark[fill.asset] = fill.price
            _apply_fill(&self.rows[fill.asset], fill.size, fill.price, rates[fill.maker],
                        self.dust[fill.asset], &balance)
        self.cross_balance = balance
        if self._all_finite():
            return n
        self._restore()
        return NOT_FINITE

    def mark(self, prices) -> None:
        """Set mark prices (one per asset; NaN keeps the previous mark) and recompute."""
        self._claim()
        try:
            self._mark(prices)
        finally:
            self.busy = False

    cdef int _mark(self, prices) except -1:
        cdef const double[::1] marks = _per_asset(prices, self.count, "mark prices",
                                                  MarketDataError)
        cdef PyThreadState* released = release_gil_if(self.count >= RELEASE_GIL_FROM)
        cdef bint accepted = self._mark_rows(&marks[0])
        restore_gil(released)
        cdef int32_t i
        if not accepted:
            for i in range(self.count):
                # NaN keeps the old mark; anything else must be finite and positive
                if marks[i] == marks[i] and not 0 < marks[i] < INFINITY:
                    raise MarketDataError(
                        f"mark price of asset {i} must be positive, got {marks[i]}")
            raise MarketDataError("these marks would make a position's value or uPnL "
                                  "non-finite; nothing changed")
        self.dirty = False
        self.changes += 1
        return 0

    cdef bint _mark_rows(self, const double* marks) noexcept nogil:
        """Take new marks and derive again; whether every mark is positive and finite and
        every derived number stayed finite (if not, the old marks are back). Only the
        marks are inputs here, and the recompute checks them and every number they reach
        in its one pass over the rows; to undo, put the old marks back and derive again."""
        if self._recompute(marks, self.saved_marks):
            return True
        memcpy(self.columns.mark_px, self.saved_marks, self.count * sizeof(double))
        self._recompute(NULL, NULL)
        return False

    def apply_funding(self, rates, oracle_prices) -> float:
        """Pay one funding interval: size x oracle x rate per asset; the total paid.

        A positive rate makes longs pay shorts. Cross positions pay from the
        balance, isolated ones from their margin. NaN rates skip an asset.
        A payment that would leave a non-finite number raises, paying nothing.
        """
        self._claim()
        try:
            return self._apply_funding(rates, oracle_prices)
        finally:
            self.busy = False

    cdef double _apply_funding(self, rates, oracle_prices) except? -1:
        cdef const double[::1] rate = _per_asset(rates, self.count, "funding rates",
                                                 InvalidFundingError)
        cdef const double[::1] oracle = _per_asset(oracle_prices, self.count, "oracle prices",
                                                   InvalidFundingError)
        cdef int32_t i
        for i in range(self.count):
            if rate[i] == rate[i] and self.rows[i].size != 0:
                if not isfinite(rate[i]):
                    raise InvalidFundingError(
                        f"funding rate of asset {i} must be finite, got {rate[i]}")
                if not (isfinite(oracle[i]) and oracle[i] > 0):
                    raise InvalidFundingError(
                        f"oracle price of asset {i} must be positive, got {oracle[i]}")
        cdef double paid = 0.0
        cdef PyThreadState* released = release_gil_if(self.count >= RELEASE_GIL_FROM)
        cdef bint finite = self._pay_funding(&rate[0], &oracle[0], &paid)
        restore_gil(released)
        if not finite:
            raise InvalidFundingError("this funding would leave a non-finite payment, "
                                      "position or balance; nothing paid")
        self._changed()
        return paid

    cdef bint _pay_funding(self, const double* rate, const double* oracle,
                           double* paid) noexcept nogil:
        """Pay checked rates into `paid`; whether all stayed finite (if not, nothing paid)."""
        cdef PositionCore* p
        cdef double payment
        cdef int32_t i
        self._save()
        for i in range(self.count):
            p = &self.rows[i]
            if rate[i] != rate[i] or p.size == 0:
                continue
            payment = p.size * oracle[i] * rate[i]
            p.funding += payment
            if p.isolated:
                p.margin -= payment
            else:
                self.cross_balance -= payment
            paid[0] += payment
        if isfinite(paid[0]) and self._all_finite():
            return True
        self._restore()
        return False

    def set_leverage(self, Py_ssize_t asset, leverage, *, isolated=None) -> None:
        """Set an asset's leverage (an integer from 1 to its maximum) and, when flat, its mode."""
        self._claim()
        try:
            self._set_leverage(asset, leverage, isolated)
        finally:
            self.busy = False

    cdef int _set_leverage(self, Py_ssize_t asset, leverage, isolated) except -1:
        self._check_asset(asset)
        cdef PositionCore* p = &self.rows[asset]
        if isinstance(leverage, bool) or not isinstance(leverage, (int, float)) \
                or not isfinite(leverage) or leverage != int(leverage) \
                or not 1 <= leverage <= self.max_leverage[asset]:
            raise MarginError(f"leverage of asset {asset} must be an integer from 1 to "
                              f"{self.max_leverage[asset]:g}, got {leverage!r}")
        if isolated is not None and bool(isolated) != p.isolated and p.size != 0:
            raise MarginError(f"asset {asset} has an open position: close it to change its "
                              "margin mode")
        p.leverage = float(leverage)
        if isolated is not None:
            p.isolated = bool(isolated)
        self._changed()
        return 0

    def set_position(self, Py_ssize_t asset, double size, double entry_px, *, leverage,
                     bint isolated, double margin=0.0) -> None:
        """Overwrite an asset's position (recovery from the exchange's state)."""
        self._claim()
        try:
            self._set_position(asset, size, entry_px, leverage, isolated, margin)
        finally:
            self.busy = False

    cdef int _set_position(self, Py_ssize_t asset, double size, double entry_px, leverage,
                           bint isolated, double margin) except -1:
        self._check_asset(asset)
        if not isfinite(size):
            raise MarginError(f"size must be finite, got {size}")
        if size != 0 and not (isfinite(entry_px) and entry_px > 0):
            raise MarginError(f"entry price must be positive, got {entry_px}")
        _check_money(margin, "margin")
        if margin < 0 or (margin and not (isolated and size)):
            raise MarginError(f"margin must be >= 0 and only on open isolated positions, "
                              f"got {margin}")
        cdef PositionCore* p = &self.rows[asset]
        cdef PositionCore saved = p[0]
        cdef double mark = self.columns.mark_px[asset]
        p.size = 0.0
        try:
            self._set_leverage(asset, leverage, isolated)
        except MarginError:
            p[0] = saved
            raise
        p.size = size
        p.entry_px = entry_px if size != 0 else 0.0
        p.margin = margin
        if mark != mark and size != 0:
            mark = entry_px
        if not _row_finite(p, mark):
            p[0] = saved
            raise MarginError(f"a position of {size} at {entry_px} (mark {mark}) would "
                              f"have a non-finite value; nothing changed")
        self.columns.mark_px[asset] = mark
        self._changed()
        return 0

    def set_mark(self, Py_ssize_t asset, double price) -> None:
        """Move one asset's mark price; the derived values follow when next read."""
        self._claim()
        try:
            self._check_mark(asset, price)
            self._set_mark(asset, price)
        finally:
            self.busy = False

    cdef int _check_mark(self, Py_ssize_t asset, double price) except -1:
        """Raise unless `price` may be `asset`'s mark (nothing changes either way)."""
        self._check_asset(asset)
        if not (isfinite(price) and price > 0):
            raise MarketDataError(f"mark price must be positive, got {price}")
        if not _row_finite(&self.rows[asset], price):
            raise MarketDataError(f"a mark of {price} would make asset {asset}'s value or "
                                  f"uPnL non-finite; mark unchanged")
        return 0

    cdef void _set_mark(self, Py_ssize_t asset, double price) noexcept:
        """Move a mark ``_check_mark`` accepted (under the caller's claim)."""
        self.columns.mark_px[asset] = price
        self._changed()

    def deposit(self, double amount) -> None:
        """Add USDC to the cross balance."""
        self._claim()
        try:
            if not (isfinite(amount) and amount > 0):
                raise MarginError(f"deposit must be positive, got {amount}")
            if not isfinite(self.cross_balance + amount):
                raise MarginError(f"a deposit of {amount} would overflow the balance")
            self.cross_balance += amount
            self._changed()
        finally:
            self.busy = False

    def set_balance(self, double amount) -> None:
        """Make the cross balance `amount`, with no margin rule: for reconciliation, when the
        exchange's balance is the truth (fees, funding or a transfer this book missed)."""
        self._claim()
        try:
            if not isfinite(amount):
                raise MarginError(f"a balance must be finite, got {amount}")
            self.cross_balance = amount
            self._changed()
        finally:
            self.busy = False

    def withdraw(self, double amount) -> None:
        """Take USDC from the cross balance, keeping the transfer margin requirement."""
        self._claim()
        try:
            if not (isfinite(amount) and amount > 0):
                raise MarginError(f"withdrawal must be positive, got {amount}")
            withdrawable = self._withdrawable()
            if amount > withdrawable:
                raise MarginError(f"cannot withdraw {amount}: only {withdrawable} is withdrawable")
            if not isfinite(self.cross_balance - amount):
                raise MarginError(f"a withdrawal of {amount} would overflow the balance")
            self.cross_balance -= amount
            self._changed()
        finally:
            self.busy = False

    def update_isolated_margin(self, Py_ssize_t asset, double amount) -> None:
        """Move `amount` USDC into (or, negative, out of) an isolated position's margin."""
        self._claim()
        try:
            self._update_isolated_margin(asset, amount)
        finally:
            self.busy = False

    cdef int _update_isolated_margin(self, Py_ssize_t asset, double amount) except -1:
        self._check_asset(asset)
        self._refresh()
        cdef PositionCore* p = &self.rows[asset]
        if not p.isolated or p.size == 0:
            raise MarginError(f"asset {asset} has no open isolated position")
        if not (isfinite(amount) and amount != 0):
            raise MarginError(f"margin change must be finite and non-zero, got {amount}")
        withdrawable = self._withdrawable()
        if amount > withdrawable:
            raise MarginError(f"cannot add {amount}: only {withdrawable} is free")
        if amount < 0 and p.margin + amount + self.columns.unrealized_pnl[asset] < max(
                self.columns.initial_margin[asset],
                TRANSFER_VALUE_FRACTION * self.columns.position_value[asset]):
            raise MarginError(f"cannot remove {-amount}: the position must keep "
                              f"max(initial margin, 10% of its value)")
        if not (isfinite(p.margin + amount) and isfinite(self.cross_balance - amount)):
            raise MarginError(f"moving {amount} would overflow the margin or the balance")
        p.margin += amount
        self.cross_balance -= amount
        self._changed()
        return 0

    def set_fee_rates(self, double taker_rate, double maker_rate) -> None:
        self._claim()
        try:
            _check_rates(taker_rate, maker_rate)
            self.taker_rate = taker_rate
            self.maker_rate = maker_rate
        finally:
            self.busy = False

    # ---------------------------------------------------------- recompute

    cdef inline void _changed(self) noexcept nogil:
        self.dirty = True
        self.changes += 1

    cdef int _refresh(self) except -1:
        cdef PyThreadState* released
        if self.dirty:
            released = release_gil_if(self.count >= RELEASE_GIL_FROM)
            self._recompute(NULL, NULL)
            restore_gil(released)
            self.dirty = False
        return 0

    cdef bint _recompute(self, const double* marks, double* old_marks) noexcept nogil:
        """uPnL, value and margins per position, the account totals, then liquidation prices;
        whether every mark is positive and finite and every derived number is finite
        (liquidation prices may be NaN).

        `marks` (or NULL) are new mark prices, NaN to keep one, and `old_marks` (or
        NULL) receives the marks they replace: taking both here saves passes over
        the rows. The kernel is _recompute.h's.
        """
        return recompute_rows(self.rows, self.count, self.padded, &self.columns, marks,
                              old_marks, &self.margin_tables, self.cross_balance,
                              self.legacy_liquidation, &self.totals)

    cdef void _state_of(self, int32_t asset, PositionState* out) noexcept nogil:
        """An asset's row and what the last recompute derived from it."""
        out.core = self.rows[asset]
        out.mark_px = self.columns.mark_px[asset]
        out.unrealized_pnl = self.columns.unrealized_pnl[asset]
        out.position_value = self.columns.position_value[asset]
        out.initial_margin = self.columns.initial_margin[asset]
        out.maintenance_margin = self.columns.maintenance_margin[asset]

    cdef object _records(self, Py_ssize_t start, Py_ssize_t stop):
        """Rows start..stop as POSITION_DTYPE records, as the last recompute left them."""
        records = np.zeros(stop - start, dtype=POSITION_DTYPE)
        cdef Position* out = <Position*> data_of(records)
        cdef const PositionCore* p
        cdef Py_ssize_t i
        for i in range(start, stop):
            p = &self.rows[i]
            out.size = p.size
            out.entry_px = p.entry_px
            out.leverage = p.leverage
            out.margin = p.margin
            out.realized_pnl = p.realized_pnl
            out.fees = p.fees
            out.funding = p.funding
            out.isolated = p.isolated
            out.mark_px = self.columns.mark_px[i]
            out.unrealized_pnl = self.columns.unrealized_pnl[i]
            out.position_value = self.columns.position_value[i]
            out.initial_margin = self.columns.initial_margin[i]
            out.maintenance_margin = self.columns.maintenance_margin[i]
            out.liquidation_px = self.columns.liquidation_px[i]
            out += 1
        return records

    # ------------------------------------------------------------ pickling

    def __reduce__(self):
        """Pickle as the settings and the stored numbers of every row (derived ones are
        computed again on the first read), so a book can be saved and sent."""
        self._claim()
        try:
            rows = self._records(0, self.count).tobytes()
            return (_position_book_from_state,
                    (self.margin_tiers, self.taker_rate, self.maker_rate, self.default_leverage,
                     self.legacy_liquidation, self.cross_balance, self.changes, rows,
                     tuple((2 * self.dust_array).tolist())))
        finally:
            self.busy = False

    cdef Py_ssize_t _first_unsettable_row(self) noexcept nogil:
        """The first row whose settings no call could have made (set_leverage keeps a whole
        leverage in 1..the tiers' maximum; a mode is cross (0) or isolated (1); prices are
        positive), or -1: a NaN or zero leverage would make its margins NaN or inf, and an
        isolated flag of 7 would weigh the row 7 and -6 in the totals."""
        cdef int32_t i
        cdef const PositionCore* p
        for i in range(self.count):
            p = &self.rows[i]
            if not (1.0 <= p.leverage <= self.max_leverage[i]) or p.leverage != floor(p.leverage) \
                    or p.isolated > 1 or p.entry_px < 0:
                return i
        return -1

    cdef int _load_rows(self, const unsigned char[::1] rows) except -1:
        """Take `rows` (a pickled book's) as this book's own, all or nothing."""
        cdef Py_ssize_t bad, i
        cdef Position record
        cdef PositionCore* p
        if rows.shape[0] != self.count * <Py_ssize_t> sizeof(Position):
            raise ValueError(f"pickled rows hold {rows.shape[0]} bytes; this book's "
                             f"{self.count} assets need {self.count * sizeof(Position)}")
        self._claim()
        try:
            self._save()
            for i in range(self.count):     # the stored numbers and mark of each record
                memcpy(&record, &rows[i * sizeof(Position)], sizeof(Position))
                p = &self.rows[i]
                p.size, p.entry_px, p.leverage = record.size, record.entry_px, record.leverage
                p.margin, p.realized_pnl = record.margin, record.realized_pnl
                p.fees, p.funding, p.isolated = record.fees, record.funding, record.isolated
                self.columns.mark_px[i] = record.mark_px
            if not self._all_finite():
                self._restore()
                raise ValueError("pickled rows hold a non-finite number")
            bad = self._first_unsettable_row()
            if bad >= 0:
                self._restore()
                raise ValueError(f"pickled row {bad} holds what no book can: a leverage outside "
                                 f"1..{self.max_leverage[bad]:g} or not whole, a margin mode "
                                 f"other than 0 or 1, or a negative entry price")
            self._changed()
        finally:
            self.busy = False
        return 0

    # ------------------------------------------------------------ queries

    @property
    def balance(self) -> float:
        """Cross collateral in USDC: deposits and realized PnL less fees, funding, isolated
        margin."""
        if self.busy:
            self._refuse()
        return self.cross_balance

    @property
    def version(self) -> int:
        """Bumped by every change: fills, marks, funding, leverage, transfers."""
        if self.busy:
            self._refuse()
        return self.changes

    @property
    def positions(self):
        """A read-only copy of the rows (POSITION_DTYPE), derived fields up to date.

        A copy, not a view: the book's own memory is touched only by a caller
        holding it, and the copy stays as it was when read.
        """
        self._claim()
        try:
            self._refresh()
            rows = self._records(0, self.count)
        finally:
            self.busy = False
        rows.flags.writeable = False
        return rows

    def row(self, Py_ssize_t asset):
        """A copy of one asset's row (a POSITION_DTYPE record), derived fields up to date."""
        self._claim()
        try:
            self._check_asset(asset)
            self._refresh()
            return self._records(asset, asset + 1)[0]
        finally:
            self.busy = False

    def size_of(self, Py_ssize_t asset) -> float:
        """One asset's signed size, without the recompute and copy of `row`: what an
        exchange reads for every order it judges."""
        self._claim()
        try:
            self._check_asset(asset)
            return self.rows[asset].size
        finally:
            self.busy = False

    def leverage_of(self, Py_ssize_t asset) -> int:
        """One asset's leverage setting, without the recompute and copy of `row`."""
        self._claim()
        try:
            self._check_asset(asset)
            return <long> self.rows[asset].leverage
        finally:
            self.busy = False

    @property
    def asset_count(self) -> int:
        return self.count           # fixed once __init__ has run

    def max_leverage_of(self, Py_ssize_t asset) -> int:
        self._check_asset(asset)    # the tiers never change once __init__ has run
        return int(self.max_leverage[asset])

    def maintenance_margin_for(self, Py_ssize_t asset, double notional) -> float:
        """Maintenance margin of a position of `notional` USDC under the asset's tiers."""
        self._check_asset(asset)
        if not (isfinite(notional) and notional >= 0):
            raise MarginError(f"notional must be finite and >= 0, got {notional}")
        return maintenance_margin(&self.tiers, asset, notional)

    cdef double _cross_account_value(self) except? -1:
        self._refresh()
        return self.cross_balance + self.totals.cross_unrealized_pnl

    cdef double _account_value(self) except? -1:
        return self._cross_account_value() + self.totals.isolated_equity

    cdef double _transfer_margin_required(self) except? -1:
        self._refresh()
        return max(self.totals.cross_initial_margin,
                   TRANSFER_VALUE_FRACTION * self.totals.cross_position_value)

    cdef double _withdrawable(self) except? -1:
        return max(0.0, self._cross_account_value() - self._transfer_margin_required())

    @property
    def cross_account_value(self) -> float:
        """Balance plus the cross positions' uPnL."""
        self._claim()
        try:
            return self._cross_account_value()
        finally:
            self.busy = False

    @property
    def account_value(self) -> float:
        """Cross account value plus every isolated position's margin and uPnL."""
        self._claim()
        try:
            return self._account_value()
        finally:
            self.busy = False

    @property
    def total_position_value(self) -> float:
        self._claim()
        try:
            self._refresh()
            return self.totals.cross_position_value + self.totals.isolated_position_value
        finally:
            self.busy = False

    @property
    def cross_position_value(self) -> float:
        self._claim()
        try:
            self._refresh()
            return self.totals.cross_position_value
        finally:
            self.busy = False

    @property
    def cross_initial_margin(self) -> float:
        self._claim()
        try:
            self._refresh()
            return self.totals.cross_initial_margin
        finally:
            self.busy = False

    @property
    def cross_maintenance_margin(self) -> float:
        self._claim()
        try:
            self._refresh()
            return self.totals.cross_maintenance_margin
        finally:
            self.busy = False

    @property
    def transfer_margin_required(self) -> float:
        """What withdrawals must leave: max(cross initial margin, 10% of cross position value)."""
        self._claim()
        try:
            return self._transfer_margin_required()
        finally:
            self.busy = False

    @property
    def withdrawable(self) -> float:
        self._claim()
        try:
            return self._withdrawable()
        finally:
            self.busy = False

    @property
    def cross_liquidatable(self) -> bool:
        """True when the cross account's equity is below its maintenance margin."""
        self._claim()
        try:
            self._refresh()
            return self.totals.cross_position_value > 0 and self.cross_balance \
                + self.totals.cross_unrealized_pnl < self.totals.cross_maintenance_margin
        finally:
            self.busy = False


# ----------------------------------------------------------------- fees

def fill_fee(double size, double price, bint maker, double taker_rate,
             double maker_rate) -> float:
    """The fee of one fill in USDC, as the account pays it: |size| x price x its rate.

    `maker` picks the maker rate, else the taker rate; a negative rate is a rebate.
    """
    return fill_fee_at_rate(size, price, maker_rate if maker else taker_rate)


def fill_fees(sizes, prices, maker, double taker_rate, double maker_rate):
    """:func:`fill_fee` of each fill, as a float64 array, in one compiled loop.

    `sizes` and `prices` hold one number per fill; `maker` one flag per fill,
    or one for all.
    """
    cdef const double[::1] size = np.ascontiguousarray(sizes, dtype=np.float64)
    cdef const double[::1] price = np.ascontiguousarray(prices, dtype=np.float64)
    cdef Py_ssize_t n = size.shape[0]
    if price.shape[0] != n:
        raise ValueError(f"sizes and prices must have one value per fill, got {n} sizes and "
                         f"{price.shape[0]} prices")
    cdef const uint8_t[::1] is_maker = np.ascontiguousarray(
        np.broadcast_to(np.asarray(maker, dtype=np.bool_), (n,))).view(np.uint8)
    out = np.empty(n, dtype=np.float64)
    cdef double[::1] fee = out
    cdef double rates[2]
    rates[0] = taker_rate
    rates[1] = maker_rate
    cdef PyThreadState* released = release_gil_if(n >= RELEASE_GIL_FROM)
    _fees(&size[0] if n else NULL, &price[0] if n else NULL, &is_maker[0] if n else NULL,
          rates, n, &fee[0] if n else NULL)
    restore_gil(released)
    return out


cdef void _fees(const double* size, const double* price, const uint8_t* is_maker,
                const double* rates, Py_ssize_t n, double* fee) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        fee[i] = fill_fee_at_rate(size[i], price[i], rates[is_maker[i]])


# ------------------------------------------------------------- a book's fills

def account_fills(fills, assets, row_of_asset, lots, ticks, long long owner,
                  double taker_rate, double maker_rate):
    """The fills of `owner` on a book's fill tape (FILL_DTYPE), as the account's
    POSITION_FILL_DTYPE rows, in one compiled loop: what a venue reports of a batch it
    matched. Returns ``(fills, fees, oids, done_oids)``.

    `assets` is the batch's asset id per event (a fill's ``event_index`` picks it);
    `row_of_asset` the table row per asset id (negative: not traded); `lots` and
    `ticks` the coin size of a lot and the price of a tick per row. A fill's size is
    signed for the account (+ buys; as the maker it is on the other side of the
    taker), its fee is :func:`fill_fee`'s, and its oid the account's order; a fill
    where the account is taker and maker counts as the taker's. `done_oids` are the
    account's resting orders that a fill completed.
    """
    tape = as_records(fills, _FILL_DTYPE, "fills", "obelisk.FILL_DTYPE")
    cdef const uint32_t[::1] asset_of = np.ascontiguousarray(assets, dtype=np.uint32)
    cdef const int32_t[::1] row_of = np.ascontiguousarray(row_of_asset, dtype=np.int32)
    cdef const double[::1] lot = np.ascontiguousarray(lots, dtype=np.float64)
    cdef const double[::1] tick = np.ascontiguousarray(ticks, dtype=np.float64)
    cdef Py_ssize_t n = len(tape)
    cdef const Fill* f = <const Fill*> const_data_of(tape) if n else NULL
    if lot.shape[0] != tick.shape[0]:
        raise ValueError(f"lots and ticks must have one value per row, got {lot.shape[0]} "
                         f"and {tick.shape[0]}")
    out = np.zeros(n, dtype=POSITION_FILL_DTYPE)
    fees = np.empty(n, dtype=np.float64)
    oids = np.empty(n, dtype=np.int64)
    done_oids = np.empty(n, dtype=np.int64)
    if n == 0:
        return out, fees, oids, done_oids
    cdef _AccountFills job
    job.fills, job.n, job.owner = f, n, owner
    job.asset_of, job.asset_count = &asset_of[0] if asset_of.shape[0] else NULL, asset_of.shape[0]
    job.row_of, job.row_count = &row_of[0] if row_of.shape[0] else NULL, row_of.shape[0]
    job.lot, job.tick = &lot[0] if lot.shape[0] else NULL, &tick[0] if tick.shape[0] else NULL
    job.row_limit = lot.shape[0]
    job.rates[0], job.rates[1] = taker_rate, maker_rate
    job.rows, job.fee = <PositionFill*> data_of(out), <double*> data_of(fees)
    job.oid, job.completed = <int64_t*> data_of(oids), <int64_t*> data_of(done_oids)
    cdef PyThreadState* released = release_gil_if(n >= RELEASE_GIL_FROM)
    cdef Py_ssize_t bad = _account_fill_rows(&job)
    restore_gil(released)
    cdef Py_ssize_t k = job.kept, done = job.done
    if bad >= 0:
        raise UnknownAssetError(f"fill {bad} (event {f[bad].event_index}) is of an asset "
                                "that has no row here")
    return out[:k], fees[:k], oids[:k], done_oids[:done]


def self_trade_cancels(order_events, long long owner):
    """The ids of `owner`'s orders that self-trade prevention cancelled, from a book's
    order-event tape (ORDER_EVENT_DTYPE), in one pass where numpy took six calls: the
    resting orders a venue reports removed."""
    tape = as_records(order_events, _ORDER_EVENT_DTYPE, "order_events",
                      "obelisk.ORDER_EVENT_DTYPE")
    cdef Py_ssize_t n = len(tape), i, k = 0
    cdef const OrderEvent* e = <const OrderEvent*> const_data_of(tape) if n else NULL
    for i in range(n):
        k += _cancelled_by_self_trade(&e[i], owner)
    out = np.empty(k, dtype=np.int64)      # exactly: rare, so a tape's worth is not held
    cdef int64_t* oid = <int64_t*> data_of(out) if k else NULL
    k = 0
    for i in range(n):
        if _cancelled_by_self_trade(&e[i], owner):
            oid[k] = e[i].oid
            k += 1
    return out


cdef inline bint _cancelled_by_self_trade(const OrderEvent* event, long long owner) noexcept:
    return event.kind == OEV_CANCELLED and event.reason == REASON_SELF_TRADE \
        and event.owner == owner


cdef struct _AccountFills:
    # account_fills' inputs and outputs, for its loop (run without the GIL when large)
    const Fill* fills
    Py_ssize_t n
    long long owner
    const uint32_t* asset_of
    int64_t asset_count
    const int32_t* row_of
    int64_t row_count
    const double* lot
    const double* tick
    int64_t row_limit
    double rates[2]
    PositionFill* rows
    double* fee
    int64_t* oid
    int64_t* completed
    Py_ssize_t kept
    Py_ssize_t done


cdef Py_ssize_t _account_fill_rows(_AccountFills* job) noexcept nogil:
    """account_fills' loop; the first fill of an asset without a row, or -1."""
    cdef const Fill* f = job.fills
    cdef Py_ssize_t i, k = 0, done = 0
    cdef int64_t index
    cdef int32_t row
    cdef bint taker, maker
    cdef double size
    for i in range(job.n):
        taker = f[i].taker_owner == job.owner
        maker = f[i].maker_owner == job.owner and not taker
        if not (taker or maker):
            continue
        index = f[i].event_index
        row = -1
        if 0 <= index < job.asset_count and job.asset_of[index] < job.row_count:
            row = job.row_of[job.asset_of[index]]
        if row < 0 or row >= job.row_limit:
            job.kept, job.done = k, done
            return i
        # a buy taker buys; its maker sells
        size = f[i].qty * job.lot[row]
        job.rows[k].asset = row
        job.rows[k].size = size if (f[i].taker_side == SIDE_BUY) != maker else -size
        job.rows[k].price = f[i].price * job.tick[row]
        job.rows[k].maker = maker
        job.fee[k] = fill_fee_at_rate(size, job.rows[k].price, job.rates[maker])
        job.oid[k] = f[i].maker_oid if maker else f[i].taker_oid
        if maker and f[i].maker_done:
            job.completed[done] = f[i].maker_oid
            done += 1
        k += 1
    job.kept, job.done = k, done
    return -1


# ------------------------------------------------------------- funding math

def _position_book_from_state(margin_tiers, double taker_rate, double maker_rate,
                              int default_leverage, bint legacy_liquidation, double balance,
                              unsigned long long changes, bytes rows, lots=None):
    """A PositionBook from what :meth:`PositionBook.__reduce__` kept."""
    cdef PositionBook book = PositionBook(
        margin_tiers, balance=balance, taker_rate=taker_rate, maker_rate=maker_rate,
        default_leverage=default_leverage, legacy_liquidation=legacy_liquidation, lots=lots)
    book._load_rows(rows)
    book.changes = changes
    return book


def funding_premium(double impact_bid, double impact_ask, double oracle) -> float:
    """One premium sample: (max(impact bid - oracle, 0) - max(oracle - impact ask, 0)) / oracle."""
    if not (isfinite(impact_bid) and isfinite(impact_ask) and isfinite(oracle) and oracle > 0):
        raise InvalidFundingError("impact prices must be finite and the oracle price positive, "
                                  f"got {impact_bid}, {impact_ask}, {oracle}")
    return (max(impact_bid - oracle, 0.0) - max(oracle - impact_ask, 0.0)) / oracle


def funding_rate(double average_premium, double interest_rate=0.0001,
                 double clamp=0.0005) -> float:
    """The 8-hour rate: premium + clamp(interest - premium, -clamp, +clamp)."""
    if not (isfinite(average_premium) and isfinite(interest_rate) and isfinite(clamp)):
        raise InvalidFundingError("funding inputs must be finite")
    return average_premium + min(max(interest_rate - average_premium, -clamp), clamp)


def hourly_funding_rate(double average_premium, double interest_rate=0.0001,
                        double clamp=0.0005, double cap=0.04) -> float:
    """What one hour pays: an eighth of the 8-hour rate, capped at +-4 %."""
    return min(max(funding_rate(average_premium, interest_rate, clamp) / 8.0, -cap), cap)


# ---------------------------------------------------------------- helpers

def _checked_tiers(asset, tiers):
    if not tiers:
        raise MarginError(f"asset {asset} has no margin tiers")
    previous = -1.0
    for bound, leverage in tiers:
        if not isfinite(bound) or bound < 0 or bound <= previous \
                or (previous < 0 and bound != 0):
            raise MarginError(f"asset {asset}: tier lower bounds must start at 0 and ascend, "
                              f"got {[b for b, _ in tiers]}")
        if isinstance(leverage, bool) or leverage != int(leverage) or leverage < 1:
            raise MarginError(f"asset {asset}: max leverage must be an integer >= 1, "
                              f"got {leverage!r}")
        previous = bound
        yield float(bound), float(leverage)


def _check_money(double amount, what):
    if not isfinite(amount):
        raise MarginError(f"{what} must be finite, got {amount}")


def _check_rates(double taker, double maker):
    if not (isfinite(taker) and isfinite(maker) and 0 <= taker < 0.01 and -0.01 < maker < 0.01):
        raise InvalidFeeRateError(f"fee rates must be fractions below 1 % (taker >= 0), got "
                                  f"taker {taker}, maker {maker}")


cdef object _aligned_zeros(Py_ssize_t size):
    """`size` zero bytes starting on a 64-byte boundary (a cache line), as a numpy array."""
    buffer = np.zeros(size + 64, dtype=np.uint8)
    cdef Py_ssize_t skip = (64 - <size_t> data_of(buffer) % 64) % 64
    return buffer[skip:skip + size]


def _per_asset(values, Py_ssize_t count, what, error):
    array = np.ascontiguousarray(values, dtype=np.float64)
    if array.shape != (count,):
        raise error(f"{what} must have one value per asset ({count}), got shape {array.shape}")
    return array
