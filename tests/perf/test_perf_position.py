"""pytest-benchmark comparisons of the position paths (run with --benchmark-enable).

Disabled by default (pyproject addopts): each body then runs once as a test,
and its check of the result still applies.
"""

import math

import pytest

from obelisk.perf.rows.position import apply_each_fill, reference_book_for
from obelisk.testing.workload import fill_stream


@pytest.fixture(scope="module")
def account():
    return fill_stream(50_000, 200, seed=7)


@pytest.mark.benchmark(group="position fills")
def test_fills_batch(benchmark, account):
    def run(book):
        book.apply_fills(account.fills)
        return book

    book = benchmark.pedantic(run, setup=lambda: ((account.fresh_book(),), {}), rounds=10)
    reference = reference_book_for(account)()
    apply_each_fill(reference, account.fills[["asset", "size", "price", "maker"]].tolist())
    assert math.isclose(book.balance, reference.balance, rel_tol=1e-12)


@pytest.mark.benchmark(group="position fills")
def test_fills_reference(benchmark, account):
    rows = account.fills[["asset", "size", "price", "maker"]].tolist()[:10_000]

    def run(reference):
        apply_each_fill(reference, rows)
        return reference

    reference = benchmark.pedantic(run, setup=lambda: ((reference_book_for(account)(),), {}),
                                   rounds=3)
    assert any(p.size for p in reference.positions)


@pytest.mark.benchmark(group="position recompute")
def test_recompute_10k_positions(benchmark):
    many = fill_stream(100_000, 10_000, seed=7)
    book = many.fresh_book()
    book.apply_fills(many.fills)
    benchmark(book.mark, many.marks)
    rows = book.positions
    open_rows = rows[rows["size"] != 0]
    assert (open_rows["mark_px"] == many.marks[rows["size"] != 0]).all()
