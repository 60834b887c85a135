# Order pool: a growable arena of Order structs addressed by int32 slot, with
# an intrusive free list of released slots. Slots from `fresh` up have never
# been handed out and are untouched memory: neither creating nor growing the
# arena writes them, so a pool sized for the worst case costs only the pages
# its orders use. The hot functions are inline so that the book, which embeds a
# PoolState, pays no call across modules for them.

from libc.stdint cimport int32_t, int64_t, uint32_t

from obelisk._core._types cimport NO_SLOT, Order, slot_t


cdef struct PoolState:
    Order* orders
    slot_t capacity
    slot_t free_head        # the last released slot, NO_SLOT when none
    slot_t fresh            # the first slot never handed out
    slot_t in_use
    slot_t high_water
    int32_t grow_count
    bint growable


cdef int pool_init(PoolState* pool, slot_t capacity, bint growable) except -1
cdef void pool_free_memory(PoolState* pool) noexcept nogil
cdef int pool_grow(PoolState* pool) noexcept nogil
cdef int pool_reserve(PoolState* pool, int64_t slots) noexcept nogil


cdef inline slot_t pool_take(PoolState* pool) noexcept nogil:
    """Take a free slot, the last released first (growing the arena if allowed); NO_SLOT
    when none. Its links and live flag are left as they were: for the book, which sets the
    links as it queues the order and finds its orders through their ids (each store it
    saves shows on the deep mix)."""
    cdef slot_t slot = pool.free_head
    cdef Order* order
    if slot != NO_SLOT:
        order = &pool.orders[slot]
        pool.free_head = order.next
    else:
        if pool.fresh == pool.capacity and (not pool.growable or pool_grow(pool) != 0):
            return NO_SLOT
        slot = pool.fresh
        pool.fresh += 1
        order = &pool.orders[slot]
        order.generation = 0
    pool.in_use += 1
    if pool.in_use > pool.high_water:
        pool.high_water = pool.in_use
    return slot


cdef inline slot_t pool_acquire(PoolState* pool) noexcept nogil:
    """``pool_take`` with the slot marked live and its links cleared."""
    cdef slot_t slot = pool_take(pool)
    if slot != NO_SLOT:
        pool.orders[slot].live = 1
        pool.orders[slot].prev = NO_SLOT
        pool.orders[slot].next = NO_SLOT
    return slot


cdef inline bint pool_full(const PoolState* pool) noexcept nogil:
    """Whether taking a slot needs the arena to grow."""
    return pool.free_head == NO_SLOT and pool.fresh == pool.capacity


cdef inline void pool_put(PoolState* pool, slot_t slot) noexcept nogil:
    """Return a slot to the free list, for a pool that hands out no handles (the book): its
    generation and live flag stay."""
    cdef Order* order = &pool.orders[slot]
    order.next = pool.free_head
    pool.free_head = slot
    pool.in_use -= 1


cdef inline void pool_release(PoolState* pool, slot_t slot) noexcept nogil:
    """Return a live slot to the free list; its generation moves on, so that its handles
    no longer work."""
    pool.orders[slot].live = 0
    pool.orders[slot].generation += 1
    pool.orders[slot].prev = NO_SLOT
    pool_put(pool, slot)


cdef dict pool_stats(PoolState* pool)


cdef class OrderPool:
    cdef PoolState state
    cdef slot_t _checked_slot(self, int64_t handle) except -1
