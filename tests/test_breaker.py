"""Tests of obelisk/breaker: states, windows, probes, classification, backoff, listeners,
concurrency, the registry and configuration. Time is a fake clock; nothing asserts timings."""

import asyncio
import functools
import inspect
import math
import pickle
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from obelisk.breaker import (
    AlertDeduplicator,
    BreakerConfig,
    BreakerConfigError,
    BreakerRegistry,
    CircuitBreaker,
    CircuitOpenError,
    State,
    WindowType,
)
from obelisk.breaker.backoff import backoff_delay
from obelisk.errors import MarginError, ObeliskError


class FakeClock:
    def __init__(self, now=1_000.0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


class Boom(Exception):
    pass


def config(**settings):
    defaults = {"window_size": 4, "minimum_calls": 4, "base_backoff": 10.0, "max_backoff": 80.0,
                "jitter": 0.0}
    return BreakerConfig(**{**defaults, **settings})


def make(clock=None, random=lambda: 0.0, **settings):
    return CircuitBreaker("exchange", config(**settings), clock=clock or FakeClock(),
                          random=random)


def succeed(breaker, times=1):
    for _ in range(times):
        breaker.call(lambda: "ok")


def fail(breaker, times=1, error=Boom):
    """Calls that raise `error`, a class or an instance."""
    for _ in range(times):
        with pytest.raises(error if isinstance(error, type) else type(error)):
            breaker.call(_raise, error)


def _raise(error):
    raise error


def tripped(clock=None, **settings):
    breaker = make(clock, **settings)
    fail(breaker, 4)
    assert breaker.state is State.OPEN
    return breaker


# ---- closed -> open ----------------------------------------------------------------------


def test_count_window_waits_for_minimum_calls_then_trips_on_failure_rate():
    breaker = make()
    fail(breaker, 2)
    succeed(breaker)
    assert breaker.state is State.CLOSED        # 2 of 3 failed, but 3 calls are too few
    assert breaker.metrics().failure_rate is None
    fail(breaker)
    assert breaker.state is State.OPEN


def test_count_window_below_threshold_stays_closed():
    breaker = make(window_size=10, minimum_calls=10)
    for _ in range(5):
        succeed(breaker)
        fail(breaker) if _ < 4 else succeed(breaker)
    metrics = breaker.metrics()
    assert (metrics.calls, metrics.failed_calls, metrics.failure_rate) == (10, 4, 0.4)
    assert breaker.state is State.CLOSED


def test_count_window_forgets_the_oldest_call():
    breaker = make(window_size=3, minimum_calls=3, failure_rate_threshold=0.7)
    fail(breaker)
    succeed(breaker, 2)
    assert breaker.metrics().failed_calls == 1
    succeed(breaker)
    assert breaker.metrics().failed_calls == 0
    fail(breaker, 2)
    assert breaker.state is State.CLOSED        # 2 of 3
    fail(breaker)
    assert breaker.state is State.OPEN


def test_time_window_counts_only_the_last_seconds():
    clock = FakeClock()
    breaker = make(clock, window_type=WindowType.TIME, window_size=10, minimum_calls=4,
                   failure_rate_threshold=0.6)
    fail(breaker, 2)
    succeed(breaker, 4)
    clock.advance(5)
    fail(breaker, 2)
    assert breaker.state is State.CLOSED        # 4 of 8
    assert breaker.metrics().calls == 8
    clock.advance(6)                            # the first second left the window
    assert breaker.metrics().calls == 2
    clock.advance(100)
    assert breaker.metrics().calls == 0
    fail(breaker, 3)
    assert breaker.state is State.CLOSED        # below minimum_calls
    fail(breaker)
    assert breaker.state is State.OPEN


def test_time_window_trips_when_successes_age_out():
    clock = FakeClock()
    breaker = make(clock, window_type=WindowType.TIME, window_size=2, minimum_calls=2)
    succeed(breaker, 4)
    clock.advance(1)
    fail(breaker, 3)
    assert breaker.state is State.CLOSED        # 3 of 7
    clock.advance(1)
    succeed(breaker)                            # the 4 successes leave; 3 of 4 failed
    assert breaker.state is State.OPEN


def test_consecutive_failures_trip_and_a_success_resets_the_streak():
    breaker = make(window_type=WindowType.CONSECUTIVE, consecutive_failures=3)
    fail(breaker, 2)
    succeed(breaker)
    fail(breaker, 2)
    assert breaker.state is State.CLOSED
    assert breaker.metrics().failed_calls == 2
    fail(breaker)
    assert breaker.state is State.OPEN


def test_slow_call_rate_trips():
    clock = FakeClock()
    breaker = make(clock, slow_call_duration=1.0, slow_call_rate_threshold=0.5)
    slow_calls = []
    breaker.on_slow_call(lambda b, duration: slow_calls.append(duration))

    def slow():
        clock.advance(2.0)
        return "late"

    succeed(breaker, 2)
    assert breaker.call(slow) == "late"
    assert breaker.state is State.CLOSED
    breaker.call(slow)
    assert breaker.state is State.OPEN
    metrics = breaker.metrics()
    assert (metrics.slow_calls, metrics.slow_call_rate, slow_calls) == (2, 0.5, [2.0, 2.0])


# ---- open -> half-open -> closed / open ------------------------------------------------


def test_open_refuses_with_name_and_remaining_time_then_turns_half_open():
    clock = FakeClock()
    breaker = tripped(clock)
    clock.advance(4)
    with pytest.raises(CircuitOpenError) as refused:
        breaker.call(lambda: "never")
    assert (refused.value.breaker, refused.value.remaining) == ("exchange", 6.0)
    assert isinstance(refused.value, ObeliskError)
    assert breaker.metrics().not_permitted_calls == 1
    clock.advance(6)
    assert breaker.state is State.HALF_OPEN


def test_successful_probe_closes_and_resets_backoff():
    clock = FakeClock()
    breaker = tripped(clock)
    clock.advance(10)
    succeed(breaker)
    assert breaker.state is State.CLOSED
    metrics = breaker.metrics()
    assert (metrics.calls, metrics.opens_in_a_row) == (0, 0)


def test_failed_probe_reopens_with_a_longer_open():
    clock = FakeClock()
    breaker = tripped(clock)
    clock.advance(10)
    fail(breaker)
    assert breaker.state is State.OPEN
    assert breaker.metrics().open_remaining == 20.0


def test_half_open_admits_exactly_the_configured_probes():
    clock = FakeClock()
    breaker = tripped(clock, half_open_probes=3)
    clock.advance(10)
    guards = [breaker.guard() for _ in range(3)]
    for guard in guards:
        guard.__enter__()
    with pytest.raises(CircuitOpenError) as refused:
        breaker.call(lambda: "herd")
    assert refused.value.state is State.HALF_OPEN
    assert breaker.metrics().probes_in_flight == 3
    for guard in guards[:2]:
        guard.__exit__(None, None, None)
    assert breaker.state is State.HALF_OPEN     # the third probe is still out
    guards[2].__exit__(None, None, None)
    assert breaker.state is State.CLOSED


def test_half_open_rate_decides_early():
    clock = FakeClock()
    breaker = tripped(clock, half_open_probes=4, failure_rate_threshold=0.5)
    clock.advance(10)
    succeed(breaker)
    fail(breaker)
    assert breaker.state is State.HALF_OPEN
    fail(breaker)                               # 2 of 4 fail whatever the rest do
    assert breaker.state is State.OPEN


def test_ignored_probe_gives_its_slot_back():
    clock = FakeClock()
    breaker = tripped(clock, ignore_exceptions=(KeyError,))
    clock.advance(10)
    fail(breaker, error=KeyError)
    assert breaker.state is State.HALF_OPEN
    assert breaker.metrics().probes_in_flight == 0
    succeed(breaker)
    assert breaker.state is State.CLOSED


def test_probe_timeout_counts_as_failure_and_its_late_result_is_dropped():
    clock = FakeClock()
    breaker = tripped(clock, probe_timeout=5.0)
    clock.advance(10)
    lost = breaker.guard().__enter__()
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: "waiting")
    clock.advance(5)
    assert breaker.state is State.OPEN          # the lost probe timed out
    assert breaker.metrics().open_remaining == 20.0
    lost.__exit__(None, None, None)             # too late to close anything
    assert breaker.state is State.OPEN


