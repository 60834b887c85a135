"""Latency-monitor rows of ``obelisk bench``: what recording a latency costs.

One histogram ``record`` per Python call, a ``record_many`` batch without the
GIL, and the monitor's ``with measure(...)`` around an empty block (two clock
reads, the in-flight set and a record), all over the same log-normal samples.
"""

from __future__ import annotations

import numpy as np

from obelisk._core.histogram import LatencyHistogram
from obelisk.monitor import PerformanceMonitor
from obelisk.perf.timing import BenchRow, timed_row

SAMPLES = 200_000
SEED = 7


def latency_samples(count: int) -> np.ndarray:
    """`count` log-normal latencies in nanoseconds (median ~22 us, a long tail), seeded."""
    return np.random.default_rng(SEED).lognormal(10, 1.5, count).astype(np.int64)


def record_each(histogram: LatencyHistogram, latencies: list[int]) -> None:
    """One ``record`` call per latency."""
    record = histogram.record
    for latency in latencies:
        record(latency)


def measure_empty_blocks(monitor: PerformanceMonitor, blocks: int) -> None:
    """`blocks` empty ``with measure("block")`` blocks: the monitor's own cost."""
    measure = monitor.measure
    for _ in range(blocks):
        with measure("block"):
            pass


def monitor_rows(repeat: int) -> list[BenchRow]:
    """Rows for recording latencies one call at a time, in a batch and through the monitor."""
    latencies = latency_samples(SAMPLES)
    values = latencies.tolist()
    return [
        timed_row("LatencyHistogram.record, per call", SAMPLES,
                  lambda h: record_each(h, values), LatencyHistogram, repeat),
        timed_row("LatencyHistogram.record_many, batch", SAMPLES,
                  lambda h: h.record_many(latencies), LatencyHistogram, repeat),
        timed_row("PerformanceMonitor.measure() context manager", SAMPLES,
                  lambda m: measure_empty_blocks(m, SAMPLES), PerformanceMonitor, repeat),
    ]
