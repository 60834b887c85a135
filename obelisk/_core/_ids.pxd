# Order id -> pool slot: a ring of recent ids in front of the hash map of obelisk._core._idmap.
#
# Ids mostly come from counters (a strategy's, an engine's, an exchange's). A ring indexed by
# id modulo its size answers those with one read and in id order: no hash, no probe, no
# branch to mispredict, and a new order's id lands next to the last one's. The ring covers
# the ids base .. base + size - 1 and moves on as a counter passes its end. When the ids it
# would leave behind still rest densely (a deep book keeps old orders), it doubles instead,
# up to RING_MOST ids; otherwise it hands them to the map. Ids it cannot hold (below it, far
# ahead of it, or arriving while it may not move) go to the map too.
#
# The ring is authoritative for its range unless the map may hold ids inside it (ids that
# went to the map while ahead of the ring, which later moved over them): the bounds of the
# map's ids tell, and only then does a miss in the ring ask the map. A move scans the ids it
# leaves behind, at most MOVE_COST per id the ring took since the last move, so ids chosen
# to make it move often go to the map instead. Header-only: the book inlines these.

from libc.stdint cimport int64_t, uint64_t, uintptr_t
from libc.string cimport memset

from obelisk._core._idmap cimport (
    IdMap,
    idmap_add,
    idmap_find,
    idmap_free,
    idmap_hash,
    idmap_home,
    idmap_init,
    idmap_remove,
    idmap_reserve,
)
from obelisk._core._types cimport Order, oid_t, slot_t
from obelisk._core.spare cimport spare_give, spare_take


cdef enum:
    RING_FIRST = 1 << 12    # ids a new ring covers at least (16 KB)
    RING_MOST = 1 << 22     # ids a ring may grow to cover (16 MB)
    MOVE_COST = 4
    DENSE = 32              # a ring grows when 1 in DENSE of the ids it would leave still rest


cdef struct IdIndex:
    IdMap map
    slot_t* ring            # `size` entries: 1 + the slot of the order with that id, 0: none
    uint64_t size           # a power of two
    oid_t base              # the ring covers ids base .. base + size - 1
    int64_t ring_count
    int64_t taken           # ids the ring took since it last moved
    oid_t map_low           # bounds of the ids put in the map since it was last empty
    oid_t map_high


cdef inline void _ids_map_emptied(IdIndex* ids) noexcept nogil:
    ids.map_low = <oid_t> 0x7FFFFFFFFFFFFFFF
    ids.map_high = -ids.map_low - 1


cdef inline slot_t* _ids_new_ring(uint64_t size) noexcept nogil:
    """An empty ring of `size` entries (a spare block's pages are already in place); NULL
    when out of memory."""
    cdef slot_t* ring = <slot_t*> spare_take(size * sizeof(slot_t))
    if ring != NULL:
        memset(ring, 0, size * sizeof(slot_t))
    return ring


cdef inline int ids_init(IdIndex* ids, int64_t expected, uint64_t key0,
                         uint64_t key1) noexcept nogil:
    """An empty index sized for `expected` ids, in the ring (when it may grow that far) and
    in the map; -1 when out of memory."""
    cdef uint64_t size = RING_FIRST
    while size < <uint64_t> expected and size < RING_MOST:
        size *= 2
    ids.ring = _ids_new_ring(size)
    if ids.ring == NULL:
        return -1
    ids.size = size
    ids.base = 0
    ids.ring_count = 0
    ids.taken = 0
    _ids_map_emptied(ids)
    return idmap_init(&ids.map, expected, key0, key1)


cdef inline void ids_free(IdIndex* ids) noexcept nogil:
    spare_give(ids.ring, ids.size * sizeof(slot_t))
    ids.ring = NULL
    idmap_free(&ids.map)


cdef inline uint64_t _ids_offset(const IdIndex* ids, oid_t oid) noexcept nogil:
    """How far `oid` lies past the ring's first id (huge for ids before it)."""
    return <uint64_t> oid - <uint64_t> ids.base


cdef inline slot_t* _ids_entry(const IdIndex* ids, uint64_t oid) noexcept nogil:
    return &ids.ring[oid & (ids.size - 1)]


cdef inline bint ids_covers(const IdIndex* ids, oid_t oid) noexcept nogil:
    """Whether the ring covers `oid`."""
    return _ids_offset(ids, oid) < ids.size


cdef inline bint _ids_map_overlaps(const IdIndex* ids) noexcept nogil:
    """Whether the map may hold ids inside the ring's range. The ring's range may wrap round
    past the largest id to the smallest, so both are arcs of one circle, and two arcs meet
    where one holds the other's start: the map's bounds hold the ring's first id, or the
    ring holds their lower bound."""
    if ids.map.count == 0:
        return False
    return ids.map_low <= ids.base <= ids.map_high or ids_covers(ids, ids.map_low)


cdef inline slot_t ids_find(IdIndex* ids, const Order* orders, oid_t oid) noexcept nogil:
    """The slot of the order with id `oid`, or NO_SLOT."""
    cdef slot_t entry
    if ids_covers(ids, oid):
        entry = _ids_entry(ids, <uint64_t> oid)[0]
        if entry != 0 or not _ids_map_overlaps(ids):
            return entry - 1
    return idmap_find(&ids.map, orders, oid)


cdef inline const void* ids_hint(const IdIndex* ids, oid_t oid) noexcept nogil:
    """The memory a lookup of `oid` reads first, to prefetch."""
    if ids_covers(ids, oid):
        return _ids_entry(ids, <uint64_t> oid)
    return &ids.map.buckets[idmap_home(&ids.map, idmap_hash(&ids.map, oid))]


