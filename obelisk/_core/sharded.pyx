"""One batch across several order books: a shard per book, the tapes merged in input order.

The core of :class:`obelisk.MatchingEngine`. Books share nothing, so each
applies its own events straight from the shared batch (no copies), with the
GIL released inside its loop once a shard is large enough to be worth it
(``RELEASE_GIL_FROM`` events), while the caller runs the shards on as many
threads as it likes. Each book's tapes come out in event order; a k-way merge
by input position, split into event ranges that also run in parallel, joins
them into the batch's tapes.
"""

from functools import partial

import numpy as np

cimport cython
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from obelisk._core._buffers cimport const_data_of, data_of
from obelisk._core._gil cimport RELEASE_GIL_FROM, PyThreadState, release_gil_if, restore_gil
from obelisk._core._types cimport (
    OEV_REJECTED,
    REASON_UNKNOWN_ASSET,
    STATUS_REJECTED,
    Event,
    Fill,
    OrderEvent,
    Result,
)
from obelisk._core.book cimport OrderBook

from obelisk._core import book as _book
from obelisk._core.book import BatchResult, as_event_array

# Where each tape record keeps the event index the merge orders by.
cdef size_t _FILL_KEY = _book.FILL_DTYPE.fields["event_index"][1]
cdef size_t _ORDER_EVENT_KEY = _book.ORDER_EVENT_DTYPE.fields["event_index"][1]


