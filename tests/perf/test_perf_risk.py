"""pytest-benchmark comparisons of the risk checks (run with --benchmark-enable).

Disabled by default (pyproject addopts): each body then runs once as a test,
and its check of the result still applies.
"""

import numpy as np
import pytest

from obelisk.perf.rows.risk import risk_workload


@pytest.fixture(scope="module")
def workload():
    return risk_workload(20_000, seed=7)


@pytest.mark.benchmark(group="risk")
def test_check_per_call(benchmark, workload):
    fresh, named, _ = workload
    risk = fresh()
    check = risk.check

    def run():
        return sum(check(coin, side, size, price).allowed for coin, side, size, price in named)

    assert benchmark(run) == len(named)


@pytest.mark.benchmark(group="risk")
def test_check_batch(benchmark, workload):
    fresh, named, batch = workload
    reasons = benchmark(fresh().check_batch, batch)
    assert not np.any(reasons)
