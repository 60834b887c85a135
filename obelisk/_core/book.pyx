"""L3 order book and matching engine: price-time priority over integer ticks and lots.

Every way in (the per-call methods and the batch :meth:`OrderBook.process`)
goes through one C function, ``_apply``, so both give the same results bit for
bit. Matching runs in C, without the GIL for large batches; Python objects are made
only at the edge.
"""

from collections import namedtuple
from enum import IntEnum
import math
import os
import struct

import numpy as np

from cpython.buffer cimport PyBuffer_FillInfo
from cpython.number cimport PyIndex_Check, PyNumber_Index
from libc.stdint cimport (
    INT32_MAX,
    INT64_MAX,
    UINT32_MAX,
    int32_t,
    int64_t,
    uint8_t,
    uint32_t,
    uint64_t,
)
from libc.stdlib cimport free, realloc
from libc.string cimport memcpy, memmove, memset

from obelisk._core._buffers cimport const_data_of, data_of
from obelisk._core._gil cimport RELEASE_GIL_FROM, PyThreadState, release_gil_if, restore_gil
from obelisk._core._ints cimport small_int
from obelisk._core._memory cimport huge_pages
from obelisk._core._idmap cimport IdBucket, idmap_max_probe, idmap_reserve, idmap_room
from obelisk._core._ids cimport (
    ids_count,
    ids_covers,
    ids_expect,
    ids_find,
    ids_free,
    ids_hint,
    ids_order_hint,
    ids_init,
    ids_make_way,
    ids_remove,
    ids_add,
)
from obelisk._core.spare cimport spare_give, spare_grow, spare_take
from obelisk._core._sorted cimport lower_bound_near_end
from obelisk._core._sorted cimport prefetch as _prefetch
from obelisk._core._window cimport (
    NO_LEVEL,
    LevelWindow,
    OUTSIDE,
    WINDOW_TICKS,
    window_centre,
    window_centred,
    window_free,
    window_get,
    window_init,
    window_off_centre,
    window_set,
)
from obelisk._core._types cimport *
from obelisk._core.pool cimport (
    pool_free_memory,
    pool_full,
    pool_grow,
    pool_reserve,
    pool_init,
    pool_put,
    pool_stats,
    pool_take,
)

from obelisk._core._records import as_records, struct_dtype
from obelisk._core.errors import (
    ConcurrentUseError,
    DuplicateOrderIdError,
    InvalidOrderError,
    PoolExhaustedError,
    SnapshotError,
    UnknownOrderError,
)


# ---------------------------------------------------------------- public codes

class Side(IntEnum):
    """Order side."""
    BUY = SIDE_BUY
    SELL = SIDE_SELL


class EventKind(IntEnum):
    """What an input event asks the book to do."""
    LIMIT = KIND_LIMIT
    MARKET = KIND_MARKET
    CANCEL = KIND_CANCEL
    MODIFY = KIND_MODIFY


class TimeInForce(IntEnum):
    """GTC rests; IOC fills what it can; FOK fills all or nothing; ALO only adds liquidity."""
    GTC = TIF_GTC
    IOC = TIF_IOC
    FOK = TIF_FOK
    ALO = TIF_ALO


class SelfTradePrevention(IntEnum):
    """What happens when an order meets a resting order of its own owner (0 means no owner)."""
    CANCEL_RESTING = STP_CANCEL_RESTING
    CANCEL_INCOMING = STP_CANCEL_INCOMING
    CANCEL_BOTH = STP_CANCEL_BOTH
    ALLOW = STP_ALLOW


class OrderStatus(IntEnum):
    """The outcome of one event."""
    REJECTED = STATUS_REJECTED
    RESTED = STATUS_RESTED
    FILLED = STATUS_FILLED
    CANCELLED = STATUS_CANCELLED
    MODIFIED = STATUS_MODIFIED


class OrderEventKind(IntEnum):
    """A change in an order's life other than a fill."""
    RESTED = OEV_RESTED
    CANCELLED = OEV_CANCELLED
    REJECTED = OEV_REJECTED
    MODIFIED = OEV_MODIFIED


class Reason(IntEnum):
    """Why an event was rejected or an order cancelled."""
    NONE = REASON_NONE
    INVALID_KIND = REASON_INVALID_KIND
    INVALID_SIDE = REASON_INVALID_SIDE
    INVALID_TIF = REASON_INVALID_TIF
    INVALID_PRICE = REASON_INVALID_PRICE
    INVALID_QTY = REASON_INVALID_QTY
    DUPLICATE_OID = REASON_DUPLICATE_OID
    UNKNOWN_OID = REASON_UNKNOWN_OID
    ALO_WOULD_CROSS = REASON_ALO_WOULD_CROSS
    FOK_UNFILLABLE = REASON_FOK_UNFILLABLE
    SELF_TRADE = REASON_SELF_TRADE
    IOC_REMAINDER = REASON_IOC_REMAINDER
    USER_CANCEL = REASON_USER_CANCEL
    POOL_FULL = REASON_POOL_FULL
    LEVEL_OVERFLOW = REASON_LEVEL_OVERFLOW
    UNKNOWN_ASSET = REASON_UNKNOWN_ASSET
    OUT_OF_MEMORY = REASON_OUT_OF_MEMORY


# Eight bytes of a record in one store, where field by field takes up to five (each store
# saved shows on the deep mix): two 32-bit fields, or three one-byte codes and five bytes of
# padding. The value is built in a register (a struct built on the stack was read back
# whole, which defeats store forwarding) and placed for the machine's byte order.
#
# A large batch writes its tapes past the cache (non-temporal stores, x86-64): its fills
# and order events, ~60 bytes an event, outgrow the cache long before the batch ends, and
# a plain store first reads from memory each line it is about to overwrite. On the deep
# mix, after other work had taken the cache, that read cost a fresh book a third of its
# time (25 -> 40 M events/s; streaming the results too gained nothing more). Such stores
# are ordered with no other store until drained (_drain_streams): before a streamed
# record is rewritten or its tape moved, and before the batch returns.
cdef extern from *:
    """
    #include <string.h>
    #if defined(__x86_64__) || defined(_M_X64)
    #include <immintrin.h>
    #define OBELISK_STREAMS 1
    #else
    #define OBELISK_STREAMS 0
    #endif
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    #define OBELISK_AT_BYTE(value, index) ((uint64_t)(value) << (56 - 8 * (index)))
    #define OBELISK_AT_WORD(value, index) ((uint64_t)(value) << (32 - 32 * (index)))
    #else
    #define OBELISK_AT_BYTE(value, index) ((uint64_t)(value) << (8 * (index)))
    #define OBELISK_AT_WORD(value, index) ((uint64_t)(value) << (32 * (index)))
    #endif
    static inline uint64_t obelisk_pair(uint32_t first, uint32_t second) {
        return OBELISK_AT_WORD(first, 0) | OBELISK_AT_WORD(second, 1);
    }
    static inline uint64_t obelisk_codes(uint8_t a, uint8_t b, uint8_t c) {
        return OBELISK_AT_BYTE(a, 0) | OBELISK_AT_BYTE(b, 1) | OBELISK_AT_BYTE(c, 2);
    }
    /* A 32-bit field, then two one-byte codes and two bytes of padding. */
    static inline uint64_t obelisk_word_codes(uint32_t word, uint8_t a, uint8_t b) {
        return OBELISK_AT_WORD(word, 0) | OBELISK_AT_BYTE(a, 4) | OBELISK_AT_BYTE(b, 5);
    }
    static inline void obelisk_store_pair(void* at, uint32_t first, uint32_t second) {
        uint64_t value = obelisk_pair(first, second);
        memcpy(at, &value, sizeof value);
    }
    /* A record's words at `at` (8-byte aligned): w0 .. w5 and, when `seven`, w6; past the
       cache when `stream`. One test of `stream` a record, and each word stored from the
       register it was built in. */
    static inline void obelisk_put_record(void* at, int stream, int seven, uint64_t w0,
                                          uint64_t w1, uint64_t w2, uint64_t w3, uint64_t w4,
                                          uint64_t w5, uint64_t w6) {
        uint64_t* p = (uint64_t*) at;
    #if OBELISK_STREAMS
        if (stream) {
            _mm_stream_si64((long long*) p, (long long) w0);
            _mm_stream_si64((long long*) p + 1, (long long) w1);
            _mm_stream_si64((long long*) p + 2, (long long) w2);
            _mm_stream_si64((long long*) p + 3, (long long) w3);
            _mm_stream_si64((long long*) p + 4, (long long) w4);
            _mm_stream_si64((long long*) p + 5, (long long) w5);
            if (seven)
                _mm_stream_si64((long long*) p + 6, (long long) w6);
            return;
        }
    #endif
        memcpy(p, &w0, 8); memcpy(p + 1, &w1, 8); memcpy(p + 2, &w2, 8);
        memcpy(p + 3, &w3, 8); memcpy(p + 4, &w4, 8); memcpy(p + 5, &w5, 8);
        if (seven)
            memcpy(p + 6, &w6, 8);
    }
    static inline void obelisk_drain_streams(void) {
    #if OBELISK_STREAMS
        _mm_sfence();
    #endif
    }
    """
    uint64_t _pair "obelisk_pair"(uint32_t first, uint32_t second) noexcept nogil
    uint64_t _codes "obelisk_codes"(uint8_t a, uint8_t b, uint8_t c) noexcept nogil
    uint64_t _word_codes "obelisk_word_codes"(uint32_t word, uint8_t a, uint8_t b) noexcept nogil
    void _store_pair "obelisk_store_pair"(void* at, uint32_t first, uint32_t second) noexcept nogil
    void _put_record "obelisk_put_record"(void* at, bint stream, bint seven, uint64_t w0,
                                          uint64_t w1, uint64_t w2, uint64_t w3, uint64_t w4,
                                          uint64_t w5, uint64_t w6) noexcept nogil
    void _drain_streams "obelisk_drain_streams"() noexcept nogil


# Tape records that can be addressed without size_t overflow (also far beyond any RAM).
cdef int64_t _MAX_TAPE = (<int64_t> 1 << 40)

cdef enum:
    # How far from each end of a batch _expect_ids looks for its first and last limit orders.
    EXPECT_LOOK = 64
    # Events from which a batch writes its tapes past the cache: some 3 MB of records,
    # more than a core's cache holds. A smaller batch's records stay in the cache for the
    # caller, who reads them next (streaming a 20,000-event batch of the standard mix cost
    # it 2-4%; from 32,768 events on, it gained).
    STREAM_TAPES_FROM = 32768

