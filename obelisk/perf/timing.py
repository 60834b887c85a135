"""Timing of ``obelisk bench``: each row is the best of several runs, each from fresh state.

A run's state is built untimed by ``prepare``; only ``run`` on that state is timed.
Shared machines are noisy, so a row keeps the best time and the median.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

State = TypeVar("State")
REFERENCE_RUNS = 3        # the pure-Python references are slow: at most this many runs


@dataclass
class BenchRow:
    """One path of the report: the work of one run, and its best and median wall times."""

    name: str
    events: int
    best_seconds: float
    median_seconds: float
    events_per_second: float = field(init=False)

    def __post_init__(self) -> None:
        self.events_per_second = self.events / self.best_seconds


def timed_row(name: str, events: int, run: Callable[[State], object],
              prepare: Callable[[], State], repeat: int) -> BenchRow:
    """Wall time of `run` (`events` of work) after a fresh, untimed `prepare`, `repeat` times."""
    times = []
    for _ in range(repeat):
        state = prepare()
        start = time.perf_counter()
        run(state)
        times.append(time.perf_counter() - start)
    return BenchRow(name, events, min(times), statistics.median(times))


def rows_in_turns(paths: dict[str, tuple[Callable[[], Any], Callable[[Any], object]]],
                  events: int, repeat: int) -> list[BenchRow]:
    """One row per path (name -> (prepare, run)), the paths taking turns within each repeat
    so that a noisy neighbour slows all of them alike and their ratios hold better than
    their rates. What a run returns is kept until it is timed, so freeing it is not."""
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(repeat):
        for name, (prepare, run) in paths.items():
            state = prepare()
            start = time.perf_counter()
            kept = run(state)
            times[name].append(time.perf_counter() - start)
            del kept, state
    return [BenchRow(name, events, min(runs), statistics.median(runs))
            for name, runs in times.items()]


def reference_repeat(repeat: int) -> int:
    """How many runs a pure-Python reference gets when the fast paths get `repeat`."""
    return max(1, min(repeat, REFERENCE_RUNS))
