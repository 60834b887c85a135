"""Spare memory blocks: the large blocks books free, kept warm for the next book.

A fresh ``OrderBook`` on a deep stream writes some 30 MB (its tapes, id index,
order pool and the batch's results). Taken new from the system each time,
every page of it is faulted in and zeroed by the kernel: 40 % of a fresh
book's time on the deep mix, and the whole difference between a fresh book
and a preallocated one. So blocks of at least ``SPARE_MIN_BYTES`` that the
core frees (a book's memory, the arrays its batches handed over) are kept
here, up to ``SPARE_BLOCKS`` blocks and ``SPARE_MAX_BYTES`` in all, the oldest
freed first when room is needed; a request takes the smallest kept block of
its size to twice its size. A process that makes book after book, as a
backtest or a parameter sweep does, then reuses pages already in place.

Every block is plain malloc'd memory, so realloc and free work on it as on any
other. Safe from any thread, with or without the GIL: a PyThread lock guards
the list, held across os.fork so that a child starts with it free.
"""

import os as _os

from cpython.pythread cimport (
    WAIT_LOCK,
    PyThread_acquire_lock,
    PyThread_allocate_lock,
    PyThread_release_lock,
    PyThread_type_lock,
)
from libc.stdint cimport uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy

cdef enum:
    SPARE_BLOCKS = 8

# Smaller blocks come from malloc's own free lists, warm already.
cdef size_t _MIN_BYTES = 1 << 18
cdef size_t _MAX_BYTES = 1 << 26
SPARE_BLOCKS_KEPT = SPARE_BLOCKS
SPARE_MIN_BYTES = _MIN_BYTES
SPARE_MAX_BYTES = _MAX_BYTES


cdef struct Spare:
    void* block         # NULL: an empty entry
    size_t size
    uint64_t freed_at   # the order blocks were given back in, oldest smallest


cdef Spare _spares[SPARE_BLOCKS]
cdef size_t _kept_bytes = 0
cdef uint64_t _gifts = 0
cdef PyThread_type_lock _lock = PyThread_allocate_lock()
if _lock == NULL:
    raise MemoryError("cannot allocate the spare-memory lock")


def _hold_for_fork() -> None:
    """Take the lock across a fork, so that the child's copy of the list is whole and its
    lock free (another thread may hold it for the few instructions of a take or a give).
    Taken with the GIL held: a holder never waits for the GIL, while a thread giving a block
    back from a deallocation holds the GIL as it waits for the lock."""
    PyThread_acquire_lock(_lock, WAIT_LOCK)


def _release_after_fork() -> None:
    PyThread_release_lock(_lock)


if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(before=_hold_for_fork, after_in_parent=_release_after_fork,
                         after_in_child=_release_after_fork)


cdef void* spare_take(size_t size) noexcept nogil:
    """A block of at least `size` bytes (malloc'd, contents undefined): a kept one when one
    fits, else a new one; NULL when out of memory."""
    cdef void* block = spare_reuse(size)
    return block if block != NULL else malloc(size)


cdef void* spare_reuse(size_t size) noexcept nogil:
    """The smallest kept block of `size` to twice `size` bytes, or NULL when none is kept."""
    global _kept_bytes
    cdef int i
    cdef int best = -1
    cdef void* block
    if size < _MIN_BYTES:
        return NULL
    PyThread_acquire_lock(_lock, WAIT_LOCK)
    for i in range(SPARE_BLOCKS):
        if (_spares[i].block != NULL and size <= _spares[i].size <= 2 * size
                and (best < 0 or _spares[i].size < _spares[best].size)):
            best = i
    if best < 0:
        PyThread_release_lock(_lock)
        return NULL
    block = _spares[best].block
    _spares[best].block = NULL
    _kept_bytes -= _spares[best].size
    PyThread_release_lock(_lock)
    return block


cdef void* spare_grow(void* block, size_t size, size_t kept, size_t grown_size) noexcept nogil:
    """A block of `grown_size` bytes holding the first `kept` bytes of `block` (`size`
    bytes, then given back); NULL when out of memory, `block` untouched. Only the bytes in
    use move: into a kept block when one fits (its pages in place already), else by realloc,
    which remaps a large block's pages rather than copying them. Nothing kept: a new block."""
    cdef void* grown
    if not kept:
        grown = spare_take(grown_size)
        if grown != NULL:
            spare_give(block, size)
        return grown
    grown = spare_reuse(grown_size)
    if grown == NULL:
        return realloc(block, grown_size)
    memcpy(grown, block, kept)
    spare_give(block, size)
    return grown


cdef void spare_give(void* block, size_t size) noexcept nogil:
    """Free `block` (`size` bytes, from malloc or spare_take), keeping it if it is large."""
    global _kept_bytes, _gifts
    cdef int i, slot
    cdef void* evicted
    if block == NULL:
        return
    if size < _MIN_BYTES or size > _MAX_BYTES:
        free(block)
        return
    PyThread_acquire_lock(_lock, WAIT_LOCK)
    while True:
        slot = -1
        for i in range(SPARE_BLOCKS):
            if _spares[i].block == NULL:
                slot = i
                break
        if slot >= 0 and _kept_bytes + size <= _MAX_BYTES:
            break
        slot = _oldest()
        evicted = _spares[slot].block
        _kept_bytes -= _spares[slot].size
        _spares[slot].block = NULL
        free(evicted)
    _gifts += 1
    _spares[slot].block = block
    _spares[slot].size = size
    _spares[slot].freed_at = _gifts
    _kept_bytes += size
    PyThread_release_lock(_lock)


cdef int _oldest() noexcept nogil:
    """The entry given back first (the list is full or over its bytes, so not empty)."""
    cdef int i
    cdef int oldest = -1
    for i in range(SPARE_BLOCKS):
        if _spares[i].block != NULL and (oldest < 0
                                         or _spares[i].freed_at < _spares[oldest].freed_at):
            oldest = i
    return oldest


def spare_bytes() -> int:
    """Bytes of freed memory kept for the core's next large blocks."""
    return _kept_bytes


def release_spare_memory() -> int:
    """Give every kept block back to the system; the bytes released."""
    global _kept_bytes
    cdef int i
    cdef size_t released
    with nogil:
        PyThread_acquire_lock(_lock, WAIT_LOCK)
        released = _kept_bytes
        for i in range(SPARE_BLOCKS):
            free(_spares[i].block)
            _spares[i].block = NULL
        _kept_bytes = 0
        PyThread_release_lock(_lock)
    return released
