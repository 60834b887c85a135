"""The decorator's lean async path (obelisk/breaker/_lean.c): an awaitable in C that
forwards every send, throw and close to the coroutine and reports its end to the breaker."""

import asyncio
import inspect
import pickle
import traceback

import pytest

from obelisk.breaker import BreakerConfig, CircuitBreaker, CircuitOpenError, State
from obelisk.breaker._lean import LeanCall


class Boom(Exception):
    pass


class Pause:
    """An awaitable that suspends once with "paused" and returns what is sent back."""

    def __await__(self):
        return (yield "paused")


PICKLED = CircuitBreaker("pickled")


@PICKLED
async def module_level(x):
    return x


def make(**settings):
    """A closed breaker whose window is full of successes: the lean state."""
    defaults = {"window_size": 4, "minimum_calls": 4, "jitter": 0.0}
    breaker = CircuitBreaker("lean", BreakerConfig(**{**defaults, **settings}))
    for _ in range(4):
        breaker.call(lambda: "ok")
    assert breaker._lean.token is not None
    return breaker


def guarded_echo(breaker):
    """A guarded coroutine function that returns what is sent in after its one pause."""
    @breaker
    async def echo():
        return await Pause()
    return echo


def fail(breaker):
    with pytest.raises(Boom):
        breaker.call(_raise_boom)


def _raise_boom():
    raise Boom()


def test_a_coroutine_function_is_wrapped_in_c_and_still_looks_like_one():
    breaker = make()

    @breaker
    async def fetch(x, *, scale=2):
        """Doc."""
        return x * scale

    assert isinstance(fetch, LeanCall)
    assert inspect.iscoroutinefunction(fetch) and asyncio.iscoroutinefunction(fetch)
    assert str(inspect.signature(fetch)) == "(x, *, scale=2)"
    assert (fetch.__name__, fetch.__doc__, fetch.__wrapped__.__name__) == ("fetch", "Doc.", "fetch")
    awaitable = fetch(3)
    assert asyncio.iscoroutine(awaitable)
    assert asyncio.run(_await(awaitable)) == 6


async def _await(awaitable):
    return await awaitable


def test_send_passes_values_both_ways_and_the_result_comes_back_in_stop_iteration():
    breaker = make()

    awaitable = guarded_echo(breaker)()
    assert awaitable.send(None) == "paused"
    with pytest.raises(StopIteration) as stop:
        awaitable.send(42)
    assert stop.value.value == 42
    iterator = guarded_echo(breaker)().__await__()           # next() goes through tp_iternext
    assert next(iterator) == "paused"
    with pytest.raises(StopIteration) as stop:
        iterator.send("back")
    assert stop.value.value == "back"


def test_a_failure_after_a_suspension_is_counted_and_raised_with_its_traceback():
    breaker = make()

    @breaker
    async def explode():
        await asyncio.sleep(0)
        raise Boom("down")

    with pytest.raises(Boom) as raised:
        asyncio.run(_await(explode()))
    assert "explode" in "".join(traceback.format_tb(raised.value.__traceback__))
    assert breaker.metrics().failed_calls == 1


def test_throw_into_the_coroutine_counts_a_failure_unless_it_recovers():
    breaker = make()

    @breaker
    async def recover():
        try:
            await Pause()
        except Boom:
            return "recovered"

    awaitable = recover()
    awaitable.send(None)
    with pytest.raises(StopIteration) as stop:
        awaitable.throw(Boom())
    assert stop.value.value == "recovered"
    assert breaker.metrics().failed_calls == 0

    awaitable = guarded_echo(breaker)()
    awaitable.send(None)
    with pytest.raises(Boom):
        awaitable.throw(Boom())
    assert breaker.metrics().failed_calls == 1


def test_close_abandons_the_call_without_an_outcome():
    breaker = make()

    awaitable = guarded_echo(breaker)()
    awaitable.send(None)
    awaitable.close()
    with pytest.raises(RuntimeError):           # the coroutine is closed for good
        awaitable.send(None)
    assert breaker.metrics().failed_calls == 0 and breaker._lean.token is not None


def test_a_task_cancelled_while_suspended_is_not_a_failure():
    breaker = make()
    started = []

    @breaker
    async def hang():
        started.append(True)
        await asyncio.sleep(10)

    async def main():
        task = asyncio.create_task(hang())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert started and breaker.metrics().failed_calls == 0


def test_a_lean_success_that_ends_after_the_window_turned_dirty_is_recorded():
    breaker = make(failure_rate_threshold=1.0)

    @breaker
    async def outer():
        await asyncio.sleep(0)
        fail(breaker)                          # dirties the window: the lean token goes
        return "ok"

    assert asyncio.run(_await(outer())) == "ok"
    for _ in range(2):
        breaker.call(lambda: "ok")
    assert breaker.metrics().failed_calls == 1
    breaker.call(lambda: "ok")                 # outer's success moved the ring on
    assert breaker.metrics().failed_calls == 0


def test_outside_the_lean_state_the_call_takes_the_full_path():
    breaker = make()
    successes = []
    breaker.on_success(lambda _breaker, duration: successes.append(duration))

    @breaker
    async def fetch():
        return "ok"

    assert asyncio.run(_await(fetch())) == "ok"
    assert len(successes) == 1                 # only the full path tells listeners
    breaker.force_open()
    with pytest.raises(CircuitOpenError):
        asyncio.run(_await(fetch()))
    assert breaker.state is State.FORCED_OPEN


def test_methods_and_classmethods_bind_their_first_argument():
    breaker = make()

    class Client:
        @breaker
        async def get(self, x):
            return self, x

        @classmethod
        @breaker
        async def make(cls, x):
            return cls, x

    client = Client()
    assert asyncio.run(_await(client.get(1))) == (client, 1)
    assert asyncio.run(_await(Client.get(client, 2))) == (client, 2)
    assert asyncio.run(_await(Client.make(3))) == (Client, 3)


def test_an_argument_error_raises_at_the_call_and_is_not_an_outcome():
    breaker = make()

    @breaker
    async def one(x):
        return x

    with pytest.raises(TypeError):
        one(1, 2)
    assert breaker.metrics().failed_calls == 0 and breaker._lean.token is not None


def test_lean_call_refuses_a_non_callable_and_a_foreign_cell():
    breaker = make()
    with pytest.raises(TypeError, match="callable"):
        LeanCall(3, breaker._lean, breaker)
    with pytest.raises(TypeError):
        LeanCall(lambda: None, object(), breaker)


def test_a_module_level_guarded_function_pickles_by_reference():
    assert pickle.loads(pickle.dumps(module_level)) is module_level
