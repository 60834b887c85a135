"""pytest-benchmark of latency recording (run with --benchmark-enable).

Disabled by default (pyproject addopts): each body then runs once as a test,
and its check of the result still applies.
"""

import pytest

from obelisk._core.histogram import LatencyHistogram
from obelisk.monitor import PerformanceMonitor
from obelisk.perf.rows.monitor import latency_samples, measure_empty_blocks, record_each

SAMPLES = 200_000


@pytest.fixture(scope="module")
def latencies():
    return latency_samples(SAMPLES)


@pytest.mark.benchmark(group="histogram record")
def test_record_per_call(benchmark, latencies):
    values = latencies.tolist()

    def run(histogram):
        record_each(histogram, values)
        return histogram

    histogram = benchmark.pedantic(run, setup=lambda: ((LatencyHistogram(),), {}), rounds=5)
    assert histogram.count == SAMPLES and histogram.max == latencies.max()


@pytest.mark.benchmark(group="histogram record")
def test_record_many_batch(benchmark, latencies):
    def run(histogram):
        histogram.record_many(latencies)
        return histogram

    histogram = benchmark.pedantic(run, setup=lambda: ((LatencyHistogram(),), {}), rounds=20)
    assert histogram.count == SAMPLES and histogram.min == latencies.min()


@pytest.mark.benchmark(group="monitor overhead")
def test_measure_context_manager(benchmark):
    def run(monitor):
        measure_empty_blocks(monitor, SAMPLES // 10)
        return monitor

    monitor = benchmark.pedantic(run, setup=lambda: ((PerformanceMonitor(),), {}), rounds=5)
    stats = monitor.snapshot().operation("block").interval
    assert stats.count == SAMPLES // 10 and monitor.in_flight("block") == 0


@pytest.mark.benchmark(group="monitor overhead")
def test_bare_block(benchmark):
    def run(counter):
        for _ in range(SAMPLES // 10):
            counter[0] += 1
        return counter

    counter = benchmark.pedantic(run, setup=lambda: (([0],), {}), rounds=5)
    assert counter[0] == SAMPLES // 10
