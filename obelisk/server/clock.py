"""The exchange's notion of now: the wall clock, or a simulated one that tests advance.

Everything time-driven in the local exchange (nonce windows, ``expiresAfter``,
funding, scheduled cancels, the oracle walk) reads the same clock, so a test on
the simulated clock can jump an hour and see funding paid, with no waiting.
"""

from __future__ import annotations

import time
from typing import Protocol

SIM_EPOCH_MS = 1_767_225_600_000          # 2026-01-01T00:00:00Z: where a simulated clock starts


class Clock(Protocol):
    def now_ms(self) -> int: ...


class RealClock:
    """Unix milliseconds from the wall clock."""

    simulated = False

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class SimClock:
    """A clock that only moves when told to, and never backwards."""

    simulated = True

    def __init__(self, start_ms: int = SIM_EPOCH_MS) -> None:
        self._now = _milliseconds(start_ms, "start_ms")

    def now_ms(self) -> int:
        return self._now

    def set(self, ms: int) -> int:
        """Move to the time `ms`, which must not be in the past; the new time."""
        ms = _milliseconds(ms, "ms")
        if ms < self._now:
            raise ValueError(f"the simulated clock never goes back: {ms} < {self._now}")
        self._now = ms
        return self._now

    def advance(self, ms: int) -> int:
        """Move forward by `ms` (>= 0); the new time."""
        ms = _milliseconds(ms, "ms")
        self._now += ms
        return self._now


def _milliseconds(value: object, what: str) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"{what} must be a non-negative int of milliseconds, got {value!r}")
    return value
