# Order id -> pool slot index: open addressing with linear probing and
# backward-shift deletion (no tombstones). A bucket is 8 bytes: the slot and
# the top 32 bits of the id's hash. Those bits hold the bucket's home (its top
# `bits`) and a fingerprint, so probes touch the pool only when fingerprints
# agree, and deletion never touches it. Header-only: every cimporting module
# inlines these.
#
# Ids come from outside (strategies, replayed feeds), and an unkeyed
# multiplicative hash is inverted in one line: 100k chosen ids sharing one home
# make every probe walk one cluster. A keyed hash stops that, but it clusters
# the ids books usually see (counters), which Fibonacci hashing spreads with no
# collision at all, and uneven walks cost branch mispredictions on every call.
# So a map starts with Fibonacci hashing and books, for every walk that
# leaves its home, the steps beyond an allowance as debt; past a limit it
# switches, once, to a wyhash-style multiply-fold under two random 64-bit words
# drawn when the map was made. Chosen ids cost at most the allowance per walk
# and the limit once; after the switch nobody can choose them.

from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t

from obelisk._core._memory cimport huge_pages
from obelisk._core.spare cimport spare_give, spare_take
from obelisk._core._types cimport NO_SLOT, Order, oid_t, slot_t


cdef struct IdBucket:
    uint32_t fingerprint
    slot_t slot


cdef struct IdMap:
    IdBucket* buckets
    uint64_t mask
    int32_t shift
    int64_t count
    uint64_t key[3]         # the hash in use: xor, odd multiplier, fold mask
    uint64_t spare_key[2]   # random xor and multiplier, for the switch
    int64_t debt            # probe steps beyond the allowance, floored at -REKEY_DEBT
    int64_t rekey_at        # REKEY_DEBT while Fibonacci hashing; never once keyed
    # _idmap_rekey, called through this pointer so that compilers keep its body (a loop
    # over every bucket) out of the walks: inlined, its registers cost every call
    void (*rekey)(IdMap*, const Order*) noexcept nogil


cdef extern from *:
    """
    /* The low half of a 64x64 -> 128-bit product, xor its high half under `fold`
       (all ones: wyhash's fold; zero: a plain multiply, Fibonacci hashing). */
    static inline uint64_t obelisk_fold_mul(uint64_t a, uint64_t b, uint64_t fold) {
    #if defined(__SIZEOF_INT128__)
        __uint128_t p = (__uint128_t)a * b;
        return (uint64_t)p ^ ((uint64_t)(p >> 64) & fold);
    #else
        uint64_t al = (uint32_t)a, ah = a >> 32, bl = (uint32_t)b, bh = b >> 32;
        uint64_t ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
        uint64_t mid = (ll >> 32) + (uint32_t)lh + (uint32_t)hl;
        uint64_t lo = (mid << 32) | (uint32_t)ll;
        uint64_t hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
        return lo ^ (hi & fold);
    #endif
    }
    #define OBELISK_FIBONACCI UINT64_C(0x9E3779B97F4A7C15)  /* 2**64 / golden ratio, odd */
    """
    uint64_t FIBONACCI "OBELISK_FIBONACCI"
    int64_t NEVER "INT64_MAX"
    uint64_t fold_mul "obelisk_fold_mul"(uint64_t a, uint64_t b, uint64_t fold) noexcept nogil
    bint unlikely(bint) noexcept nogil     # Cython's own branch hint


# Load at most 3/4. With a random (keyed) hash, a fuller map walks longer clusters (an
# insert probes 8.5 buckets on average at 3/4, 2.5 at 1/2), but at 1/2 a deep book's
# map is twice as big and first touched as it grows: a fresh book on the deep mix
# (30k resting orders) lost more to that than the shorter walks saved.
cdef enum:
    LOAD_NUMERATOR = 3
    LOAD_DENOMINATOR = 4

# A walk of up to PROBE_ALLOWANCE steps past its home costs no debt (a random hash
# walks 1.5 on a hit and 7.5 on a miss at load 3/4); past REKEY_DEBT the map switches.
cdef enum:
    PROBE_ALLOWANCE = 8
    REKEY_DEBT = 1 << 16


