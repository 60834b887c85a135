"""PerformanceMonitor (obelisk/monitor.py): measuring, windows, snapshots and exports."""

import asyncio
import sys
import threading

import numpy as np
import pytest

from obelisk.monitor import (
    PROMETHEUS_BUCKETS_US,
    LatencyStats,
    MonitorSnapshot,
    PerformanceMonitor,
)


class FakeClock:
    """Nanoseconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def monitor(clock):
    return PerformanceMonitor(clock=clock)


def timed_block(monitor, clock, name, ns):
    with monitor.measure(name):
        clock.now += ns


# ---------------------------------------------------------------- measuring

def test_context_manager_records_the_block(monitor, clock):
    for ns in (50, 70, 90):        # below 256 ns every value has its own bucket
        timed_block(monitor, clock, "decide", ns)
    stats = monitor.snapshot().operation("decide").interval
    assert (stats.count, stats.min_ns, stats.p50_ns, stats.max_ns) == (3, 50, 70, 90)
    assert stats.mean_ns == 70.0


def test_block_that_raises_is_still_recorded(monitor, clock):
    with pytest.raises(KeyError), monitor.measure("lookup"):
        clock.now += 40
        raise KeyError("x")
    assert monitor.snapshot().operation("lookup").interval.max_ns == 40
    assert monitor.in_flight("lookup") == 0


def test_async_context_manager(monitor, clock):
    async def main():
        async with monitor.measure("ack"):
            clock.now += 1_234
    asyncio.run(main())
    assert monitor.snapshot().operation("ack").cumulative.max_ns == 1_234


def test_decorator_on_sync_function(monitor, clock):
    @monitor.timed("send")
    def send(order, *, size):
        clock.now += 300
        return order, size

    assert send("o1", size=2) == ("o1", 2)
    assert send.__name__ == "send"
    assert monitor.snapshot().operation("send").interval.p50_ns == 300


def test_decorator_on_async_function(monitor, clock):
    @monitor.timed
    async def fetch(value):
        clock.now += 5_000
        await asyncio.sleep(0)
        return value * 2

    assert asyncio.run(fetch(21)) == 42
    assert asyncio.iscoroutinefunction(fetch)
    name = fetch.__qualname__
    assert name.endswith("fetch")
    assert monitor.snapshot().operation(name).interval.max_ns == 5_000


def test_decorated_async_function_that_raises_is_recorded(monitor, clock):
    @monitor.timed("fail")
    async def fail():
        clock.now += 10
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(fail())
    snapshot = monitor.snapshot().operation("fail")
    assert (snapshot.interval.count, snapshot.in_flight) == (1, 0)


def test_record_of_external_latency_and_negative_value(monitor):
    monitor.record("feed lag", 2_500)
    with pytest.raises(ValueError, match=">= 0"):
        monitor.record("feed lag", -1)
    stats = monitor.snapshot().operation("feed lag").interval
    assert (stats.count, stats.max_ns) == (1, 2_500)


def test_real_clock_measures_something():
    monitor = PerformanceMonitor()
    with monitor.measure("sleep"):
        threading.Event().wait(0.002)
    assert monitor.snapshot().operation("sleep").interval.min_ns >= 1_000_000


# ---------------------------------------------------------------- in flight

def test_in_flight_counts_threads():
    monitor = PerformanceMonitor()
    inside = threading.Barrier(5)
    release = threading.Event()

    def work():
        with monitor.measure("rpc"):
            inside.wait()
            release.wait()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    inside.wait()
    assert monitor.in_flight("rpc") == 4
    during = monitor.snapshot(reset_interval=False).operation("rpc")
    assert during.in_flight == 4 and during.oldest_in_flight_ns > 0
    release.set()
    for thread in threads:
        thread.join()
    after = monitor.snapshot().operation("rpc")
    assert (after.in_flight, after.oldest_in_flight_ns, after.interval.count) == (0, 0, 4)


def test_in_flight_counts_asyncio_tasks(monitor, clock):
    async def main():
        release = asyncio.Event()

        async def call():
            async with monitor.measure("order"):
                await release.wait()
                clock.now += 10

        tasks = [asyncio.create_task(call()) for _ in range(3)]
        await asyncio.sleep(0)
        clock.now += 700
        counted = monitor.in_flight("order"), monitor.snapshot().operation("order")
        release.set()
        await asyncio.gather(*tasks)
        return counted

    count, during = asyncio.run(main())
    assert count == 3 and during.in_flight == 3 and during.oldest_in_flight_ns == 700
    assert monitor.in_flight("order") == 0
    assert monitor.in_flight("never used") == 0


# ---------------------------------------------------------------- windows

def test_interval_snapshot_resets_interval_but_not_cumulative(monitor, clock):
    for ns in (10, 20, 30, 40):
        timed_block(monitor, clock, "tick", ns)
    clock.now += 1_000_000_000 - 100      # one second since start
    first = monitor.snapshot()
    assert first.interval_s == first.uptime_s == 1.0
    assert first.operation("tick").interval.rate_per_s == 4.0

    timed_block(monitor, clock, "tick", 10_000)
    clock.now += 1_000_000_000 - 10_000
    second = monitor.snapshot()
    tick = second.operation("tick")
    assert (second.interval_s, second.uptime_s) == (1.0, 2.0)
    assert (tick.interval.count, tick.interval.min_ns, tick.interval.max_ns) == (1, 10_000, 10_000)
    assert (tick.cumulative.count, tick.cumulative.min_ns, tick.cumulative.max_ns) == \
        (5, 10, 10_000)
    assert tick.cumulative.rate_per_s == 2.5
    assert tick.cumulative.p50_ns == 30       # merged histograms, not averaged percentiles


def test_peek_does_not_reset(monitor, clock):
    timed_block(monitor, clock, "tick", 50)
    peek = monitor.snapshot(reset_interval=False)
    again = monitor.snapshot(reset_interval=False)
    assert peek == again
    assert peek.operation("tick").interval.count == 1 == peek.operation("tick").cumulative.count
    assert monitor.snapshot().operation("tick").interval.count == 1


def test_empty_interval_reports_zeros(monitor, clock):
    timed_block(monitor, clock, "tick", 50)
    monitor.snapshot()
    empty = monitor.snapshot().operation("tick").interval
    assert empty == LatencyStats(0, 0.0, 0, 0.0, 0.0, 0, 0, 0, 0, 0, 0)


def test_histogram_accessor_merges_both_windows(monitor, clock):
    timed_block(monitor, clock, "tick", 100)
    monitor.snapshot()
    timed_block(monitor, clock, "tick", 900)
    histogram = monitor.operation("tick").histogram()
    assert (histogram.count, histogram.min, histogram.max) == (2, 100, 900)
    with pytest.raises(ValueError, match="no expected interval"):
        monitor.operation("tick").histogram(corrected=True)


# ---------------------------------------------------------------- coordinated omission

def test_corrected_figures_beside_raw_ones(monitor):
    monitor.operation("loop", expected_interval_ns=10)
    monitor.record("loop", 100)
    loop = monitor.snapshot().operation("loop")
    assert (loop.interval.count, loop.interval.p50_ns) == (1, 100)
    # Hand count: 100 plus the hidden 90, 80, ..., 10; the median of ten is the 5th.
    corrected = loop.corrected_interval
    assert corrected is not None and loop.corrected_cumulative == corrected
    assert (corrected.count, corrected.min_ns, corrected.p50_ns, corrected.max_ns) == \
        (10, 10, 50, 100)
    assert corrected.mean_ns == 55.0


def test_expected_interval_is_fixed_and_positive(monitor):
    monitor.operation("loop", expected_interval_ns=100)
    assert monitor.operation("loop").expected_interval_ns == 100
    with pytest.raises(ValueError, match="already has expected interval"):
        monitor.operation("loop", expected_interval_ns=200)
    with pytest.raises(ValueError, match="must be positive"):
        monitor.operation("other", expected_interval_ns=0)
    assert [op.name for op in monitor.operations()] == ["loop"]


# ---------------------------------------------------------------- snapshot output

def populated(monitor, clock) -> MonitorSnapshot:
    monitor.operation("loop", expected_interval_ns=1_000)
    for ns in np.random.default_rng(5).integers(50, 50_000, 200).tolist():
        timed_block(monitor, clock, "loop", ns)
        timed_block(monitor, clock, "send", ns // 3)
    clock.now += 10**9
    return monitor.snapshot()


def test_json_round_trip(monitor, clock):
    snapshot = populated(monitor, clock)
    assert MonitorSnapshot.from_json(snapshot.to_json()) == snapshot
    assert MonitorSnapshot.from_json(snapshot.to_json().decode()) == snapshot
    assert snapshot.operation("send").corrected_interval is None


def test_snapshots_are_frozen(monitor, clock):
    snapshot = populated(monitor, clock)
    with pytest.raises(AttributeError):
        snapshot.uptime_s = 0.0
    with pytest.raises(KeyError):
        snapshot.operation("missing")


def test_summary_table(monitor, clock):
    snapshot = populated(monitor, clock)
    lines = str(snapshot).splitlines()
    assert lines[0].startswith("latency over")
    assert lines[1].split()[:4] == ["operation", "window", "count", "rate/s"]
    assert len(lines) == 2 + 4 + 2      # loop: raw and corrected windows; send: raw only
    assert [line.split()[0] for line in lines[2:]] == ["loop"] * 4 + ["send"] * 2
    send = snapshot.operation("send").interval
    send_row = next(line for line in lines if line.startswith("send") and "interval" in line)
    assert f"{send.count:,}" in send_row and send_row.endswith(" 0")


# ---------------------------------------------------------------- Prometheus

def test_prometheus_export_missing_package_names_the_extra(monitor, monkeypatch):
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(ImportError, match=r"obelisk\[prometheus\]"):
        monitor.prometheus_text()


def test_prometheus_export(monitor, clock):
    parser = pytest.importorskip("prometheus_client.parser")
    monitor.operation("loop", expected_interval_ns=1_000)
    for ns in (800, 1_500, 3_000, 2_000_000):
        timed_block(monitor, clock, "loop", ns)
    text = monitor.prometheus_text().decode()
    families = {f.name: f for f in parser.text_string_to_metric_families(text)}
    samples = families["obelisk_latency_seconds"].samples
    raw = {s.labels["le"]: s.value for s in samples
           if s.name.endswith("_bucket") and s.labels["corrected"] == "false"}
    assert len(raw) == len(PROMETHEUS_BUCKETS_US) + 1
    assert (raw["1e-06"], raw["2.5e-06"], raw["5e-06"], raw["0.0025"], raw["+Inf"]) == \
        (1, 2, 3, 4, 4)
    total = next(s.value for s in samples
                 if s.name.endswith("_sum") and s.labels["corrected"] == "false")
    assert total == pytest.approx(2_005_300 / 1e9)
    corrected = {s.labels["le"]: s.value for s in samples
                 if s.name.endswith("_bucket") and s.labels["corrected"] == "true"}
    assert corrected["+Inf"] == 1 + 1 + 3 + 2_000      # 1000 ns interval: 3000 adds 2000, 1000
    assert families["obelisk_in_flight"].samples[0].value == 0
