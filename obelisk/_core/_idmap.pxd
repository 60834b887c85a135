# Order id -> pool slot index: open addressing with linear probing and
# backward-shift deletion (no tombstones). A bucket is 8 bytes: the slot and
# the top 32 bits of the id's hash. Those bits hold the bucket's home (its top
# `bits`) and a fingerprint, so probes touch the pool only when fingerprints
# agree, and deletion never touches it. Header-only: every cimporting module
# inlines these.
#
# Ids come from outside (strategies, replayed feeds), so the hash is keyed: a
# wyhash-style multiply-fold of the id under two random 64-bit words drawn per map.
# Without the key, no one can choose ids that share a home (an unkeyed
# multiplicative hash is inverted in one line, and 100k such ids make every
# probe walk one cluster).

from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc

from obelisk._core._memory cimport huge_pages
from obelisk._core._types cimport NO_SLOT, Order, oid_t, slot_t


cdef struct IdBucket:
    uint32_t fingerprint
    slot_t slot


cdef struct IdMap:
    IdBucket* buckets
    uint64_t mask
    int32_t shift
    int64_t count
    uint64_t key[2]


cdef extern from *:
    """
    /* The high and low halves of a 64x64 -> 128-bit product, folded by xor. */
    static inline uint64_t obelisk_fold_mul(uint64_t a, uint64_t b) {
    #if defined(__SIZEOF_INT128__)
        __uint128_t p = (__uint128_t)a * b;
        return (uint64_t)p ^ (uint64_t)(p >> 64);
    #else
        uint64_t al = (uint32_t)a, ah = a >> 32, bl = (uint32_t)b, bh = b >> 32;
        uint64_t ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
        uint64_t mid = (ll >> 32) + (uint32_t)lh + (uint32_t)hl;
        uint64_t lo = (mid << 32) | (uint32_t)ll;
        uint64_t hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
        return lo ^ hi;
    #endif
    }
    """
    uint64_t fold_mul "obelisk_fold_mul"(uint64_t a, uint64_t b) noexcept nogil


# Load at most 3/4. With a random (keyed) hash, a fuller map walks longer clusters (an
# insert probes 8.5 buckets on average at 3/4, 2.5 at 1/2), but at 1/2 a deep book's
# map is twice as big and first touched as it grows: a fresh book on the deep mix
# (30k resting orders) lost more to that than the shorter walks saved.
cdef enum:
    LOAD_NUMERATOR = 3
    LOAD_DENOMINATOR = 4


cdef inline uint32_t idmap_hash(const IdMap* m, oid_t oid) noexcept nogil:
    # One keyed multiply, folded: (id ^ key0) * key1 (odd) as 128 bits, high half xor low.
    return <uint32_t> (fold_mul(<uint64_t> oid ^ m.key[0], m.key[1]) >> 32)


cdef inline uint64_t idmap_home(const IdMap* m, uint32_t h) noexcept nogil:
    return h >> m.shift


cdef inline int idmap_init(IdMap* m, int64_t expected, uint64_t key0,
                           uint64_t key1) noexcept nogil:
    """Size for `expected` keys at load <= 3/4 (16 to 2**32 buckets); -1 when out of memory.

    `key0` and `key1` seed the hash; draw them at random (os.urandom) per map.
    """
    key1 |= 1                           # an odd multiplier loses no bits of the id
    cdef int64_t size = 16
    cdef int32_t bits = 4
    cdef int64_t i
    while size * LOAD_NUMERATOR < expected * LOAD_DENOMINATOR:
        size <<= 1
        bits += 1
    if bits > 32:
        return -1
    cdef IdBucket* buckets = <IdBucket*> malloc(<size_t> size * sizeof(IdBucket))
    if buckets == NULL:
        return -1
    huge_pages(buckets, <size_t> size * sizeof(IdBucket))
    for i in range(size):
        buckets[i].slot = NO_SLOT
        buckets[i].fingerprint = 0
    m.buckets = buckets
    m.mask = <uint64_t> (size - 1)
    m.shift = 32 - bits
    m.count = 0
    m.key[0] = key0
    m.key[1] = key1
    return 0


