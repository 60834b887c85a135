# L3 order book and matching engine over integer ticks and lots.

cimport cython
from libc.stdint cimport int32_t, int64_t, uint8_t

from obelisk._core._ids cimport IdIndex
from obelisk._core._window cimport LevelWindow
from obelisk._core._types cimport (
    Event,
    Fill,
    Order,
    OrderEvent,
    Result,
    oid_t,
    owner_t,
    price_t,
    qty_t,
    slot_t,
)
from obelisk._core.pool cimport PoolState


# A price level: a FIFO of pool slots linked through Order.prev/next.
cdef struct Level:
    price_t price
    qty_t total
    slot_t head
    slot_t tail
    int32_t count
    int32_t next_free


# One side's levels, sorted by key so that the best level is last: inserts
# and deletes near the touch move few entries. Bids use key = price, asks
# key = -price.
cdef struct Ladder:
    int64_t* keys
    int32_t* levels
    int32_t size
    int32_t capacity


@cython.final
cdef class OrderBook:
    cdef PoolState pool
    cdef IdIndex ids
    cdef Level* levels
    cdef int32_t level_capacity
    cdef int32_t level_free
    cdef Ladder sides[2]
    cdef LevelWindow windows[2]
    cdef int64_t side_orders[2]
    cdef readonly int stp
    """Self-trade prevention mode (a SelfTradePrevention value)."""
    cdef int64_t seq
    cdef Fill* fills
    cdef int64_t fill_count
    cdef int64_t fill_capacity
    cdef OrderEvent* order_events
    cdef int64_t order_event_count
    cdef int64_t order_event_capacity
    cdef Result last
    cdef int64_t tape_limit
    # Orders that can rest before a level, ladder entry, pool slot or id-index bucket must
    # be grown: a lower bound, counted down by each rest and recounted when it runs out.
    cdef int64_t rests_in_room
    # Whether records go on the tapes past the cache (a large batch; see _put_record).
    cdef bint stream_tapes

    cdef bint busy
    cdef bint initialised
    cdef int _allocate(self, slot_t capacity, bint growable) except -1
    cdef void _release_memory(self) noexcept
    cdef int _claim(self) except -1
    cdef void _release(self) noexcept
    cdef inline int _ensure_room(self, oid_t oid) noexcept nogil
    cdef int _make_room(self, oid_t oid) noexcept nogil
    cdef void _reserve_for(self, const Event* events, const int64_t* selected,
                           int64_t n) noexcept nogil
    cdef void _expect_ids(self, const Event* events, const int64_t* selected,
                          int64_t n) noexcept nogil
    cdef int _grow_levels(self) noexcept nogil
    cdef inline int _reserve(self, int64_t fills, int64_t order_events) noexcept nogil
    cdef int _grow_tapes(self, int64_t fills, int64_t order_events) noexcept nogil
    cdef inline void _emit_fill(self, const Order* taker, const Order* maker, price_t price,
                                qty_t qty, int32_t index) noexcept nogil
    cdef inline OrderEvent* _emit_event(self, uint8_t kind, uint8_t reason, oid_t oid,
                                        price_t price, qty_t qty, owner_t owner, uint8_t side,
                                        int32_t index) noexcept nogil
    cdef int _reject(self, const Event* ev, int32_t index, Result* res,
                     uint8_t reason) noexcept nogil
    cdef void _detach(self, slot_t slot) noexcept nogil
    cdef inline int32_t _level_at(self, uint8_t side, price_t price) noexcept nogil
    cdef inline void _free_level(self, uint8_t side, int32_t level_index) noexcept nogil
    cdef void _drop_level(self, uint8_t side, int32_t level_index) noexcept nogil
    cdef void _remove_order(self, slot_t slot) noexcept nogil
    cdef uint8_t _rest(self, oid_t oid, uint8_t side, price_t price, qty_t qty, uint8_t tif,
                       owner_t owner) noexcept nogil
    cdef int32_t _new_level(self, uint8_t side, price_t price) noexcept nogil
    cdef inline bint _crosses(self, uint8_t side, int64_t threshold) noexcept nogil
    cdef qty_t _fillable(self, uint8_t side, int64_t threshold, owner_t owner,
                         qty_t wanted) noexcept nogil
    cdef int _execute(self, oid_t oid, uint8_t side, price_t price, qty_t qty, uint8_t tif,
                      owner_t owner, int64_t threshold, int32_t index,
                      Result* res) noexcept nogil
    cdef inline int _reserve_taker(self, uint8_t side, int64_t threshold, owner_t owner,
                                   qty_t qty, bint crossing) noexcept nogil
    cdef int _reserve_crossing(self, uint8_t side, int64_t threshold, owner_t owner,
                               qty_t qty) noexcept nogil
    cdef void _count_reach(self, uint8_t side, int64_t threshold, owner_t owner, qty_t qty,
                           bint cancels_resting, int64_t* fills,
                           int64_t* events) noexcept nogil
    cdef inline int _conclude(self, oid_t oid, uint8_t side, price_t price, qty_t qty,
                              uint8_t tif, owner_t owner, uint8_t reason, int32_t index,
                              Result* res) noexcept nogil
    cdef int64_t _threshold(self, uint8_t side, price_t limit) noexcept nogil
    cdef int _place(self, const Event* ev, int32_t index, Result* res) noexcept nogil
    cdef int _cancel(self, const Event* ev, int32_t index, Result* res) noexcept nogil
    cdef int _modify(self, const Event* ev, int32_t index, Result* res) noexcept nogil
    cdef int _apply(self, const Event* ev, int32_t index, Result* res) noexcept nogil
    cdef int64_t _run(self, const Event* events, const int64_t* selected, int64_t n,
                      Result* results) noexcept nogil
    cdef void _begin_call(self) noexcept
    cdef int _call(self, Event* ev, qty_t* cancelled) except -1
    cdef object _copy_fills(self)
    cdef object _copy_order_events(self)
    cdef object _take_fills(self)
    cdef object _take_order_events(self)
    cdef _process_into(self, events, results, const int64_t[::1] selected=*)
    cdef void _process_rows(self, const Event* events, const int64_t* selected, int64_t n,
                            Result* results) noexcept
    cdef Level* _best(self, uint8_t side) noexcept
    cdef tuple _bbo(self)
    cdef object _orders(self)
    cdef _check_integrity(self)


# A new numpy array of `count` records of `dtype` copied from C memory (limit.pyx too).
cdef object _records(const void* source, int64_t count, dtype)
