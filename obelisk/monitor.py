"""Latency of a bot's stages: percentiles, rates and in-flight counts, per interval and in total.

Each named operation (tick-to-signal, order send, exchange ack...) records into
a compiled :class:`~obelisk._core.histogram.LatencyHistogram` in nanoseconds,
so measuring costs a clock read and a C call, not a lock or an allocation of
samples. A snapshot drains the interval histograms into the cumulative ones:
interval figures are merged, never averaged, into totals.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar, overload

import numpy as np
import orjson

from obelisk._core.histogram import LatencyHistogram

__all__ = [
    "PROMETHEUS_BUCKETS_US",
    "LatencyStats",
    "Measurement",
    "MonitorSnapshot",
    "Operation",
    "OperationSnapshot",
    "PerformanceMonitor",
]

F = TypeVar("F", bound=Callable[..., Any])
Clock = Callable[[], int]

# Microsecond-scale bounds: Prometheus' defaults (5 ms .. 10 s) miss a trading bot's range.
PROMETHEUS_BUCKETS_US: tuple[float, ...] = (
    1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000,
    100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000)
PERCENTILES = (50.0, 90.0, 99.0, 99.9)
PROMETHEUS_EXTRA_HINT = "pip install 'obelisk[prometheus]'"


# ---------------------------------------------------------------- snapshots

@dataclass(frozen=True, slots=True)
class LatencyStats:
    """One histogram's figures over a window; latencies in ns, 0 when nothing was recorded."""

    count: int
    rate_per_s: float
    min_ns: int
    mean_ns: float
    stddev_ns: float
    p50_ns: int
    p90_ns: int
    p99_ns: int
    p999_ns: int
    max_ns: int
    overflow: int       # samples above one hour, reported as one hour by the percentiles

    @classmethod
    def of(cls, histogram: LatencyHistogram, seconds: float) -> LatencyStats:
        """The figures of `histogram`, whose samples span `seconds` of wall time."""
        p50, p90, p99, p999 = histogram.percentiles(PERCENTILES)
        return cls(count=histogram.count,
                   rate_per_s=histogram.count / seconds if seconds > 0 else 0.0,
                   min_ns=histogram.min, mean_ns=histogram.mean(),
                   stddev_ns=histogram.stddev(), p50_ns=p50, p90_ns=p90, p99_ns=p99,
                   p999_ns=p999, max_ns=histogram.max, overflow=histogram.overflow)


@dataclass(frozen=True, slots=True)
class OperationSnapshot:
    """One operation: raw figures, and corrected ones when it has an expected interval."""

    name: str
    in_flight: int
    oldest_in_flight_ns: int        # age of the longest-running call: a hang shows here first
    interval: LatencyStats
    cumulative: LatencyStats
    corrected_interval: LatencyStats | None = None
    corrected_cumulative: LatencyStats | None = None


@dataclass(frozen=True, slots=True)
class MonitorSnapshot:
    """Every operation at one moment; ``str()`` is a summary table, ``to_json()`` bytes."""

    interval_s: float
    uptime_s: float
    operations: tuple[OperationSnapshot, ...]

    def operation(self, name: str) -> OperationSnapshot:
        for operation in self.operations:
            if operation.name == name:
                return operation
        raise KeyError(name)

    def to_json(self) -> bytes:
        return orjson.dumps(self)

    @classmethod
    def from_json(cls, data: bytes | str) -> MonitorSnapshot:
        raw = orjson.loads(data)
        return cls(interval_s=raw["interval_s"], uptime_s=raw["uptime_s"],
                   operations=tuple(_operation_from_dict(o) for o in raw["operations"]))

    def table(self) -> str:
        """One row per operation and window: count, rate, percentiles, max, in flight."""
        header = ("operation", "window", "count", "rate/s", "p50", "p90", "p99", "p99.9",
                  "max", "in flight")
        rows = [header, *self._rows()]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w)
                           for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
                 for row in rows]
        title = f"latency over {self.interval_s:.3f} s (uptime {self.uptime_s:.3f} s)"
        return "\n".join([title, *lines])

    def _rows(self) -> Iterator[tuple[str, ...]]:
        for op in self.operations:
            windows = [("interval", op.interval), ("total", op.cumulative)]
            if op.corrected_interval is not None and op.corrected_cumulative is not None:
                windows += [("interval corrected", op.corrected_interval),
                            ("total corrected", op.corrected_cumulative)]
            for window, stats in windows:
                yield (op.name, window, f"{stats.count:,}", f"{stats.rate_per_s:,.1f}",
                       *(_duration(ns) for ns in (stats.p50_ns, stats.p90_ns, stats.p99_ns,
                                                  stats.p999_ns, stats.max_ns)),
                       str(op.in_flight))

    def __str__(self) -> str:
        return self.table()


