"""Capped exponential backoff with downward jitter: the one formula behind how long a
breaker stays open, how long an HTTP request waits before its retry, and how long a
websocket waits before it reconnects."""

from __future__ import annotations

import math

__all__ = ["backoff_delay"]


def backoff_delay(attempt: int, base: float, cap: float, factor: float, jitter: float,
                  draw: float) -> float:
    """``min(cap, base * factor**attempt)`` shortened by the fraction ``jitter * draw``.

    `attempt` counts from 0, `draw` is uniform in [0, 1), so the delay falls in
    ``(1 - jitter, 1]`` times the capped exponential and callers do not retry in step.
    """
    steps: float = attempt
    if factor > 1:                            # past the cap more steps change nothing
        steps = min(steps, 1 + math.log(cap / base) / math.log(factor))
    return min(cap, base * factor ** steps) * (1 - jitter * draw)
