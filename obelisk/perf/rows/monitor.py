"""Latency-monitor rows of ``obelisk bench``: what recording a latency costs.

One histogram ``record`` per Python call, a ``record_many`` batch without the
GIL, and the monitor's ``with measure(...)`` around an empty block (two clock
reads, the in-flight set and a record), all over the same log-normal samples.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from obelisk._core.histogram import LatencyHistogram
from obelisk.monitor import PerformanceMonitor

Timer = Callable[[Callable[[Any], object], Callable[[], Any], int], list[float]]
SAMPLES = 200_000
SEED = 7


def monitor_rows(repeat: int, time_runs: Timer,
                 make_row: Callable[[str, int, list[float]], Any]) -> list:
    """Rows for recording latencies one call at a time, in a batch and through the monitor."""
    latencies = np.random.default_rng(SEED).lognormal(10, 1.5, SAMPLES).astype(np.int64)
    values = latencies.tolist()

    def per_call(histogram: LatencyHistogram) -> None:
        record = histogram.record
        for value in values:
            record(value)

    def measured(monitor: PerformanceMonitor) -> None:
        measure = monitor.measure
        for _ in range(SAMPLES):
            with measure("block"):
                pass

    return [
        make_row("LatencyHistogram.record, per call", SAMPLES,
                 time_runs(per_call, LatencyHistogram, repeat)),
        make_row("LatencyHistogram.record_many, batch", SAMPLES,
                 time_runs(lambda h: h.record_many(latencies), LatencyHistogram, repeat)),
        make_row("PerformanceMonitor.measure() context manager", SAMPLES,
                 time_runs(measured, PerformanceMonitor, repeat)),
    ]
