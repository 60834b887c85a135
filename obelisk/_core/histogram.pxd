# Latency histogram: log-linear buckets (HdrHistogram layout) in one C array.

cimport cython
from libc.stdint cimport int64_t


cdef enum:
    SUB_BITS = 7                # 2^7 sub-buckets per power of two: width <= 1/128 of value
    SUB_BUCKETS = 128           # 1 << SUB_BITS
    BUCKETS = 4562              # index of HIGHEST (one hour in ns) + 1


@cython.final
cdef class LatencyHistogram:
    cdef int64_t counts[BUCKETS]
    cdef int64_t n_samples          # samples recorded, overflowed ones included
    cdef int64_t n_overflow         # samples above one hour, reported as one hour
    cdef int64_t lowest
    cdef int64_t highest
    cdef double total
    cdef bint busy                  # claimed by a caller (ConcurrentUseError for the others)

    cdef inline void _add(self, int64_t value) noexcept nogil
    cdef void _add_run(self, int64_t top, int64_t n, int64_t step) noexcept nogil
    cdef void _backfill(self, int64_t value, int64_t interval) noexcept nogil
    cdef int _check_idle(self) except -1
    cdef int _refuse_latency(self, int64_t value) except -1
    cdef int _claim(self) except -1
    cdef int _claim_room(self, int64_t added) except -1
    cdef void _reset(self) noexcept
    cdef int _record_many(self, values, int64_t expected_interval) except -1
    cdef void _add_all(self, const int64_t[:] latencies, int64_t expected_interval) noexcept nogil
    cdef void _percentiles(self, const double* fractions, int64_t* ranks, int64_t* found,
                           Py_ssize_t n) noexcept nogil
    cdef int64_t _representative(self, int64_t index) noexcept nogil
