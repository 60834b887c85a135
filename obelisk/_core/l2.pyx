"""L2 market-data book: the exchange's aggregated depth, mirrored from snapshots and deltas.

Each side is a sorted array with the best level last, so the updates a feed
sends most (near the touch) move few entries, and reading the top is O(1).
Prices are instrument ticks and sizes lots; decimal strings are parsed
exactly, without floats.
"""

from enum import IntEnum

import numpy as np

cimport cython
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdint cimport int32_t, int64_t, uint8_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcmp, memcpy

from obelisk._core._hl_l2frame cimport FRAME_OK, L2Frame, parse_decimal, scan_l2book
from obelisk._core._sorted cimport lower_bound_near_end
from obelisk._core._types cimport MAX_PRICE, MAX_QTY, SIDE_BUY, SIDE_SELL

from obelisk._core._records import as_records, struct_dtype
from obelisk._core.errors import CrossedBookError, MarketDataError


class CrossedPolicy(IntEnum):
    """What an update that leaves the best bid at or above the best ask does."""
    RAISE = 0         # refuse the update (the book is unchanged) and raise
    DROP_STALE = 1    # keep it; drop the other side's levels it crosses (they are stale)
    INVALIDATE = 2    # keep it; mark the book invalid until the next snapshot


cdef enum:
    APPLIED = 0
    STALE = 1        # older than what the book already shows: ignored
    GAP = 2          # applied, but a sequence number was skipped
    CROSSED = 3      # refused under CrossedPolicy.RAISE
    NO_MEMORY = -1

cdef enum:
    POLICY_RAISE = 0
    POLICY_DROP_STALE = 1
    POLICY_INVALIDATE = 2

cdef L2Delta _delta
cdef L2Top _top_record

L2_DELTA_DTYPE = struct_dtype(<L2Delta[:1]> &_delta)
L2_TOP_DTYPE = struct_dtype(<L2Top[:1]> &_top_record)


# ------------------------------------------------------------ sorted sides

cdef inline int64_t _key(uint8_t side, int64_t price) noexcept nogil:
    return price if side == SIDE_BUY else -price


cdef inline int32_t _lower_bound(const L2Side* s, int64_t key) noexcept nogil:
    return lower_bound_near_end(s.keys, s.count, key)


cdef inline void _insert_at(L2Side* s, int32_t pos, int64_t key, int64_t size) noexcept nogil:
    # Feeds touch levels near the best, which is last: a short loop beats a memmove call.
    cdef int32_t i = s.count
    while i > pos:
        s.keys[i] = s.keys[i - 1]
        s.sizes[i] = s.sizes[i - 1]
        i -= 1
    s.keys[pos] = key
    s.sizes[pos] = size
    s.count += 1


cdef inline void _remove_at(L2Side* s, int32_t pos) noexcept nogil:
    cdef int32_t i
    for i in range(pos, s.count - 1):
        s.keys[i] = s.keys[i + 1]
        s.sizes[i] = s.sizes[i + 1]
    s.count -= 1


cdef inline int64_t _size_at(const L2Side* s, int64_t key) noexcept nogil:
    cdef int32_t pos = _lower_bound(s, key)
    return s.sizes[pos] if pos < s.count and s.keys[pos] == key else 0


cdef int64_t _parse_field(object text, int decimals, int64_t limit, str what) except -1:
    cdef Py_ssize_t length
    cdef const char* data
    cdef int64_t value
    cdef int rc
    if not isinstance(text, str):
        raise MarketDataError(f"{what} must be a decimal string, got {type(text).__name__}")
    data = PyUnicode_AsUTF8AndSize(text, &length)
    rc = parse_decimal(data, length, decimals, limit, &value)
    if rc == -2:
        raise MarketDataError(f"{what} {text!r} has more than {decimals} decimals")
    if rc == -3:
        raise MarketDataError(f"{what} {text!r} is out of range")
    if rc != 0:
        raise MarketDataError(f"{what} {text!r} is not a plain unsigned decimal")
    return value


