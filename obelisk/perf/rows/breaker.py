"""Circuit-breaker rows of ``obelisk bench``: the closed-path cost of a guarded call.

Every row makes the same calls to a function that returns ``x + 1``: bare, through
a closed :class:`CircuitBreaker` (count window, default settings), through
``pybreaker`` when installed, and the same for an ``async def`` awaited in a loop.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable
from typing import Any

from obelisk.breaker import CircuitBreaker
from obelisk.perf.timing import BenchRow, timed_row

CALLS = 200_000


def add_one(x: int) -> int:
    return x + 1


async def add_one_async(x: int) -> int:
    return x + 1


def breaker_rows(repeat: int) -> list[BenchRow]:
    """Sync and async rows, bare versus guarded, `CALLS` calls per timed run."""
    guarded = closed_breaker()(add_one)
    rows = [timed_row("bare call", CALLS, call_loop, lambda: add_one, repeat),
            timed_row("CircuitBreaker closed path", CALLS, call_loop, lambda: guarded, repeat)]
    if importlib.util.find_spec("pybreaker") is not None:
        rows.append(timed_row("pybreaker closed path", CALLS, call_loop, pybreaker_guarded,
                              repeat))
    guarded_async = closed_breaker()(add_one_async)
    rows += [timed_row("bare await", CALLS, await_loop,
                       lambda: (asyncio.new_event_loop(), add_one_async), repeat),
             timed_row("CircuitBreaker async closed path", CALLS, await_loop,
                       lambda: (asyncio.new_event_loop(), guarded_async), repeat)]
    return rows


def closed_breaker() -> CircuitBreaker:
    """A default breaker whose window is already full of successes, as after warm-up."""
    breaker = CircuitBreaker("bench")
    warm = breaker(add_one)
    for _ in range(breaker.config.window_size):
        warm(0)
    return breaker


def pybreaker_guarded() -> Callable[[int], int]:
    import pybreaker

    return pybreaker.CircuitBreaker()(add_one)  # type: ignore[no-any-return]


def call_loop(fn: Callable[[int], int], calls: int = CALLS) -> int:
    """`calls` calls of `fn`; the last result, so the work is not optimized away."""
    result = 0
    for _ in range(calls):
        result = fn(1)
    return result


def await_loop(state: tuple[asyncio.AbstractEventLoop, Callable[[int], Any]],
               calls: int = CALLS) -> int:
    """`calls` awaits of the coroutine function in a fresh loop, which it then closes."""
    loop, fn = state

    async def run() -> int:
        result = 0
        for _ in range(calls):
            result = await fn(1)
        return result

    try:
        return loop.run_until_complete(run())
    finally:
        loop.close()
