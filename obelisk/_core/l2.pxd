# L2 market-data book: aggregated depth mirrored from an exchange feed.

cimport cython
from libc.stdint cimport int32_t, int64_t, uint8_t


# One side's levels sorted by key so that the best is last (bids: key = price,
# asks: key = -price); sizes run parallel to keys. A deleted level keeps its slot
# with size 0 (no shift; the same price coming back is an update) unless it is
# the best: the last slot always holds a level. `live` counts the levels, at
# most `max_live` (the book's max_levels).
cdef struct L2Side:
    int64_t* keys
    int64_t* sizes
    int32_t count        # slots in use, emptied ones included
    int32_t capacity
    int32_t live
    int32_t max_live


# One level delta (L2_DELTA_DTYPE, 40 bytes): size 0 deletes the level.
cdef struct L2Delta:
    int64_t price
    int64_t size
    int64_t seq
    int64_t time
    uint8_t side
    uint8_t _pad[7]


# One level of a snapshot being sorted: a key and its size, moved together.
cdef struct L2Level:
    int64_t key
    int64_t size


# The top of the book after a delta (L2_TOP_DTYPE, 32 bytes); 0 when a side is empty.
cdef struct L2Top:
    int64_t bid_price
    int64_t bid_size
    int64_t ask_price
    int64_t ask_size


@cython.final
cdef class L2Book:
    cdef L2Side sides[2]
    cdef readonly object instrument
    """The instrument whose ticks and lots the book holds."""
    cdef readonly int crossed_policy
    cdef public object on_gap
    cdef public object checksum
    cdef readonly bint valid
    """False after a gap or a crossed update until the next snapshot."""
    cdef readonly int64_t last_seq
    cdef readonly int64_t last_time
    cdef readonly int64_t gaps
    cdef bytes coin_bytes
    cdef int price_decimals
    cdef int size_decimals
    cdef int64_t* gap_log
    cdef int64_t gap_log_count
    cdef int64_t gap_log_capacity
    cdef readonly int32_t max_levels
    """The most levels a snapshot may hold per side."""
    cdef bint busy
    """Claimed by a caller (one user at a time): see _claim."""

    cdef int _reserve(self, int side, int32_t extra) noexcept nogil
    cdef inline int _apply(self, uint8_t side, int64_t price, int64_t size, int64_t seq,
                           int64_t time) noexcept nogil
    cdef inline int64_t _set_level(self, uint8_t side, int64_t price, int64_t size) noexcept nogil
    cdef inline bint _crossed(self) noexcept nogil
    cdef void _drop_crossed(self, uint8_t fresh_side) noexcept nogil
    cdef int64_t _apply_deltas(self, const L2Delta* d, int64_t n, L2Top* tops,
                               int64_t* applied, int* status) noexcept nogil
    cdef inline int _claim(self) except -1
    cdef inline int _check_unclaimed(self) except -1
    cdef int _check_side(self, int64_t side) except -1
    cdef bint _after_apply(self, int status, int64_t side, int64_t price,
                           int64_t size) except -1
    cdef list _take_gaps(self)
    cdef int _report_gaps(self, list log) except -1
    cdef object _load(self, int64_t* keys, int64_t* sizes, Py_ssize_t nb, Py_ssize_t na,
                      int64_t time, bint implied_deltas)
    cdef object _after_load(self, object result)
