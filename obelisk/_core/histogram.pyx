"""Latency histogram: log-linear buckets (HdrHistogram layout) in one C array.

Values are nanoseconds from 0 to one hour. Below 256 every value has its own
bucket; above, each power of two is cut into 2^7 = 128 equal sub-buckets, so a
bucket is at most 1/128 of its lower bound wide. Percentiles report the bucket
middle (clamped to the exact min and max): relative error at most 2^-8 (0.4 %).
Recording is a shift, a count-leading-zeros and an increment, with no
allocation, so it costs far less than the clock reads around it.
"""

import numpy as np

cimport cython
from libc.math cimport ceil, sqrt
from libc.stdint cimport INT64_MAX, int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from obelisk._core._gil cimport RELEASE_GIL_FROM, PyThreadState, release_gil_if, restore_gil
from obelisk._core._sorted cimport count_leading_zeros

from obelisk._core.errors import ConcurrentUseError


cdef int64_t HIGHEST = 3_600_000_000_000       # one hour in ns: the last bucket holds it
# The most samples a bulk call (corrected record, batch, merge) may bring the count to:
# room left for 2^62 single records before an int64 could wrap.
cdef int64_t MAX_BULK = (<int64_t> 1) << 62

HIGHEST_TRACKABLE_NS = HIGHEST
MAX_BULK_COUNT = MAX_BULK
SUB_BUCKET_BITS = SUB_BITS
BUCKET_COUNT = BUCKETS
RELATIVE_PRECISION = 1.0 / (2 * SUB_BUCKETS)    # half a bucket over its lower bound


# ---------------------------------------------------------------- bucket layout

cdef inline int64_t _index(int64_t value) noexcept nogil:
    """Bucket of a value in 0..HIGHEST: exact below 256, then 128 per power of two."""
    cdef int shift
    if value < 2 * SUB_BUCKETS:
        return value
    shift = 63 - count_leading_zeros(<unsigned long long> value) - SUB_BITS
    return (<int64_t> shift << SUB_BITS) + (value >> shift)


cdef inline int64_t _shift(int64_t index) noexcept nogil:
    """log2 of the bucket's width."""
    cdef int64_t shift = (index >> SUB_BITS) - 1
    return shift if shift > 0 else 0


cdef inline int64_t _lower(int64_t index) noexcept nogil:
    cdef int64_t shift = _shift(index)
    return (index - (shift << SUB_BITS)) << shift


cdef inline int64_t _width(int64_t index) noexcept nogil:
    return (<int64_t> 1) << _shift(index)


def bucket_of(int64_t value) -> int:
    """The bucket index a value in 0..HIGHEST_TRACKABLE_NS is counted in."""
    if value < 0 or value > HIGHEST:
        raise ValueError(f"value must be in 0..{HIGHEST} ns, got {value}")
    return _index(value)


def bucket_range(int64_t index) -> tuple:
    """The values a bucket holds, as (lowest, highest + 1)."""
    if index < 0 or index >= BUCKETS:
        raise ValueError(f"bucket index must be in 0..{BUCKETS - 1}, got {index}")
    return _lower(index), _lower(index) + _width(index)


cdef int64_t _first_negative(const int64_t[:] values) noexcept nogil:
    """Index of the first negative value, or -1."""
    cdef Py_ssize_t i
    for i in range(values.shape[0]):
        if values[i] < 0:
            return i
    return -1


cdef int64_t _samples(const int64_t[:] values, int64_t interval) noexcept nogil:
    """Samples that recording `values` adds, corrections included; -1 past 2^63 - 1."""
    cdef Py_ssize_t i
    cdef int64_t total = 0
    cdef int64_t added
    for i in range(values.shape[0]):
        added = _corrected_samples(values[i], interval)
        if added > INT64_MAX - total:
            return -1
        total += added
    return total


cdef inline int64_t _corrected_samples(int64_t value, int64_t interval) noexcept nogil:
    """1 for the value, plus value - k x interval for k >= 1 while >= interval."""
    if interval <= 0 or value < 2 * interval:
        return 1
    return value // interval        # the value itself and value // interval - 1 hidden ones


# ---------------------------------------------------------------- histogram

