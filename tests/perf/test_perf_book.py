"""pytest-benchmark comparisons of the book's paths (run with --benchmark-enable).

By default pytest-benchmark is disabled (see pyproject addopts), so each body
runs once as a plain test and its assertion on the result still applies.
"""

import pytest

from obelisk import MatchingEngine, OrderBook, OrderStatus
from obelisk.perf.bench import chunked, replay_per_call
from obelisk.testing.reference import ReferenceBook
from obelisk.testing.workload import interleave, standard_mix

SEED_ORDERS = 5_000


@pytest.fixture(scope="module")
def workload():
    return standard_mix(50_000, SEED_ORDERS, seed=7)


@pytest.fixture(scope="module")
def snapshot(workload):
    book = OrderBook(2 * SEED_ORDERS)
    book.process(workload.seed_events)
    return book.snapshot()


def fresh(snapshot):
    return (OrderBook.restore(snapshot, capacity=2 * SEED_ORDERS),), {}


@pytest.mark.benchmark(group="book")
def test_batch_chunked(benchmark, workload, snapshot):
    chunks = chunked(workload.events, 4096)

    def run(book):
        return sum(int((book.process(c).results["status"] == OrderStatus.FILLED).sum())
                   for c in chunks)

    filled = benchmark.pedantic(run, setup=lambda: fresh(snapshot), rounds=10)
    assert filled > 0


@pytest.mark.benchmark(group="book")
def test_per_call(benchmark, workload, snapshot):
    rows = workload.events[["kind", "oid", "side", "price", "qty", "tif", "owner"]].tolist()

    def run(book):
        replay_per_call(book, rows)
        return book

    book = benchmark.pedantic(run, setup=lambda: fresh(snapshot), rounds=5)
    assert len(book) > 0


@pytest.mark.benchmark(group="book")
def test_reference(benchmark, workload):
    prefix = workload.events[:5_000]

    def setup():
        reference = ReferenceBook(2 * SEED_ORDERS)
        reference.process(workload.seed_events)
        return (reference,), {}

    out = benchmark.pedantic(lambda r: r.process(prefix), setup=setup, rounds=3)
    assert len(out.results) == len(prefix)


@pytest.mark.benchmark(group="engine")
@pytest.mark.parametrize("threads", [1, 2])
def test_engine(benchmark, threads):
    mixed = interleave([standard_mix(20_000, 2_000, seed=s).with_asset(s) for s in (0, 1)])

    def setup():
        engine = MatchingEngine([0, 1], capacity=4_000, threads=threads)
        engine.process(mixed.seed_events)
        return (engine,), {}

    out = benchmark.pedantic(lambda e: e.process(mixed.events), setup=setup, rounds=5)
    assert len(out.results) == len(mixed.events)