MAX_PRICE_TICKS = MAX_PRICE
MAX_QTY_LOTS = MAX_QTY
STREAM_TAPES_FROM_EVENTS = STREAM_TAPES_FROM


# ------------------------------------------------------------- numpy dtypes

cdef Event _event
cdef Result _result
cdef Fill _fill
cdef OrderEvent _order_event
cdef RestingOrder _resting_order

EVENT_DTYPE = struct_dtype(<Event[:1]> &_event)
RESULT_DTYPE = struct_dtype(<Result[:1]> &_result)
FILL_DTYPE = struct_dtype(<Fill[:1]> &_fill)
ORDER_EVENT_DTYPE = struct_dtype(<OrderEvent[:1]> &_order_event)
ORDER_DTYPE = struct_dtype(<RestingOrder[:1]> &_resting_order)

BatchResult = namedtuple("BatchResult", ["results", "fills", "order_events"])
BatchResult.__doc__ = "Per-event results in input order, and the fill and order-event tapes."

RestingOrderInfo = namedtuple("RestingOrderInfo", ["oid", "side", "price", "qty", "owner", "tif"])
RestingOrderInfo.__doc__ = "A resting order as the book holds it now."

_SNAPSHOT_MAGIC = b"OBLKBOOK"
_SNAPSHOT_VERSION = 1
_SNAPSHOT_HEADER = struct.Struct("<8sIBxxxqq")

_INPUT_ERRORS = {
    REASON_INVALID_KIND: (InvalidOrderError, "event kind must be one of {}".format(
        ", ".join(k.name for k in EventKind))),
    REASON_INVALID_SIDE: (InvalidOrderError, "side must be Side.BUY (0) or Side.SELL (1)"),
    REASON_INVALID_TIF: (InvalidOrderError, "time in force must be GTC, IOC, FOK or ALO (0-3)"),
    REASON_INVALID_PRICE: (InvalidOrderError,
                           f"price must be a positive number of ticks up to {MAX_PRICE_TICKS} "
                           "(market orders: 0 for no protection price)"),
    REASON_INVALID_QTY: (InvalidOrderError,
                         f"quantity must be a positive number of lots up to {MAX_QTY_LOTS} "
                         "(modify: 0 cancels)"),
    REASON_DUPLICATE_OID: (DuplicateOrderIdError, "an order with this id is already resting"),
    REASON_UNKNOWN_OID: (UnknownOrderError, "no resting order has this id"),
    REASON_POOL_FULL: (PoolExhaustedError, "the order pool is full and not growable"),
}
# The same reasons as bits, so that a rejection that is not an input error (an ALO that
# would cross, an unfillable FOK) is told apart in C, with no int object or dict lookup.
cdef uint32_t _INPUT_ERROR_BITS = sum(1 << reason for reason in _INPUT_ERRORS)


# ---------------------------------------------------------- argument checks

cdef inline int64_t _whole(object value, str name) except? -1:
    """An integer argument (int, bool, numpy integer) as int64; anything else raises.

    A float, Decimal or numpy float is refused rather than truncated: 100.99
    ticks is not 100 ticks. Small exact ints take the fast path.
    """
    cdef int64_t whole
    if small_int(value, &whole):
        return whole
    return _whole_slow(value, name)


cdef int64_t _whole_slow(object value, str name) except? -1:
    if PyIndex_Check(value):
        return PyNumber_Index(value)
    try:
        nan = math.isnan(value)
    except (TypeError, ValueError, OverflowError):
        nan = False
    if nan:
        raise InvalidOrderError(f"{name} is NaN; it must be an integer")
    raise TypeError(f"{name} must be an integer (ticks, lots or an id), "
                    f"got {type(value).__name__} {value!r}")


cdef inline uint8_t _code(object value, str name) except? 255:
    """A side or time-in-force code; out-of-range integers become 255 (rejected later)."""
    cdef int64_t code = _whole(value, name)
    return <uint8_t> code if 0 <= code <= 254 else 255


cdef inline owner_t _owner(object value) except? 0xFFFFFFFF:
    # The common case inline, the rest (and its raise) out of line: a raise here kept
    # the compiler from inlining the whole, a call that cost 20 instructions an order.
    cdef int64_t owner
    if small_int(value, &owner) and 0 <= owner <= <int64_t> UINT32_MAX:
        return <owner_t> owner
    return _owner_slow(value)


cdef owner_t _owner_slow(object value) except? 0xFFFFFFFF:
    cdef int64_t owner = _whole_slow(value, "owner")
    if owner < 0 or owner > <int64_t> UINT32_MAX:
        raise OverflowError(f"owner must be between 0 and {UINT32_MAX}, got {owner}")
    return <owner_t> owner


cdef int _random_keys(uint64_t* key0, uint64_t* key1) except -1:
    """128 random bits from the OS in one call (each costs ~0.5 us), to key a book's
    order-id hash."""
    cdef bytes key = os.urandom(16)
    key0[0] = int.from_bytes(key[:8], "little")
    key1[0] = int.from_bytes(key[8:], "little")
    return 0


# ------------------------------------------------------------------ tapes

cdef void* _grown_tape(void* tape, int64_t kept, int64_t old_capacity, int64_t capacity,
                       size_t size) noexcept nogil:
    """A tape of `capacity` records holding the first `kept` of `tape` (`old_capacity`
    records); NULL when out of memory, `tape` untouched (see spare_grow)."""
    cdef void* grown = spare_grow(tape, <size_t> old_capacity * size, <size_t> kept * size,
                                  <size_t> capacity * size)
    if grown != NULL:
        huge_pages(grown, <size_t> capacity * size)
    return grown


cdef inline bint _owns(const Event* ev, const Order* order) noexcept nogil:
    """Whether a cancel or modify may act on `order`: one that names an owner acts only on
    that owner's orders (to it, another's do not exist); owner 0 acts on any."""
    return ev.owner == 0 or ev.owner == order.owner


cdef inline int64_t _nth(const int64_t* selected, int64_t k) noexcept nogil:
    """The position of a batch's k-th applied event: k, or selected[k] under a selection."""
    return selected[k] if selected != NULL else k


cdef inline int64_t _slack(int64_t used) noexcept nogil:
    """Free room below which a book's structure grows before it is full."""
    return 16 + used // 8


# --------------------------------------------------------- ladder primitives

cdef inline int64_t _key(uint8_t side, price_t price) noexcept nogil:
    """A price's ladder key, and a key's price (the map is its own inverse)."""
    return price if side == SIDE_BUY else -price


cdef inline int32_t _lower_bound(const Ladder* ladder, int64_t key) noexcept nogil:
    return lower_bound_near_end(ladder.keys, ladder.size, key)


cdef inline int32_t _find_level(const Ladder* ladder, int64_t key) noexcept nogil:
    """Level index for a key, or -1."""
    cdef int32_t pos = _lower_bound(ladder, key)
    if pos < ladder.size and ladder.keys[pos] == key:
        return ladder.levels[pos]
    return -1


cdef int _grow_ladder(Ladder* ladder) noexcept nogil:
    cdef int32_t capacity = ladder.capacity * 2 if ladder.capacity else 64
    cdef int64_t* keys = <int64_t*> realloc(ladder.keys, <size_t> capacity * sizeof(int64_t))
    if keys == NULL:
        return -1
    ladder.keys = keys
    cdef int32_t* levels = <int32_t*> realloc(ladder.levels, <size_t> capacity * sizeof(int32_t))
    if levels == NULL:
        return -1
    ladder.levels = levels
    ladder.capacity = capacity
    return 0


