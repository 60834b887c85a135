"""pytest-benchmark comparisons of the trace store (run with --benchmark-enable).

Disabled by default (pyproject addopts): each body then runs once as a test, and
its check of what was written still applies. The workload is smaller than
``obelisk bench``'s so the suite stays fast; compare the rows of one run.
"""

import itertools
import sqlite3

import pytest

from obelisk.perf.rows.store import (
    one_transaction_per_trace,
    record_all,
    record_and_flush,
    trace_workload,
)
from obelisk.store import TraceStore
from obelisk.store.schema import migrate
from obelisk.store.sqlite import connect

TRACES = 5_000


@pytest.fixture(scope="module")
def traces():
    return trace_workload(TRACES)


@pytest.fixture
def new_path(tmp_path):
    counter = itertools.count()
    return lambda: str(tmp_path / f"traces-{next(counter)}.db")


def stored(path: str) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT count(*) FROM traces").fetchone()[0]


@pytest.mark.benchmark(group="store")
def test_record_on_the_callers_thread(benchmark, traces, new_path):
    stores: list[TraceStore] = []

    def setup():
        stores.append(TraceStore(new_path(), batch_size=2 * TRACES, batch_flush_ms=3_600_000,
                                 queue_size=2 * TRACES))
        return (stores[-1], traces), {}

    benchmark.pedantic(record_all, setup=setup, rounds=3)
    for store in stores:
        assert store.pending == TRACES
        store.close()
        assert stored(store.path) == TRACES


@pytest.mark.benchmark(group="store")
@pytest.mark.parametrize("batch_size", [100, 10_000])
def test_sustained(benchmark, traces, new_path, batch_size):
    stores: list[TraceStore] = []

    def setup():
        stores.append(TraceStore(new_path(), batch_size=batch_size))
        return (stores[-1], traces), {}

    benchmark.pedantic(record_and_flush, setup=setup, rounds=3)
    for store in stores:
        assert store.pending == 0
        store.close()
        assert stored(store.path) == TRACES


@pytest.mark.benchmark(group="store")
def test_one_transaction_per_trace_baseline(benchmark, traces, new_path):
    connections: list[sqlite3.Connection] = []

    def setup():
        connections.append(connect(new_path()))
        migrate(connections[-1])
        return (connections[-1], traces), {}

    benchmark.pedantic(one_transaction_per_trace, setup=setup, rounds=3)
    for conn in connections:
        assert conn.execute("SELECT count(*) FROM traces").fetchone()[0] == TRACES
        conn.close()