def test_consecutive_window_reopens_on_any_failed_probe():
    clock = FakeClock()
    breaker = make(clock, window_type=WindowType.CONSECUTIVE, consecutive_failures=2,
                   half_open_probes=2)
    fail(breaker, 2)
    clock.advance(10)
    succeed(breaker)
    fail(breaker)
    assert breaker.state is State.OPEN


def test_late_result_from_a_previous_state_is_not_counted():
    clock = FakeClock()
    breaker = make(clock)
    slow_call = breaker.guard().__enter__()
    fail(breaker, 4)
    clock.advance(10)
    assert breaker.state is State.HALF_OPEN
    slow_call.__exit__(None, None, None)        # started closed: no probe
    assert breaker.state is State.HALF_OPEN


# ---- manual states and Retry-After -----------------------------------------------------


def test_forced_open_and_disabled_until_reset():
    breaker = make()
    breaker.force_open()
    with pytest.raises(CircuitOpenError) as refused:
        breaker.call(lambda: "x")
    assert refused.value.remaining == float("inf")
    assert "forced open" in str(refused.value)
    breaker.open_for(1.0)
    assert breaker.state is State.FORCED_OPEN
    breaker.disable()
    fail(breaker, 10)
    assert breaker.state is State.DISABLED
    assert breaker.metrics().failed_calls == 0
    breaker.reset()
    assert breaker.state is State.CLOSED
    succeed(breaker)