def _operation_from_dict(raw: dict[str, Any]) -> OperationSnapshot:
    def corrected(key: str) -> LatencyStats | None:
        return None if raw[key] is None else LatencyStats(**raw[key])

    return OperationSnapshot(name=raw["name"], in_flight=raw["in_flight"],
                             oldest_in_flight_ns=raw["oldest_in_flight_ns"],
                             interval=LatencyStats(**raw["interval"]),
                             cumulative=LatencyStats(**raw["cumulative"]),
                             corrected_interval=corrected("corrected_interval"),
                             corrected_cumulative=corrected("corrected_cumulative"))


def _duration(ns: float) -> str:
    """A latency in the unit that keeps it readable: 850ns, 12.4us, 3.1ms, 2.05s."""
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g}{unit}"
    return f"{ns:.0f}ns"


# ---------------------------------------------------------------- measuring

class Measurement:
    """One timed call of an operation: a context manager, sync or async."""

    __slots__ = ("_operation", "started_ns")

    def __init__(self, operation: Operation) -> None:
        self._operation = operation
        self.started_ns = 0

    def __enter__(self) -> Measurement:
        self.started_ns = self._operation.clock()
        self._operation.running.add(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        operation = self._operation
        operation.record(operation.clock() - self.started_ns)
        operation.running.discard(self)

    async def __aenter__(self) -> Measurement:
        return self.__enter__()

    async def __aexit__(self, *exc_info: object) -> None:
        self.__exit__()


class Operation:
    """A named stage's histograms; get one from :meth:`PerformanceMonitor.operation`.

    With `expected_interval_ns`, every sample is also recorded corrected for
    coordinated omission (the samples a stall kept the loop from taking), and
    snapshots report both.
    """

    def __init__(self, name: str, clock: Clock, expected_interval_ns: int | None) -> None:
        if expected_interval_ns is not None and expected_interval_ns <= 0:
            raise ValueError(f"expected_interval_ns must be positive, got {expected_interval_ns}")
        self.name = name
        self.clock = clock
        self.expected_interval_ns = expected_interval_ns
        self._correction_ns = expected_interval_ns or 0
        self.running: set[Measurement] = set()     # set.add/discard are atomic under the GIL
        self._interval = LatencyHistogram()
        self._cumulative = LatencyHistogram()
        corrected = expected_interval_ns is not None
        self._corrected_interval = LatencyHistogram() if corrected else None
        self._corrected_cumulative = LatencyHistogram() if corrected else None

    @property
    def in_flight(self) -> int:
        """Calls started and not yet finished."""
        return len(self.running)

    def measure(self) -> Measurement:
        return Measurement(self)

    def record(self, elapsed_ns: int) -> None:
        """Record a latency measured elsewhere (e.g. from an exchange timestamp)."""
        self._interval.record(elapsed_ns)
        if self._corrected_interval is not None:
            self._corrected_interval.record_corrected(elapsed_ns, self._correction_ns)

    def record_many(self, elapsed_ns: np.ndarray) -> None:
        """Record an int64 array of elapsed times at once (a batch's orders)."""
        self._interval.record_many(elapsed_ns)
        if self._corrected_interval is not None:
            self._corrected_interval.record_many(elapsed_ns, self._correction_ns)

    def histogram(self, *, corrected: bool = False) -> LatencyHistogram:
        """A copy of everything recorded so far (cumulative and current interval)."""
        interval, cumulative = ((self._corrected_interval, self._corrected_cumulative)
                                if corrected else (self._interval, self._cumulative))
        if interval is None or cumulative is None:
            raise ValueError(f"operation {self.name!r} has no expected interval to correct with")
        total = cumulative.copy()
        total.merge(interval)
        return total

    def snapshot(self, interval_s: float, uptime_s: float, reset: bool) -> OperationSnapshot:
        """Figures since the last reset and in total; `reset` starts a new interval."""
        raw = _windows(self._interval, self._cumulative, interval_s, uptime_s, reset)
        corrected: tuple[LatencyStats, LatencyStats] | tuple[None, None] = (None, None)
        if self._corrected_interval is not None and self._corrected_cumulative is not None:
            corrected = _windows(self._corrected_interval, self._corrected_cumulative,
                                 interval_s, uptime_s, reset)
        started = [m.started_ns for m in list(self.running)]
        oldest = self.clock() - min(started) if started else 0
        return OperationSnapshot(self.name, len(started), oldest, *raw, *corrected)


def _windows(interval: LatencyHistogram, cumulative: LatencyHistogram, interval_s: float,
             uptime_s: float, reset: bool) -> tuple[LatencyStats, LatencyStats]:
    """Interval and cumulative figures; with `reset`, the interval moves into the total."""
    if reset:
        window = interval.drain()
        cumulative.merge(window)
        total = cumulative
    else:
        window = interval.copy()
        total = cumulative.copy()
        total.merge(window)
    return LatencyStats.of(window, interval_s), LatencyStats.of(total, uptime_s)


class PerformanceMonitor:
    """Latency histograms of named operations, measured with ``with``, ``async with`` or a
    decorator, reported per interval and since start.

    Parameters
    ----------
    clock:
        Monotonic nanoseconds; ``time.perf_counter_ns`` unless a test wants a fake one.

    Examples
    --------
    >>> monitor = PerformanceMonitor()
    >>> with monitor.measure("decide"):
    ...     pass
    >>> monitor.snapshot().operation("decide").interval.count
    1
    """

    def __init__(self, *, clock: Clock = time.perf_counter_ns) -> None:
        self._clock = clock
        self._operations: dict[str, Operation] = {}
        self._lock = threading.Lock()       # only for new operations and snapshots
        self._started_ns = self._interval_started_ns = clock()

    def operation(self, name: str, *, expected_interval_ns: int | None = None) -> Operation:
        """The operation called `name`, created on first use.

        `expected_interval_ns` turns on coordinated-omission correction; it is
        fixed when the operation is created and a different value raises ValueError.
        """
        operation = self._operations.get(name)
        if operation is None:
            with self._lock:
                operation = self._operations.get(name)
                if operation is None:
                    operation = Operation(name, self._clock, expected_interval_ns)
                    self._operations[name] = operation
        if expected_interval_ns is not None and expected_interval_ns != \
                operation.expected_interval_ns:
            raise ValueError(f"operation {name!r} already has expected interval "
                             f"{operation.expected_interval_ns}")
        return operation

    def measure(self, name: str) -> Measurement:
        """Time a block: ``with monitor.measure("send"):`` or ``async with``."""
        operation = self._operations.get(name) or self.operation(name)
        return Measurement(operation)

    def record(self, name: str, elapsed_ns: int) -> None:
        """Record a latency measured elsewhere; negative values raise ValueError."""
        (self._operations.get(name) or self.operation(name)).record(elapsed_ns)

    @overload
    def timed(self, name: F) -> F: ...
    @overload
    def timed(self, name: str | None = None) -> Callable[[F], F]: ...

    def timed(self, name: str | F | None = None) -> F | Callable[[F], F]:
        """Decorate a sync or async function to time each call; named after the function
        unless `name` is given. Use as ``@monitor.timed`` or ``@monitor.timed("send")``."""
        if callable(name):
            return self._wrap(name, name.__qualname__)
        return lambda func: self._wrap(func, name or func.__qualname__)

    def _wrap(self, func: F, name: str) -> F:
        operation = self.operation(name)
        if inspect.iscoroutinefunction(func):
            async_func: Callable[..., Awaitable[Any]] = func

            @functools.wraps(func)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                with Measurement(operation):
                    return await async_func(*args, **kwargs)
            return timed_async  # type: ignore[return-value]

        @functools.wraps(func)
        def timed_sync(*args: Any, **kwargs: Any) -> Any:
            with Measurement(operation):
                return func(*args, **kwargs)
        return timed_sync  # type: ignore[return-value]

    def operations(self) -> tuple[Operation, ...]:
        """Every operation measured so far, in order of first use."""
        return tuple(self._operations.values())

    def in_flight(self, name: str) -> int:
        """Calls of `name` started and not yet finished (0 for an unknown name)."""
        operation = self._operations.get(name)
        return operation.in_flight if operation is not None else 0

    def snapshot(self, *, reset_interval: bool = True) -> MonitorSnapshot:
        """Every operation's figures; by default a new interval starts.

        Interval histograms are drained into the cumulative ones, so totals
        are exact merges. With ``reset_interval=False`` nothing changes.
        """
        with self._lock:
            now = self._clock()
            interval_s = (now - self._interval_started_ns) / 1e9
            uptime_s = (now - self._started_ns) / 1e9
            operations = tuple(op.snapshot(interval_s, uptime_s, reset_interval)
                               for op in self.operations())
            if reset_interval:
                self._interval_started_ns = now
        return MonitorSnapshot(interval_s, uptime_s, operations)

    # ------------------------------------------------------------ Prometheus

    def prometheus_collector(self, prefix: str = "obelisk",
                             buckets_us: tuple[float, ...] = PROMETHEUS_BUCKETS_US) -> Any:
        """A collector to register with a ``prometheus_client`` registry: one histogram
        family ``<prefix>_latency_seconds`` (µs-scale buckets) and an in-flight gauge."""
        _prometheus()
        return _PrometheusCollector(self, prefix, buckets_us)

    def prometheus_text(self, prefix: str = "obelisk",
                        buckets_us: tuple[float, ...] = PROMETHEUS_BUCKETS_US) -> bytes:
        """The Prometheus text exposition of the cumulative figures."""
        prometheus = _prometheus()
        registry = prometheus.CollectorRegistry(auto_describe=False)
        registry.register(self.prometheus_collector(prefix, buckets_us))
        return prometheus.generate_latest(registry)



def _prometheus() -> Any:
    """prometheus_client, imported only when an export asks for it."""
    try:
        import prometheus_client
    except ImportError as error:
        raise ImportError("Prometheus export needs the prometheus_client package: "
                          f"{PROMETHEUS_EXTRA_HINT}") from error
    return prometheus_client


class _PrometheusCollector:
    """Turns the monitor's cumulative histograms into Prometheus metric families."""

    def __init__(self, monitor: PerformanceMonitor, prefix: str,
                 buckets_us: tuple[float, ...]) -> None:
        self._monitor = monitor
        self._prefix = prefix
        self._bounds = sorted(buckets_us)

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
        from prometheus_client.utils import floatToGoString

        latency = HistogramMetricFamily(f"{self._prefix}_latency_seconds",
                                        "Latency of each operation since start.",
                                        labels=["operation", "corrected"])
        in_flight = GaugeMetricFamily(f"{self._prefix}_in_flight",
                                      "Calls of each operation started and not finished.",
                                      labels=["operation"])
        for operation in self._monitor.operations():
            kinds = (False, True) if operation.expected_interval_ns is not None else (False,)
            for corrected in kinds:
                histogram = operation.histogram(corrected=corrected)
                buckets = [(floatToGoString(bound / 1e6),
                            histogram.count_at_or_below(round(bound * 1_000)))
                           for bound in self._bounds]
                buckets.append(("+Inf", histogram.count))
                latency.add_metric([operation.name, str(corrected).lower()], buckets,
                                   sum_value=histogram.mean() * histogram.count / 1e9)
            in_flight.add_metric([operation.name], operation.in_flight)
        yield latency
        yield in_flight