cdef inline uint32_t idmap_hash(const IdMap* m, oid_t oid) noexcept nogil:
    # (id ^ key0) * key1 (odd) as 128 bits, the high half folded in when keyed.
    return <uint32_t> (fold_mul(<uint64_t> oid ^ m.key[0], m.key[1], m.key[2]) >> 32)


cdef inline uint64_t idmap_home(const IdMap* m, uint32_t h) noexcept nogil:
    return h >> m.shift


cdef inline IdBucket* _idmap_buckets(int64_t size) noexcept nogil:
    """`size` empty buckets, or NULL when out of memory."""
    cdef IdBucket* buckets = <IdBucket*> spare_take(<size_t> size * sizeof(IdBucket))
    cdef int64_t i
    if buckets == NULL:
        return NULL
    huge_pages(buckets, <size_t> size * sizeof(IdBucket))
    for i in range(size):
        buckets[i].slot = NO_SLOT
        buckets[i].fingerprint = 0
    return buckets


cdef inline void _idmap_give(IdBucket* buckets, uint64_t size) noexcept nogil:
    spare_give(buckets, <size_t> size * sizeof(IdBucket))


cdef inline int idmap_init(IdMap* m, int64_t expected, uint64_t key0,
                           uint64_t key1) noexcept nogil:
    """Size for `expected` keys at load <= 3/4 (16 to 2**32 buckets); -1 when out of memory.

    Hashing starts as Fibonacci's. `key0` and `key1` are the key it switches to
    when ids abuse that: draw them at random (os.urandom) per map.
    """
    cdef int64_t size = 16
    cdef int32_t bits = 4
    while size * LOAD_NUMERATOR < expected * LOAD_DENOMINATOR:
        size <<= 1
        bits += 1
    if bits > 32:
        return -1
    cdef IdBucket* buckets = _idmap_buckets(size)
    if buckets == NULL:
        return -1
    m.buckets = buckets
    m.mask = <uint64_t> (size - 1)
    m.shift = 32 - bits
    m.count = 0
    m.key[0] = 0
    m.key[1] = FIBONACCI
    m.key[2] = 0
    m.spare_key[0] = key0
    m.spare_key[1] = key1 | 1           # an odd multiplier loses no bits of the id
    m.debt = 0
    m.rekey_at = REKEY_DEBT
    m.rekey = _idmap_rekey
    return 0


cdef inline void idmap_free(IdMap* m) noexcept nogil:
    _idmap_give(m.buckets, m.mask + 1)
    m.buckets = NULL
    m.count = 0


cdef inline uint64_t _idmap_place(IdMap* m, uint32_t fingerprint, slot_t slot) noexcept nogil:
    """Put `slot` in the first free bucket from its home; the steps walked past the home."""
    cdef uint64_t home = idmap_home(m, fingerprint)
    cdef uint64_t i = home
    while m.buckets[i].slot != NO_SLOT:
        i = (i + 1) & m.mask
    m.buckets[i].slot = slot
    m.buckets[i].fingerprint = fingerprint
    return (i - home) & m.mask


cdef inline void _idmap_rekey(IdMap* m, const Order* orders) noexcept nogil:
    """Switch to the keyed hash and place every id again; never again after this."""
    cdef IdBucket* old = m.buckets
    cdef IdBucket* buckets = _idmap_buckets(<int64_t> (m.mask + 1))
    cdef uint64_t i
    m.rekey_at = NEVER      # out of memory too: Fibonacci hashing stays, correct if slow
    if buckets == NULL:
        return
    m.buckets = buckets
    m.key[0] = m.spare_key[0]
    m.key[1] = m.spare_key[1]
    m.key[2] = ~(<uint64_t> 0)
    for i in range(m.mask + 1):
        if old[i].slot != NO_SLOT:
            _idmap_place(m, idmap_hash(m, orders[old[i].slot].oid), old[i].slot)
    _idmap_give(old, m.mask + 1)