@cython.final
@cython.auto_pickle(False)
cdef class LatencyHistogram:
    """Counts of nanosecond latencies in log-linear buckets, mergeable and cheap to record.

    Covers 0 ns to one hour (``HIGHEST_TRACKABLE_NS``) in 4,562 buckets: exact
    below 256 ns, then 2^7 sub-buckets per power of two, so percentiles are
    within ``RELATIVE_PRECISION`` (2^-8, under 0.4 %) of the true sample. Min,
    max, count and mean are exact. Values above one hour are counted in
    ``overflow`` (percentiles report them as one hour; ``max`` stays exact).

    One user at a time: every call claims the histogram (or, if it never lets
    the GIL go nor runs Python code, just checks that nobody holds it) and
    another thread's call meanwhile raises ConcurrentUseError. ``record``
    holds the GIL throughout, so threads may share a histogram for it;
    ``record_many`` releases the GIL for large arrays and holds the claim until it is done.
    The sample count never wraps: a corrected record, batch or merge that
    would take it past ``MAX_BULK_COUNT`` (2^62) raises OverflowError and
    records nothing; single records have 2^62 more before 2^63 - 1.
    An empty histogram reports 0
    for every statistic.
    """

    def __cinit__(self):
        # No __init__: the C state is set up here, once per object, so calling
        # __init__ again (object's) can neither resize nor reset anything.
        self.lowest = INT64_MAX

    # ------------------------------------------------------------ recording

    cdef inline void _add(self, int64_t value) noexcept nogil:
        if value > HIGHEST:
            self.n_overflow += 1
        else:
            self.counts[_index(value)] += 1
        self.n_samples += 1
        self.total += <double> value
        if value < self.lowest:
            self.lowest = value
        if value > self.highest:
            self.highest = value

    cdef void _add_run(self, int64_t top, int64_t n, int64_t step) noexcept nogil:
        """Add top, top - step, ... (n values), all in top's bucket (or all overflowing)."""
        cdef int64_t bottom = top - (n - 1) * step
        if top > HIGHEST:
            self.n_overflow += n
        else:
            self.counts[_index(top)] += n
        self.n_samples += n
        self.total += <double> n * (<double> top + <double> bottom) / 2.0
        if bottom < self.lowest:
            self.lowest = bottom
        if top > self.highest:
            self.highest = top

    cdef void _backfill(self, int64_t value, int64_t interval) noexcept nogil:
        """Add value - k * interval for k = 1, 2, ... while >= interval (HdrHistogram).

        Those are the samples a stalled loop failed to take. They are added a
        bucket at a time, so a long stall costs at most one step per bucket.
        """
        cdef int64_t missing = value - interval
        cdef int64_t floor_value, n
        while missing >= interval:
            floor_value = HIGHEST + 1 if missing > HIGHEST else _lower(_index(missing))
            if floor_value < interval:
                floor_value = interval
            n = (missing - floor_value) // interval + 1
            self._add_run(missing, n, interval)
            missing -= n * interval

    def record(self, int64_t value, /) -> None:
        """Count one latency in ns; raises ValueError if negative."""
        # Positional-only: the wrapper then takes its one argument as is (METH_O), with
        # no keyword parsing, which cost a fifth of the call. One test on the hot path
        # for both refusals; holding the GIL throughout, the check is the claim. No count
        # check: the bulk paths keep the count at most MAX_BULK_COUNT (2^62), and adding
        # one at a time from there to 2^63 - 1 takes 2^62 calls (over a century at a
        # nanosecond each).
        if value < 0 or self.busy:
            self._refuse_latency(value)
        self._add(value)

    def record_corrected(self, int64_t value, int64_t expected_interval) -> None:
        """Count one latency, and the ones a stall hid from a loop sampling every
        `expected_interval` ns: value - interval, value - 2 x interval, ... while
        >= interval (coordinated-omission correction, as HdrHistogram does it)."""
        if value < 0 or self.busy:
            self._refuse_latency(value)
        if expected_interval < 0:
            raise ValueError(f"expected_interval must be >= 0 ns, got {expected_interval}")
        self._claim_room(_corrected_samples(value, expected_interval))
        self._add(value)
        if expected_interval > 0:
            self._backfill(value, expected_interval)

    def record_many(self, values, int64_t expected_interval=0) -> None:
        """Count a 1-D numpy int64 array of latencies (without the GIL for large arrays).

        All or nothing: a negative value raises ValueError, and a batch that
        would take the count past 2^63 - 1 OverflowError, before anything is
        counted. `expected_interval` > 0 corrects each value as ``record_corrected``.
        """
        self._claim()
        try:
            self._record_many(values, expected_interval)
        finally:
            self.busy = False

    cdef int _record_many(self, values, int64_t expected_interval) except -1:
        if not isinstance(values, np.ndarray) or values.dtype != np.int64:
            kind = values.dtype if isinstance(values, np.ndarray) else type(values).__name__
            raise TypeError(f"values must be a numpy int64 array, got {kind}")
        if values.ndim != 1:
            raise ValueError(f"values must be 1-D, got {values.ndim} dimensions")
        if expected_interval < 0:
            raise ValueError(f"expected_interval must be >= 0 ns, got {expected_interval}")
        cdef const int64_t[:] latencies = values
        cdef int64_t added = latencies.shape[0]
        cdef bint large = added >= RELEASE_GIL_FROM
        cdef PyThreadState* released = release_gil_if(large)
        cdef int64_t bad = _first_negative(latencies)
        if bad < 0 and expected_interval > 0:
            added = _samples(latencies, expected_interval)
        restore_gil(released)
        if bad >= 0:
            raise ValueError(f"latency must be >= 0 ns, got {latencies[bad]} at index {bad}; "
                             f"nothing recorded")
        if added < 0:
            raise OverflowError("this batch holds more than 2^62 samples (corrections "
                                "included); nothing recorded")
        self._claim_room(added)
        released = release_gil_if(large)
        self._add_all(latencies, expected_interval)
        restore_gil(released)
        return 0

    cdef void _add_all(self, const int64_t[:] latencies,
                       int64_t expected_interval) noexcept nogil:
        cdef Py_ssize_t i
        for i in range(latencies.shape[0]):
            self._add(latencies[i])
            if expected_interval > 0:
                self._backfill(latencies[i], expected_interval)

    # ------------------------------------------------------------ combining

    def merge(self, LatencyHistogram other not None) -> None:
        """Add another histogram's samples to this one (never average percentiles)."""
        self._check_idle()
        other._check_idle()
        self._claim_room(other.n_samples)
        cdef Py_ssize_t i
        for i in range(BUCKETS):
            self.counts[i] += other.counts[i]
        self.n_samples += other.n_samples
        self.n_overflow += other.n_overflow
        self.total += other.total
        self.lowest = min(self.lowest, other.lowest)
        self.highest = max(self.highest, other.highest)

    def copy(self) -> LatencyHistogram:
        """An independent histogram with the same samples."""
        self._check_idle()
        cdef LatencyHistogram twin = LatencyHistogram.__new__(LatencyHistogram)
        memcpy(twin.counts, self.counts, sizeof(self.counts))
        twin.n_samples = self.n_samples
        twin.n_overflow = self.n_overflow
        twin.total = self.total
        twin.lowest = self.lowest
        twin.highest = self.highest
        return twin

    def reset(self) -> None:
        """Forget every sample."""
        self._check_idle()
        self._reset()

    cdef void _reset(self) noexcept:
        memset(self.counts, 0, sizeof(self.counts))
        self.n_samples = self.n_overflow = self.highest = 0
        self.total = 0.0
        self.lowest = INT64_MAX

    def drain(self) -> LatencyHistogram:
        """A copy of the samples, then reset: one step, so no concurrent record is lost."""
        twin = self.copy()          # holds the GIL from here to the reset: nothing runs between
        self._reset()
        return twin

    # ------------------------------------------------------------ statistics

    @property
    def count(self) -> int:
        """Samples recorded, overflowed ones included."""
        self._check_idle()
        return self.n_samples

    @property
    def overflow(self) -> int:
        """Samples above one hour: counted, and reported as one hour by percentiles."""
        self._check_idle()
        return self.n_overflow

    @property
    def min(self) -> int:
        """The smallest sample, exact."""
        self._check_idle()
        return self.lowest if self.n_samples else 0

    @property
    def max(self) -> int:
        """The largest sample, exact (also above one hour)."""
        self._check_idle()
        return self.highest

    def mean(self) -> float:
        """The exact mean of the samples."""
        self._check_idle()
        return self.total / self.n_samples if self.n_samples else 0.0

    def stddev(self) -> float:
        """Standard deviation, from bucket middles (overflow counted as one hour)."""
        self._check_idle()
        if self.n_samples == 0:
            return 0.0
        cdef double mean = self.total / self.n_samples
        cdef double squares = 0.0
        cdef double deviation
        cdef Py_ssize_t i
        for i in range(BUCKETS):
            if self.counts[i]:
                deviation = self._representative(i) - mean
                squares += self.counts[i] * deviation * deviation
        deviation = <double> HIGHEST - mean
        squares += self.n_overflow * deviation * deviation
        return sqrt(squares / self.n_samples)

    cdef int64_t _representative(self, int64_t index) noexcept nogil:
        """The bucket's middle, clamped to the exact min and max."""
        cdef int64_t value = _lower(index) + (_width(index) >> 1)
        return min(max(value, self.lowest), self.highest)

    def percentile(self, double q) -> int:
        """The q-th percentile (0..100) in ns, as numpy's "inverted_cdf" within precision."""
        return self.percentiles((q,))[0]

    def percentiles(self, qs) -> list:
        """Several percentiles in one pass over the buckets, in the order asked."""
        cdef list wanted = []
        for q in qs:                # the caller's iterable may run Python code: done first
            if not 0.0 <= q <= 100.0:
                raise ValueError(f"percentile must be in 0..100, got {q}")
            wanted.append(float(q))
        cdef Py_ssize_t n = len(wanted)
        cdef Py_ssize_t k
        cdef double* fractions = <double*> malloc(
            max(n, 1) * (sizeof(double) + 2 * sizeof(int64_t)))
        if fractions == NULL:
            raise MemoryError()
        cdef int64_t* ranks = <int64_t*> (fractions + max(n, 1))
        cdef int64_t* found = ranks + max(n, 1)
        try:
            for k in range(n):
                fractions[k] = wanted[k] / 100.0
            self._check_idle()      # from here on C only, GIL held: nothing runs in between
            self._percentiles(fractions, ranks, found, n)
            return [found[k] for k in range(n)]
        finally:
            free(fractions)

    cdef void _percentiles(self, const double* fractions, int64_t* ranks, int64_t* found,
                           Py_ssize_t n) noexcept nogil:
        """found[k]: the bucket middle at rank ceil(count x fractions[k]), asked in any order."""
        cdef Py_ssize_t k
        cdef Py_ssize_t i = 0
        cdef int64_t seen = 0
        cdef int64_t rank
        cdef double exact
        for k in range(n):
            # in doubles, a count near 2^63 rounds up to 2^63, which no int64 holds
            exact = ceil(<double> self.n_samples * fractions[k])
            ranks[k] = self.n_samples if exact >= <double> self.n_samples \
                else max(<int64_t> exact, 1)
            found[k] = 0
        if self.n_samples == 0:
            return
        while True:                 # smallest rank still wanted first: one pass over the buckets
            rank = 0
            for k in range(n):
                if ranks[k] > 0 and (rank == 0 or ranks[k] < rank):
                    rank = ranks[k]
            if rank == 0:
                return
            while seen < rank and i < BUCKETS:
                seen += self.counts[i]
                i += 1
            for k in range(n):
                if ranks[k] == rank:
                    found[k] = self._representative(i - 1) if seen >= rank else HIGHEST
                    ranks[k] = 0    # answered

    def bucket_counts(self):
        """A copy of the count in each bucket (see ``bucket_range``), for exporters."""
        counts = np.empty(BUCKETS, dtype=np.int64)
        cdef int64_t[::1] view = counts
        self._check_idle()          # then C only, GIL held: nothing runs in between
        memcpy(&view[0], self.counts, sizeof(self.counts))
        return counts

    def count_at_or_below(self, int64_t value) -> int:
        """Samples in the buckets up to the one holding `value` (cumulative count for a
        bound, e.g. a Prometheus bucket); overflow only once `value` reaches the max."""
        self._check_idle()
        if value < 0:
            return 0
        cdef int64_t last = _index(min(value, HIGHEST))
        cdef int64_t total = 0
        cdef Py_ssize_t i
        for i in range(last + 1):
            total += self.counts[i]
        if self.n_overflow and value >= self.highest:
            total += self.n_overflow
        return total

    # ------------------------------------------------------------ one user at a time

    cdef int _check_idle(self) except -1:
        """Refuse to touch a histogram another caller has claimed.

        Enough for a call that holds the GIL from here to its last touch and
        runs no Python code: nothing else can run in between.
        """
        if self.busy:
            raise ConcurrentUseError(
                "this LatencyHistogram is in use by another thread (record_many, or a "
                "statistic being read); use one histogram from one thread at a time")
        return 0

    cdef int _refuse_latency(self, int64_t value) except -1:
        """Why a record refuses (the histogram is claimed, or the value negative); kept out
        of line so the record paths stay small."""
        self._check_idle()
        raise ValueError(f"latency must be >= 0 ns, got {value}")

    cdef int _claim(self) except -1:
        """Check and claim in one step (the GIL is held; nothing runs in between)."""
        self._check_idle()
        self.busy = True
        return 0

    cdef int _claim_room(self, int64_t added) except -1:
        """Refuse `added` samples when the count would pass MAX_BULK_COUNT (2^62)."""
        if added > MAX_BULK - self.n_samples:
            raise OverflowError(f"recording {added} more samples would take the count past "
                                f"2^62 (it is {self.n_samples}); nothing recorded")
        return 0

    def __repr__(self) -> str:
        p50, p99 = self.percentiles((50.0, 99.0))
        self._check_idle()
        return (f"LatencyHistogram(count={self.n_samples}, p50={p50}, p99={p99}, "
                f"max={self.highest}, overflow={self.n_overflow})")
