# Order id -> pool slot index: open addressing with linear probing and
# backward-shift deletion (no tombstones). Buckets hold only the slot; the key
# is read from the pool, so the map costs 4 bytes a bucket. Header-only: the
# functions are inline in every module that cimports this file.

from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.stdlib cimport free, malloc

from obelisk._core._types cimport NO_SLOT, Order, oid_t, slot_t


cdef struct IdMap:
    slot_t* buckets
    uint64_t mask
    int32_t shift
    int64_t count


cdef inline uint64_t idmap_bucket(const IdMap* m, oid_t oid) noexcept nogil:
    # Fibonacci hashing spreads sequential ids over the table.
    return (<uint64_t> oid * <uint64_t> 0x9E3779B97F4A7C15) >> m.shift


cdef inline int idmap_init(IdMap* m, int64_t expected) noexcept nogil:
    """Size for `expected` keys at load <= 1/2; -1 when out of memory."""
    cdef int64_t size = 16
    cdef int32_t bits = 4
    cdef int64_t i
    while size < expected * 2:
        size <<= 1
        bits += 1
    cdef slot_t* buckets = <slot_t*> malloc(<size_t> size * sizeof(slot_t))
    if buckets == NULL:
        return -1
    for i in range(size):
        buckets[i] = NO_SLOT
    m.buckets = buckets
    m.mask = <uint64_t> (size - 1)
    m.shift = 64 - bits
    m.count = 0
    return 0


cdef inline void idmap_free(IdMap* m) noexcept nogil:
    free(m.buckets)
    m.buckets = NULL
    m.count = 0


cdef inline slot_t idmap_find(const IdMap* m, const Order* orders, oid_t oid) noexcept nogil:
    cdef uint64_t i = idmap_bucket(m, oid)
    cdef slot_t slot
    while True:
        slot = m.buckets[i]
        if slot == NO_SLOT or orders[slot].oid == oid:
            return slot
        i = (i + 1) & m.mask


cdef inline void _idmap_place(IdMap* m, const Order* orders, slot_t slot) noexcept nogil:
    cdef uint64_t i = idmap_bucket(m, orders[slot].oid)
    while m.buckets[i] != NO_SLOT:
        i = (i + 1) & m.mask
    m.buckets[i] = slot


cdef inline int idmap_insert(IdMap* m, const Order* orders, slot_t slot) noexcept nogil:
    """Index a slot under its order's id (which must be absent); -1 when out of memory."""
    cdef IdMap grown
    cdef uint64_t i
    if (m.count + 1) * 2 > <int64_t> (m.mask + 1):
        if idmap_init(&grown, <int64_t> (m.mask + 1)) != 0:  # doubles the table
            return -1
        for i in range(m.mask + 1):
            if m.buckets[i] != NO_SLOT:
                _idmap_place(&grown, orders, m.buckets[i])
        grown.count = m.count
        free(m.buckets)
        m[0] = grown
    _idmap_place(m, orders, slot)
    m.count += 1
    return 0


cdef inline void idmap_remove(IdMap* m, const Order* orders, oid_t oid) noexcept nogil:
    """Drop an id that is present, shifting later probes back into the hole."""
    cdef uint64_t hole = idmap_bucket(m, oid)
    cdef uint64_t i, home
    while orders[m.buckets[hole]].oid != oid:
        hole = (hole + 1) & m.mask
    i = hole
    while True:
        i = (i + 1) & m.mask
        if m.buckets[i] == NO_SLOT:
            break
        home = idmap_bucket(m, orders[m.buckets[i]].oid)
        # Move the entry back if its home is not cyclically within (hole, i].
        if ((i - home) & m.mask) >= ((i - hole) & m.mask):
            m.buckets[hole] = m.buckets[i]
            hole = i
    m.buckets[hole] = NO_SLOT
    m.count -= 1
