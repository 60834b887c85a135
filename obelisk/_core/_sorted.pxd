# Helpers shared by the books' sorted price ladders, and portable compiler builtins.
# Header-only: every cimporting module inlines these.

from libc.stdint cimport int32_t, int64_t, uint64_t


cdef inline int32_t lower_bound_near_end(const int64_t* keys, int32_t n,
                                         int64_t key) noexcept nogil:
    """First index in ascending `keys[:n]` whose key is >= `key`.

    The books keep their best level last, and feeds and orders arrive near
    it. The keys are distinct integers, so every index more than `key`'s
    distance from the last key holds a smaller key: a ladder with a level at
    every tick between is answered by that one read. Otherwise a binary
    search without branches (a select per step, nothing to mispredict)
    narrows what is left.
    """
    cdef int32_t first, half, span
    cdef uint64_t distance
    if n == 0 or key > keys[n - 1]:
        return n
    distance = <uint64_t> keys[n - 1] - <uint64_t> key      # exact for any int64 key here
    first = <int32_t> (<uint64_t> (n - 1) - distance) if distance < <uint64_t> (n - 1) else 0
    if keys[first] >= key:
        return first
    first += 1                           # the answer is in first..n-1: keys[n-1] >= key
    span = n - first
    while span > 1:
        half = span >> 1
        first = first + half if keys[first + half - 1] < key else first
        span -= half
    return first


cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define OBELISK_PREFETCH(p) __builtin_prefetch((p))
    #define OBELISK_CLZLL(x) __builtin_clzll((x))
    #elif defined(_MSC_VER)
    #include <intrin.h>
    #define OBELISK_PREFETCH(p) ((void)(p))
    static __inline int obelisk_clzll(unsigned long long x) {
        unsigned long index;
        _BitScanReverse64(&index, x);
        return 63 - (int)index;
    }
    #define OBELISK_CLZLL(x) obelisk_clzll((x))
    #endif
    """
    # Compiler builtins, spelled portably: ask for a cache line early; leading zero bits
    # of a non-zero 64-bit value.
    void prefetch "OBELISK_PREFETCH"(const void* address) noexcept nogil
    int count_leading_zeros "OBELISK_CLZLL"(unsigned long long value) noexcept nogil