def process_sharded(books, events, selections, run_in_parallel, Py_ssize_t merge_parts=1):
    """Apply one batch across `books`, each to its own events; results and tapes in input order.

    Parameters
    ----------
    books : sequence of OrderBook
        Distinct books, held for the whole call: any other use of one of them
        meanwhile raises ConcurrentUseError.
    events : numpy array of EVENT_DTYPE
    selections : sequence of callables, one per book
        Each returns the positions (ascending integers) of its book's events in
        `events`. An event belongs to one book at most; the events no book
        selects are rejected with ``Reason.UNKNOWN_ASSET``, and their order
        events carry sequence 0. Positions out of range or order, or taken by
        two books, raise IndexError or ValueError before any book changes.
    run_in_parallel : callable
        Runs a list of zero-argument callables (e.g. on a thread pool) and
        returns their results in order: the selections, then one shard per
        book, then `merge_parts` pieces of the tape merge.
    merge_parts : int
        How many event ranges the tape merge is split into.

    Returns
    -------
    BatchResult
        One RESULT_DTYPE record per event, then the fills and the order
        events of all books, in input order. Sequence numbers are per book.
    """
    events = as_event_array(events)
    books = list(books)
    selections = list(selections)
    if len(selections) != len(books):
        raise ValueError(f"{len(books)} books need one selection each, got {len(selections)}")
    if len({id(book) for book in books}) != len(books):
        raise ValueError("a book appears twice; each must be given once")
    if merge_parts < 1:
        raise ValueError(f"merge_parts must be at least 1, got {merge_parts}")
    cdef Py_ssize_t n = len(events)
    results = np.empty(n, dtype=_book.RESULT_DTYPE)
    cdef OrderBook book
    held = []
    try:
        for book in books:
            book._claim()
            held.append(book)
        chosen = [np.ascontiguousarray(rows, dtype=np.int64)
                  for rows in run_in_parallel(selections)]
        taken = np.zeros(n, dtype=np.uint8)
        _check_selections(chosen, taken)
        run_in_parallel([partial(_apply_shard, shard_book, events, rows, results)
                         for shard_book, rows in zip(books, chosen)])
        rejected = None
        if sum(len(rows) for rows in chosen) < n:
            rejected = _reject_unknown(events, np.flatnonzero(taken == 0), results)
        merge = _TapeMerge(books, rejected)
        bounds = [n * part // merge_parts for part in range(merge_parts + 1)]
        run_in_parallel([partial(merge.merge_range, lo, hi)
                         for lo, hi in zip(bounds, bounds[1:])])
    finally:
        for book in held:
            book._release()
    return BatchResult(results, merge.fills, merge.order_events)


def process_in_turn(books, events, asset_ids):
    """:func:`process_sharded` in the calling thread, with nothing to hand out: one pass
    finds each event's book and only the books with events run, each once.

    `books` trade the ascending uint32 `asset_ids`, one each; events of any other
    asset are rejected with ``Reason.UNKNOWN_ASSET``. The results and tapes are
    :func:`process_sharded`'s; its selections, tasks and per-book arrays cost
    ~50 us a batch, which a batch of a few orders pays in full.
    """
    events = as_event_array(events)
    books = list(books)
    cdef const uint32_t[::1] ids = np.ascontiguousarray(asset_ids, dtype=np.uint32)
    cdef Py_ssize_t count = len(books)
    if ids.shape[0] != count:
        raise ValueError(f"{count} books need one asset id each, got {ids.shape[0]}")
    cdef Py_ssize_t k
    for k in range(1, count):
        if ids[k] <= ids[k - 1]:
            raise ValueError(f"asset ids must ascend: {ids[k]} after {ids[k - 1]}")
    cdef int64_t n = len(events)
    results = np.empty(n, dtype=_book.RESULT_DTYPE)
    if n == 0:
        return BatchResult(results, np.empty(0, dtype=_book.FILL_DTYPE),
                           np.empty(0, dtype=_book.ORDER_EVENT_DTYPE))
    cdef _Buckets buckets = _Buckets(n, count)
    cdef const Event* batch = <const Event*> const_data_of(events)
    cdef Result* answered = <Result*> data_of(results)
    cdef PyThreadState* released = release_gil_if(n >= RELEASE_GIL_FROM)
    buckets.fill(batch, &ids[0])
    restore_gil(released)
    cdef OrderBook book
    cdef int64_t first, size
    held = []
    try:
        for k in range(count):
            if buckets.size(k):
                book = books[k]
                book._claim()
                held.append(book)
        for k in range(count):
            size = buckets.size(k)
            if size == 0:
                continue
            book, first = books[k], buckets.starts[k]
            if size == n:                      # every event is this book's: in place
                book._process_rows(batch, NULL, n, answered)
            else:
                book._process_rows(batch, buckets.order + first, size, buckets.compact)
                _place(buckets.compact, buckets.order + first, size, answered)
        rejected = None
        if buckets.size(count):
            rejected = _reject_unknown(events, np.asarray(buckets.positions(count)), results)
        merge = _TapeMerge(held, rejected)
        merge.merge_range(0, n)
    finally:
        for book in held:
            book._release()
    return BatchResult(results, merge.fills, merge.order_events)


@cython.final
cdef class _Buckets:
    """The positions of a batch's events grouped by book (a stable counting sort), the
    unknown assets' last; and room for one book's compact results."""

    cdef int64_t* order             # positions, book by book, ascending within each
    cdef int64_t* starts            # book k's are order[starts[k]:starts[k + 1]] (count + 3)
    cdef int32_t* book_of
    cdef Result* compact
    cdef int64_t n
    cdef Py_ssize_t count

    def __cinit__(self, int64_t n, Py_ssize_t count):
        self.n = n
        self.count = count
        self.order = <int64_t*> malloc(n * sizeof(int64_t))
        self.starts = <int64_t*> malloc((count + 3) * sizeof(int64_t))
        self.book_of = <int32_t*> malloc(n * sizeof(int32_t))
        self.compact = <Result*> malloc(n * sizeof(Result))
        if self.order == NULL or self.starts == NULL or self.book_of == NULL \
                or self.compact == NULL:
            raise MemoryError("cannot group the batch by book")

    def __dealloc__(self):
        free(self.order)
        free(self.starts)
        free(self.book_of)
        free(self.compact)

    cdef void fill(self, const Event* events, const uint32_t* ids) noexcept nogil:
        cdef Py_ssize_t count = self.count
        cdef int64_t i, n = self.n
        cdef Py_ssize_t k, lo, hi, mid
        memset(self.starts, 0, (count + 3) * sizeof(int64_t))
        for i in range(n):
            lo, hi = 0, count
            while lo < hi:
                mid = (lo + hi) >> 1
                if ids[mid] < events[i].asset:
                    lo = mid + 1
                else:
                    hi = mid
            k = lo if lo < count and ids[lo] == events[i].asset else count
            self.book_of[i] = <int32_t> k
            self.starts[k + 2] += 1
        for k in range(2, count + 3):
            self.starts[k] += self.starts[k - 1]
        for i in range(n):             # starts[k + 1] is book k's cursor, then its end
            k = self.book_of[i]
            self.order[self.starts[k + 1]] = i
            self.starts[k + 1] += 1

    cdef inline int64_t size(self, Py_ssize_t k) noexcept:
        return self.starts[k + 1] - self.starts[k]

    cdef int64_t[::1] positions(self, Py_ssize_t k):
        return <int64_t[:self.size(k)]> (self.order + self.starts[k])


cdef int _check_selections(list chosen, uint8_t[::1] taken) except -1:
    """Each selection ascends inside the batch, and no event is in two; raises otherwise."""
    cdef int64_t n = taken.shape[0]
    cdef const int64_t[::1] rows
    cdef int64_t k, row, previous
    cdef Py_ssize_t b
    for b in range(len(chosen)):
        rows = chosen[b]
        previous = -1
        for k in range(rows.shape[0]):
            row = rows[k]
            if row < 0 or row >= n:
                raise IndexError(f"book {b} selects event {row}, outside the batch of {n}")
            if row <= previous:
                raise ValueError(f"book {b}'s event positions must ascend: {row} after {previous}")
            if taken[row]:
                raise ValueError(f"event {row} is selected for two books")
            taken[row] = 1
            previous = row
    return 0


def _apply_shard(OrderBook book, events, const int64_t[::1] rows, results):
    """Apply the events at `rows` to a held book and write their results in place."""
    cdef int64_t n = rows.shape[0]
    if n == len(events):
        book._process_into(events, results)        # every event is this book's: in place
        return
    # Run even with nothing selected, so the book's tapes restart empty. The book
    # writes compact results, moved to their rows after: threads writing
    # interleaved rows of one array would fight over cache lines.
    own = np.empty(n, dtype=_book.RESULT_DTYPE)
    book._process_into(events, own, rows)
    if n == 0:
        return
    cdef const Result* compact = <const Result*> const_data_of(own)
    cdef Result* placed = <Result*> data_of(results)
    cdef PyThreadState* released = release_gil_if(n >= RELEASE_GIL_FROM)
    _place(compact, &rows[0], n, placed)
    restore_gil(released)


cdef void _place(const Result* compact, const int64_t* rows, int64_t n,
                 Result* placed) noexcept nogil:
    cdef int64_t k
    for k in range(n):
        placed[rows[k]] = compact[k]


cdef object _reject_unknown(events, const int64_t[::1] rows, results):
    """Reject the events at `rows` (no book's) with Reason.UNKNOWN_ASSET; their order events."""
    cdef int64_t n = rows.shape[0]
    out = np.zeros(n, dtype=_book.ORDER_EVENT_DTYPE)
    if n == 0:
        return out
    cdef const Event* batch = <const Event*> const_data_of(events)
    cdef Result* answered = <Result*> data_of(results)
    cdef OrderEvent* refused = <OrderEvent*> data_of(out)
    cdef const Event* ev
    cdef Result* res
    cdef OrderEvent* rejected
    cdef int64_t k
    for k in range(n):
        ev = &batch[rows[k]]
        res = &answered[rows[k]]
        res.filled_qty = 0
        res.resting_qty = 0
        res.fill_count = 0
        res.status = STATUS_REJECTED
        res.reason = REASON_UNKNOWN_ASSET
        res._pad[0] = 0
        res._pad[1] = 0
        rejected = &refused[k]
        rejected.oid = ev.oid
        rejected.price = ev.price
        rejected.qty = ev.qty
        rejected.owner = ev.owner
        rejected.event_index = <int32_t> rows[k]
        rejected.kind = OEV_REJECTED
        rejected.reason = REASON_UNKNOWN_ASSET
        rejected.side = ev.side
    return out


# ------------------------------------------------------------ tape merge

cdef int64_t _first_at_or_after(const char* records, int64_t size, size_t itemsize,
                                size_t key_offset, int64_t event_index) noexcept nogil:
    """Position of the first record whose event index is >= `event_index` (records sorted)."""
    cdef int64_t lo = 0
    cdef int64_t hi = size
    cdef int64_t mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if (<const int32_t*> (records + mid * itemsize + key_offset))[0] < event_index:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef void _merge_segment(const char** sources, const int64_t* sizes, Py_ssize_t count,
                         size_t itemsize, size_t key_offset, int64_t lo, int64_t hi,
                         int64_t* positions, int64_t* ends, char* out) noexcept nogil:
    """k-way merge of the records with event index in [lo, hi) into their place in `out`.

    Each source is in event order and every event belongs to one source, so a
    record's place is the number of records, over all sources, before it.
    """
    cdef Py_ssize_t p, best
    cdef int32_t key, best_key
    cdef int64_t before = 0
    for p in range(count):
        positions[p] = _first_at_or_after(sources[p], sizes[p], itemsize, key_offset, lo)
        ends[p] = _first_at_or_after(sources[p], sizes[p], itemsize, key_offset, hi)
        before += positions[p]
    out += before * itemsize
    while True:
        best = -1
        best_key = 0
        for p in range(count):
            if positions[p] < ends[p]:
                key = (<const int32_t*> (sources[p] + positions[p] * itemsize + key_offset))[0]
                if best < 0 or key < best_key:
                    best = p
                    best_key = key
        if best < 0:
            return
        memcpy(out, sources[best] + positions[best] * itemsize, itemsize)
        out += itemsize
        positions[best] += 1


@cython.final
cdef class _TapeMerge:
    """The fill and order-event tapes of several books' last calls, merged by ``event_index``.

    Each book's tapes are in event order and every event belongs to one book,
    so a k-way merge straight from the books' own tapes (no intermediate
    copies, no sort) gives the batch's tapes in input order. The merge splits
    into independent event ranges (:meth:`merge_range`), which threads can
    run at once (without the GIL once the tapes are large).
    `extra_order_events` (ORDER_EVENT_DTYPE, in event order) joins the merge.
    """

    cdef const char** fill_sources
    cdef int64_t* fill_sizes
    cdef const char** event_sources
    cdef int64_t* event_sizes
    cdef Py_ssize_t book_count
    cdef Py_ssize_t event_source_count
    cdef object keep_alive
    cdef readonly object fills
    cdef readonly object order_events

    def __cinit__(self):
        self.fill_sources = NULL
        self.fill_sizes = NULL
        self.event_sources = NULL
        self.event_sizes = NULL

    def __init__(self, books, extra_order_events=None) -> None:
        cdef Py_ssize_t count = len(books)
        cdef Py_ssize_t p
        cdef OrderBook book
        cdef int64_t fills = 0, order_events = 0
        self.book_count = count
        self.fill_sources = <const char**> malloc((count + 1) * sizeof(char*))
        self.fill_sizes = <int64_t*> malloc((count + 1) * sizeof(int64_t))
        self.event_sources = <const char**> malloc((count + 1) * sizeof(char*))
        self.event_sizes = <int64_t*> malloc((count + 1) * sizeof(int64_t))
        if (self.fill_sources == NULL or self.fill_sizes == NULL or self.event_sources == NULL
                or self.event_sizes == NULL):
            raise MemoryError("cannot merge tapes")
        for p in range(count):
            book = books[p]
            self.fill_sources[p] = <const char*> book.fills
            self.fill_sizes[p] = book.fill_count
            self.event_sources[p] = <const char*> book.order_events
            self.event_sizes[p] = book.order_event_count
            fills += book.fill_count
            order_events += book.order_event_count
        self.event_source_count = count
        self.keep_alive = (list(books), extra_order_events)
        if extra_order_events is not None and len(extra_order_events):
            self.event_sources[count] = <const char*> const_data_of(extra_order_events)
            self.event_sizes[count] = len(extra_order_events)
            self.event_source_count = count + 1
            order_events += len(extra_order_events)
        self.fills = np.empty(fills, dtype=_book.FILL_DTYPE)
        self.order_events = np.empty(order_events, dtype=_book.ORDER_EVENT_DTYPE)

    def __dealloc__(self):
        free(self.fill_sources)
        free(self.fill_sizes)
        free(self.event_sources)
        free(self.event_sizes)

    def merge_range(self, int64_t lo, int64_t hi) -> None:
        """Merge the records of events lo <= event_index < hi into place."""
        cdef char* fill_out = <char*> data_of(self.fills) if len(self.fills) else NULL
        cdef char* event_out = <char*> data_of(self.order_events) \
            if len(self.order_events) else NULL
        cdef Py_ssize_t sources = self.event_source_count
        cdef int64_t* positions = <int64_t*> malloc(2 * (sources + 1) * sizeof(int64_t))
        if positions == NULL:
            raise MemoryError("cannot merge tapes")
        cdef PyThreadState* released = release_gil_if(
            len(self.fills) + len(self.order_events) >= RELEASE_GIL_FROM)
        if fill_out != NULL:
            _merge_segment(self.fill_sources, self.fill_sizes, self.book_count,
                           sizeof(Fill), _FILL_KEY, lo, hi,
                           positions, positions + sources + 1, fill_out)
        if event_out != NULL:
            _merge_segment(self.event_sources, self.event_sizes, sources,
                           sizeof(OrderEvent), _ORDER_EVENT_KEY, lo, hi,
                           positions, positions + sources + 1, event_out)
        restore_gil(released)
        free(positions)