cdef int _sort_side(int64_t* keys, int64_t* sizes, int32_t n) noexcept nogil:
    """Sort a side by key; -1 when two levels share a price.

    Feeds send each side best first, which is ascending keys for bids and
    descending for asks (keys are negated prices): both are linear here, and
    anything else gets an insertion sort.
    """
    cdef int32_t i, j
    cdef int64_t key, size
    cdef bint descending = True
    for i in range(1, n):
        if keys[i] > keys[i - 1]:
            descending = False
            break
    if descending:
        i = 0
        j = n - 1
        while i < j:
            keys[i], keys[j] = keys[j], keys[i]
            sizes[i], sizes[j] = sizes[j], sizes[i]
            i += 1
            j -= 1
    for i in range(1, n):
        key = keys[i]
        size = sizes[i]
        j = i - 1
        while j >= 0 and keys[j] > key:
            keys[j + 1] = keys[j]
            sizes[j + 1] = sizes[j]
            j -= 1
        keys[j + 1] = key
        sizes[j + 1] = size
    for i in range(1, n):
        if keys[i] == keys[i - 1]:
            return -1
    return 0


cdef int32_t _diff_side(const L2Side* old, const int64_t* keys, const int64_t* sizes, int32_t n,
                        uint8_t side, L2Delta* out) noexcept nogil:
    """The level deltas that turn `old` into (keys, sizes): a merge walk of both."""
    cdef int32_t i = 0
    cdef int32_t j = 0
    cdef int32_t written = 0
    while i < old.count or j < n:
        if j >= n or (i < old.count and old.keys[i] < keys[j]):
            out[written].price = old.keys[i] if side == SIDE_BUY else -old.keys[i]
            out[written].size = 0
            i += 1
        elif i >= old.count or keys[j] < old.keys[i]:
            out[written].price = keys[j] if side == SIDE_BUY else -keys[j]
            out[written].size = sizes[j]
            j += 1
        else:
            if old.sizes[i] == sizes[j]:
                i += 1
                j += 1
                continue
            out[written].price = keys[j] if side == SIDE_BUY else -keys[j]
            out[written].size = sizes[j]
            i += 1
            j += 1
        out[written].side = side
        out[written].seq = 0
        out[written].time = 0
        written += 1
    return written