cdef inline void _idmap_charge(IdMap* m, const Order* orders, uint64_t steps) noexcept nogil:
    """Book a walk of `steps` (> 0) past its home against the allowance; switch past the limit.

    Only walks that leave their home are booked: ids that spread well (counters under
    Fibonacci hashing) settle at home and never come here.
    """
    cdef int64_t debt = m.debt + <int64_t> steps - PROBE_ALLOWANCE
    m.debt = debt if debt > -REKEY_DEBT else -REKEY_DEBT
    if unlikely(debt > m.rekey_at):
        m.rekey(m, orders)


cdef inline slot_t idmap_find(IdMap* m, const Order* orders, oid_t oid) noexcept nogil:
    cdef uint32_t fingerprint = idmap_hash(m, oid)
    cdef uint64_t home = idmap_home(m, fingerprint)
    cdef const IdBucket* bucket = &m.buckets[home]
    if bucket.slot == NO_SLOT or (bucket.fingerprint == fingerprint
                                  and orders[bucket.slot].oid == oid):
        return bucket.slot
    return _idmap_find_past_home(m, orders, oid, fingerprint, home)


cdef inline slot_t _idmap_find_past_home(IdMap* m, const Order* orders, oid_t oid,
                                         uint32_t fingerprint, uint64_t home) noexcept nogil:
    """The walk of a lookup not settled at its home bucket, charged to the debt."""
    cdef uint64_t i = home
    cdef const IdBucket* bucket
    while True:
        i = (i + 1) & m.mask
        bucket = &m.buckets[i]
        if bucket.slot == NO_SLOT or (bucket.fingerprint == fingerprint
                                      and orders[bucket.slot].oid == oid):
            break
    _idmap_charge(m, orders, (i - home) & m.mask)
    return bucket.slot


cdef inline int idmap_reserve(IdMap* m, int64_t count) noexcept nogil:
    """Grow (doubling) until `count` keys fit at load <= 3/4; -1 when out of memory."""
    cdef uint64_t i
    cdef int64_t size = <int64_t> (m.mask + 1)
    cdef int32_t shift = m.shift
    if count * LOAD_DENOMINATOR <= size * LOAD_NUMERATOR:
        return 0
    while count * LOAD_DENOMINATOR > size * LOAD_NUMERATOR:
        size *= 2
        shift -= 1
    if shift < 0:
        return -1
    cdef IdBucket* buckets = _idmap_buckets(size)
    if buckets == NULL:
        return -1
    cdef IdBucket* old = m.buckets
    cdef uint64_t old_size = m.mask + 1
    m.buckets = buckets
    m.mask = <uint64_t> (size - 1)
    m.shift = shift
    for i in range(old_size):
        if old[i].slot != NO_SLOT:
            _idmap_place(m, old[i].fingerprint, old[i].slot)
    _idmap_give(old, old_size)
    return 0


cdef inline int64_t idmap_room(const IdMap* m) noexcept nogil:
    """Keys that can be added before the map must grow."""
    return <int64_t> ((m.mask + 1) // LOAD_DENOMINATOR * LOAD_NUMERATOR) - m.count


cdef inline void idmap_add(IdMap* m, const Order* orders, slot_t slot) noexcept nogil:
    """Index a slot under its order's id (which must be absent), in room `idmap_reserve`
    made for it."""
    cdef uint64_t steps = _idmap_place(m, idmap_hash(m, orders[slot].oid), slot)
    m.count += 1
    if steps != 0:
        _idmap_charge(m, orders, steps)


cdef inline void idmap_remove(IdMap* m, const Order* orders, oid_t oid, slot_t slot) noexcept nogil:
    """Drop the present id `oid` of `slot`, shifting later probes back into the hole.

    The bucket is found by its slot, which is unique: no probe reads the pool
    (`orders` is for a switch of hash the walk may call for).
    """
    cdef uint64_t start = idmap_home(m, idmap_hash(m, oid))
    cdef uint64_t hole = start
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
    # The walk ran from the id's home to the free bucket that ends its cluster; one step
    # is the least it takes, and only the ones beyond are booked.
    if ((i - start) & m.mask) > 1:
        _idmap_charge(m, orders, ((i - start) & m.mask) - 1)


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
