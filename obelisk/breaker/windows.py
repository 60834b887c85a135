"""The outcomes a closed breaker remembers, with running totals so every read is O(1).

Each window answers two questions: has it tripped, and would one more success
change anything (`clean`)? A clean window lets successful calls skip recording.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from obelisk.breaker.config import BreakerConfig, WindowType

__all__ = ["ConsecutiveWindow", "CountWindow", "TimeWindow", "Totals", "Window", "window_for"]

FAILED, SLOW = 1, 2              # bits of one recorded outcome

Totals = tuple[int, int, int]    # (calls, failed calls, slow calls) the window holds


class _RateWindow(ABC):
    """Trips on failure or slow-call rates once the window holds enough calls."""

    def __init__(self, config: BreakerConfig) -> None:
        self._minimum_calls = config.minimum_calls
        self._failure_rate = config.failure_rate_threshold
        self._slow_rate = config.slow_call_rate_threshold
        self._times_calls = config.slow_call_duration is not None

    def tripped(self, now: float) -> bool:
        calls, failed, slow = self.totals(now)
        if calls < self._minimum_calls:
            return False
        return failed >= self._failure_rate * calls or (
            self._times_calls and slow >= self._slow_rate * calls)

    @abstractmethod
    def totals(self, now: float) -> Totals:
        """What the window holds at `now`."""


class CountWindow(_RateWindow):
    """The last `window_size` calls in a ring, oldest overwritten first."""

    def __init__(self, config: BreakerConfig) -> None:
        super().__init__(config)
        self._size = config.window_size
        self.clear()

    def clear(self) -> None:
        self._ring = [0] * self._size
        self._next = 0
        self._calls = self._failed = self._slow = 0
        self.clean = False

    def record(self, failed: bool, slow: bool, now: float) -> None:
        outcome = FAILED * failed | SLOW * slow
        evicted = self._ring[self._next]
        self._ring[self._next] = outcome
        self._next = self._next + 1 if self._next + 1 < self._size else 0
        if self._calls < self._size:
            self._calls += 1
        self._failed += (outcome & FAILED) - (evicted & FAILED)
        self._slow += (outcome >> 1) - (evicted >> 1)
        self.clean = self._calls == self._size and self._failed == 0 and self._slow == 0

    def totals(self, now: float) -> Totals:
        return self._calls, self._failed, self._slow


class TimeWindow(_RateWindow):
    """The calls of the last `window_size` whole seconds, one bucket per second."""

    clean = False                # every call must be counted in its second's bucket

    def __init__(self, config: BreakerConfig) -> None:
        super().__init__(config)
        self._size = config.window_size
        self.clear()

    def clear(self) -> None:
        self._buckets = [[0, 0, 0] for _ in range(self._size)]
        self._second: int | None = None
        self._calls = self._failed = self._slow = 0

    def record(self, failed: bool, slow: bool, now: float) -> None:
        bucket = self._buckets[self._advance(now) % self._size]
        bucket[0] += 1
        bucket[1] += failed
        bucket[2] += slow
        self._calls += 1
        self._failed += failed
        self._slow += slow

    def totals(self, now: float) -> Totals:
        self._advance(now)
        return self._calls, self._failed, self._slow

    def _advance(self, now: float) -> int:
        """Empty the buckets of seconds that left the window; the current second."""
        second = int(now)
        if self._second is None or second > self._second:
            first = second - self._size + 1 if self._second is None else self._second + 1
            for stale in range(max(first, second - self._size + 1), second + 1):
                bucket = self._buckets[stale % self._size]
                self._calls -= bucket[0]
                self._failed -= bucket[1]
                self._slow -= bucket[2]
                bucket[:] = (0, 0, 0)
            self._second = second
        return self._second


class ConsecutiveWindow:
    """The current streak of failed calls; any success ends it."""

    def __init__(self, config: BreakerConfig) -> None:
        self._limit = config.consecutive_failures
        self.clear()

    def clear(self) -> None:
        self._streak = 0
        self.clean = True

    def record(self, failed: bool, slow: bool, now: float) -> None:
        self._streak = self._streak + 1 if failed else 0
        self.clean = self._streak == 0

    def tripped(self, now: float) -> bool:
        return self._streak >= self._limit

    def totals(self, now: float) -> Totals:
        return self._streak, self._streak, 0


Window = CountWindow | TimeWindow | ConsecutiveWindow


def window_for(config: BreakerConfig) -> Window:
    """A fresh, empty window of the configured type."""
    if config.window_type is WindowType.COUNT:
        return CountWindow(config)
    if config.window_type is WindowType.TIME:
        return TimeWindow(config)
    return ConsecutiveWindow(config)
