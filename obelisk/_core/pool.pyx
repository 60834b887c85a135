"""Order pool: preallocated order slots with a free list and stale-handle checks.

The book embeds the pool's C state directly; :class:`OrderPool` exposes the same
arena to Python so its contract (no slot handed out twice, stale handles
detected, amortised growth or a clear refusal) can be used and tested on its own.
"""

from libc.stdint cimport int64_t, uint32_t

from obelisk._core._memory cimport huge_pages
from obelisk._core.spare cimport spare_give, spare_grow, spare_take
from obelisk._core._types cimport NO_SLOT, Order, slot_t

from obelisk._core.errors import PoolExhaustedError, StaleHandleError

MAX_CAPACITY = 0x7FFFFFFF


cdef int pool_init(PoolState* pool, slot_t capacity, bint growable) except -1:
    if capacity < 1:
        raise ValueError(f"pool capacity must be at least 1, got {capacity}")
    pool.orders = <Order*> spare_take(<size_t> capacity * sizeof(Order))
    if pool.orders == NULL:
        raise MemoryError(f"cannot allocate an order pool of {capacity} slots")
    huge_pages(pool.orders, <size_t> capacity * sizeof(Order))
    pool.capacity = capacity
    pool.free_head = NO_SLOT
    pool.fresh = 0
    pool.in_use = 0
    pool.high_water = 0
    pool.grow_count = 0
    pool.growable = growable
    return 0


cdef void pool_free_memory(PoolState* pool) noexcept nogil:
    spare_give(pool.orders, <size_t> pool.capacity * sizeof(Order))
    pool.orders = NULL
    pool.capacity = 0
    pool.free_head = NO_SLOT
    pool.fresh = 0
    pool.in_use = 0


cdef int pool_grow(PoolState* pool) noexcept nogil:
    """Double the arena (amortised O(1) per order); -1 when memory or int32 slots run out."""
    return _grow_to(pool, <int64_t> pool.capacity * 2)


cdef int pool_reserve(PoolState* pool, int64_t slots) noexcept nogil:
    """Make `slots` free slots available in at most one growth (at least doubling), so a
    batch that will rest many orders copies the arena once rather than once per doubling;
    -1 when the pool cannot grow that far."""
    cdef int64_t free_slots = <int64_t> pool.capacity - pool.in_use
    if slots <= free_slots:
        return 0
    if not pool.growable:
        return -1
    return _grow_to(pool, max(<int64_t> pool.capacity * 2, <int64_t> pool.in_use + slots))


cdef int _grow_to(PoolState* pool, int64_t new_capacity) noexcept nogil:
    if new_capacity > 0x7FFFFFFF:
        new_capacity = 0x7FFFFFFF
    if new_capacity <= pool.capacity:
        return -1
    # only the slots ever used move (see spare_grow)
    cdef Order* grown = <Order*> spare_grow(pool.orders, <size_t> pool.capacity * sizeof(Order),
                                            <size_t> pool.fresh * sizeof(Order),
                                            <size_t> new_capacity * sizeof(Order))
    if grown == NULL:
        return -1
    huge_pages(grown, <size_t> new_capacity * sizeof(Order))
    pool.orders = grown
    pool.capacity = <slot_t> new_capacity
    pool.grow_count += 1
    return 0


cdef inline int64_t _handle(slot_t slot, uint32_t generation) noexcept nogil:
    return (<int64_t> generation << 32) | <int64_t> slot


cdef class OrderPool:
    """A standalone order pool.

    Parameters
    ----------
    capacity : int
        Slots allocated up front.
    growable : bool
        Double the arena when full (amortised), or refuse with
        :class:`~obelisk.errors.PoolExhaustedError`.

    A handle packs a slot and its generation, so using it after the slot was
    released (and possibly reused) raises :class:`~obelisk.errors.StaleHandleError`.
    """

    def __cinit__(self):
        # An empty, never-growing pool until __init__ allocates (safe even without __init__).
        self.state.orders = NULL
        self.state.capacity = 0
        self.state.free_head = NO_SLOT
        self.state.fresh = 0
        self.state.in_use = 0
        self.state.high_water = 0
        self.state.grow_count = 0
        self.state.growable = False

    def __init__(self, capacity: int = 1024, growable: bool = True) -> None:
        if self.state.orders != NULL:
            pool_free_memory(&self.state)
        if capacity > MAX_CAPACITY:
            raise ValueError(f"pool capacity must be at most {MAX_CAPACITY}, got {capacity}")
        pool_init(&self.state, capacity, growable)

    def __dealloc__(self):
        pool_free_memory(&self.state)

    def acquire(self) -> int:
        """Take a free slot and return its handle."""
        cdef slot_t slot = pool_acquire(&self.state)
        if slot == NO_SLOT:
            raise PoolExhaustedError(
                f"order pool is full ({self.state.capacity} slots) and not growable"
            )
        return _handle(slot, self.state.orders[slot].generation)

    cdef slot_t _checked_slot(self, int64_t handle) except -1:
        cdef int64_t slot = handle & 0xFFFFFFFF
        cdef uint32_t generation = <uint32_t> (handle >> 32)
        if handle < 0 or slot >= self.state.fresh:
            raise StaleHandleError(f"handle {handle} does not belong to this pool")
        if not self.state.orders[slot].live or self.state.orders[slot].generation != generation:
            raise StaleHandleError(f"handle {handle} refers to a released slot {slot}")
        return <slot_t> slot

    def release(self, int64_t handle) -> None:
        """Give a slot back; a stale or foreign handle raises and changes nothing."""
        pool_release(&self.state, self._checked_slot(handle))

    def is_live(self, int64_t handle) -> bool:
        """Whether the handle still names the order it was issued for."""
        cdef int64_t slot = handle & 0xFFFFFFFF
        if handle < 0 or slot >= self.state.fresh:
            return False
        return bool(self.state.orders[slot].live
                    and self.state.orders[slot].generation == <uint32_t> (handle >> 32))

    @staticmethod
    def slot_of(int64_t handle) -> int:
        """The slot index inside a handle."""
        return handle & 0xFFFFFFFF

    @property
    def capacity(self) -> int:
        return self.state.capacity

    @property
    def in_use(self) -> int:
        return self.state.in_use

    @property
    def free(self) -> int:
        return self.state.capacity - self.state.in_use

    @property
    def high_water(self) -> int:
        return self.state.high_water

    @property
    def grow_count(self) -> int:
        return self.state.grow_count

    @property
    def growable(self) -> bool:
        return bool(self.state.growable)

    @staticmethod
    def slot_bytes() -> int:
        """Bytes of one order slot."""
        return sizeof(Order)

    def stats(self) -> dict:
        """Capacity statistics as a plain dict."""
        return pool_stats(&self.state)


cdef dict pool_stats(PoolState* pool):
    return {
        "capacity": pool.capacity,
        "in_use": pool.in_use,
        "free": pool.capacity - pool.in_use,
        "high_water": pool.high_water,
        "grow_count": pool.grow_count,
        "growable": bool(pool.growable),
        "slot_bytes": sizeof(Order),
    }
