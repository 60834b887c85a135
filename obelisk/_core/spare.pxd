# Spare memory blocks: large blocks the core frees, kept for its next requests.

cdef void* spare_take(size_t size) noexcept nogil
cdef void* spare_grow(void* block, size_t size, size_t kept, size_t grown_size) noexcept nogil
cdef void spare_give(void* block, size_t size) noexcept nogil