@cython.final
cdef class L2Book:
    """Aggregated depth of one instrument, in its ticks and lots.

    Parameters
    ----------
    instrument : Instrument
        Supplies ``price_decimals`` and ``sz_decimals`` for parsing decimal strings.
    crossed_policy : CrossedPolicy
        What an update that crosses the book does.
    on_gap : callable(expected_seq, got_seq), optional
        Called when a sequenced delta skips numbers; the book is then invalid
        until the next snapshot.
    checksum : callable(book) -> bool, optional
        Called after each snapshot and per-call delta; False marks the book invalid.
    """

    def __cinit__(self):
        cdef int side
        for side in range(2):
            self.sides[side].keys = NULL
            self.sides[side].sizes = NULL
            self.sides[side].count = 0
            self.sides[side].capacity = 0
        self.gap_log = NULL
        self.gap_log_count = 0
        self.gap_log_capacity = 0
        self.valid = False
        self.busy = False

    def __init__(self, instrument, *, crossed_policy: int = POLICY_RAISE, on_gap=None,
                 checksum=None) -> None:
        if crossed_policy not in (POLICY_RAISE, POLICY_DROP_STALE, POLICY_INVALIDATE):
            raise ValueError(f"crossed_policy must be a CrossedPolicy, got {crossed_policy!r}")
        self.instrument = instrument
        name = getattr(instrument, "name", None)
        self.coin_bytes = name.encode() if isinstance(name, str) else None
        self.price_decimals = instrument.price_decimals
        self.size_decimals = instrument.sz_decimals
        self.crossed_policy = crossed_policy
        self.on_gap = on_gap
        self.checksum = checksum
        self.last_seq = 0
        self.last_time = 0
        self.gaps = 0
        if self._reserve(SIDE_BUY, 64) != 0 or self._reserve(SIDE_SELL, 64) != 0:
            raise MemoryError("cannot allocate the book")

    def __dealloc__(self):
        cdef int side
        for side in range(2):
            free(self.sides[side].keys)
            free(self.sides[side].sizes)
        free(self.gap_log)

    cdef int _reserve(self, int side, int32_t extra) noexcept nogil:
        cdef L2Side* s = &self.sides[side]
        cdef int32_t capacity = s.capacity if s.capacity else 64
        cdef int64_t* grown
        if s.count + extra <= s.capacity:
            return 0
        while capacity < s.count + extra:
            capacity *= 2
        grown = <int64_t*> realloc(s.keys, <size_t> capacity * sizeof(int64_t))
        if grown == NULL:
            return -1
        s.keys = grown
        grown = <int64_t*> realloc(s.sizes, <size_t> capacity * sizeof(int64_t))
        if grown == NULL:
            return -1
        s.sizes = grown
        s.capacity = capacity
        return 0

    cdef int _check_idle(self) except -1:
        """Refuse to touch a book whose batch is running in another thread."""
        if self.busy:
            raise RuntimeError("this L2Book is applying a batch in another thread; "
                               "use one book from one thread at a time")
        return 0

    cdef int _check_side(self, int side) except -1:
        if side != SIDE_BUY and side != SIDE_SELL:
            raise MarketDataError(f"side must be Side.BUY (0) or Side.SELL (1), got {side}")
        return 0

    # ------------------------------------------------------------- updates

    cdef inline int64_t _set_level(self, uint8_t side, int64_t price, int64_t size) noexcept nogil:
        """Set (or with size 0 delete) a level; the size it had before, or -1 when out of memory."""
        cdef L2Side* s = &self.sides[side]
        cdef int64_t key = _key(side, price)
        cdef int32_t pos = _lower_bound(s, key)
        cdef int64_t previous
        if pos < s.count and s.keys[pos] == key:
            previous = s.sizes[pos]
            if size:
                s.sizes[pos] = size
            else:
                _remove_at(s, pos)
            return previous
        if size:
            if s.count == s.capacity and self._reserve(side, 1) != 0:
                return -1
            _insert_at(s, pos, key, size)
        return 0

    cdef inline bint _crossed(self) noexcept nogil:
        cdef L2Side* bids = &self.sides[SIDE_BUY]
        cdef L2Side* asks = &self.sides[SIDE_SELL]
        return bids.count > 0 and asks.count > 0 \
            and bids.keys[bids.count - 1] >= -asks.keys[asks.count - 1]

    cdef void _drop_crossed(self, uint8_t fresh_side) noexcept nogil:
        """Remove the other side's levels that the fresh side's best now crosses."""
        cdef L2Side* bids = &self.sides[SIDE_BUY]
        cdef L2Side* asks = &self.sides[SIDE_SELL]
        if fresh_side == SIDE_BUY:
            while asks.count and -asks.keys[asks.count - 1] <= bids.keys[bids.count - 1]:
                asks.count -= 1
        else:
            while bids.count and bids.keys[bids.count - 1] >= -asks.keys[asks.count - 1]:
                bids.count -= 1

    cdef inline int _apply(self, uint8_t side, int64_t price, int64_t size, int64_t seq,
                           int64_t time) noexcept nogil:
        """Apply one checked delta; a status code (APPLIED, STALE, GAP, CROSSED, NO_MEMORY)."""
        cdef int status = APPLIED
        cdef int64_t previous
        cdef int64_t* grown
        if time != 0 and time < self.last_time:
            return STALE
        previous = self._set_level(side, price, size)
        if previous < 0:
            return NO_MEMORY
        if self._crossed():
            if self.crossed_policy == POLICY_RAISE:
                self._set_level(side, price, previous)  # room is there: it held this level
                return CROSSED
            if self.crossed_policy == POLICY_DROP_STALE:
                self._drop_crossed(side)
            else:
                self.valid = False
        if seq != 0:
            if self.last_seq != 0 and seq != self.last_seq + 1:
                status = GAP
                self.valid = False
                self.gaps += 1
                if self.gap_log_count + 2 > self.gap_log_capacity:
                    grown = <int64_t*> realloc(
                        self.gap_log, <size_t> (self.gap_log_capacity * 2 + 16) * 8)
                    if grown != NULL:
                        self.gap_log = grown
                        self.gap_log_capacity = self.gap_log_capacity * 2 + 16
                if self.gap_log_count + 2 <= self.gap_log_capacity:
                    self.gap_log[self.gap_log_count] = self.last_seq + 1
                    self.gap_log[self.gap_log_count + 1] = seq
                    self.gap_log_count += 2
            self.last_seq = seq
        if time != 0:
            self.last_time = time
        return status

    cdef int _report_gaps(self) except -1:
        """Hand the gaps seen since the last report to `on_gap`, in order."""
        cdef int64_t i
        log = [(self.gap_log[i], self.gap_log[i + 1]) for i in range(0, self.gap_log_count, 2)]
        self.gap_log_count = 0
        if self.on_gap is not None:
            for expected, got in log:
                self.on_gap(expected, got)
        return 0

    def apply(self, int side, int64_t price, int64_t size, int64_t seq=0,
              int64_t time=0) -> bool:
        """Set one level's size (0 deletes it); False if `time` is older than the book.

        Raises MarketDataError for bad input and CrossedBookError when the
        update crosses the book under CrossedPolicy.RAISE; the book is then
        unchanged.
        """
        self._check_idle()
        if side != SIDE_BUY and side != SIDE_SELL:
            self._check_side(side)
        if price <= 0 or price > MAX_PRICE:
            raise MarketDataError(f"price must be 1..{MAX_PRICE} ticks, got {price}")
        if size < 0 or size > MAX_QTY:
            raise MarketDataError(f"size must be 0..{MAX_QTY} lots (0 deletes), got {size}")
        cdef int status = self._apply(<uint8_t> side, price, size, seq, time)
        if status == APPLIED and self.checksum is None:
            return True
        if status == CROSSED:
            raise CrossedBookError(
                f"{'bid' if side == SIDE_BUY else 'ask'} {size} at {price} would cross the book")
        if status == NO_MEMORY:
            raise MemoryError("cannot grow the book")
        if status == GAP:
            self._report_gaps()
        if self.checksum is not None and status != STALE and not self.checksum(self):
            self.valid = False
        return status != STALE

    def apply_batch(self, deltas, top=None) -> int:
        """Apply an L2_DELTA_DTYPE array in one loop without the GIL.

        With `top` (an L2_TOP_DTYPE array as long as `deltas`), the best bid
        and ask after each delta are written into it. Returns how many deltas
        were applied (stale ones are skipped). The whole batch is checked
        first, so bad input raises before anything changes; a crossing delta
        under CrossedPolicy.RAISE stops the batch there and raises, the
        deltas before it staying applied.
        """
        self._check_idle()
        deltas = as_records(deltas, L2_DELTA_DTYPE, "deltas", "obelisk.L2_DELTA_DTYPE")
        cdef int64_t n = len(deltas)
        if top is not None and (not isinstance(top, np.ndarray) or top.dtype != L2_TOP_DTYPE
                                or len(top) < n or not top.flags.c_contiguous):
            raise TypeError("top must be a contiguous L2_TOP_DTYPE array, as long as deltas")
        if n == 0:
            return 0
        cdef const unsigned char[::1] delta_bytes = deltas.view(np.uint8)
        cdef const L2Delta* d = <const L2Delta*> &delta_bytes[0]
        cdef int64_t bad = _first_invalid(d, n)
        if bad >= 0:
            raise MarketDataError(
                f"delta {bad} has an invalid side, price or size "
                f"({d[bad].side}, {d[bad].price}, {d[bad].size}); nothing applied")
        cdef unsigned char[::1] top_bytes
        cdef L2Top* tops = NULL
        if top is not None:
            top_bytes = top.view(np.uint8)
            tops = <L2Top*> &top_bytes[0]
        cdef int64_t i
        cdef int64_t applied = 0
        cdef int status = APPLIED
        self.busy = True
        try:
            with nogil:
                for i in range(n):
                    status = self._apply(d[i].side, d[i].price, d[i].size, d[i].seq, d[i].time)
                    if status == CROSSED or status == NO_MEMORY:
                        break
                    if status != STALE:
                        applied += 1
                    if tops != NULL:
                        self._top(&tops[i])
        finally:
            self.busy = False
        if self.gap_log_count:
            self._report_gaps()
        if status == CROSSED:
            raise CrossedBookError(f"delta {i} would cross the book; the {i} before it applied")
        if status == NO_MEMORY:
            raise MemoryError(f"cannot grow the book at delta {i}")
        if self.checksum is not None and not self.checksum(self):
            self.valid = False
        return applied

    cdef inline void _top(self, L2Top* top) noexcept nogil:
        cdef L2Side* bids = &self.sides[SIDE_BUY]
        cdef L2Side* asks = &self.sides[SIDE_SELL]
        if bids.count:
            top.bid_price = bids.keys[bids.count - 1]
            top.bid_size = bids.sizes[bids.count - 1]
        else:
            top.bid_price = 0
            top.bid_size = 0
        if asks.count:
            top.ask_price = -asks.keys[asks.count - 1]
            top.ask_size = asks.sizes[asks.count - 1]
        else:
            top.ask_price = 0
            top.ask_size = 0

    # ------------------------------------------------------------ snapshots

    def apply_snapshot(self, bid_prices, bid_sizes, ask_prices, ask_sizes, *,
                       int64_t time=0, bint implied_deltas=False):
        """Replace the book with full depth given as int64 arrays of ticks and lots.

        Returns True (or, with `implied_deltas`, the L2_DELTA_DTYPE changes
        from the old book, size 0 for removed levels); False (or None) when
        `time` is older than the book. Levels may come in any order; a
        repeated price, a price or size out of range, or (under
        CrossedPolicy.RAISE) a crossed snapshot raises and changes nothing.
        """
        self._check_idle()
        bids = _pair(bid_prices, bid_sizes, "bid")
        asks = _pair(ask_prices, ask_sizes, "ask")
        cdef const int64_t[::1] bp = bids[0]
        cdef const int64_t[::1] bs = bids[1]
        cdef const int64_t[::1] ap = asks[0]
        cdef const int64_t[::1] as_ = asks[1]
        cdef int32_t nb = bp.shape[0]
        cdef int32_t na = ap.shape[0]
        cdef int32_t i
        cdef int64_t* keys = _scratch(nb + na)
        cdef int64_t* sizes = keys + nb + na + 1
        try:
            for i in range(nb):
                keys[i] = bp[i]
                sizes[i] = bs[i]
            for i in range(na):
                keys[nb + i] = -ap[i]
                sizes[nb + i] = as_[i]
            return self._load(keys, sizes, nb, na, time, implied_deltas)
        finally:
            free(keys)

    def apply_levels(self, levels, *, int64_t time=0, bint implied_deltas=False):
        """Replace the book from Hyperliquid's ``levels``: [bids, asks] of {"px", "sz", "n"}.

        Prices and sizes are decimal strings, converted exactly to ticks and
        lots; one that is off the instrument's grid raises MarketDataError
        and changes nothing.
        """
        self._check_idle()
        if not isinstance(levels, (list, tuple)) or len(levels) != 2:
            raise MarketDataError("levels must be [bids, asks]")
        bids, asks = levels
        cdef Py_ssize_t nb = len(bids)
        cdef Py_ssize_t na = len(asks)
        cdef Py_ssize_t i
        cdef dict entry
        cdef int64_t* keys = _scratch(nb + na)
        cdef int64_t* sizes = keys + nb + na + 1
        try:
            for i in range(nb + na):
                level = bids[i] if i < nb else asks[i - nb]
                if type(level) is dict:
                    entry = <dict> level   # the decoder's case: typed for fast lookups
                    px, sz = entry.get("px"), entry.get("sz")
                else:
                    try:
                        px, sz = level["px"], level["sz"]
                    except (TypeError, KeyError, IndexError) as exc:
                        raise MarketDataError(f"level {level!r} lacks px/sz") from exc
                keys[i] = _parse_field(px, self.price_decimals, MAX_PRICE, "price")
                sizes[i] = _parse_field(sz, self.size_decimals, MAX_QTY, "size")
                if i >= nb:
                    keys[i] = -keys[i]
            return self._load(keys, sizes, <int32_t> nb, <int32_t> na, time, implied_deltas)
        finally:
            free(keys)

    cdef object _load(self, int64_t* keys, int64_t* sizes, int32_t nb, int32_t na,
                      int64_t time, bint implied_deltas):
        """Replace both sides with `nb` bid then `na` ask levels (keys, in any order)."""
        if time != 0 and time < self.last_time:
            return None if implied_deltas else False
        cdef int32_t i
        cdef int64_t price
        for i in range(nb + na):
            price = keys[i] if i < nb else -keys[i]
            if price <= 0 or price > MAX_PRICE or sizes[i] <= 0 or sizes[i] > MAX_QTY:
                raise MarketDataError(f"{'bid' if i < nb else 'ask'} level {price} x "
                                      f"{sizes[i]} is out of range (both must be positive)")
        if nb and _sort_side(keys, sizes, nb) != 0:
            raise MarketDataError("snapshot repeats a bid price")
        if na and _sort_side(keys + nb, sizes + nb, na) != 0:
            raise MarketDataError("snapshot repeats an ask price")
        cdef bint crossed = nb and na and keys[nb - 1] >= -keys[nb + na - 1]
        if crossed and self.crossed_policy == POLICY_RAISE:
            raise CrossedBookError(
                f"snapshot is crossed: bid {keys[nb - 1]} >= ask {-keys[nb + na - 1]}")
        out = None
        cdef unsigned char[::1] out_bytes
        cdef L2Delta* changes
        cdef int32_t written = 0
        if implied_deltas:
            out = np.zeros(self.sides[0].count + self.sides[1].count + nb + na,
                           dtype=L2_DELTA_DTYPE)
            if len(out):
                out_bytes = out.view(np.uint8)
                changes = <L2Delta*> &out_bytes[0]
                written = _diff_side(&self.sides[SIDE_BUY], keys, sizes, nb, SIDE_BUY, changes)
                written += _diff_side(&self.sides[SIDE_SELL], keys + nb, sizes + nb, na,
                                      SIDE_SELL, changes + written)
            out = out[:written]
        if self._reserve(SIDE_BUY, nb - self.sides[SIDE_BUY].count) != 0 \
                or self._reserve(SIDE_SELL, na - self.sides[SIDE_SELL].count) != 0:
            raise MemoryError("cannot grow the book")
        memcpy(self.sides[SIDE_BUY].keys, keys, <size_t> nb * 8)
        memcpy(self.sides[SIDE_BUY].sizes, sizes, <size_t> nb * 8)
        memcpy(self.sides[SIDE_SELL].keys, keys + nb, <size_t> na * 8)
        memcpy(self.sides[SIDE_SELL].sizes, sizes + nb, <size_t> na * 8)
        self.sides[SIDE_BUY].count = nb
        self.sides[SIDE_SELL].count = na
        self.valid = not crossed
        if time != 0:
            self.last_time = time
        if self.checksum is not None and not self.checksum(self):
            self.valid = False
        return out if implied_deltas else True

    def clear(self) -> None:
        """Empty both sides; the book is invalid until the next snapshot."""
        self._check_idle()
        self.sides[SIDE_BUY].count = 0
        self.sides[SIDE_SELL].count = 0
        self.valid = False

    # -------------------------------------------------------------- queries

    def best_bid(self):
        """Best bid in ticks, or None."""
        self._check_idle()
        cdef L2Side* s = &self.sides[SIDE_BUY]
        return s.keys[s.count - 1] if s.count else None

    def best_ask(self):
        """Best ask in ticks, or None."""
        self._check_idle()
        cdef L2Side* s = &self.sides[SIDE_SELL]
        return -s.keys[s.count - 1] if s.count else None

    def best_bid_size(self) -> int:
        self._check_idle()
        cdef L2Side* s = &self.sides[SIDE_BUY]
        return s.sizes[s.count - 1] if s.count else 0

    def best_ask_size(self) -> int:
        self._check_idle()
        cdef L2Side* s = &self.sides[SIDE_SELL]
        return s.sizes[s.count - 1] if s.count else 0

    def bbo(self):
        """(best bid, its size, best ask, its size); prices None when a side is empty."""
        self._check_idle()
        cdef L2Top top
        self._top(&top)
        return (top.bid_price or None, top.bid_size, top.ask_price or None, top.ask_size)

    def mid(self):
        """Mid price in ticks (may be a half tick), or None."""
        self._check_idle()
        cdef L2Top top
        self._top(&top)
        if not top.bid_price or not top.ask_price:
            return None
        return (top.bid_price + top.ask_price) / 2.0

    def spread(self):
        self._check_idle()
        cdef L2Top top
        self._top(&top)
        if not top.bid_price or not top.ask_price:
            return None
        return top.ask_price - top.bid_price

    def microprice(self):
        """Size-weighted mid: leans toward the side with less size, or None."""
        self._check_idle()
        cdef L2Top top
        self._top(&top)
        if not top.bid_price or not top.ask_price:
            return None
        return (top.bid_price * <double> top.ask_size + top.ask_price * <double> top.bid_size) \
            / (<double> top.bid_size + top.ask_size)

    def imbalance(self, int levels=1):
        """(bid size - ask size) / (bid size + ask size) over the best `levels`, or None."""
        self._check_idle()
        if levels < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        cdef double bid = 0
        cdef double ask = 0
        cdef L2Side* bids = &self.sides[SIDE_BUY]
        cdef L2Side* asks = &self.sides[SIDE_SELL]
        cdef int32_t i
        for i in range(min(levels, bids.count)):
            bid += bids.sizes[bids.count - 1 - i]
        for i in range(min(levels, asks.count)):
            ask += asks.sizes[asks.count - 1 - i]
        if bid + ask == 0:
            return None
        return (bid - ask) / (bid + ask)

    def depth(self, int side, int levels=10):
        """The best `levels` levels of a side, best first: (prices, sizes) as int64 arrays."""
        self._check_idle()
        self._check_side(side)
        if levels < 0:
            raise ValueError(f"levels must be >= 0, got {levels}")
        cdef L2Side* s = &self.sides[side]
        cdef int32_t n = min(levels, s.count)
        prices = np.empty(n, dtype=np.int64)
        sizes = np.empty(n, dtype=np.int64)
        cdef int64_t[::1] p = prices
        cdef int64_t[::1] q = sizes
        cdef int32_t i
        for i in range(n):
            p[i] = s.keys[s.count - 1 - i] if side == SIDE_BUY else -s.keys[s.count - 1 - i]
            q[i] = s.sizes[s.count - 1 - i]
        return prices, sizes

    def size_at(self, int side, int64_t price) -> int:
        self._check_idle()
        self._check_side(side)
        return _size_at(&self.sides[side], _key(side, price))

    def impact(self, int side, int64_t size):
        """Taking `size` lots on `side` (BUY takes asks): (average price, worst price, filled).

        Prices are ticks (the average as a float); `filled` < `size` when the
        book is too thin.
        """
        self._check_idle()
        self._check_side(side)
        if size <= 0:
            raise ValueError(f"size must be positive, got {size}")
        cdef L2Side* s = &self.sides[1 - side]
        cdef int64_t filled = 0
        cdef int64_t take, price = 0
        cdef double cost = 0
        cdef int32_t i = s.count - 1
        while i >= 0 and filled < size:
            price = s.keys[i] if side == SIDE_SELL else -s.keys[i]
            take = min(s.sizes[i], size - filled)
            cost += <double> price * take
            filled += take
            i -= 1
        if filled == 0:
            return None, None, 0
        return cost / filled, price, filled

    def impact_notional(self, int side, double notional):
        """Taking up to `notional` (ticks x lots) on `side`: (average price, worst price, size)."""
        self._check_idle()
        self._check_side(side)
        if not notional > 0:
            raise ValueError(f"notional must be positive, got {notional}")
        cdef L2Side* s = &self.sides[1 - side]
        cdef double left = notional
        cdef double cost = 0
        cdef int64_t filled = 0
        cdef int64_t take, price = 0
        cdef int32_t i = s.count - 1
        while i >= 0 and left > 0:
            price = s.keys[i] if side == SIDE_SELL else -s.keys[i]
            take = min(s.sizes[i], <int64_t> (left / price))
            if take <= 0:
                break
            cost += <double> price * take
            left -= <double> price * take
            filled += take
            if take < s.sizes[i]:
                break
            i -= 1
        if filled == 0:
            return None, None, 0
        return cost / filled, price, filled

    @property
    def bid_levels(self) -> int:
        return self.sides[SIDE_BUY].count

    @property
    def ask_levels(self) -> int:
        return self.sides[SIDE_SELL].count