cdef inline const void* ids_order_hint(const IdIndex* ids, const Order* orders,
                                       oid_t oid) noexcept nogil:
    """The order the ring holds under `oid`, to prefetch: without a branch on the entry
    (an empty one points just before the pool, harmless to prefetch)."""
    return <const void*> (<uintptr_t> orders
                          + <uintptr_t> (_ids_entry(ids, <uint64_t> oid)[0] - 1) * sizeof(Order))


cdef inline void _ids_to_map(IdIndex* ids, const Order* orders, slot_t slot) noexcept nogil:
    """Index a slot in the map (in room `idmap_reserve` made), widening its id bounds."""
    cdef oid_t oid = orders[slot].oid
    if oid < ids.map_low:
        ids.map_low = oid
    if oid > ids.map_high:
        ids.map_high = oid
    idmap_add(&ids.map, orders, slot)


cdef inline void ids_add(IdIndex* ids, const Order* orders, slot_t slot) noexcept nogil:
    """Index a slot under its order's id (which must be absent); ids the ring does not
    cover go to the map, in room `idmap_reserve` made for them."""
    cdef oid_t oid = orders[slot].oid
    if ids_covers(ids, oid):
        _ids_entry(ids, <uint64_t> oid)[0] = slot + 1
        ids.ring_count += 1
        ids.taken += 1
    else:
        _ids_to_map(ids, orders, slot)


cdef inline void ids_remove(IdIndex* ids, const Order* orders, oid_t oid,
                            slot_t slot) noexcept nogil:
    """Drop the present id `oid` of `slot`."""
    cdef slot_t* entry
    if ids_covers(ids, oid):
        entry = _ids_entry(ids, <uint64_t> oid)
        if entry[0] == slot + 1:
            entry[0] = 0
            ids.ring_count -= 1
            return
    idmap_remove(&ids.map, orders, oid, slot)
    if ids.map.count == 0:
        _ids_map_emptied(ids)


cdef inline int64_t ids_count(const IdIndex* ids) noexcept nogil:
    return ids.ring_count + ids.map.count


cdef inline bint _ids_grow(IdIndex* ids, uint64_t size) noexcept nogil:
    """Cover `size` ids from the same base; False when out of memory (nothing changed)."""
    cdef slot_t* ring = _ids_new_ring(size)
    cdef uint64_t i, oid
    if ring == NULL:
        return False
    for i in range(ids.size):
        oid = <uint64_t> ids.base + i
        ring[oid & (size - 1)] = _ids_entry(ids, oid)[0]
    spare_give(ids.ring, ids.size * sizeof(slot_t))
    ids.ring = ring
    ids.size = size
    return True


cdef inline void ids_expect(IdIndex* ids, oid_t low, oid_t high) noexcept nogil:
    """Ids low .. high are about to come (a batch's new orders): an empty ring too small for
    them is replaced, at once, by one that covers them all (up to RING_MOST ids), instead of
    doubling again and again as they rest (each time copying what it holds). Best effort:
    out of memory, or with a ring in use, nothing changes."""
    cdef uint64_t span = <uint64_t> high - <uint64_t> low + 1
    cdef uint64_t size = ids.size
    cdef slot_t* ring
    if ids.ring_count != 0 or high < low or span <= size or span > RING_MOST:
        return
    while size < span:
        size *= 2
    ring = _ids_new_ring(size)
    if ring == NULL:
        return
    spare_give(ids.ring, ids.size * sizeof(slot_t))
    ids.ring = ring
    ids.size = size
    ids.base = low
    ids.taken = 0


cdef inline int ids_make_way(IdIndex* ids, const Order* orders, oid_t oid) noexcept nogil:
    """Before a new id rests: if `oid` lies just past the ring (within its size), grow the
    ring or move it on, so that a counter's ids keep landing in it; an empty ring moves to
    any id. 1 when ids left the ring for the map (its room shrank), 0 when none did, -1
    when the map could not grow for them (nothing changed)."""
    cdef uint64_t offset = _ids_offset(ids, oid)
    cdef uint64_t size = ids.size
    cdef uint64_t step, i, leaving = 0
    cdef slot_t* entry
    if offset < size:
        return 0
    if ids.ring_count == 0:
        ids.base = oid
        ids.taken = 0
        return 0
    if offset >= 2 * size:
        return 0                        # far ahead, or behind: the map takes it
    step = offset - size + 1
    if step < size // 4:
        step = size // 4                # move in quarters: a scan per quarter of new ids
    if step > <uint64_t> ids.taken * MOVE_COST:
        return 0
    for i in range(step):
        leaving += _ids_entry(ids, <uint64_t> ids.base + i)[0] != 0
    if leaving * DENSE >= step and 2 * size <= RING_MOST and _ids_grow(ids, 2 * size):
        ids.taken = 0
        return 0
    if leaving and idmap_reserve(&ids.map, ids.map.count + <int64_t> leaving) != 0:
        return -1
    ids.taken = 0
    for i in range(step):
        entry = _ids_entry(ids, <uint64_t> ids.base + i)
        if entry[0] != 0:
            _ids_to_map(ids, orders, entry[0] - 1)
            entry[0] = 0
            ids.ring_count -= 1
    ids.base = <oid_t> (<uint64_t> ids.base + step)
    return 1 if leaving else 0
