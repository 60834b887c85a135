# Helpers shared by the books' sorted price ladders and record layouts.
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


cdef inline size_t field_offset(void* field, void* base) noexcept nogil:
    """Byte offset of a struct field, for numpy dtypes that mirror C structs."""
    return <size_t> (<char*> field - <char*> base)
