"""pytest-benchmark comparisons of the breaker's closed path (run with --benchmark-enable).

By default pytest-benchmark is disabled (see pyproject addopts), so each body
runs once as a plain test and its assertion on the result still applies.
"""

import asyncio

import pytest

from obelisk.breaker import State
from obelisk.perf.rows.breaker import (
    CALLS,
    add_one,
    add_one_async,
    await_loop,
    call_loop,
    closed_breaker,
    pybreaker_guarded,
)


@pytest.mark.benchmark(group="breaker sync")
def test_bare_call(benchmark):
    assert benchmark.pedantic(call_loop, args=(add_one,), rounds=7) == 2


@pytest.mark.benchmark(group="breaker sync")
def test_breaker_closed_path(benchmark):
    breaker = closed_breaker()
    guarded = breaker(add_one)
    assert benchmark.pedantic(call_loop, args=(guarded,), rounds=7) == 2
    metrics = breaker.metrics()
    assert (metrics.state, metrics.calls, metrics.failed_calls) == (State.CLOSED, 100, 0)


@pytest.mark.benchmark(group="breaker sync")
def test_pybreaker_closed_path(benchmark):
    pytest.importorskip("pybreaker")
    assert benchmark.pedantic(call_loop, args=(pybreaker_guarded(),), rounds=7) == 2


def fresh_loop(fn):
    return ((asyncio.new_event_loop(), fn), CALLS), {}


@pytest.mark.benchmark(group="breaker async")
def test_bare_await(benchmark):
    assert benchmark.pedantic(await_loop, setup=lambda: fresh_loop(add_one_async),
                              rounds=7) == 2


@pytest.mark.benchmark(group="breaker async")
def test_breaker_async_closed_path(benchmark):
    breaker = closed_breaker()
    guarded = breaker(add_one_async)
    assert benchmark.pedantic(await_loop, setup=lambda: fresh_loop(guarded), rounds=7) == 2
    assert breaker.metrics().failed_calls == 0
