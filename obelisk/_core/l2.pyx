"""L2 market-data book: the exchange's aggregated depth, mirrored from snapshots and deltas.

Each side is a sorted array with the best level last, so the updates a feed
sends most (near the touch) move few entries, and reading the top is O(1).
Prices are instrument ticks and sizes lots; decimal strings are parsed
exactly, without floats.
"""

from enum import IntEnum

import numpy as np

cimport cython
from cpython.number cimport PyNumber_Index
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdint cimport INT64_MAX, INT64_MIN, int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc, qsort, realloc
from libc.string cimport memcmp, memcpy

from obelisk._core._buffers cimport const_data_of, data_of
from obelisk._core._gil cimport RELEASE_GIL_FROM, PyThreadState, release_gil_if, restore_gil
from obelisk._core._hl_l2frame cimport FRAME_OK, L2Frame, parse_decimal, scan_l2book
from obelisk._core._ints cimport small_int
from obelisk._core._sorted cimport lower_bound_near_end
from obelisk._core._types cimport MAX_PRICE, MAX_QTY, SIDE_BUY, SIDE_SELL

from obelisk._core._records import as_records, struct_dtype
from obelisk._core.errors import ConcurrentUseError, CrossedBookError, MarketDataError


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
    TOO_DEEP = 4     # refused: a new level past max_levels on its side
    NO_MEMORY = -1

cdef enum:
    POLICY_RAISE = 0
    POLICY_DROP_STALE = 1
    POLICY_INVALIDATE = 2

cdef extern from *:
    """
    #define OBELISK_L2_MAX_SEQ (INT64_MAX - 1)
    """
    const int64_t MAX_SEQ "OBELISK_L2_MAX_SEQ"   # the last seq that seq + 1 can follow

cdef enum:
    MAX_LEVELS_LIMIT = 1 << 30    # the largest max_levels a side's int32 capacity can double to
    NOGIL_LEVELS = 4096           # snapshots this large sort without the GIL

cdef L2Delta _delta
cdef L2Top _top_record

L2_DELTA_DTYPE = struct_dtype(<L2Delta[:1]> &_delta)
L2_TOP_DTYPE = struct_dtype(<L2Top[:1]> &_top_record)


# ------------------------------------------------------------ sorted sides

cdef inline int64_t _key(uint8_t side, int64_t price) noexcept nogil:
    return (price ^ -<int64_t> side) + side         # price for bids, -price for asks


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


cdef enum:
    ASIDE = -1       # _set_in: no room for a new level; apply_batch: not the common case
    FULL = -3        # _set_level: a new level past the side's max_live
    SKIPPED = -2     # apply_batch: a stale delta


cdef inline int64_t _set_in(L2Side* s, int64_t key, int64_t size) noexcept nogil:
    """Set (or with size 0 delete) the level of `key`; the size it had, or ASIDE when a
    new level needs room the side does not have, or a slot past `max_live` (nothing
    changed then). Slots, emptied ones included, stay within `max_live`, so the levels
    do, even as emptied slots come back (an update here, with no test)."""
    cdef int32_t pos = _lower_bound(s, key)
    cdef int64_t previous
    if pos < s.count and s.keys[pos] == key:
        previous = s.sizes[pos]
        s.sizes[pos] = size
        s.live += (size != 0) - (previous != 0)
        if size == 0:
            _trim(s)
        return previous
    if size:
        if s.count == s.capacity or s.count >= s.max_live:
            return ASIDE
        _insert_at(s, pos, key, size)
        s.live += 1
    return 0


cdef inline void _trim(L2Side* s) noexcept nogil:
    """Drop the emptied levels at the best end; compact when they are most of the side."""
    while s.count and s.sizes[s.count - 1] == 0:
        s.count -= 1
    if s.count > 2 * s.live + 64:
        _compact(s)


cdef void _compact(L2Side* s) noexcept nogil:
    cdef int32_t i
    cdef int32_t kept = 0
    for i in range(s.count):
        if s.sizes[i]:
            s.keys[kept] = s.keys[i]
            s.sizes[kept] = s.sizes[i]
            kept += 1
    s.count = kept


cdef double _top_sum(const L2Side* s, int64_t levels) noexcept nogil:
    """The summed size of the best `levels` levels."""
    cdef double total = 0
    cdef int32_t i = s.count - 1
    while i >= 0 and levels > 0:
        if s.sizes[i]:
            total += s.sizes[i]
            levels -= 1
        i -= 1
    return total


cdef inline void _write_top(const L2Side* bids, const L2Side* asks, L2Top* top) noexcept nogil:
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


cdef int _by_key(const void* a, const void* b) noexcept nogil:
    cdef int64_t x = (<const L2Level*> a).key
    cdef int64_t y = (<const L2Level*> b).key
    return (x > y) - (x < y)


cdef int _refuse_concurrent_use() except -1:
    raise ConcurrentUseError("this L2Book is in use by another thread (or by the callback of "
                             "a call still running); use one book from one thread at a time")