def apply_hyperliquid_l2_frame(L2Book book not None, const unsigned char[::1] frame):
    """Apply a Hyperliquid ``l2Book`` frame to `book` straight from its bytes.

    Reads the websocket frame ``{"channel": "l2Book", "data": {...}}`` and the
    REST ``/info`` body ``{"coin", "time", "levels"}`` in the exchange's usual
    shape for the book's coin, without building Python objects. Returns what
    :meth:`L2Book.apply_levels` returns (False when the frame is older than
    the book), or None for any other frame: escapes, extra keys, another
    channel or coin, off-grid decimals. A JSON decoder then applies it or
    says precisely what is wrong (:func:`obelisk.hyperliquid.l2frames.apply_l2_message`).
    """
    book._check_idle()
    cdef Py_ssize_t length = frame.shape[0]
    if length == 0 or length > 1 << 30:
        return None
    cdef int32_t capacity = <int32_t> (length // 25 + 1)  # a level takes 25+ bytes
    cdef L2Frame read
    cdef int64_t* keys = _scratch(capacity)
    cdef int64_t* sizes = keys + capacity + 1
    try:
        if scan_l2book(<const char*> &frame[0], length, book.price_decimals,
                       book.size_decimals, keys, sizes, capacity, &read) != FRAME_OK:
            return None
        if book.coin_bytes is not None and (
                read.coin_length != len(book.coin_bytes)
                or memcmp(read.coin, <const char*> book.coin_bytes,
                          <size_t> read.coin_length) != 0):
            return None
        return book._load(keys, sizes, read.bids, read.asks, read.time, False)
    finally:
        free(keys)


cdef int64_t* _scratch(Py_ssize_t levels) except NULL:
    """One buffer for a snapshot's keys then sizes (`levels` + 1 each); the caller frees it."""
    cdef int64_t* buffer = <int64_t*> malloc(<size_t> (levels + 1) * 16)
    if buffer == NULL:
        raise MemoryError("cannot allocate a snapshot")
    return buffer


cdef int64_t _first_invalid(const L2Delta* d, int64_t n) noexcept nogil:
    """Index of the first delta with a bad side, price or size, or -1."""
    cdef int64_t i
    for i in range(n):
        if d[i].side > SIDE_SELL or d[i].price <= 0 or d[i].price > MAX_PRICE \
                or d[i].size < 0 or d[i].size > MAX_QTY:
            return i
    return -1


def _pair(prices, sizes, what):
    prices = np.ascontiguousarray(prices)
    sizes = np.ascontiguousarray(sizes)
    for name, array in (("prices", prices), ("sizes", sizes)):
        if array.ndim != 1 or array.dtype.kind not in "iu":
            raise TypeError(f"{what} {name} must be a 1-d integer array (ticks/lots), "
                            f"got {array.dtype} with shape {array.shape}")
    if len(prices) != len(sizes):
        raise MarketDataError(f"{len(prices)} {what} prices but {len(sizes)} sizes")
    return prices.astype(np.int64, copy=False), sizes.astype(np.int64, copy=False)