cdef class OrderBook:
    """A price-time priority limit order book for one instrument.

    Parameters
    ----------
    capacity : int
        Order slots allocated up front.
    growable : bool
        Grow the order pool when full (amortised); otherwise orders that would
        rest are refused with ``Reason.POOL_FULL``.
    stp : SelfTradePrevention
        Self-trade prevention mode; Hyperliquid cancels the resting order.

    Prices are integer ticks and quantities integer lots (see
    :class:`obelisk.Instrument`). Trades print at the resting order's price.

    One user at a time: each method holds the book while it runs (a batch
    without the GIL included), and a call from another thread meanwhile
    raises :class:`~obelisk.errors.ConcurrentUseError`. Use one book per
    thread, or :class:`~obelisk.sim.MatchingEngine` for many assets.
    """

    def __cinit__(self):
        # A small, valid book even if __init__ is never called (e.g. __new__).
        self._allocate(16, True)
        self.stp = STP_CANCEL_RESTING
        self.initialised = False

    def __init__(self, capacity: int = 1024, *, growable: bool = True,
                 stp: int = STP_CANCEL_RESTING) -> None:
        self._claim()
        try:
            if self.initialised:
                raise RuntimeError("OrderBook.__init__ must not be called twice")
            if not 1 <= capacity <= INT32_MAX:
                raise ValueError(f"capacity must be between 1 and {INT32_MAX}, got {capacity}")
            if stp not in (STP_CANCEL_RESTING, STP_CANCEL_INCOMING, STP_CANCEL_BOTH, STP_ALLOW):
                raise ValueError(f"stp must be a SelfTradePrevention value, got {stp!r}")
            self._release_memory()
            self._allocate(capacity, growable)
            self.stp = stp
            self.initialised = True
        finally:
            self._release()

    cdef int _allocate(self, slot_t capacity, bint growable) except -1:
        cdef int side
        self.pool.orders = NULL
        self.ids.map.buckets = NULL
        self.ids.ring = NULL
        self.levels = NULL
        self.fills = NULL
        self.order_events = NULL
        for side in range(2):
            self.windows[side].levels = NULL
            self.sides[side].keys = NULL
            self.sides[side].levels = NULL
            self.sides[side].size = 0
            self.sides[side].capacity = 0
            self.side_orders[side] = 0
        self.level_capacity = 0
        self.level_free = -1
        self.fill_count = 0
        self.fill_capacity = 0
        self.order_event_count = 0
        self.order_event_capacity = 0
        self.seq = 0
        self.tape_limit = 0
        self.rests_in_room = 0
        self.last.status = STATUS_REJECTED
        self.last.reason = REASON_NONE
        self.last.filled_qty = 0
        self.last.resting_qty = 0
        self.last.fill_count = 0
        cdef uint64_t key0, key1
        _random_keys(&key0, &key1)
        pool_init(&self.pool, capacity, growable)
        if ids_init(&self.ids, capacity, key0, key1) != 0:
            raise MemoryError("cannot allocate the order id index")
        if self._grow_levels() != 0 or _grow_ladder(&self.sides[0]) != 0 \
                or _grow_ladder(&self.sides[1]) != 0 or window_init(&self.windows[0]) != 0 \
                or window_init(&self.windows[1]) != 0:
            raise MemoryError("cannot allocate price levels")
        if self._reserve(256, 256) != 0:
            raise MemoryError("cannot allocate the fill tape")
        return 0

    cdef void _release_memory(self) noexcept:
        cdef int side
        pool_free_memory(&self.pool)
        ids_free(&self.ids)
        free(self.levels)
        spare_give(self.fills, <size_t> self.fill_capacity * sizeof(Fill))
        spare_give(self.order_events, <size_t> self.order_event_capacity * sizeof(OrderEvent))
        self.fill_capacity = 0
        self.order_event_capacity = 0
        self.levels = NULL
        self.fills = NULL
        self.order_events = NULL
        for side in range(2):
            window_free(&self.windows[side])
            free(self.sides[side].keys)
            free(self.sides[side].levels)
            self.sides[side].keys = NULL
            self.sides[side].levels = NULL

    def __dealloc__(self):
        self._release_memory()

    cdef int _claim(self) except -1:
        """Take the book for one caller until :meth:`_release`; ConcurrentUseError if taken.

        The test and the claim are one step: plain C with the GIL held and no
        Python call in between, so no other thread can claim the book in the
        gap. Every entry point claims before its first touch of the book's
        memory and releases (in a ``finally``) after its last.
        """
        if self.busy:
            raise ConcurrentUseError(
                "this OrderBook is in use by another thread (a batch, a per-call operation or "
                "a query); use one book from one thread at a time")
        self.busy = True
        return 0

    cdef void _release(self) noexcept:
        self.busy = False

    # ------------------------------------------------------ memory helpers

    cdef int _grow_levels(self) noexcept nogil:
        cdef int32_t capacity = self.level_capacity * 2 if self.level_capacity else 64
        cdef Level* levels = <Level*> realloc(self.levels, <size_t> capacity * sizeof(Level))
        cdef int32_t i
        if levels == NULL:
            return -1
        self.levels = levels
        for i in range(capacity - 1, self.level_capacity - 1, -1):
            levels[i].next_free = self.level_free
            self.level_free = i
        self.level_capacity = capacity
        return 0

    cdef inline int _reserve(self, int64_t fills, int64_t order_events) noexcept nogil:
        """Make room on the tapes for this many more records; -1 when out of memory."""
        if (self.fill_count + fills <= self.fill_capacity
                and self.order_event_count + order_events <= self.order_event_capacity
                and not self.tape_limit):
            return 0            # the usual case: a few compares, inlined into the caller
        return self._grow_tapes(fills, order_events)

    cdef int _grow_tapes(self, int64_t fills, int64_t order_events) noexcept nogil:
        cdef int64_t capacity
        cdef void* grown
        _drain_streams()            # the records written so far move with the tape
        if fills > _MAX_TAPE or order_events > _MAX_TAPE \
                or self.fill_count + fills > _MAX_TAPE \
                or self.order_event_count + order_events > _MAX_TAPE:
            return -1  # more records than memory could ever hold
        if self.tape_limit and (self.fill_count + fills > self.tape_limit
                                or self.order_event_count + order_events > self.tape_limit):
            return -1
        if self.fill_count + fills > self.fill_capacity:
            capacity = max(self.fill_capacity * 2, self.fill_count + fills)
            grown = _grown_tape(self.fills, self.fill_count, self.fill_capacity, capacity,
                                sizeof(Fill))
            if grown == NULL:
                return -1
            self.fills = <Fill*> grown
            self.fill_capacity = capacity
        if self.order_event_count + order_events > self.order_event_capacity:
            capacity = max(self.order_event_capacity * 2, self.order_event_count + order_events)
            grown = _grown_tape(self.order_events, self.order_event_count,
                                self.order_event_capacity, capacity, sizeof(OrderEvent))
            if grown == NULL:
                return -1
            self.order_events = <OrderEvent*> grown
            self.order_event_capacity = capacity
        return 0

    def reserve(self, fills: int, order_events: int) -> None:
        """Preallocate (and touch) room for this many fills and order events per call.

        The tapes otherwise grow on demand; reserving up front keeps a large
        first batch from paying for that growth and for first-touch page faults.
        """
        if not (0 <= fills <= _MAX_TAPE and 0 <= order_events <= _MAX_TAPE):
            raise ValueError(f"reserve sizes must be between 0 and {_MAX_TAPE}")
        cdef int64_t fill_room = fills
        cdef int64_t event_room = order_events
        self._claim()
        try:
            self.fill_count = 0
            self.order_event_count = 0
            if self._reserve(fill_room, event_room) != 0:
                raise MemoryError(f"cannot reserve {fills} fills and {order_events} order events")
            memset(self.fills, 0, <size_t> self.fill_capacity * sizeof(Fill))
            memset(self.order_events, 0,
                   <size_t> self.order_event_capacity * sizeof(OrderEvent))
        finally:
            self._release()

    def _limit_tapes(self, int64_t records) -> None:
        """Fail tape growth beyond `records` as if memory ran out (0 lifts it); for tests."""
        self._claim()
        self.tape_limit = records
        self._release()

    def _id_index_max_probe(self) -> int:
        """Longest probe distance in the order-id index; for tests of hash flooding."""
        self._claim()
        try:
            return idmap_max_probe(&self.ids.map)
        finally:
            self._release()

    def _id_index_keyed(self) -> bool:
        """Whether the order-id index has switched to its keyed hash; for tests."""
        return self.ids.map.key[2] != 0

    def _tape_capacity(self):
        """(fill records, order-event records) the tapes can hold now; for tests."""
        self._claim()
        try:
            return self.fill_capacity, self.order_event_capacity
        finally:
            self._release()

    cdef inline int _ensure_room(self, oid_t oid) noexcept nogil:
        """Grow whatever resting one more order (id `oid`) needs, before any change; -1 when
        out of memory.

        After this, resting the order cannot fail for lack of memory, so an
        event either happens whole or, on -1, not at all. Usually two compares:
        the id index's ring covers the id, and the rests the room counted last
        time are not used up.
        """
        if ids_covers(&self.ids, oid) and self.rests_in_room > 0:
            return 0
        return self._make_room(oid)

    cdef int _make_room(self, oid_t oid) noexcept nogil:
        """Make way for `oid` in the id index's ring; when the count of rests ran out (or ids
        the ring left took room in the map), grow what is full or nearly, then count the
        rests the room now holds (0 with a full pool that may not grow: each rest then asks
        again, and is refused). Growing levels, ladders and the id map ahead, by a slack of
        an eighth, keeps the count from running out every few rests."""
        cdef int side
        cdef int64_t room
        cdef int64_t levels_used = self.sides[0].size + self.sides[1].size
        cdef int moved = ids_make_way(&self.ids, self.pool.orders, oid)
        if moved < 0:
            return -1
        if moved:
            self.rests_in_room = 0          # ids the ring left took room in the map
        if self.rests_in_room > 0:
            return 0
        if self.level_capacity - levels_used < _slack(levels_used) and self._grow_levels() != 0:
            return -1
        for side in range(2):
            if self.sides[side].capacity - self.sides[side].size < _slack(self.sides[side].size) \
                    and _grow_ladder(&self.sides[side]) != 0:
                return -1
        if pool_full(&self.pool) and self.pool.growable and pool_grow(&self.pool) != 0:
            return -1       # the arena only when full: doubling it early costs the most
        if idmap_room(&self.ids.map) < _slack(self.ids.map.count) and idmap_reserve(
                &self.ids.map, self.ids.map.count + _slack(self.ids.map.count)) != 0:
            return -1
        # A level per ladder entry; the id index stays at most 3/4 full.
        room = self.level_capacity - levels_used
        for side in range(2):
            room = min(room, self.sides[side].capacity - self.sides[side].size)
        room = min(room, <int64_t> (self.pool.capacity - self.pool.in_use))
        room = min(room, idmap_room(&self.ids.map))
        self.rests_in_room = room if room > 0 else 0
        return 0

    # ---------------------------------------------------------- tape writers

    cdef inline void _emit_fill(self, const Order* taker, const Order* maker, price_t price,
                                qty_t qty, int32_t index) noexcept nogil:
        self.seq += 1
        _put_record(&self.fills[self.fill_count], self.stream_tapes, True, <uint64_t> self.seq,
                    <uint64_t> taker.oid, <uint64_t> maker.oid, <uint64_t> price, <uint64_t> qty,
                    _pair(taker.owner, maker.owner),
                    _word_codes(<uint32_t> index, taker.side, maker.qty == 0))
        self.fill_count += 1

    cdef inline OrderEvent* _emit_event(self, uint8_t kind, uint8_t reason, oid_t oid,
                                        price_t price, qty_t qty, owner_t owner, uint8_t side,
                                        int32_t index) noexcept nogil:
        """Write an order event on the tape (in room reserved for it); the event."""
        cdef OrderEvent* event = &self.order_events[self.order_event_count]
        self.order_event_count += 1
        self.seq += 1
        _put_record(event, self.stream_tapes, False, <uint64_t> self.seq, <uint64_t> oid,
                    <uint64_t> price, <uint64_t> qty, _pair(owner, <uint32_t> index),
                    _codes(kind, reason, side), 0)
        return event

    cdef int _reject(self, const Event* ev, int32_t index, Result* res,
                     uint8_t reason) noexcept nogil:
        if self._reserve(0, 1) != 0:
            return -1
        self._emit_event(OEV_REJECTED, reason, ev.oid, ev.price, ev.qty, ev.owner, ev.side, index)
        res.status = STATUS_REJECTED
        res.reason = reason
        return 0

    # ------------------------------------------------------ order plumbing

    cdef void _detach(self, slot_t slot) noexcept nogil:
        """Take a resting order off its level FIFO and out of the book (the level may go empty)."""
        cdef Order* order = &self.pool.orders[slot]
        cdef Level* level = &self.levels[order.level]
        if order.prev != NO_SLOT:
            self.pool.orders[order.prev].next = order.next
        else:
            level.head = order.next
        if order.next != NO_SLOT:
            self.pool.orders[order.next].prev = order.prev
        else:
            level.tail = order.prev
        level.total -= order.qty
        level.count -= 1
        self.side_orders[order.side] -= 1
        ids_remove(&self.ids, self.pool.orders, order.oid, slot)
        pool_put(&self.pool, slot)

    cdef inline int32_t _level_at(self, uint8_t side, price_t price) noexcept nogil:
        """The level at `price` on `side`, or NO_LEVEL: the window near the touch, the
        ladder beyond it."""
        cdef int32_t level_index = window_get(&self.windows[side], price)
        if level_index == OUTSIDE:
            return _find_level(&self.sides[side], _key(side, price))
        return level_index

    cdef inline void _free_level(self, uint8_t side, int32_t level_index) noexcept nogil:
        """Take an empty level, already out of its ladder, out of the window and recycle it."""
        window_set(&self.windows[side], self.levels[level_index].price, NO_LEVEL)
        self.levels[level_index].next_free = self.level_free
        self.level_free = level_index

    cdef void _drop_level(self, uint8_t side, int32_t level_index) noexcept nogil:
        """Remove an empty level from its ladder and recycle it."""
        cdef Ladder* ladder = &self.sides[side]
        cdef int32_t pos = _lower_bound(ladder, _key(side, self.levels[level_index].price))
        memmove(&ladder.keys[pos], &ladder.keys[pos + 1],
                <size_t> (ladder.size - pos - 1) * sizeof(int64_t))
        memmove(&ladder.levels[pos], &ladder.levels[pos + 1],
                <size_t> (ladder.size - pos - 1) * sizeof(int32_t))
        ladder.size -= 1
        self._free_level(side, level_index)

    cdef void _remove_order(self, slot_t slot) noexcept nogil:
        cdef uint8_t side = self.pool.orders[slot].side
        cdef int32_t level_index = self.pool.orders[slot].level
        self._detach(slot)
        if self.levels[level_index].count == 0:
            self._drop_level(side, level_index)

    cdef uint8_t _rest(self, oid_t oid, uint8_t side, price_t price, qty_t qty, uint8_t tif,
                       owner_t owner) noexcept nogil:
        """Append an order at the tail of its level; a reason code when it cannot rest.

        Only after ``_ensure_room``: the level, ladder entry, slot and id-map room it may
        take are there, so nothing is grown or checked for here."""
        cdef int32_t level_index = self._level_at(side, price)
        cdef Level* level
        cdef Order* order
        cdef slot_t slot
        if level_index != NO_LEVEL and self.levels[level_index].total > INT64_MAX - qty:
            return REASON_LEVEL_OVERFLOW
        slot = pool_take(&self.pool)
        if slot == NO_SLOT:
            return REASON_POOL_FULL         # a pool that may not grow
        self.rests_in_room -= 1
        order = &self.pool.orders[slot]
        order.oid = oid
        ids_add(&self.ids, self.pool.orders, slot)
        if level_index == NO_LEVEL:
            level_index = self._new_level(side, price)
        level = &self.levels[level_index]
        order.qty = qty
        order.owner = owner
        order.side = side
        order.tif = tif
        order.level = level_index
        order.next = NO_SLOT
        order.prev = level.tail
        if level.tail != NO_SLOT:
            self.pool.orders[level.tail].next = slot
        else:
            level.head = slot
        level.tail = slot
        level.total += qty
        level.count += 1
        self.side_orders[side] += 1
        return REASON_NONE

    cdef int32_t _new_level(self, uint8_t side, price_t price) noexcept nogil:
        """Take a free level for `price` and put it in its ladder and window (after
        ``_ensure_room``); its index."""
        cdef Ladder* ladder = &self.sides[side]
        cdef int64_t key = _key(side, price)
        cdef int32_t pos = _lower_bound(ladder, key)
        cdef int32_t level_index = self.level_free
        cdef Level* level = &self.levels[level_index]
        self.level_free = level.next_free
        level.price = price
        level.total = 0
        level.count = 0
        level.head = NO_SLOT
        level.tail = NO_SLOT
        memmove(&ladder.keys[pos + 1], &ladder.keys[pos],
                <size_t> (ladder.size - pos) * sizeof(int64_t))
        memmove(&ladder.levels[pos + 1], &ladder.levels[pos],
                <size_t> (ladder.size - pos) * sizeof(int32_t))
        ladder.keys[pos] = key
        ladder.levels[pos] = level_index
        ladder.size += 1
        # A level outside the window moves it only once the touch has left its middle half.
        cdef LevelWindow* window = &self.windows[side]
        if not window_set(window, price, level_index) \
                and window_off_centre(window, _key(side, ladder.keys[ladder.size - 1])):
            window_centre(window, ladder.keys, ladder.levels, ladder.size,
                          1 if side == SIDE_BUY else -1)
        return level_index

    # ------------------------------------------------------------ matching

    cdef inline bint _crosses(self, uint8_t side, int64_t threshold) noexcept nogil:
        """Whether the opposite side's best level is marketable for a taker on `side`."""
        cdef Ladder* opposite = &self.sides[1 - side]
        return opposite.size > 0 and opposite.keys[opposite.size - 1] >= threshold

    cdef qty_t _fillable(self, uint8_t side, int64_t threshold, owner_t owner,
                         qty_t wanted) noexcept nogil:
        """Quantity a taker could fill before stopping, counting self-trade prevention."""
        cdef Ladder* opposite = &self.sides[1 - side]
        cdef qty_t total = 0
        cdef int32_t pos
        cdef Level* level
        cdef slot_t slot
        cdef Order* order
        cdef bint own_orders_matter = owner != 0 and self.stp != STP_ALLOW
        for pos in range(opposite.size - 1, -1, -1):
            if opposite.keys[pos] < threshold:
                break
            level = &self.levels[opposite.levels[pos]]
            if not own_orders_matter:
                if level.total >= wanted - total:
                    return wanted  # enough; adding could overflow int64
                total += level.total
            else:
                slot = level.head
                while slot != NO_SLOT:
                    order = &self.pool.orders[slot]
                    if order.owner == owner:
                        if self.stp != STP_CANCEL_RESTING:
                            return total
                    else:
                        total += order.qty
                        if total >= wanted:
                            return total
                    slot = order.next
            if total >= wanted:
                return total
        return total

    cdef int _execute(self, oid_t oid, uint8_t side, price_t price, qty_t qty, uint8_t tif,
                      owner_t owner, int64_t threshold, int32_t index,
                      Result* res) noexcept nogil:
        """Match an accepted order against the opposite side, then rest or cancel the rest."""
        cdef Ladder* opposite = &self.sides[1 - side]
        cdef qty_t remaining = qty
        cdef qty_t traded
        cdef bint stopped = False
        cdef int32_t level_index
        cdef Level* level
        cdef slot_t slot, next_slot
        cdef Order* maker
        cdef Order taker
        cdef uint8_t reason
        taker.oid = oid
        taker.owner = owner
        taker.side = side
        while remaining > 0 and opposite.size > 0:
            if opposite.keys[opposite.size - 1] < threshold:
                break
            level_index = opposite.levels[opposite.size - 1]
            level = &self.levels[level_index]
            slot = level.head
            while slot != NO_SLOT:
                maker = &self.pool.orders[slot]
                next_slot = maker.next
                if owner != 0 and maker.owner == owner and self.stp != STP_ALLOW:
                    if self.stp != STP_CANCEL_INCOMING:
                        self._emit_event(OEV_CANCELLED, REASON_SELF_TRADE, maker.oid, level.price,
                                         maker.qty, maker.owner, maker.side, index)
                        self._detach(slot)
                    if self.stp != STP_CANCEL_RESTING:
                        stopped = True
                        break
                    slot = next_slot
                    continue
                traded = remaining if remaining < maker.qty else maker.qty
                remaining -= traded
                maker.qty -= traded
                level.total -= traded
                self._emit_fill(&taker, maker, level.price, traded, index)
                res.fill_count += 1
                if maker.qty == 0:
                    self._detach(slot)
                if remaining == 0:
                    break
                slot = next_slot
            if level.count == 0:
                opposite.size -= 1          # the best level: last in its ladder
                self._free_level(1 - side, level_index)
            if stopped:
                break
        res.filled_qty = qty - remaining
        if remaining == 0:
            res.status = STATUS_FILLED
            return 0
        if stopped:
            reason = REASON_SELF_TRADE
        elif tif == TIF_GTC or tif == TIF_ALO:
            reason = REASON_NONE
        else:
            reason = REASON_IOC_REMAINDER
        return self._conclude(oid, side, price, remaining, tif, owner, reason, index, res)

    cdef inline int _conclude(self, oid_t oid, uint8_t side, price_t price, qty_t qty,
                              uint8_t tif, owner_t owner, uint8_t reason, int32_t index,
                              Result* res) noexcept nogil:
        """End an order with `qty` left: rest it when `reason` is REASON_NONE, else (or when
        it cannot rest) cancel what is left for that reason."""
        cdef OrderEvent* event
        if reason != REASON_NONE:
            self._emit_event(OEV_CANCELLED, reason, oid, price, qty, owner, side, index)
        else:
            # The event is written before the order rests, so that none of the order's
            # fields must outlive the call (2-3% on the deep mix); an order that cannot
            # rest turns it into its cancel, which has the same fields.
            event = self._emit_event(OEV_RESTED, REASON_NONE, oid, price, qty, owner, side,
                                     index)
            reason = self._rest(oid, side, price, qty, tif, owner)
            if reason == REASON_NONE:
                res.status = STATUS_RESTED
                res.resting_qty = qty
                return 0
            _drain_streams()        # the event may still be on its way past the cache
            event.kind = OEV_CANCELLED
            event.reason = reason
        res.status = STATUS_CANCELLED
        res.reason = reason
        return 0

    cdef inline int _reserve_taker(self, uint8_t side, int64_t threshold, owner_t owner,
                                   qty_t qty, bint crossing) noexcept nogil:
        """Room on the tapes for all one incoming order can write; -1 when out of memory.

        The order writes a fill per resting order it trades with (at most its
        quantity in lots), an order event per own resting order that
        STP_CANCEL_RESTING cancels, and at most two more (its own rest or
        cancel, and the one resting order STP_CANCEL_BOTH cancels). A cheap
        bound is used when the tapes already hold it; otherwise the opposite
        side is walked as far as the order can reach, so the depth of the
        book never sizes the tapes. An order that does not cross (`crossing`,
        from ``_crosses``) writes only its own rest or cancel.
        """
        if not crossing:
            return self._reserve(0, 1)
        return self._reserve_crossing(side, threshold, owner, qty)

    cdef int _reserve_crossing(self, uint8_t side, int64_t threshold, owner_t owner,
                               qty_t qty) noexcept nogil:
        """``_reserve_taker`` for an order that crosses."""
        cdef int64_t opposite = self.side_orders[1 - side]
        cdef bint cancels_resting = owner != 0 and self.stp == STP_CANCEL_RESTING
        cdef int64_t fills = qty if qty < opposite else opposite
        cdef int64_t events = opposite + 2 if cancels_resting else 2
        if self.fill_count + fills > self.fill_capacity \
                or self.order_event_count + events > self.order_event_capacity:
            self._count_reach(side, threshold, owner, qty, cancels_resting, &fills, &events)
        return self._reserve(fills, events)

    cdef void _count_reach(self, uint8_t side, int64_t threshold, owner_t owner, qty_t qty,
                           bint cancels_resting, int64_t* fills,
                           int64_t* events) noexcept nogil:
        """Upper bounds on the fills and order events an incoming order can write."""
        cdef Ladder* opposite = &self.sides[1 - side]
        cdef qty_t remaining = qty
        cdef int32_t pos
        cdef Level* level
        cdef slot_t slot
        cdef Order* order
        fills[0] = 0
        events[0] = 2
        for pos in range(opposite.size - 1, -1, -1):
            if remaining <= 0 or opposite.keys[pos] < threshold:
                break
            level = &self.levels[opposite.levels[pos]]
            if not cancels_resting and level.total < remaining:
                fills[0] += level.count           # the whole level trades (or STP stops it)
                remaining -= level.total
                continue
            slot = level.head
            while slot != NO_SLOT and remaining > 0:
                order = &self.pool.orders[slot]
                if cancels_resting and order.owner == owner:
                    events[0] += 1
                else:
                    fills[0] += 1
                    remaining -= order.qty
                slot = order.next

    cdef int64_t _threshold(self, uint8_t side, price_t limit) noexcept nogil:
        """Lowest opposite-side key a taker with this limit may trade at."""
        return -limit if side == SIDE_BUY else limit

    cdef int _place(self, const Event* ev, int32_t index, Result* res) noexcept nogil:
        cdef uint8_t side = ev.side
        cdef uint8_t tif = ev.tif
        cdef price_t limit = ev.price
        cdef int64_t threshold
        cdef bint crossing
        if side > SIDE_SELL:
            return self._reject(ev, index, res, REASON_INVALID_SIDE)
        if ev.kind == KIND_LIMIT:
            if tif > TIF_ALO:
                return self._reject(ev, index, res, REASON_INVALID_TIF)
            if ev.price <= 0 or ev.price > MAX_PRICE:
                return self._reject(ev, index, res, REASON_INVALID_PRICE)
        else:
            if ev.price < 0 or ev.price > MAX_PRICE:
                return self._reject(ev, index, res, REASON_INVALID_PRICE)
            tif = TIF_IOC
            if limit == 0 and side == SIDE_BUY:
                limit = MAX_PRICE
        if ev.qty <= 0 or ev.qty > MAX_QTY:
            return self._reject(ev, index, res, REASON_INVALID_QTY)
        if ids_find(&self.ids, self.pool.orders, ev.oid) != NO_SLOT:
            return self._reject(ev, index, res, REASON_DUPLICATE_OID)
        threshold = self._threshold(side, limit)
        crossing = self._crosses(side, threshold)
        if tif == TIF_GTC and not crossing:
            # most adds: no fill to count room for, no matching loop to set up
            if not self.pool.growable and pool_full(&self.pool):
                return self._reject(ev, index, res, REASON_POOL_FULL)
            if self._reserve(0, 1) != 0 or self._ensure_room(ev.oid) != 0:
                return -1
            return self._conclude(ev.oid, side, ev.price, ev.qty, TIF_GTC, ev.owner,
                                  REASON_NONE, index, res)
        if tif == TIF_ALO and crossing:
            return self._reject(ev, index, res, REASON_ALO_WOULD_CROSS)
        if tif == TIF_FOK and self._fillable(side, threshold, ev.owner, ev.qty) < ev.qty:
            return self._reject(ev, index, res, REASON_FOK_UNFILLABLE)
        if (tif == TIF_GTC or tif == TIF_ALO) and pool_full(&self.pool) \
                and not self.pool.growable \
                and self._fillable(side, threshold, ev.owner, ev.qty) < ev.qty:
            return self._reject(ev, index, res, REASON_POOL_FULL)
        if self._reserve_taker(side, threshold, ev.owner, ev.qty, crossing) != 0:
            return -1
        if (tif == TIF_GTC or tif == TIF_ALO) and self._ensure_room(ev.oid) != 0:
            return -1
        return self._execute(ev.oid, side, ev.price, ev.qty, tif, ev.owner, threshold, index, res)

    cdef int _cancel(self, const Event* ev, int32_t index, Result* res) noexcept nogil:
        cdef slot_t slot = ids_find(&self.ids, self.pool.orders, ev.oid)
        cdef Order* order
        if slot == NO_SLOT or not _owns(ev, &self.pool.orders[slot]):
            return self._reject(ev, index, res, REASON_UNKNOWN_OID)
        if self._reserve(0, 1) != 0:
            return -1
        order = &self.pool.orders[slot]
        self._emit_event(OEV_CANCELLED, REASON_USER_CANCEL, order.oid,
                         self.levels[order.level].price, order.qty,
                         order.owner, order.side, index)
        res.status = STATUS_CANCELLED
        res.reason = REASON_USER_CANCEL
        self._remove_order(slot)
        return 0

    cdef int _modify(self, const Event* ev, int32_t index, Result* res) noexcept nogil:
        cdef slot_t slot = ids_find(&self.ids, self.pool.orders, ev.oid)
        cdef Order* order
        cdef uint8_t side, tif
        cdef owner_t owner
        cdef int64_t threshold
        cdef bint crossing
        cdef int32_t level_index
        cdef qty_t others
        if slot == NO_SLOT or not _owns(ev, &self.pool.orders[slot]):
            return self._reject(ev, index, res, REASON_UNKNOWN_OID)
        if ev.price <= 0 or ev.price > MAX_PRICE:
            return self._reject(ev, index, res, REASON_INVALID_PRICE)
        if ev.qty < 0 or ev.qty > MAX_QTY:
            return self._reject(ev, index, res, REASON_INVALID_QTY)
        order = &self.pool.orders[slot]
        if ev.qty == 0:
            return self._cancel(ev, index, res)
        side = order.side
        if ev.price == self.levels[order.level].price and ev.qty <= order.qty:
            if self._reserve(0, 1) != 0:
                return -1
            self.levels[order.level].total -= order.qty - ev.qty
            order.qty = ev.qty
            self._emit_event(OEV_MODIFIED, REASON_NONE, order.oid, ev.price, order.qty,
                             order.owner, side, index)
            res.status = STATUS_MODIFIED
            res.resting_qty = order.qty
            return 0
        tif = order.tif
        owner = order.owner
        threshold = self._threshold(side, ev.price)
        crossing = self._crosses(side, threshold)
        if tif == TIF_ALO and crossing:
            return self._reject(ev, index, res, REASON_ALO_WOULD_CROSS)
        level_index = self._level_at(side, ev.price)
        if level_index != NO_LEVEL:
            others = self.levels[level_index].total
            if level_index == order.level:
                others -= order.qty
            if others > INT64_MAX - ev.qty:
                return self._reject(ev, index, res, REASON_LEVEL_OVERFLOW)
        if self._reserve_taker(side, threshold, owner, ev.qty, crossing) != 0:
            return -1
        if self._ensure_room(ev.oid) != 0:
            return -1
        self._remove_order(slot)
        return self._execute(ev.oid, side, ev.price, ev.qty, tif, owner, threshold, index, res)

    cdef int _apply(self, const Event* ev, int32_t index, Result* res) noexcept nogil:
        """Apply one event; -1 only when memory for the tapes ran out (the book is unchanged)."""
        res.filled_qty = 0
        res.resting_qty = 0
        _store_pair(&res.fill_count, 0, 0)     # no fills; STATUS_REJECTED and REASON_NONE are 0
        if ev.kind == KIND_LIMIT or ev.kind == KIND_MARKET:
            return self._place(ev, index, res)
        if ev.kind == KIND_CANCEL:
            return self._cancel(ev, index, res)
        if ev.kind == KIND_MODIFY:
            return self._modify(ev, index, res)
        return self._reject(ev, index, res, REASON_INVALID_KIND)

    cdef int64_t _run(self, const Event* events, const int64_t* selected, int64_t n,
                      Result* results) noexcept nogil:
        """Apply events in order; the number applied (< n only when memory ran out).

        With `selected`, apply only events[selected[0]], events[selected[1]], ...;
        result k is that of the k-th applied event, while the tapes' event
        indices stay positions in the full array. Each event's id lookup is a
        likely cache miss, and so is the order a cancel finds: the loop prefetches
        the lookup 16 events ahead, and the order it holds 6 events ahead.
        """
        cdef int64_t k, i
        cdef const Event* ahead
        self._reserve_for(events, selected, n)
        if selected == NULL:        # the loop below without its selection (2-3%)
            for k in range(n):
                if k + 16 < n:
                    _prefetch(ids_hint(&self.ids, events[k + 16].oid))
                if k + 6 < n:
                    _prefetch(ids_order_hint(&self.ids, self.pool.orders, events[k + 6].oid))
                if self._apply(&events[k], <int32_t> k, &results[k]) != 0:
                    return k
            return n
        for k in range(n):
            if k + 16 < n:
                ahead = &events[_nth(selected, k + 16)]
                _prefetch(ids_hint(&self.ids, ahead.oid))
            if k + 6 < n:
                ahead = &events[_nth(selected, k + 6)]
                _prefetch(ids_order_hint(&self.ids, self.pool.orders, ahead.oid))
            i = _nth(selected, k)
            if self._apply(&events[i], <int32_t> i, &results[k]) != 0:
                return k
        return n

    cdef void _reserve_for(self, const Event* events, const int64_t* selected,
                           int64_t n) noexcept nogil:
        """Grow once, up front, what a batch of `n` events may need, reading none but its
        ends: an order event and a fill per event on the tapes, a pool slot per event, and
        an id ring over its new ids. Growing by doubling inside the loop instead copies the
        same memory again at every step (a fresh book resting 200,000 orders copied its
        arena 8 times; on the deep mix, its fill tape 9 times and its id ring 6), and a pass
        counting what the events need cost about as much as it saved. Room reserved is not
        touched: a slot or a record costs its memory only once written. Best effort: what
        cannot be had now is grown, or refused, per event as before."""
        cdef int64_t one_doubling = 2 * <int64_t> self.pool.capacity - self.pool.in_use
        if n < 64:
            return              # the per-event path grows little batches as cheaply
        self._reserve(0, n)     # each refused, and left to the events, past a tape limit
        self._reserve(n, 0)     # a guess at the fills, from which a sweep grows the tape
        if n > one_doubling:    # up to one doubling, the per-event path grows as cheaply
            pool_reserve(&self.pool, n)
        self._expect_ids(events, selected, n)

    cdef void _expect_ids(self, const Event* events, const int64_t* selected,
                          int64_t n) noexcept nogil:
        """Tell an empty id ring the span of a batch's new ids, from its first and last limit
        orders (among the EXPECT_LOOK events at each end): a counter's ids rise through a
        batch. Only a dense span (under two ids per event) sizes the ring; ids outside it
        go to the map, or move or grow the ring, as before."""
        cdef int64_t first = 0, last = n - 1
        cdef oid_t low, high
        if self.ids.ring_count != 0:
            return
        while first < n and first < EXPECT_LOOK \
                and events[_nth(selected, first)].kind != KIND_LIMIT:
            first += 1
        while last > first and last >= n - EXPECT_LOOK \
                and events[_nth(selected, last)].kind != KIND_LIMIT:
            last -= 1
        if first >= n or first == EXPECT_LOOK or last < n - EXPECT_LOOK:
            return              # no limit order near an end: nothing to go by
        low = events[_nth(selected, first)].oid
        high = events[_nth(selected, last)].oid
        if low <= high and <uint64_t> high - <uint64_t> low < 2 * <uint64_t> n:
            ids_expect(&self.ids, low, high)

    # ------------------------------------------------------ per-call API

    cdef void _begin_call(self) noexcept:
        self.fill_count = 0
        self.order_event_count = 0

    cdef int _call(self, Event* ev, qty_t* cancelled) except -1:
        """Apply one event under a claim; its status (`cancelled`: the first event's qty)."""
        cdef int failed
        cdef uint8_t status, reason
        if self.busy:
            self._claim()           # raises ConcurrentUseError
        # From the check above to the last read below, C code under the GIL (_apply is
        # noexcept nogil and runs no Python code): the check is the claim, as nothing can
        # run in between, and there is no flag to set or release.
        self._begin_call()
        failed = self._apply(ev, 0, &self.last)
        if cancelled != NULL and self.order_event_count:
            cancelled[0] = self.order_events[0].qty
        status = self.last.status
        reason = self.last.reason
        if failed:
            raise MemoryError("out of memory for the fill tape; the book is unchanged")
        if status == STATUS_REJECTED and reason < 32 and (_INPUT_ERROR_BITS >> reason) & 1:
            error, rule = _INPUT_ERRORS[reason]
            raise error(f"order {ev.oid} (side {ev.side}, price {ev.price}, qty {ev.qty}, "
                        f"tif {ev.tif}) rejected: {rule}")
        return status

    def add(self, oid, side, price, qty, tif=TIF_GTC, owner=0) -> int:
        """Place a limit order; returns its OrderStatus.

        Ids, prices (ticks), quantities (lots) and owners are integers: a
        float or Decimal raises TypeError rather than being truncated (a NaN
        raises InvalidOrderError). Bad input raises (InvalidOrderError,
        DuplicateOrderIdError, PoolExhaustedError) and leaves the book as it
        was; an ALO that would cross or an unfillable FOK returns
        ``OrderStatus.REJECTED``.
        """
        cdef Event ev
        ev.kind = KIND_LIMIT
        ev.oid = _whole(oid, "oid")
        ev.side = _code(side, "side")
        ev.price = _whole(price, "price")
        ev.qty = _whole(qty, "qty")
        ev.tif = _code(tif, "tif")
        ev.owner = _owner(owner)
        ev.asset = 0
        return self._call(&ev, NULL)

    def market(self, oid, side, qty, protection_price=0, owner=0) -> int:
        """Take liquidity immediately (IOC), no worse than `protection_price` when given."""
        cdef Event ev
        ev.kind = KIND_MARKET
        ev.oid = _whole(oid, "oid")
        ev.side = _code(side, "side")
        ev.price = _whole(protection_price, "protection_price")
        ev.qty = _whole(qty, "qty")
        ev.tif = TIF_IOC
        ev.owner = _owner(owner)
        ev.asset = 0
        return self._call(&ev, NULL)

    def cancel(self, oid, owner=0) -> int:
        """Cancel a resting order; returns the quantity that was resting. With an `owner`,
        only that owner's order (another's is unknown to it)."""
        cdef Event ev
        cdef qty_t cancelled = 0
        ev.kind = KIND_CANCEL
        ev.oid = _whole(oid, "oid")
        ev.side = 0
        ev.price = 0
        ev.qty = 0
        ev.tif = 0
        ev.owner = _owner(owner)
        ev.asset = 0
        self._call(&ev, &cancelled)
        return cancelled

    def modify(self, oid, price, qty, owner=0) -> int:
        """Change a resting order's price and remaining quantity; returns its OrderStatus.

        A smaller quantity at the same price keeps queue priority
        (``MODIFIED``); a new price or a larger quantity re-queues the order,
        which may then trade; quantity 0 cancels it. With an `owner`, only that
        owner's order (another's is unknown to it).
        """
        cdef Event ev
        ev.kind = KIND_MODIFY
        ev.oid = _whole(oid, "oid")
        ev.side = 0
        ev.price = _whole(price, "price")
        ev.qty = _whole(qty, "qty")
        ev.tif = 0
        ev.owner = _owner(owner)
        ev.asset = 0
        return self._call(&ev, NULL)

    @property
    def last_status(self) -> int:
        """OrderStatus of the last per-call operation."""
        self._claim()
        try:
            return self.last.status
        finally:
            self._release()

    @property
    def last_reason(self) -> int:
        """Reason code of the last per-call operation."""
        self._claim()
        try:
            return self.last.reason
        finally:
            self._release()

    @property
    def last_filled_qty(self) -> int:
        self._claim()
        try:
            return self.last.filled_qty
        finally:
            self._release()

    @property
    def last_resting_qty(self) -> int:
        self._claim()
        try:
            return self.last.resting_qty
        finally:
            self._release()

    @property
    def last_fill_count(self) -> int:
        self._claim()
        try:
            return self.last.fill_count
        finally:
            self._release()

    @property
    def last_order_event_count(self) -> int:
        """How many order events the last per-call operation left: more than one means it
        ended resting orders besides its own (self-trade prevention), without the copy."""
        self._claim()
        try:
            return self.order_event_count
        finally:
            self._release()

    def last_fills(self):
        """The fills of the last per-call operation (FILL_DTYPE)."""
        self._claim()
        try:
            return self._copy_fills()
        finally:
            self._release()

    def last_order_events(self):
        """The order events of the last per-call operation (ORDER_EVENT_DTYPE)."""
        self._claim()
        try:
            return self._copy_order_events()
        finally:
            self._release()

    def last_fill_rows(self):
        """The fills of the last per-call operation as ``(maker_oid, maker_owner, price, qty)``
        tuples: for a caller that walks them in Python, without numpy records."""
        cdef list rows = []
        cdef int64_t i
        self._claim()
        try:
            for i in range(self.fill_count):
                rows.append((self.fills[i].maker_oid, self.fills[i].maker_owner,
                             self.fills[i].price, self.fills[i].qty))
            return rows
        finally:
            self._release()

    def last_order_event_rows(self):
        """The order events of the last per-call operation as ``(oid, kind, reason)`` tuples."""
        cdef list rows = []
        cdef int64_t i
        self._claim()
        try:
            for i in range(self.order_event_count):
                rows.append((self.order_events[i].oid, self.order_events[i].kind,
                             self.order_events[i].reason))
            return rows
        finally:
            self._release()

    cdef object _copy_fills(self):
        return _records(self.fills, self.fill_count, FILL_DTYPE)

    cdef object _copy_order_events(self):
        return _records(self.order_events, self.order_event_count, ORDER_EVENT_DTYPE)

    cdef object _take_fills(self):
        """The fill tape as an array: a large tape is handed over, not copied."""
        cdef void* tape = self.fills
        out = _hand_over(&tape, &self.fill_capacity, self.fill_count, sizeof(Fill), FILL_DTYPE)
        self.fills = <Fill*> tape
        return out

    cdef object _take_order_events(self):
        """The order-event tape as an array: a large tape is handed over, not copied."""
        cdef void* tape = self.order_events
        out = _hand_over(&tape, &self.order_event_capacity, self.order_event_count,
                         sizeof(OrderEvent), ORDER_EVENT_DTYPE)
        self.order_events = <OrderEvent*> tape
        return out

    # ---------------------------------------------------------- batch API

    def process(self, events):
        """Apply a numpy array of EVENT_DTYPE records in one loop (without the GIL from
        ``RELEASE_GIL_FROM`` events on).

        Returns a :class:`BatchResult`: one RESULT_DTYPE record per event in
        input order, and the fill and order-event tapes (``event_index`` points
        back into `events`). Invalid events are rejected with a reason code,
        never raised, and leave the book as it was. If memory for the tapes
        runs out part-way, the remaining events are not applied and are
        reported as ``Reason.OUT_OF_MEMORY``.
        """
        events = as_event_array(events)
        results = _new_records(len(events), sizeof(Result), RESULT_DTYPE)
        self._claim()
        try:
            self._process_into(events, results)
            fills = self._take_fills()
            order_events = self._take_order_events()
            self.fill_count = 0         # the batch's records left with it: none are the
            self.order_event_count = 0  # last per-call operation's
        finally:
            self._release()
        return BatchResult(results, fills, order_events)

    cdef _process_into(self, events, results, const int64_t[::1] selected=None):
        cdef int64_t n = len(events) if selected is None else selected.shape[0]
        cdef const int64_t* rows = NULL
        if n == 0:
            self._begin_call()
            return
        if selected is not None:
            rows = &selected[0]
        self._process_rows(<const Event*> const_data_of(events), rows, n,
                           <Result*> data_of(results))

    cdef void _process_rows(self, const Event* events, const int64_t* selected, int64_t n,
                            Result* results) noexcept:
        """``_process_into`` on raw memory: events[0..n) or events[selected[k]] in turn,
        result k into results[k]; under the caller's claim."""
        cdef int64_t applied, k
        cdef PyThreadState* released
        self._begin_call()
        self.stream_tapes = n >= STREAM_TAPES_FROM
        released = release_gil_if(n >= RELEASE_GIL_FROM)
        applied = self._run(events, selected, n, results)
        if self.stream_tapes:
            _drain_streams()
            self.stream_tapes = False
        restore_gil(released)
        for k in range(applied, n):
            # Out of memory: what was applied is reported; the rest is refused, not applied.
            memset(&results[k], 0, sizeof(Result))
            results[k].status = STATUS_REJECTED
            results[k].reason = REASON_OUT_OF_MEMORY

    # ------------------------------------------------------------- queries

    cdef Level* _best(self, uint8_t side) noexcept:
        cdef Ladder* ladder = &self.sides[side]
        if ladder.size == 0:
            return NULL
        return &self.levels[ladder.levels[ladder.size - 1]]

    def best_bid(self):
        """Best bid price in ticks, or None."""
        cdef Level* level
        self._claim()
        try:
            level = self._best(SIDE_BUY)
            return None if level == NULL else level.price
        finally:
            self._release()

    def best_ask(self):
        """Best ask price in ticks, or None."""
        cdef Level* level
        self._claim()
        try:
            level = self._best(SIDE_SELL)
            return None if level == NULL else level.price
        finally:
            self._release()

    def best_bid_qty(self) -> int:
        """Quantity at the best bid (0 when there is none)."""
        cdef Level* level
        self._claim()
        try:
            level = self._best(SIDE_BUY)
            return 0 if level == NULL else level.total
        finally:
            self._release()

    def best_ask_qty(self) -> int:
        """Quantity at the best ask (0 when there is none)."""
        cdef Level* level
        self._claim()
        try:
            level = self._best(SIDE_SELL)
            return 0 if level == NULL else level.total
        finally:
            self._release()

    cdef tuple _bbo(self):
        cdef Level* bid = self._best(SIDE_BUY)
        cdef Level* ask = self._best(SIDE_SELL)
        return (None if bid == NULL else bid.price, 0 if bid == NULL else bid.total,
                None if ask == NULL else ask.price, 0 if ask == NULL else ask.total)

    def bbo(self):
        """(best bid, its quantity, best ask, its quantity); prices None when a side is empty."""
        self._claim()
        try:
            return self._bbo()
        finally:
            self._release()

    def spread(self):
        """Best ask minus best bid in ticks, or None when a side is empty."""
        cdef Level* bid
        cdef Level* ask
        self._claim()
        try:
            bid = self._best(SIDE_BUY)
            ask = self._best(SIDE_SELL)
            if bid == NULL or ask == NULL:
                return None
            return ask.price - bid.price
        finally:
            self._release()

    def mid(self):
        """Mid price in ticks (may be a half tick), or None when a side is empty."""
        cdef Level* bid
        cdef Level* ask
        self._claim()
        try:
            bid = self._best(SIDE_BUY)
            ask = self._best(SIDE_SELL)
            if bid == NULL or ask == NULL:
                return None
            return (bid.price + ask.price) / 2.0
        finally:
            self._release()

    def depth(self, side, levels=10):
        """The best `levels` levels of a side, best first: (prices, quantities, order counts)."""
        cdef int64_t side_code = _whole(side, "side")
        cdef int64_t wanted = _whole(levels, "levels")
        _check_side(side_code)
        if wanted < 0:
            raise ValueError(f"levels must be >= 0, got {levels}")
        cdef Ladder* ladder = &self.sides[side_code]
        cdef int64_t n
        cdef int64_t[::1] p
        cdef int64_t[::1] q
        cdef int64_t[::1] c
        cdef int32_t i
        cdef Level* level
        self._claim()
        try:
            n = min(wanted, ladder.size)
            prices = np.empty(n, dtype=np.int64)
            qtys = np.empty(n, dtype=np.int64)
            counts = np.empty(n, dtype=np.int64)
            p = prices
            q = qtys
            c = counts
            # numpy may have run other threads meanwhile; they could not touch the book.
            for i in range(n):
                level = &self.levels[ladder.levels[ladder.size - 1 - i]]
                p[i] = level.price
                q[i] = level.total
                c[i] = level.count
        finally:
            self._release()
        return prices, qtys, counts

    def size_at(self, side, price) -> int:
        """Total resting quantity at a price on a side (0 when no level)."""
        cdef int64_t side_code = _whole(side, "side")
        cdef price_t at = _whole(price, "price")
        cdef int32_t level_index
        _check_side(side_code)
        if not 0 < at <= MAX_PRICE:
            return 0                # no level can be there (nor a window's entry be read)
        self._claim()
        try:
            level_index = self._level_at(<uint8_t> side_code, at)
            return 0 if level_index == NO_LEVEL else self.levels[level_index].total
        finally:
            self._release()

    def order(self, oid):
        """The resting order with this id as a RestingOrderInfo, or None."""
        cdef oid_t key = _whole(oid, "oid")
        cdef slot_t slot
        cdef Order* order
        self._claim()
        try:
            slot = ids_find(&self.ids, self.pool.orders, key)
            if slot == NO_SLOT:
                return None
            order = &self.pool.orders[slot]
            return RestingOrderInfo(order.oid, Side(order.side), self.levels[order.level].price,
                                    order.qty, order.owner, TimeInForce(order.tif))
        finally:
            self._release()

    def queue_ahead(self, oid) -> int:
        """Quantity resting ahead of an order at its price level."""
        cdef oid_t key = _whole(oid, "oid")
        cdef slot_t slot, cursor
        cdef Order* order
        cdef qty_t ahead = 0
        self._claim()
        try:
            slot = ids_find(&self.ids, self.pool.orders, key)
            if slot == NO_SLOT:
                raise UnknownOrderError(f"order {key}: no resting order has this id")
            order = &self.pool.orders[slot]
            cursor = self.levels[order.level].head
            while cursor != slot:
                ahead += self.pool.orders[cursor].qty
                cursor = self.pool.orders[cursor].next
            return ahead
        finally:
            self._release()

    def __contains__(self, oid) -> bool:
        cdef oid_t key = _whole(oid, "oid")
        self._claim()
        try:
            return ids_find(&self.ids, self.pool.orders, key) != NO_SLOT
        finally:
            self._release()

    def __len__(self) -> int:
        self._claim()
        try:
            return self.pool.in_use
        finally:
            self._release()

    @property
    def order_count(self) -> int:
        """Number of resting orders."""
        self._claim()
        try:
            return self.pool.in_use
        finally:
            self._release()

    @property
    def bid_order_count(self) -> int:
        self._claim()
        try:
            return self.side_orders[SIDE_BUY]
        finally:
            self._release()

    @property
    def ask_order_count(self) -> int:
        self._claim()
        try:
            return self.side_orders[SIDE_SELL]
        finally:
            self._release()

    @property
    def bid_level_count(self) -> int:
        self._claim()
        try:
            return self.sides[SIDE_BUY].size
        finally:
            self._release()

    @property
    def ask_level_count(self) -> int:
        self._claim()
        try:
            return self.sides[SIDE_SELL].size
        finally:
            self._release()

    @property
    def sequence(self) -> int:
        """Sequence number of the last fill or order event."""
        self._claim()
        try:
            return self.seq
        finally:
            self._release()

    def pool_stats(self) -> dict:
        """Order pool capacity statistics."""
        self._claim()
        try:
            return pool_stats(&self.pool)
        finally:
            self._release()

    def memory_usage(self) -> dict:
        """Bytes held by each internal structure (capacity, not just use)."""
        self._claim()
        try:
            return {
                "orders": <int64_t> self.pool.capacity * sizeof(Order),
                "order_index": <int64_t> (self.ids.map.mask + 1) * sizeof(IdBucket)
                + <int64_t> self.ids.size * sizeof(slot_t),
                "levels": <int64_t> self.level_capacity * sizeof(Level),
                "ladders": (<int64_t> (self.sides[0].capacity + self.sides[1].capacity)
                            * (sizeof(int64_t) + sizeof(int32_t))
                            + 2 * WINDOW_TICKS * sizeof(int32_t)),
                "tapes": (self.fill_capacity * sizeof(Fill)
                          + self.order_event_capacity * sizeof(OrderEvent)),
            }
        finally:
            self._release()

    def orders(self):
        """Every resting order (ORDER_DTYPE): bids best first, then asks, FIFO within a level."""
        self._claim()
        try:
            return self._orders()
        finally:
            self._release()

    cdef object _orders(self):
        """:meth:`orders` for a caller that holds the claim (numpy may switch threads here)."""
        out = np.empty(self.pool.in_use, dtype=ORDER_DTYPE)
        cdef RestingOrder* row
        cdef int64_t written = 0
        cdef int32_t pos
        cdef int side
        cdef Ladder* ladder
        cdef Level* level
        cdef slot_t slot
        cdef Order* order
        cdef qty_t ahead
        if self.pool.in_use == 0:
            return out
        row = <RestingOrder*> data_of(out)
        for side in range(2):
            ladder = &self.sides[side]
            for pos in range(ladder.size - 1, -1, -1):
                level = &self.levels[ladder.levels[pos]]
                slot = level.head
                ahead = 0
                while slot != NO_SLOT:
                    order = &self.pool.orders[slot]
                    row[written].oid = order.oid
                    row[written].price = level.price
                    row[written].qty = order.qty
                    row[written].owner = order.owner
                    row[written].side = order.side
                    row[written].tif = order.tif
                    row[written]._pad[0] = 0
                    row[written]._pad[1] = 0
                    row[written].queue_ahead = ahead
                    ahead += order.qty
                    written += 1
                    slot = order.next
        return out

    # ------------------------------------------------- snapshot / restore

    def snapshot(self) -> bytes:
        """Serialise the book (orders in priority order, mode, sequence) to bytes."""
        self._claim()
        try:
            header = _SNAPSHOT_HEADER.pack(_SNAPSHOT_MAGIC, _SNAPSHOT_VERSION, self.stp, self.seq,
                                           self.pool.in_use)
            return header + self._orders().tobytes()
        finally:
            self._release()

    def __reduce__(self):
        """Pickle as a :meth:`snapshot` (orders in priority order, mode, sequence) and the
        pool's size and growability."""
        return _order_book_from_snapshot, (self.snapshot(), self.pool.capacity,
                                           self.pool.growable)

    @classmethod
    def restore(cls, data, *, capacity=None, growable=True):
        """Rebuild a book from :meth:`snapshot` bytes; malformed input raises SnapshotError."""
        records, stp, seq = _parse_snapshot(data)
        cdef OrderBook book = cls(max(capacity or 0, len(records), 1), growable=growable, stp=stp)
        cdef int64_t i
        cdef uint8_t reason
        cdef const RestingOrder* rows = NULL
        if len(records):
            rows = <const RestingOrder*> const_data_of(records)
        book._claim()
        try:
            for i in range(len(records)):
                if book._ensure_room(rows[i].oid) != 0:
                    raise MemoryError(f"cannot restore {len(records)} orders")
                reason = book._rest(rows[i].oid, rows[i].side, rows[i].price, rows[i].qty,
                                    rows[i].tif, rows[i].owner)
                if reason != REASON_NONE:
                    raise SnapshotError(
                        f"cannot restore order {rows[i].oid}: {Reason(reason).name}")
            book.seq = seq
        finally:
            book._release()
        return book

    def check_integrity(self) -> None:
        """Walk every structure and raise AssertionError on any broken invariant (for tests)."""
        self._claim()
        try:
            self._check_integrity()
        finally:
            self._release()

    cdef _check_integrity(self):
        cdef int side
        cdef int32_t pos, count
        cdef Ladder* ladder
        cdef Level* level
        cdef slot_t slot, prev
        cdef qty_t total
        cdef int64_t orders_seen = 0
        cdef int64_t side_seen
        for side in range(2):
            ladder = &self.sides[side]
            side_seen = 0
            for pos in range(ladder.size):
                if pos and ladder.keys[pos - 1] >= ladder.keys[pos]:
                    raise AssertionError(f"side {side}: ladder keys out of order at {pos}")
                level = &self.levels[ladder.levels[pos]]
                if _key(side, level.price) != ladder.keys[pos]:
                    raise AssertionError(f"side {side}: level price {level.price} under wrong key")
                if level.count <= 0:
                    raise AssertionError(f"side {side}: empty level {level.price} left in ladder")
                if window_get(&self.windows[side], level.price) not in (ladder.levels[pos],
                                                                        OUTSIDE):
                    raise AssertionError(f"side {side}: level {level.price} not in the window")
                total = 0
                count = 0
                prev = NO_SLOT
                slot = level.head
                while slot != NO_SLOT:
                    order = &self.pool.orders[slot]
                    if order.prev != prev or order.side != side \
                            or order.level != ladder.levels[pos] or order.qty <= 0:
                        raise AssertionError(f"order {order.oid} inconsistent with its level")
                    if ids_find(&self.ids, self.pool.orders, order.oid) != slot:
                        raise AssertionError(f"order {order.oid} not indexed by id")
                    total += order.qty
                    count += 1
                    prev = slot
                    slot = order.next
                if prev != level.tail or total != level.total or count != level.count:
                    raise AssertionError(
                        f"level {level.price}: totals or tail disagree with its orders")
                side_seen += count
            in_window = sum(1 for index in range(WINDOW_TICKS)
                            if self.windows[side].levels[index] != NO_LEVEL) \
                if window_centred(&self.windows[side]) else 0
            if in_window != sum(1 for pos in range(ladder.size) if window_get(
                    &self.windows[side], self.levels[ladder.levels[pos]].price) != OUTSIDE):
                raise AssertionError(f"side {side}: the window holds levels not in the ladder")
            if side_seen != self.side_orders[side]:
                raise AssertionError(
                    f"side {side}: order count {self.side_orders[side]} != {side_seen}")
            orders_seen += side_seen
        if orders_seen != self.pool.in_use or orders_seen != ids_count(&self.ids):
            raise AssertionError(
                f"{orders_seen} resting orders, pool has {self.pool.in_use} in use, "
                f"index has {ids_count(&self.ids)}")
        bid, _, ask, _ = self._bbo()
        if bid is not None and ask is not None and bid >= ask:
            raise AssertionError(f"book is crossed: bid {bid} >= ask {ask}")


