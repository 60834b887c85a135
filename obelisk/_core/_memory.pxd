# Memory hints for the core's large arrays (header-style: inlined where cimported).

cdef extern from *:
    """
    #if defined(__linux__)
    #include <sys/mman.h>
    #include <stdint.h>
    /* Ask for transparent huge pages on the 2 MB-aligned inside of a large array, so
       that touching it the first time faults once per 2 MB rather than per 4 KB. The
       kernel may ignore the hint (THP off); nothing depends on it. */
    static inline void obelisk_huge_pages(void* start, size_t bytes) {
        const uintptr_t huge = (uintptr_t)1 << 21;
        uintptr_t first = ((uintptr_t)start + huge - 1) & ~(huge - 1);
        uintptr_t end = ((uintptr_t)start + bytes) & ~(huge - 1);
        if (bytes >= huge && end > first)
            (void)madvise((void*)first, end - first, MADV_HUGEPAGE);
    }
    #else
    static inline void obelisk_huge_pages(void* start, size_t bytes) {
        (void)start; (void)bytes;
    }
    #endif
    """
    void huge_pages "obelisk_huge_pages"(void* start, size_t bytes) noexcept nogil