def test_open_until_a_servers_retry_after():
    clock = FakeClock()
    breaker = make(clock)
    breaker.open_for(30.0)
    assert breaker.metrics().open_remaining == 30.0
    breaker.open_until(clock.now + 5)           # an earlier deadline does not shorten it
    assert breaker.metrics().open_remaining == 30.0
    clock.advance(30)
    assert breaker.state is State.HALF_OPEN


def test_retry_after_read_from_a_failure_opens_for_that_long():
    class TooManyRequests(Exception):
        retry_after = 42.0

    clock = FakeClock()
    breaker = make(clock, retry_after=lambda cause: getattr(cause, "retry_after", None))
    fail(breaker, error=TooManyRequests)
    assert breaker.state is State.OPEN
    assert breaker.metrics().open_remaining == 42.0


def test_circuit_open_error_pickles():
    error = pickle.loads(pickle.dumps(CircuitOpenError("exchange", 1.5)))
    assert (error.breaker, error.remaining, error.state) == ("exchange", 1.5, State.OPEN)


# ---- what counts ---------------------------------------------------------------------


@pytest.mark.parametrize("settings, error, counted", [
    ({}, Boom, True),
    ({"record_exceptions": (OSError,)}, ConnectionError, True),
    ({"record_exceptions": (OSError,)}, Boom, False),
    ({"ignore_exceptions": (Boom,)}, Boom, False),
    ({"record_exceptions": (Boom,), "ignore_exceptions": (Boom,)}, Boom, False),
    ({"record_when": lambda e: "fatal" in str(e)}, Boom("fatal"), True),
    ({"record_when": lambda e: "fatal" in str(e)}, Boom("meh"), False),
    ({"ignore_when": lambda e: "meh" in str(e)}, Boom("meh"), False),
    ({"record_exceptions": (BaseException,)}, asyncio.CancelledError, False),
    ({"record_exceptions": (BaseException,)}, KeyboardInterrupt, False),
])
def test_exception_classification(settings, error, counted):
    breaker = make(**settings)
    fail(breaker, error=error)
    assert breaker.metrics().calls == int(counted)


def test_ignored_error_is_neither_failure_nor_success():
    breaker = make(ignore_exceptions=(MarginError,))
    fail(breaker, 3)
    fail(breaker, 5, error=MarginError("insufficient margin"))
    fail(breaker)
    assert breaker.state is State.OPEN          # the rejections did not dilute the rate


def test_cancelled_coroutine_is_not_counted():
    breaker = make()

    @breaker
    async def hang():
        await asyncio.sleep(10)

    async def main():
        task = asyncio.ensure_future(hang())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert breaker.metrics().calls == 0