# ------------------------------------------------------------------ helpers

cdef object _records(const void* source, int64_t count, dtype):
    """A new numpy array of `count` records of `dtype` copied from C memory."""
    out = np.empty(count, dtype=dtype)
    if count:
        memcpy(data_of(out), source, <size_t> count * dtype.itemsize)
    return out


# A tape of at least this many bytes leaves the book as the array a batch returns; a
# smaller one is copied (a copy that small costs less than the allocation it saves).
cdef int64_t _HANDOVER_BYTES = 1 << 16


cdef class _TapeMemory:
    """A tape handed over by a book: its malloc'd records, freed with the last array over it."""
    cdef void* data
    cdef Py_ssize_t size

    def __getbuffer__(self, Py_buffer* view, int flags):
        PyBuffer_FillInfo(view, self, self.data, self.size, 0, flags)

    def __dealloc__(self):
        spare_give(self.data, <size_t> self.size)


cdef object _new_records(int64_t count, size_t itemsize, dtype):
    """An uninitialised array of `count` records of `dtype`; a large one in a spare block
    (see obelisk._core.spare), warm when an earlier batch's arrays were freed."""
    cdef size_t size = <size_t> count * itemsize
    cdef void* block
    if <int64_t> size < _HANDOVER_BYTES:
        return np.empty(count, dtype=dtype)
    block = spare_take(size)
    if block == NULL:
        raise MemoryError(f"cannot allocate {count} records of {itemsize} bytes")
    return _array_over(block, size, count, dtype)