cdef inline void idmap_free(IdMap* m) noexcept nogil:
    free(m.buckets)
    m.buckets = NULL
    m.count = 0


cdef inline slot_t idmap_find(const IdMap* m, const Order* orders, oid_t oid) noexcept nogil:
    cdef uint32_t fingerprint = idmap_hash(m, oid)
    cdef uint64_t i = idmap_home(m, fingerprint)
    cdef const IdBucket* bucket
    while True:
        bucket = &m.buckets[i]
        if bucket.slot == NO_SLOT:
            return NO_SLOT
        if bucket.fingerprint == fingerprint and orders[bucket.slot].oid == oid:
            return bucket.slot
        i = (i + 1) & m.mask


cdef inline void _idmap_place(IdMap* m, uint32_t fingerprint, slot_t slot) noexcept nogil:
    cdef uint64_t i = idmap_home(m, fingerprint)
    while m.buckets[i].slot != NO_SLOT:
        i = (i + 1) & m.mask
    m.buckets[i].slot = slot
    m.buckets[i].fingerprint = fingerprint


cdef inline int idmap_reserve(IdMap* m, int64_t count) noexcept nogil:
    """Grow (doubling) until `count` keys fit at load <= 3/4; -1 when out of memory."""
    cdef IdMap grown
    cdef uint64_t i
    cdef int64_t size = <int64_t> (m.mask + 1)
    if count * LOAD_DENOMINATOR <= size * LOAD_NUMERATOR:
        return 0
    while count * LOAD_DENOMINATOR > size * LOAD_NUMERATOR:
        size *= 2
    if idmap_init(&grown, size * LOAD_NUMERATOR // LOAD_DENOMINATOR, m.key[0], m.key[1]) != 0:
        return -1
    for i in range(m.mask + 1):
        if m.buckets[i].slot != NO_SLOT:
            _idmap_place(&grown, m.buckets[i].fingerprint, m.buckets[i].slot)
    grown.count = m.count
    free(m.buckets)
    m[0] = grown
    return 0


cdef inline int idmap_insert(IdMap* m, const Order* orders, slot_t slot) noexcept nogil:
    """Index a slot under its order's id (which must be absent); -1 when out of memory."""
    if idmap_reserve(m, m.count + 1) != 0:
        return -1
    _idmap_place(m, idmap_hash(m, orders[slot].oid), slot)
    m.count += 1
    return 0


cdef inline void idmap_remove(IdMap* m, oid_t oid, slot_t slot) noexcept nogil:
    """Drop the present id `oid` of `slot`, shifting later probes back into the hole.

    The bucket is found by its slot, which is unique: no probe reads the pool.
    """
    cdef uint64_t hole = idmap_home(m, idmap_hash(m, oid))
    cdef uint64_t i, home
    while m.buckets[hole].slot != slot:
        hole = (hole + 1) & m.mask
    i = hole
    while True:
        i = (i + 1) & m.mask
        if m.buckets[i].slot == NO_SLOT:
            break
        home = idmap_home(m, m.buckets[i].fingerprint)
        # Move the entry back if its home is not cyclically within (hole, i].
        if ((i - home) & m.mask) >= ((i - hole) & m.mask):
            m.buckets[hole] = m.buckets[i]
            hole = i
    m.buckets[hole].slot = NO_SLOT
    m.count -= 1


cdef inline int64_t idmap_max_probe(const IdMap* m) noexcept nogil:
    """The longest distance of any entry from its home bucket (for tests: O(log n) when keyed)."""
    cdef uint64_t i
    cdef int64_t longest = 0
    cdef int64_t distance
    for i in range(m.mask + 1):
        if m.buckets[i].slot != NO_SLOT:
            distance = <int64_t> ((i - idmap_home(m, m.buckets[i].fingerprint)) & m.mask)
            if distance > longest:
                longest = distance
    return longest
