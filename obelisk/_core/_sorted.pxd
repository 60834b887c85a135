# Helpers shared by the books' sorted price ladders, and portable compiler builtins.
# Header-only: every cimporting module inlines these.

from libc.stdint cimport int32_t, int64_t


cdef inline int32_t lower_bound_near_end(const int64_t* keys, int32_t n,
                                         int64_t key) noexcept nogil:
    """First index in ascending `keys[:n]` whose key is >= `key`.

    The books keep their best level last and feeds and orders arrive near
    it, so the last few keys are counted without branches; only a key below
    them falls back to a binary search.
    """
    cdef int32_t lo = n - 8 if n > 8 else 0
    cdef int32_t hi, mid, i
    cdef int32_t below = 0
    if lo > 0 and keys[lo] >= key:
        hi = lo
        lo = 0
        while lo < hi:
            mid = (lo + hi) >> 1
            if keys[mid] < key:
                lo = mid + 1
            else:
                hi = mid
        return lo
    for i in range(lo, n):
        below += keys[i] < key
    return lo + below


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
