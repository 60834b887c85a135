# A price -> level map over a window of ticks around a book side's touch, in front of its
# sorted ladder. Most orders rest at a level that exists, near the touch: one read here
# replaces the ladder's search. Prices outside the window, and new levels, still search
# the ladder, which stays the whole truth; the window holds exactly the ladder's levels
# whose prices fall inside it. Header-only: every cimporting module inlines these.

from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.stdlib cimport free, malloc

from obelisk._core._types cimport price_t


cdef enum:
    WINDOW_TICKS = 4096
    NO_LEVEL = -1       # inside the window, no level at that price
    OUTSIDE = -2        # outside the window: ask the ladder


# The base of a window never centred: no price (1 .. 2**53) falls inside it.
cdef extern from *:
    """
    #define OBELISK_WINDOW_NOWHERE (-((int64_t) 1 << 62))
    """
    const price_t NOWHERE "OBELISK_WINDOW_NOWHERE"


cdef struct LevelWindow:
    int32_t* levels     # WINDOW_TICKS level indices, for prices base .. base + WINDOW_TICKS - 1
    price_t base


cdef inline int window_init(LevelWindow* window) noexcept nogil:
    """An empty window that holds no price until it is first centred; -1 when out of memory.
    Its levels stay unwritten until centring fills them all: no price reaches them before
    (16 KB of stores a side, 0.7 of a fresh book's 4.6 us)."""
    window.levels = <int32_t*> malloc(WINDOW_TICKS * sizeof(int32_t))
    if window.levels == NULL:
        return -1
    window.base = NOWHERE
    return 0


cdef inline bint window_centred(const LevelWindow* window) noexcept nogil:
    """Whether the window was ever centred (and its levels written)."""
    return window.base != NOWHERE


cdef inline void window_free(LevelWindow* window) noexcept nogil:
    free(window.levels)
    window.levels = NULL


cdef inline int32_t window_get(const LevelWindow* window, price_t price) noexcept nogil:
    """The level at `price`, NO_LEVEL, or OUTSIDE."""
    cdef uint64_t offset = <uint64_t> (price - window.base)
    if offset < WINDOW_TICKS:
        return window.levels[offset]
    return OUTSIDE


cdef inline bint window_set(LevelWindow* window, price_t price, int32_t level) noexcept nogil:
    """Record a new level (or NO_LEVEL for a dropped one) if `price` is inside; whether it is."""
    cdef uint64_t offset = <uint64_t> (price - window.base)
    if offset < WINDOW_TICKS:
        window.levels[offset] = level
        return True
    return False


cdef inline bint window_off_centre(const LevelWindow* window, price_t price) noexcept nogil:
    """Whether `price` (the touch) lies outside the window's middle half."""
    return <uint64_t> (price - window.base - WINDOW_TICKS // 4) >= WINDOW_TICKS // 2


cdef inline void window_centre(LevelWindow* window, const int64_t* keys,
                               const int32_t* levels, int32_t size,
                               int64_t key_sign) noexcept nogil:
    """Centre the window on a ladder's touch and fill it from the ladder: `size` keys, best
    last, each price * `key_sign`, and their level indices. Walks from the touch out, and
    stops at the first level past the window."""
    cdef int32_t i
    for i in range(WINDOW_TICKS):
        window.levels[i] = NO_LEVEL
    if size == 0:
        return
    window.base = keys[size - 1] * key_sign - WINDOW_TICKS // 2
    for i in range(size - 1, -1, -1):
        if not window_set(window, keys[i] * key_sign, levels[i]):
            break