cdef object _ZERO = 0                   # the default seq and time (ints this small are shared)


cdef int _refuse_delta(int64_t side, int64_t price, int64_t size, int64_t seq,
                       int64_t time) except -1:
    """Why L2Book.apply refuses a delta, in the order it checks; ConcurrentUseError last."""
    if side != SIDE_BUY and side != SIDE_SELL:
        raise MarketDataError(f"side must be Side.BUY (0) or Side.SELL (1), got {side}")
    if price <= 0 or price > MAX_PRICE:
        raise MarketDataError(f"price must be 1..{MAX_PRICE} ticks, got {price}")
    if size < 0 or size > MAX_QTY:
        raise MarketDataError(f"size must be 0..{MAX_QTY} lots (0 deletes), got {size}")
    _check_seq_time(seq, time)
    _refuse_concurrent_use()


cdef inline int64_t _int64(object value, str what) except? -1:
    """An exact integer argument: int and numpy integers; float and Decimal raise TypeError."""
    cdef int64_t whole
    if small_int(value, &whole):
        return whole
    return _int64_slow(value, what)


cdef int64_t _int64_slow(object value, str what) except? -1:
    try:
        value = PyNumber_Index(value)
    except TypeError:
        raise TypeError(f"{what} must be an integer, got {type(value).__name__} {value!r} "
                        f"(convert to ticks or lots exactly first)") from None
    if not INT64_MIN <= value <= INT64_MAX:
        raise MarketDataError(f"{what} {value} is outside int64")
    return value


cdef int _check_seq_time(int64_t seq, int64_t time) except -1:
    if seq < 0 or seq > MAX_SEQ:
        raise MarketDataError(f"seq must be 0..{MAX_SEQ} (0: unsequenced), got {seq}")
    if time < 0:
        raise MarketDataError(f"time must be >= 0 (0: none), got {time}")
    return 0


cdef int _check_level_counts(Py_ssize_t nb, Py_ssize_t na, int32_t max_levels) except -1:
    if nb > max_levels or na > max_levels:
        raise MarketDataError(f"snapshot has {nb} bid and {na} ask levels, more than "
                              f"max_levels={max_levels} per side; nothing changed")
    return 0