def test_failure_result_predicate_counts_returned_errors():
    breaker = make(failure_result=lambda response: response == 429)
    for _ in range(4):
        assert breaker.call(lambda: 429) == 429
    assert breaker.state is State.OPEN


# ---- backoff ---------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap():
    clock = FakeClock()
    breaker = tripped(clock)
    opens = [breaker.metrics().open_remaining]
    for _ in range(5):
        clock.advance(opens[-1])
        fail(breaker)
        opens.append(breaker.metrics().open_remaining)
    assert opens == [10.0, 20.0, 40.0, 80.0, 80.0, 80.0]
    assert breaker.metrics().opens_in_a_row == 3


def test_jitter_shortens_an_open_by_at_most_the_jitter_fraction():
    clock = FakeClock()
    breaker = tripped(clock, jitter=0.25, random=lambda: 0.5)
    assert breaker.metrics().open_remaining == 10.0 * (1 - 0.25 * 0.5)


@given(opens=st.integers(0, 10_000), draw=st.floats(0, 1, exclude_max=True),
       jitter=st.floats(0, 0.99), base=st.floats(0.001, 100), multiplier=st.floats(1, 100))
def test_backoff_stays_within_bounds(opens, draw, jitter, base, multiplier):
    settings = BreakerConfig(base_backoff=base, max_backoff=base * 50, jitter=jitter,
                             backoff_multiplier=multiplier)
    capped = opens * math.log(multiplier) >= math.log(50)
    unjittered = base * 50 if capped else base * multiplier ** opens
    duration = settings.backoff(opens, draw)
    assert unjittered * (1 - jitter) * (1 - 1e-9) <= duration <= unjittered * (1 + 1e-9)
    assert duration <= base * 50


def test_backoff_reaches_the_cap_without_overflowing():
    assert backoff_delay(10**9, 0.5, 30.0, 1e10, 0.5, 0.0) == 30.0
    assert backoff_delay(3, 0.5, 30.0, 2.0, 0.5, 0.5) == 4.0 * 0.75


# ---- listeners and metrics -------------------------------------------------------------


def test_listeners_fire_once_per_event():
    clock = FakeClock()
    breaker = make(clock)
    events = []
    breaker.on_state_change(lambda b, old, new: events.append((old, new)))
    breaker.on_failure(lambda b, cause, duration: events.append(("failure", type(cause))))
    breaker.on_success(lambda b, duration: events.append("success"))
    breaker.on_not_permitted(lambda b, error: events.append(("refused", error.breaker)))
    succeed(breaker)
    fail(breaker, 3)
    fail(breaker, 1, error=CircuitOpenError)
    clock.advance(10)
    succeed(breaker)
    assert events == ["success", ("failure", Boom), ("failure", Boom), ("failure", Boom),
                      (State.CLOSED, State.OPEN), ("refused", "exchange"),
                      (State.OPEN, State.HALF_OPEN), "success", (State.HALF_OPEN, State.CLOSED)]


def test_a_failing_listener_does_not_break_the_call(caplog):
    breaker = make()
    breaker.on_success(lambda b, duration: 1 / 0)
    assert breaker.call(lambda: "ok") == "ok"
    assert "success listener failed" in caplog.text


def test_metrics_snapshot():
    breaker = make(window_size=10, minimum_calls=2)
    succeed(breaker, 3)
    fail(breaker)
    metrics = breaker.metrics()
    assert (metrics.name, metrics.state, metrics.calls, metrics.failed_calls,
            metrics.failure_rate, metrics.slow_call_rate) == (
        "exchange", State.CLOSED, 4, 1, 0.25, None)


# ---- calling styles --------------------------------------------------------------------


def test_decorator_keeps_the_signature_and_defaults():
    breaker = make()

    def order(coin, /, size, *sizes, price=1.0, reduce_only=False, **extra):
        return coin, size, sizes, price, reduce_only, extra

    guarded = breaker(order)
    assert inspect.signature(guarded) == inspect.signature(order)
    assert guarded.__name__ == "order" and guarded.__wrapped__ is order
    assert guarded("ETH", 2) == ("ETH", 2, (), 1.0, False, {})
    assert guarded("ETH", 2, 3, price=5.0, cloid="x") == ("ETH", 2, (3,), 5.0, False,
                                                           {"cloid": "x"})
    with pytest.raises(TypeError):
        guarded()


