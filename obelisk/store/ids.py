"""Time-ordered 64-bit trace ids: milliseconds since the epoch in the high bits.

Ids that grow with time keep the primary key and its pages append-only, which is
what makes batched inserts fast (a random key rewrites pages all over the tree).

A SQLite store is its file's only writer: its ids are ``ms << 16 | sequence``.
Many PostgreSQL stores write into one database at once, so their ids also carry
the store's writer number (leased in ``trace_writers``, see
:mod:`obelisk.store.pg_writers`) in the low bits: ``ms << 21 | sequence << 10 |
writer``. Two stores can then never issue the same id, and no id needs a round
trip to the server, so ``record`` still returns at once; 42 bits of
milliseconds last until the year 2109.
"""

from __future__ import annotations

from collections.abc import Callable

SEQUENCE_BITS = 16
WRITER_BITS = 10                        # 1,024 writers at once on one PostgreSQL database
WRITER_SEQUENCE_BITS = 11               # 2,048 ids per millisecond and writer before borrowing
WRITER_SHIFT = WRITER_BITS + WRITER_SEQUENCE_BITS
WRITERS = 1 << WRITER_BITS

IdSource = Callable[[int, int], int]    # (last_id, now_ms) -> the next id


def first_id_of_ms(ms: int) -> int:
    """The smallest id that can be issued during millisecond `ms` since the epoch."""
    return ms << SEQUENCE_BITS


def ms_of_id(trace_id: int) -> int:
    """The millisecond since the epoch an id was issued in (or borrowed, under bursts)."""
    return trace_id >> SEQUENCE_BITS


def next_id(last_id: int, now_ms: int) -> int:
    """The id after `last_id`: the first of `now_ms`, or `last_id + 1` if that is not larger.

    The second case covers 65,536 ids in one millisecond and a wall clock stepping
    back, so ids stay strictly increasing.
    """
    candidate = now_ms << SEQUENCE_BITS
    return candidate if candidate > last_id else last_id + 1


def ms_of_writer_id(trace_id: int) -> int:
    """The millisecond a PostgreSQL store's id was issued in (or borrowed, under bursts)."""
    return trace_id >> WRITER_SHIFT


def writer_of_id(trace_id: int) -> int:
    """The writer number of the PostgreSQL store that issued `trace_id`."""
    return trace_id & (WRITERS - 1)


def writer_id_source(writer: int, after: int = 0) -> IdSource:
    """The queue's id function for `writer`: the first id of `now_ms`, or the next sequence,
    and above `after` (the largest id the number's earlier holders committed).

    `last_id` may carry another writer number (the store's previous one): the
    next id is still larger, and carries `writer`.
    """
    if not 0 <= writer < WRITERS:
        raise ValueError(f"a writer number is in [0, {WRITERS}), got {writer}")

    def next_of_writer(last_id: int, now_ms: int) -> int:
        if last_id < after:
            last_id = after
        candidate = now_ms << WRITER_SHIFT | writer
        if candidate > last_id:
            return candidate
        return ((last_id >> WRITER_BITS) + 1) << WRITER_BITS | writer

    return next_of_writer