cdef object _hand_over(void** tape, int64_t* capacity, int64_t count, size_t itemsize,
                       dtype):
    """`count` records of `dtype` from `tape[0]` as a new array. A large tape becomes the
    array's memory and the book starts a new one when it next writes (`tape[0]` NULL,
    `capacity[0]` 0): a batch's tapes are written once, never copied out, and go back
    to the spare blocks whole when the array is freed, to be the next batch's tapes."""
    if count * <int64_t> itemsize < _HANDOVER_BYTES:
        return _records(tape[0], count, dtype)
    out = _array_over(tape[0], <size_t> (capacity[0] * <int64_t> itemsize), count, dtype)
    tape[0] = NULL          # the array owns it now, and gives it back whole
    capacity[0] = 0
    return out


cdef object _array_over(void* block, size_t size, int64_t count, dtype):
    """`count` records of `dtype` over `block` (`size` bytes), which the array now owns."""
    cdef _TapeMemory memory = _TapeMemory.__new__(_TapeMemory)
    memory.data = block
    memory.size = <Py_ssize_t> size
    return np.frombuffer(memory, dtype=dtype, count=count)


def _check_side(side):
    if side != SIDE_BUY and side != SIDE_SELL:
        raise InvalidOrderError(f"side must be Side.BUY (0) or Side.SELL (1), got {side!r}")