def test_decorator_on_methods_callables_and_clashing_names():
    breaker = make()

    class Client:
        @breaker
        def fetch(self, what="positions"):
            return what

    def clash(_cb_fn):
        return _cb_fn

    assert Client().fetch() == "positions"
    assert breaker(clash)(_cb_fn=3) == 3
    assert breaker(functools.partial(pow, 2))(5) == 32
    assert breaker(len)([1, 2]) == 2


def test_decorator_counts_failures_and_refuses_when_open():
    breaker = make()
    guarded = breaker(_raise)
    for _ in range(4):
        with pytest.raises(Boom):
            guarded(Boom)
    with pytest.raises(CircuitOpenError):
        guarded(Boom)


def test_success_that_ends_after_the_window_turned_dirty_is_recorded():
    breaker = make(failure_rate_threshold=1.0)
    succeed(breaker, 4)                         # a full, clean window: the lean path

    @breaker
    def outer():
        fail(breaker)                           # dirties the window while outer runs
        return "ok"

    assert outer() == "ok"
    succeed(breaker, 2)
    assert breaker.metrics().failed_calls == 1
    succeed(breaker)                            # outer's success moved the ring on
    assert breaker.metrics().failed_calls == 0


class CountingLock:
    """The breaker's lock, counting how often it is taken."""

    def __init__(self):
        self._lock = threading.Lock()
        self.taken = 0

    def __enter__(self):
        self.taken += 1
        return self._lock.__enter__()

    def __exit__(self, *exc_info):
        return self._lock.__exit__(*exc_info)


def test_a_clean_closed_breaker_takes_no_lock_on_any_path():
    breaker = make()
    succeed(breaker, 4)                         # a full window without failures
    breaker._lock = lock = CountingLock()

    async def fetch():
        return "ok"

    async def guarded_block():
        async with breaker.guard():
            pass

    assert breaker.call(lambda: "ok") == "ok"
    assert breaker(lambda: "ok")() == "ok"
    with breaker.guard():
        pass
    assert asyncio.run(breaker.call_async(fetch)) == "ok"
    assert asyncio.run(breaker(fetch)()) == "ok"
    asyncio.run(guarded_block())
    assert lock.taken == 0
    fail(breaker)                               # a failure must be counted: under the lock
    assert lock.taken > 0
    assert breaker.metrics().failed_calls == 1


@pytest.mark.parametrize("via", ["call", "guard"])
def test_a_lean_success_that_ends_after_the_window_turned_dirty_is_recorded(via):
    breaker = make(failure_rate_threshold=1.0)
    succeed(breaker, 4)

    def outer():
        fail(breaker)                           # dirties the window while outer runs
        return "ok"

    if via == "call":
        assert breaker.call(outer) == "ok"
    else:
        with breaker.guard():
            outer()
    succeed(breaker, 2)
    assert breaker.metrics().failed_calls == 1
    succeed(breaker)                            # outer's success moved the ring on
    assert breaker.metrics().failed_calls == 0


def test_async_decorator_call_async_and_async_guard():
    breaker = make(window_type=WindowType.CONSECUTIVE, consecutive_failures=3)

    @breaker
    async def fetch(x, *, scale=2):
        return x * scale

    async def explode():
        raise Boom()

    async def main():
        assert await fetch(2) == 4
        assert await breaker.call_async(fetch, 3, scale=3) == 9
        for _ in range(2):
            with pytest.raises(Boom):
                await breaker.call_async(explode)
        with pytest.raises(Boom):
            async with breaker.guard():
                raise Boom()
        with pytest.raises(CircuitOpenError):
            await fetch(1)

    assert inspect.iscoroutinefunction(fetch)
    asyncio.run(main())


def test_sync_guard_records_outcomes():
    breaker = make(window_type=WindowType.CONSECUTIVE, consecutive_failures=1)
    with breaker.guard():
        pass
    with pytest.raises(Boom), breaker.guard():
        raise Boom()
    assert breaker.state is State.OPEN


# ---- concurrency -----------------------------------------------------------------------


@pytest.mark.parametrize("settings", [{}, {"window_type": WindowType.TIME},
                                      {"slow_call_duration": 60.0}])