cdef int _sort_side(int64_t* keys, int64_t* sizes, Py_ssize_t n) noexcept nogil:
    """Sort a side by key: 0, -1 when two levels share a price, -2 when out of memory.

    Feeds send each side best first, which is descending keys for both sides
    (asks' keys are negated prices): one reversal. Ascending input is left as
    it is; anything else is sorted as (key, size) pairs by qsort, O(n log n).
    """
    cdef Py_ssize_t i, j
    cdef bint ascending = True
    cdef bint descending = True
    cdef L2Level* levels
    for i in range(1, n):
        if keys[i] < keys[i - 1]:
            ascending = False
        elif keys[i] > keys[i - 1]:
            descending = False
        if not ascending and not descending:
            break
    if descending and not ascending:
        i = 0
        j = n - 1
        while i < j:
            keys[i], keys[j] = keys[j], keys[i]
            sizes[i], sizes[j] = sizes[j], sizes[i]
            i += 1
            j -= 1
    elif not ascending:
        levels = <L2Level*> malloc(<size_t> n * sizeof(L2Level))
        if levels == NULL:
            return -2
        for i in range(n):
            levels[i].key = keys[i]
            levels[i].size = sizes[i]
        qsort(levels, <size_t> n, sizeof(L2Level), _by_key)
        for i in range(n):
            keys[i] = levels[i].key
            sizes[i] = levels[i].size
        free(levels)
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
            if old.sizes[i] == 0:        # an emptied level: not in the book
                i += 1
                continue
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
    max_levels : int
        The most levels a side may hold (default 100,000), so that a feed cannot
        grow the book without bound: a larger snapshot, or a delta that would add
        a level past it, raises MarketDataError and changes nothing.

    One caller at a time: every method claims the book for as long as it reads
    or writes its levels, and a second caller meanwhile gets ConcurrentUseError.
    The `on_gap` and `checksum` callbacks run after the claim is released, so
    they may query the book.
    """

    def __cinit__(self):
        cdef int side
        for side in range(2):
            self.sides[side].keys = NULL
            self.sides[side].sizes = NULL
            self.sides[side].count = 0
            self.sides[side].capacity = 0
            self.sides[side].live = 0
            self.sides[side].max_live = MAX_LEVELS_LIMIT
        self.gap_log = NULL
        self.gap_log_count = 0
        self.gap_log_capacity = 0
        self.valid = False
        self.busy = False

    def __init__(self, instrument, *, crossed_policy: int = POLICY_RAISE, on_gap=None,
                 checksum=None, max_levels: int = 100_000) -> None:
        if crossed_policy not in (POLICY_RAISE, POLICY_DROP_STALE, POLICY_INVALIDATE):
            raise ValueError(f"crossed_policy must be a CrossedPolicy, got {crossed_policy!r}")
        cdef int64_t most = _int64(max_levels, "max_levels")
        if most < 1 or most > MAX_LEVELS_LIMIT:
            raise ValueError(f"max_levels must be 1..{MAX_LEVELS_LIMIT}, got {most}")
        name = getattr(instrument, "name", None)
        price_decimals = instrument.price_decimals
        size_decimals = instrument.sz_decimals
        self._claim()
        try:
            self.instrument = instrument
            self.coin_bytes = name.encode() if isinstance(name, str) else None
            self.price_decimals = price_decimals
            self.size_decimals = size_decimals
            self.crossed_policy = crossed_policy
            self.max_levels = <int32_t> most
            self.sides[SIDE_BUY].max_live = self.sides[SIDE_SELL].max_live = <int32_t> most
            self.on_gap = on_gap
            self.checksum = checksum
            self.last_seq = 0
            self.last_time = 0
            self.gaps = 0
            if self._reserve(SIDE_BUY, 64) != 0 or self._reserve(SIDE_SELL, 64) != 0:
                raise MemoryError("cannot allocate the book")
        finally:
            self.busy = False

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

    cdef inline int _claim(self) except -1:
        """Check and claim the book in one step: C code under the GIL, no Python call between.

        The caller releases it (``self.busy = False``, in a finally when
        anything between can raise) after its last touch of the levels.
        """
        if self.busy:
            _refuse_concurrent_use()
        self.busy = True
        return 0

    cdef inline int _check_unclaimed(self) except -1:
        """Refuse when another caller holds the book, for a region that is C code under the GIL.

        Such a region (no Python call, no GIL release) cannot interleave with
        another thread: the GIL claims the book for it, and this check is the
        whole of claiming, with no flag to set or release.
        """
        if self.busy:
            _refuse_concurrent_use()
        return 0

    cdef int _check_side(self, int64_t side) except -1:
        if side != SIDE_BUY and side != SIDE_SELL:
            raise MarketDataError(f"side must be Side.BUY (0) or Side.SELL (1), got {side}")
        return 0

    # ------------------------------------------------------------- updates

    cdef inline int64_t _set_level(self, uint8_t side, int64_t price, int64_t size) noexcept nogil:
        """Set (or with size 0 delete) a level; the size it had before, or FULL when it
        would be a level past max_levels, or -1 when out of memory."""
        cdef int64_t key = _key(side, price)
        cdef L2Side* s = &self.sides[side]
        cdef int64_t previous = _set_in(s, key, size)
        if previous < 0:
            if s.count >= s.max_live:
                if s.live >= s.max_live:
                    return FULL
                _compact(s)             # emptied slots make way for the new level
            elif self._reserve(side, 1) != 0:
                return -1
            previous = _set_in(s, key, size)
        return previous

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
                asks.live -= asks.sizes[asks.count] != 0
            _trim(asks)
        else:
            while bids.count and bids.keys[bids.count - 1] >= -asks.keys[asks.count - 1]:
                bids.count -= 1
                bids.live -= bids.sizes[bids.count] != 0
            _trim(bids)

    cdef inline int _apply(self, uint8_t side, int64_t price, int64_t size, int64_t seq,
                           int64_t time) noexcept nogil:
        """Apply one checked delta; a status code (APPLIED, STALE, GAP, CROSSED, TOO_DEEP,
        NO_MEMORY)."""
        cdef int status = APPLIED
        cdef int64_t previous
        cdef int64_t* grown
        if time != 0 and time < self.last_time:
            return STALE
        previous = self._set_level(side, price, size)
        if previous < 0:
            return TOO_DEEP if previous == FULL else NO_MEMORY
        if self._crossed():
            if self.crossed_policy == POLICY_RAISE:
                self._set_level(side, price, previous)  # room is there: it held this level
                return CROSSED
            if self.crossed_policy == POLICY_DROP_STALE:
                self._drop_crossed(side)
            else:
                self.valid = False
        if seq != 0:
            if self.last_seq != 0 and seq != self.last_seq + 1:   # last_seq <= MAX_SEQ
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

    cdef list _take_gaps(self):
        """The gaps seen since the last report, in order, as (expected, got); under the claim."""
        cdef int64_t i
        log = [(self.gap_log[i], self.gap_log[i + 1]) for i in range(0, self.gap_log_count, 2)]
        self.gap_log_count = 0
        return log

    cdef int _report_gaps(self, list log) except -1:
        """Hand gaps to `on_gap`; after the claim is released, so it may query the book."""
        if self.on_gap is not None:
            for expected, got in log:
                self.on_gap(expected, got)
        return 0

    def apply(self, side, price, size, seq=0, time=0) -> bool:
        """Set one level's size (0 deletes it); False if `time` is older than the book.

        All arguments are exact integers (ticks, lots; seq 0..2**63-2 and time
        >= 0, 0 meaning none): a float or Decimal raises TypeError. Raises
        MarketDataError for bad input or a new level past `max_levels`, and
        CrossedBookError when the update crosses the book under
        CrossedPolicy.RAISE; the book is then unchanged.
        """
        cdef int64_t side_ = _int64(side, "side")
        cdef int64_t price_ = _int64(price, "price")
        cdef int64_t size_ = _int64(size, "size")
        cdef int64_t seq_ = 0
        cdef int64_t time_ = 0
        cdef bint bad_seq_time = False
        if seq is not _ZERO or time is not _ZERO:  # mostly left out: defaults need no work
            seq_ = _int64(seq, "seq")
            time_ = _int64(time, "time")
            bad_seq_time = seq_ < 0 or seq_ > MAX_SEQ or time_ < 0
        # One test for every refusal (_refuse_delta says which), then C code only until
        # _apply returns: the check of the claim is the whole of claiming.
        if ((side_ != SIDE_BUY and side_ != SIDE_SELL) or price_ <= 0 or price_ > MAX_PRICE
                or size_ < 0 or size_ > MAX_QTY or bad_seq_time or self.busy):
            _refuse_delta(side_, price_, size_, seq_, time_)
        cdef int status = self._apply(<uint8_t> side_, price_, size_, seq_, time_)
        if status == APPLIED and self.checksum is None:
            return True
        return self._after_apply(status, side_, price_, size_)

    cdef bint _after_apply(self, int status, int64_t side, int64_t price,
                           int64_t size) except -1:
        """The rest of apply for an update that was not plainly applied, or a checksum."""
        cdef list gaps = None
        if status == GAP:
            self.busy = True                    # the gap log becomes a Python list
            try:
                gaps = self._take_gaps()
            finally:
                self.busy = False
        if status == CROSSED:
            raise CrossedBookError(f"{'bid' if side == SIDE_BUY else 'ask'} {size} at "
                                   f"{price} would cross the book")
        if status == NO_MEMORY:
            raise MemoryError("cannot grow the book")
        if status == TOO_DEEP:
            raise MarketDataError(f"a {'bid' if side == SIDE_BUY else 'ask'} at {price} would "
                                  f"be a level past max_levels={self.max_levels}; nothing "
                                  "changed")
        if gaps is not None:
            self._report_gaps(gaps)
        if self.checksum is not None and status != STALE and not self.checksum(self):
            self.valid = False
        return status != STALE

    def apply_batch(self, deltas, top=None) -> int:
        """Apply an L2_DELTA_DTYPE array in one loop (without the GIL for large arrays).

        With `top` (an L2_TOP_DTYPE array as long as `deltas`), the best bid
        and ask after each delta are written into it. Returns how many deltas
        were applied (stale ones are skipped). The whole batch is checked
        first, so bad input raises before anything changes; a crossing delta
        under CrossedPolicy.RAISE (CrossedBookError), or one that would add a
        level past `max_levels` (MarketDataError), stops the batch there and
        raises, the deltas before it staying applied.
        """
        deltas = as_records(deltas, L2_DELTA_DTYPE, "deltas", "obelisk.L2_DELTA_DTYPE")
        cdef int64_t n = len(deltas)
        if top is not None and (not isinstance(top, np.ndarray) or top.dtype != L2_TOP_DTYPE
                                or top.ndim != 1 or len(top) < n
                                or not top.flags.c_contiguous or not top.flags.writeable):
            raise TypeError("top must be a writable, contiguous, one-dimensional "
                            "L2_TOP_DTYPE array, as long as deltas")
        if n == 0:
            return 0
        cdef const L2Delta* d = <const L2Delta*> const_data_of(deltas)
        cdef int64_t bad = _first_invalid(d, n)
        if bad >= 0:
            raise MarketDataError(
                f"delta {bad} has an invalid side, price, size, seq or time "
                f"({d[bad].side}, {d[bad].price}, {d[bad].size}, {d[bad].seq}, {d[bad].time}); "
                f"nothing applied")
        cdef L2Top* tops = NULL
        if top is not None:
            tops = <L2Top*> data_of(top)
        cdef int64_t i = 0
        cdef int64_t applied = 0
        cdef int status = APPLIED
        cdef list gaps = None
        cdef PyThreadState* released
        self._claim()
        try:
            released = release_gil_if(n >= RELEASE_GIL_FROM)
            i = self._apply_deltas(d, n, tops, &applied, &status)
            restore_gil(released)
            if self.gap_log_count:
                gaps = self._take_gaps()
        finally:
            self.busy = False
        if gaps is not None:
            self._report_gaps(gaps)
        if status == CROSSED:
            raise CrossedBookError(f"delta {i} would cross the book; the {i} before it applied")
        if status == NO_MEMORY:
            raise MemoryError(f"cannot grow the book at delta {i}")
        if status == TOO_DEEP:
            raise MarketDataError(f"delta {i} would be a level past max_levels="
                                  f"{self.max_levels}; the {i} before it applied")
        if self.checksum is not None and not self.checksum(self):
            self.valid = False
        return applied

    cdef int64_t _apply_deltas(self, const L2Delta* d, int64_t n, L2Top* tops,
                               int64_t* applied, int* status) noexcept nogil:
        """apply_batch's loop: the index it stopped at (n when every delta was taken).

        The sides, sequence and time live in locals here: the level stores
        cannot alias them, so nothing is reloaded from the book per delta. A
        delta that leaves the common case (a gap, a cross, a side out of room)
        goes through ``_apply`` with the book's fields written back.
        """
        cdef L2Side sides[2]
        cdef L2Side* own
        cdef L2Side* other
        cdef int64_t last_seq = self.last_seq
        cdef int64_t last_time = self.last_time
        cdef int64_t i, key, size, seq, time, previous
        cdef int64_t taken = 0
        cdef int code
        cdef uint8_t side
        # A crossed book (kept by DROP_STALE or INVALIDATE) takes every delta through
        # _apply, which drops or flags what the delta leaves crossed, as apply() does.
        cdef bint crossed = self._crossed()
        sides[0], sides[1] = self.sides[0], self.sides[1]
        for i in range(n):
            side, size, seq, time = d[i].side, d[i].size, d[i].seq, d[i].time
            own, other = &sides[side], &sides[side ^ 1]
            key = _key(side, d[i].price)
            if time != 0 and time < last_time:
                previous = SKIPPED
            elif crossed or (seq != 0 and last_seq != 0 and seq != last_seq + 1) \
                    or (size and other.count and key >= -other.keys[other.count - 1]):
                previous = ASIDE          # a gap, or a book that is or would be crossed
            else:
                previous = _set_in(own, key, size)
            if previous >= 0:
                last_seq = seq if seq != 0 else last_seq
                last_time = time if time != 0 else last_time
                taken += 1
            elif previous == ASIDE:
                self.sides[0], self.sides[1] = sides[0], sides[1]
                self.last_seq, self.last_time = last_seq, last_time
                code = self._apply(side, d[i].price, size, seq, time)
                crossed = self._crossed()
                sides[0], sides[1] = self.sides[0], self.sides[1]
                last_seq, last_time = self.last_seq, self.last_time
                if code == CROSSED or code == NO_MEMORY or code == TOO_DEEP:
                    applied[0] += taken
                    status[0] = code
                    return i
                taken += code != STALE
            if tops != NULL:
                _write_top(&sides[SIDE_BUY], &sides[SIDE_SELL], &tops[i])
        self.sides[0], self.sides[1] = sides[0], sides[1]
        self.last_seq, self.last_time = last_seq, last_time
        applied[0] += taken
        return n

    def apply_snapshot(self, bid_prices, bid_sizes, ask_prices, ask_sizes, *,
                       time=0, bint implied_deltas=False):
        """Replace the book with full depth given as int64 arrays of ticks and lots.

        Returns True (or, with `implied_deltas`, the L2_DELTA_DTYPE changes
        from the old book, size 0 for removed levels); False (or None) when
        `time` is older than the book. Levels may come in any order; a
        repeated price, a price or size out of range, more than `max_levels`
        levels on a side or (under CrossedPolicy.RAISE) a crossed snapshot
        raises and changes nothing.
        """
        cdef int64_t time_ = _int64(time, "time")
        _check_seq_time(0, time_)
        bids = _pair(bid_prices, bid_sizes, "bid")
        asks = _pair(ask_prices, ask_sizes, "ask")
        cdef const int64_t[::1] bp = bids[0]
        cdef const int64_t[::1] bs = bids[1]
        cdef const int64_t[::1] ap = asks[0]
        cdef const int64_t[::1] as_ = asks[1]
        cdef Py_ssize_t nb = bp.shape[0]
        cdef Py_ssize_t na = ap.shape[0]
        cdef Py_ssize_t i
        _check_level_counts(nb, na, self.max_levels)
        cdef int64_t* keys = _scratch(nb + na)
        cdef int64_t* sizes = keys + nb + na + 1
        try:
            for i in range(nb):
                keys[i] = bp[i]
                sizes[i] = bs[i]
            for i in range(na):
                keys[nb + i] = -ap[i]
                sizes[nb + i] = as_[i]
            self._claim()
            try:
                result = self._load(keys, sizes, nb, na, time_, implied_deltas)
            finally:
                self.busy = False
        finally:
            free(keys)
        return self._after_load(result)

    def apply_levels(self, levels, *, time=0, bint implied_deltas=False):
        """Replace the book from Hyperliquid's ``levels``: [bids, asks] of {"px", "sz", "n"}.

        Prices and sizes are decimal strings, converted exactly to ticks and
        lots; one that is off the instrument's grid, or any other malformed
        level, raises MarketDataError and changes nothing.
        """
        cdef int64_t time_ = _int64(time, "time")
        _check_seq_time(0, time_)
        if not isinstance(levels, (list, tuple)) or len(levels) != 2:
            raise MarketDataError("levels must be [bids, asks]")
        bids, asks = levels
        if not isinstance(bids, (list, tuple)) or not isinstance(asks, (list, tuple)):
            raise MarketDataError(f"levels must be [bids, asks], two lists of levels; got "
                                  f"{type(bids).__name__} and {type(asks).__name__}")
        cdef Py_ssize_t nb = len(bids)
        cdef Py_ssize_t na = len(asks)
        cdef Py_ssize_t i
        cdef dict entry
        _check_level_counts(nb, na, self.max_levels)
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
                    except (TypeError, KeyError, IndexError, ValueError) as exc:
                        raise MarketDataError(f"level {level!r} lacks px/sz") from exc
                keys[i] = _parse_field(px, self.price_decimals, MAX_PRICE, "price")
                sizes[i] = _parse_field(sz, self.size_decimals, MAX_QTY, "size")
                if i >= nb:
                    keys[i] = -keys[i]
            self._claim()
            try:
                result = self._load(keys, sizes, nb, na, time_, implied_deltas)
            finally:
                self.busy = False
        finally:
            free(keys)
        return self._after_load(result)

    cdef object _load(self, int64_t* keys, int64_t* sizes, Py_ssize_t nb, Py_ssize_t na,
                      int64_t time, bint implied_deltas):
        """Replace both sides with `nb` bid then `na` ask levels (keys, in any order).

        The caller holds the claim; `_after_load` runs the checksum once it is released.
        """
        _check_level_counts(nb, na, self.max_levels)
        if time != 0 and time < self.last_time:
            return None if implied_deltas else False
        cdef Py_ssize_t i
        cdef int64_t price
        for i in range(nb + na):
            price = keys[i] if i < nb else -keys[i]
            if price <= 0 or price > MAX_PRICE or sizes[i] <= 0 or sizes[i] > MAX_QTY:
                raise MarketDataError(f"{'bid' if i < nb else 'ask'} level {price} x "
                                      f"{sizes[i]} is out of range (both must be positive)")
        cdef int bid_order, ask_order
        if nb + na < NOGIL_LEVELS:
            bid_order = _sort_side(keys, sizes, nb)
            ask_order = _sort_side(keys + nb, sizes + nb, na)
        else:
            with nogil:
                bid_order = _sort_side(keys, sizes, nb)
                ask_order = _sort_side(keys + nb, sizes + nb, na)
        if bid_order == -2 or ask_order == -2:
            raise MemoryError("cannot sort a snapshot")
        if bid_order != 0:
            raise MarketDataError("snapshot repeats a bid price")
        if ask_order != 0:
            raise MarketDataError("snapshot repeats an ask price")
        cdef bint crossed = nb and na and keys[nb - 1] >= -keys[nb + na - 1]
        if crossed and self.crossed_policy == POLICY_RAISE:
            raise CrossedBookError(
                f"snapshot is crossed: bid {keys[nb - 1]} >= ask {-keys[nb + na - 1]}")
        out = None
        cdef L2Delta* changes
        cdef int32_t written = 0
        if implied_deltas:
            out = np.zeros(self.sides[0].count + self.sides[1].count + nb + na,
                           dtype=L2_DELTA_DTYPE)
            if len(out):
                changes = <L2Delta*> data_of(out)
                written = _diff_side(&self.sides[SIDE_BUY], keys, sizes, <int32_t> nb,
                                     SIDE_BUY, changes)
                written += _diff_side(&self.sides[SIDE_SELL], keys + nb, sizes + nb,
                                      <int32_t> na, SIDE_SELL, changes + written)
            out = out[:written]
        if self._reserve(SIDE_BUY, <int32_t> nb - self.sides[SIDE_BUY].count) != 0 \
                or self._reserve(SIDE_SELL, <int32_t> na - self.sides[SIDE_SELL].count) != 0:
            raise MemoryError("cannot grow the book")
        memcpy(self.sides[SIDE_BUY].keys, keys, <size_t> nb * 8)
        memcpy(self.sides[SIDE_BUY].sizes, sizes, <size_t> nb * 8)
        memcpy(self.sides[SIDE_SELL].keys, keys + nb, <size_t> na * 8)
        memcpy(self.sides[SIDE_SELL].sizes, sizes + nb, <size_t> na * 8)
        self.sides[SIDE_BUY].count = self.sides[SIDE_BUY].live = <int32_t> nb
        self.sides[SIDE_SELL].count = self.sides[SIDE_SELL].live = <int32_t> na
        self.valid = not crossed
        if time != 0:
            self.last_time = time
        return out if implied_deltas else True

    cdef object _after_load(self, object result):
        """Run the checksum on a snapshot that was applied (not stale), claim released."""
        if result is not None and result is not False and self.checksum is not None \
                and not self.checksum(self):
            self.valid = False
        return result

    def clear(self) -> None:
        """Empty both sides and forget the feed's position (last seq and time).

        The book is invalid until the next snapshot, which may then carry any time.
        """
        self._check_unclaimed()
        self.sides[SIDE_BUY].count = self.sides[SIDE_BUY].live = 0
        self.sides[SIDE_SELL].count = self.sides[SIDE_SELL].live = 0
        self.valid = False
        self.last_seq = 0
        self.last_time = 0
        self.gap_log_count = 0

    # -------------------------------------------------------------- queries

    def best_bid(self):
        """Best bid in ticks, or None."""
        cdef L2Side* s = &self.sides[SIDE_BUY]
        self._check_unclaimed()
        cdef int64_t price = s.keys[s.count - 1] if s.count else 0
        return price or None

    def best_ask(self):
        """Best ask in ticks, or None."""
        cdef L2Side* s = &self.sides[SIDE_SELL]
        self._check_unclaimed()
        cdef int64_t price = -s.keys[s.count - 1] if s.count else 0
        return price or None

    def best_bid_size(self) -> int:
        cdef L2Side* s = &self.sides[SIDE_BUY]
        self._check_unclaimed()
        cdef int64_t size = s.sizes[s.count - 1] if s.count else 0
        return size

    def best_ask_size(self) -> int:
        cdef L2Side* s = &self.sides[SIDE_SELL]
        self._check_unclaimed()
        cdef int64_t size = s.sizes[s.count - 1] if s.count else 0
        return size

    def bbo(self):
        """(best bid, its size, best ask, its size); prices None when a side is empty."""
        cdef L2Top top
        self._check_unclaimed()
        _write_top(&self.sides[SIDE_BUY], &self.sides[SIDE_SELL], &top)
        return (top.bid_price or None, top.bid_size, top.ask_price or None, top.ask_size)

    def mid(self):
        """Mid price in ticks (may be a half tick), or None."""
        cdef L2Top top
        self._check_unclaimed()
        _write_top(&self.sides[SIDE_BUY], &self.sides[SIDE_SELL], &top)
        if not top.bid_price or not top.ask_price:
            return None
        return (top.bid_price + top.ask_price) / 2.0

    def spread(self):
        cdef L2Top top
        self._check_unclaimed()
        _write_top(&self.sides[SIDE_BUY], &self.sides[SIDE_SELL], &top)
        if not top.bid_price or not top.ask_price:
            return None
        return top.ask_price - top.bid_price

    def microprice(self):
        """Size-weighted mid: leans toward the side with less size, or None."""
        cdef L2Top top
        self._check_unclaimed()
        _write_top(&self.sides[SIDE_BUY], &self.sides[SIDE_SELL], &top)
        if not top.bid_price or not top.ask_price:
            return None
        return (top.bid_price * <double> top.ask_size + top.ask_price * <double> top.bid_size) \
            / (<double> top.bid_size + top.ask_size)

    def imbalance(self, levels=1):
        """(bid size - ask size) / (bid size + ask size) over the best `levels`, or None."""
        cdef int64_t most = _int64(levels, "levels")
        if most < 1:
            raise ValueError(f"levels must be >= 1, got {most}")
        self._check_unclaimed()
        cdef double bid = _top_sum(&self.sides[SIDE_BUY], most)
        cdef double ask = _top_sum(&self.sides[SIDE_SELL], most)
        if bid + ask == 0:
            return None
        return (bid - ask) / (bid + ask)

    def depth(self, side, levels=10):
        """The best `levels` levels of a side, best first: (prices, sizes) as int64 arrays."""
        cdef int64_t side_ = _int64(side, "side")
        cdef int64_t most = _int64(levels, "levels")
        self._check_side(side_)
        if most < 0:
            raise ValueError(f"levels must be >= 0, got {most}")
        cdef L2Side* s = &self.sides[side_]
        cdef int32_t n, i, j
        cdef int64_t[::1] p
        cdef int64_t[::1] q
        self._claim()
        try:
            n = <int32_t> min(most, s.live)
            prices = np.empty(n, dtype=np.int64)
            sizes = np.empty(n, dtype=np.int64)
            p = prices
            q = sizes
            i = 0
            j = s.count - 1
            while i < n:
                if s.sizes[j]:
                    p[i] = s.keys[j] if side_ == SIDE_BUY else -s.keys[j]
                    q[i] = s.sizes[j]
                    i += 1
                j -= 1
        finally:
            self.busy = False
        return prices, sizes

    def size_at(self, side, price) -> int:
        cdef int64_t side_ = _int64(side, "side")
        cdef int64_t price_ = _int64(price, "price")
        self._check_side(side_)
        self._check_unclaimed()
        cdef int64_t size = _size_at(&self.sides[side_], _key(<uint8_t> side_, price_))
        return size

    def impact(self, side, size):
        """Taking `size` lots on `side` (BUY takes asks): (average price, worst price, filled).

        Prices are ticks (the average as a float); `filled` < `size` when the
        book is too thin.
        """
        cdef int64_t side_ = _int64(side, "side")
        cdef int64_t wanted = _int64(size, "size")
        self._check_side(side_)
        if wanted <= 0:
            raise ValueError(f"size must be positive, got {wanted}")
        cdef L2Side* s = &self.sides[1 - side_]
        cdef int64_t filled = 0
        cdef int64_t take, price = 0
        cdef double cost = 0
        cdef int32_t i
        self._check_unclaimed()
        i = s.count - 1
        while i >= 0 and filled < wanted:
            if s.sizes[i] == 0:
                i -= 1
                continue
            price = s.keys[i] if side_ == SIDE_SELL else -s.keys[i]
            take = min(s.sizes[i], wanted - filled)
            cost += <double> price * take
            filled += take
            i -= 1
        if filled == 0:
            return None, None, 0
        return cost / filled, price, filled

    def impact_notional(self, side, double notional):
        """Taking up to `notional` (ticks x lots) on `side`: (average price, worst price, size).

        A notional larger than the whole side (even infinite) takes all of it.
        """
        cdef int64_t side_ = _int64(side, "side")
        self._check_side(side_)
        if not notional > 0:
            raise ValueError(f"notional must be positive, got {notional}")
        cdef L2Side* s = &self.sides[1 - side_]
        cdef double left = notional
        cdef double cost = 0
        cdef double affordable
        cdef int64_t filled = 0
        cdef int64_t take, price = 0
        cdef int32_t i
        self._check_unclaimed()
        i = s.count - 1
        while i >= 0 and left > 0:
            if s.sizes[i] == 0:
                i -= 1
                continue
            price = s.keys[i] if side_ == SIDE_SELL else -s.keys[i]
            # compared as doubles before any cast: a float -> int cast out of range is undefined
            affordable = left / price
            take = s.sizes[i] if affordable >= <double> s.sizes[i] else <int64_t> affordable
            if take <= 0:
                break
            if take > INT64_MAX - filled:
                raise OverflowError("the levels taken hold more than 2**63 - 1 lots")
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
        self._check_unclaimed()
        cdef int32_t count = self.sides[SIDE_BUY].live
        return count

    @property
    def ask_levels(self) -> int:
        self._check_unclaimed()
        cdef int32_t count = self.sides[SIDE_SELL].live
        return count


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
    cdef Py_ssize_t length = frame.shape[0]
    if length == 0 or length > 1 << 30:
        return None
    # a level takes 25+ bytes; a frame with more than max_levels a side falls back, and
    # the general path says so
    cdef int32_t capacity = <int32_t> min(length // 25 + 1, 2 * <Py_ssize_t> book.max_levels + 1)
    cdef L2Frame read
    cdef int scanned
    cdef const char* text = <const char*> &frame[0]
    cdef int64_t* keys = NULL
    cdef int64_t* sizes
    book._claim()
    try:
        keys = _scratch(capacity)
        sizes = keys + capacity + 1
        if length < NOGIL_LEVELS * 25:
            scanned = scan_l2book(text, length, book.price_decimals, book.size_decimals,
                                  keys, sizes, capacity, &read)
        else:
            with nogil:
                scanned = scan_l2book(text, length, book.price_decimals, book.size_decimals,
                                      keys, sizes, capacity, &read)
        if scanned != FRAME_OK:
            return None
        if book.coin_bytes is not None and (
                read.coin_length != len(book.coin_bytes)
                or memcmp(read.coin, <const char*> book.coin_bytes,
                          <size_t> read.coin_length) != 0):
            return None
        result = book._load(keys, sizes, read.bids, read.asks, read.time, False)
    finally:
        book.busy = False
        free(keys)
    return book._after_load(result)


cdef int64_t* _scratch(Py_ssize_t levels) except NULL:
    """One buffer for a snapshot's keys then sizes (`levels` + 1 each); the caller frees it."""
    cdef int64_t* buffer = <int64_t*> malloc(<size_t> (levels + 1) * 16)
    if buffer == NULL:
        raise MemoryError("cannot allocate a snapshot")
    return buffer


cdef int64_t _first_invalid(const L2Delta* d, int64_t n) noexcept nogil:
    """Index of the first delta with a bad side, price, size, seq or time, or -1."""
    cdef int64_t i
    for i in range(n):   # as unsigned, a negative value is above every limit: one test each
        if d[i].side > SIDE_SELL or <uint64_t> d[i].price - 1 >= <uint64_t> MAX_PRICE \
                or <uint64_t> d[i].size > <uint64_t> MAX_QTY \
                or <uint64_t> d[i].seq > <uint64_t> MAX_SEQ or d[i].time < 0:
            return i
    return -1


def _pair(prices, sizes, what):
    prices = np.ascontiguousarray(prices)
    sizes = np.ascontiguousarray(sizes)
    for name, array in (("prices", prices), ("sizes", sizes)):
        if array.ndim != 1 or array.dtype.kind not in "iu" and array.size:  # [] is float64
            raise TypeError(f"{what} {name} must be a 1-d integer array (ticks/lots), "
                            f"got {array.dtype} with shape {array.shape}")
    if len(prices) != len(sizes):
        raise MarketDataError(f"{len(prices)} {what} prices but {len(sizes)} sizes")
    return prices.astype(np.int64, copy=False), sizes.astype(np.int64, copy=False)