def as_event_array(events):
    """A batch as a contiguous EVENT_DTYPE array (as is when it already is one).

    Fields are matched by name, so the same fields in another layout are
    copied into place; anything else raises TypeError.
    """
    events = as_records(events, EVENT_DTYPE, "events", "obelisk.EVENT_DTYPE")
    if len(events) > INT32_MAX:
        raise ValueError(f"a batch holds at most {INT32_MAX} events, got {len(events)}")
    return events


def _order_book_from_snapshot(data, capacity, growable):
    """An OrderBook from what :meth:`OrderBook.__reduce__` kept."""
    return OrderBook.restore(data, capacity=capacity, growable=growable)


def _parse_snapshot(data):
    try:
        view = memoryview(data).cast("B")
    except TypeError as exc:
        raise SnapshotError(f"snapshot must be bytes-like, got {type(data).__name__}") from exc
    if len(view) < _SNAPSHOT_HEADER.size:
        raise SnapshotError(f"snapshot is {len(view)} bytes, shorter than its header")
    magic, version, stp, seq, count = _SNAPSHOT_HEADER.unpack_from(view)
    if magic != _SNAPSHOT_MAGIC:
        raise SnapshotError("not an obelisk order book snapshot (bad magic)")
    if version != _SNAPSHOT_VERSION:
        raise SnapshotError(
            f"snapshot version {version} is not supported (expected {_SNAPSHOT_VERSION})")
    if stp not in (STP_CANCEL_RESTING, STP_CANCEL_INCOMING, STP_CANCEL_BOTH, STP_ALLOW):
        raise SnapshotError(f"snapshot has unknown self-trade prevention mode {stp}")
    if seq < 0:
        raise SnapshotError(f"snapshot has a negative sequence number {seq}")
    body = view[_SNAPSHOT_HEADER.size:]
    if count < 0 or len(body) != count * ORDER_DTYPE.itemsize:
        raise SnapshotError(f"snapshot declares {count} orders but holds {len(body)} bytes of them")
    records = np.frombuffer(body, dtype=ORDER_DTYPE)
    if len(records):
        if ((records["side"] > SIDE_SELL).any() or (records["price"] <= 0).any()
                or (records["price"] > MAX_PRICE).any() or (records["qty"] <= 0).any()
                or (records["qty"] > MAX_QTY).any()):
            raise SnapshotError("snapshot holds an order with an invalid side, price or quantity")
        if ((records["tif"] != TIF_GTC) & (records["tif"] != TIF_ALO)).any():
            raise SnapshotError(
                "snapshot holds a resting order whose time in force is not GTC or ALO")
        if len(np.unique(records["oid"])) != len(records):
            raise SnapshotError("snapshot holds duplicate order ids")
        bids = records["price"][records["side"] == SIDE_BUY]
        asks = records["price"][records["side"] == SIDE_SELL]
        if len(bids) and len(asks) and bids.max() >= asks.min():
            raise SnapshotError("snapshot holds a crossed book")
    return records, stp, seq