def test_closed_breaker_runs_concurrent_threads_at_once(settings):
    threads = 8
    breaker = CircuitBreaker("exchange", BreakerConfig(**settings))
    barrier = threading.Barrier(threads, timeout=5)
    errors = []

    @breaker
    def io_call():
        barrier.wait()                          # breaks if the calls were serialized

    def worker():
        try:
            io_call()
        except threading.BrokenBarrierError as error:
            errors.append(error)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert errors == []


def test_threads_recording_at_once_keep_exact_totals():
    breaker = CircuitBreaker("exchange", BreakerConfig(window_size=100_000, minimum_calls=50_000,
                                                       failure_rate_threshold=1.0))
    guarded = breaker(_raise)

    def worker():
        for i in range(2_000):
            if i % 2:
                breaker.call(lambda: None)
            else:
                with pytest.raises(Boom):
                    guarded(Boom)

    pool = [threading.Thread(target=worker) for _ in range(4)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    metrics = breaker.metrics()
    assert (metrics.calls, metrics.failed_calls) == (8_000, 4_000)


def test_closed_breaker_runs_concurrent_coroutines_at_once():
    breaker = CircuitBreaker("exchange")
    in_flight = []

    @breaker
    async def io_call(release):
        in_flight.append(1)
        await release.wait()

    async def main():
        release = asyncio.Event()
        tasks = [asyncio.ensure_future(io_call(release)) for _ in range(10)]
        await asyncio.sleep(0)
        assert len(in_flight) == 10
        release.set()
        await asyncio.gather(*tasks)

    asyncio.run(main())


def test_half_open_admits_exactly_the_probes_under_thread_contention():
    clock = FakeClock()
    breaker = tripped(clock, half_open_probes=2)
    clock.advance(10)
    release = threading.Event()
    admitted, refused = [], []

    def worker():
        try:
            breaker.call(lambda: (admitted.append(1), release.wait(5)))
        except CircuitOpenError:
            refused.append(1)

    pool = [threading.Thread(target=worker) for _ in range(8)]
    for thread in pool:
        thread.start()
    while len(admitted) + len(refused) < 8:
        threading.Event().wait(0.001)
    release.set()
    for thread in pool:
        thread.join()
    assert (len(admitted), len(refused)) == (2, 6)
    assert breaker.state is State.CLOSED


# ---- registry, health and alerts -------------------------------------------------------


def test_registry_get_or_create_and_unique_names():
    registry = BreakerRegistry()
    first = registry.breaker("info", config())
    assert registry.breaker("info") is first
    assert "info" in registry and len(registry) == 1 and list(registry) == [first]
    with pytest.raises(BreakerConfigError, match="already registered"):
        registry.register(CircuitBreaker("info"))


def test_health_check_runs_probes_in_parallel():
    registry = BreakerRegistry()
    threads = threading.Barrier(2, timeout=5)
    started = []

    async def async_probe():
        started.append(1)
        while len(started) < 2:                 # finishes only once the other async probe ran
            await asyncio.sleep(0.001)

    registry.breaker("info", probe=threads.wait)
    registry.breaker("exchange", probe=threads.wait)
    registry.breaker("ws", probe=async_probe)
    registry.breaker("candles", probe=async_probe)
    registry.breaker("no-probe")
    report = asyncio.run(registry.health_check(timeout=5))
    assert report.healthy, report
    assert [s.name for s in report.services] == ["info", "exchange", "ws", "candles", "no-probe"]


def test_health_check_reports_failures_timeouts_and_open_breakers():
    alerts = []
    registry = BreakerRegistry(alert_sink=alerts.append, alert_cooldown=60)

    async def hangs():
        await asyncio.sleep(10)

    def raises():
        raise ConnectionError("refused")

    registry.breaker("slow", probe=hangs)
    registry.breaker("down", probe=raises)
    registry.breaker("open").force_open()
    report = asyncio.run(registry.health_check(timeout=0.05))
    assert report.unhealthy == ("slow", "down", "open")
    assert report.services[0].error == "probe timed out after 0.05s"
    assert report.services[1].error == "ConnectionError: refused"
    assert {(a.breaker, a.cause) for a in alerts} == {
        ("open", "forced-open"), ("slow", "probe failed"), ("down", "probe failed")}


def test_registry_alerts_once_per_cause_within_the_cooldown():
    clock = FakeClock()
    alerts = []
    registry = BreakerRegistry(alert_sink=alerts.append, alert_cooldown=60, clock=clock)
    breaker = registry.breaker("exchange", config())
    for _ in range(3):
        fail(breaker, 4)
        breaker.reset()
        clock.advance(10)
    assert len(alerts) == 1
    clock.advance(40)
    fail(breaker, 4)
    assert [a.cause for a in alerts] == ["open", "open"]
    assert "closed -> open" in alerts[0].message


def test_alert_deduplicator_keys_on_cause():
    clock = FakeClock()
    alerts = AlertDeduplicator(5.0, clock=clock)
    assert alerts.admit("a") and alerts.admit("b")
    assert not alerts.admit("a")
    clock.advance(5)
    assert alerts.admit("a")


# ---- configuration ---------------------------------------------------------------------


def test_environment_sets_backoff_and_cooldown(monkeypatch):
    monkeypatch.setenv("CB_BASE_BACKOFF_MS", "250")
    monkeypatch.setenv("CB_MAX_BACKOFF_MS", "4000")
    monkeypatch.setenv("CB_ALERT_COOLDOWN_MS", "1500")
    settings = BreakerConfig()
    assert (settings.base_backoff, settings.max_backoff) == (0.25, 4.0)
    assert BreakerConfig(base_backoff=1.0).base_backoff == 1.0
    assert AlertDeduplicator().cooldown == 1.5


def test_defaults_without_environment(monkeypatch):
    for name in ("CB_BASE_BACKOFF_MS", "CB_MAX_BACKOFF_MS", "CB_ALERT_COOLDOWN_MS"):
        monkeypatch.delenv(name, raising=False)
    assert (BreakerConfig().base_backoff, BreakerConfig().max_backoff) == (1.0, 60.0)
    assert AlertDeduplicator().cooldown == 60.0


@pytest.mark.parametrize("value", ["soon", "-5", "nan", "0"])
def test_bad_environment_value_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv("CB_MAX_BACKOFF_MS", value)
    with pytest.raises(BreakerConfigError, match="CB_MAX_BACKOFF_MS"):
        BreakerConfig()


@pytest.mark.parametrize("settings, message", [
    ({"window_size": 0}, "window_size"),
    ({"window_size": 10, "minimum_calls": 11}, "never trip"),
    ({"failure_rate_threshold": 0}, "failure_rate_threshold"),
    ({"slow_call_rate_threshold": 1.5}, "slow_call_rate_threshold"),
    ({"jitter": 1.0}, "jitter"),
    ({"half_open_probes": 0}, "half_open_probes"),
    ({"probe_timeout": -1}, "probe_timeout"),
    ({"slow_call_duration": 0}, "slow_call_duration"),
    ({"base_backoff": 5.0, "max_backoff": 1.0}, "below base_backoff"),
    ({"backoff_multiplier": 0.5}, "backoff_multiplier"),
    ({"record_exceptions": [Boom]}, "tuple of exception classes"),
    ({"window_type": "count"}, "WindowType"),
    ({"window_type": WindowType.CONSECUTIVE, "slow_call_duration": 1.0}, "CONSECUTIVE"),
])
def test_bad_configuration_is_a_value_error(settings, message):
    with pytest.raises(BreakerConfigError, match=message) as raised:
        BreakerConfig(**settings)
    assert isinstance(raised.value, ValueError)


def test_bad_alert_cooldown():
    with pytest.raises(BreakerConfigError, match="cooldown"):
        AlertDeduplicator(-1)


def test_position_recovery_preset():
    settings = BreakerConfig.position_recovery()
    assert settings.window_type is WindowType.COUNT
    assert settings.minimum_calls <= settings.window_size <= 50
    assert settings.slow_call_duration is not None and settings.half_open_probes >= 2
    assert settings.base_backoff < settings.max_backoff <= 60
    assert not settings.is_failure(MarginError("local validation"))
    assert settings.is_failure(ConnectionError("reset"))
    assert BreakerConfig.position_recovery(half_open_probes=5).half_open_probes == 5
