"""Time-ordered 64-bit trace ids: milliseconds since the epoch << 16 | a sequence.

Ids that grow with time keep the primary key and its pages append-only, which is
what makes batched inserts fast (a random key rewrites pages all over the tree).
"""

from __future__ import annotations

SEQUENCE_BITS = 16


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
