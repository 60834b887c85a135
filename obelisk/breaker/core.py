"""The circuit breaker: stop calling a failing service, then let a few probes find out
whether it recovered.

No lock is held while a protected call runs. While the breaker is closed and a
success would change nothing (a clean count window, no timing, no success
listeners), a call takes the lean path, through the decorator, `call`,
`call_async` and `guard` alike: one attribute read before the call and one after
it. Everything else (recording outcomes, transitions) happens under a short
lock, and listeners run after it is released.

The lock cannot go from the closed path when a success must be recorded: a
window's record is several writes (the ring slot, the running totals, the
`clean` flag) followed by the trip decision, and two threads interleaving them
would lose counts or trip on totals that never existed.
"""

from __future__ import annotations

import enum
import logging
import math
import random as _random
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from obelisk.breaker._lean import LeanCell
from obelisk.breaker._wrap import wrap
from obelisk.breaker.config import BreakerConfig, WindowType
from obelisk.breaker.windows import window_for
from obelisk.errors import ObeliskError

__all__ = ["BreakerMetrics", "CircuitBreaker", "CircuitOpenError", "Guard", "State"]

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class State(enum.Enum):
    """Where a breaker is. FORCED_OPEN and DISABLED are set by hand and left only by `reset`."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"
    FORCED_OPEN = "forced-open"
    DISABLED = "disabled"


class CircuitOpenError(ObeliskError):
    """A call was refused without being made: the breaker is open or its probes are taken."""

    def __init__(self, breaker: str, remaining: float, state: State = State.OPEN) -> None:
        self.breaker = breaker
        self.remaining = remaining          # seconds until probes are admitted; inf when forced
        self.state = state
        if state is State.HALF_OPEN:
            detail = "its half-open probes are all in flight"
        elif math.isinf(remaining):
            detail = "it is forced open"
        else:
            detail = f"it is open for another {remaining:.3f}s"
        super().__init__(f"circuit breaker {breaker!r} refused the call: {detail}")

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.breaker, self.remaining, self.state)


@dataclass(frozen=True)
class BreakerMetrics:
    """One breaker at one instant. Rates are None until the window holds `minimum_calls`."""

    name: str
    state: State
    calls: int                        # calls the window holds (the streak, for CONSECUTIVE)
    failed_calls: int
    slow_calls: int
    failure_rate: float | None
    slow_call_rate: float | None
    not_permitted_calls: int
    probes_in_flight: int
    open_remaining: float             # seconds; 0 unless open, inf when forced open
    opens_in_a_row: int               # drives the backoff; 0 after a recovery


class _Epoch:
    """One stay in one state. A permit is valid only while its epoch is current."""

    __slots__ = ("state",)

    def __init__(self, state: State) -> None:
        self.state = state


Listener = Callable[..., object]
LISTENER_KINDS = ("state_change", "not_permitted", "failure", "success", "slow_call")


class CircuitBreaker:
    """Guards calls to one service.

    Use it as a decorator (sync or async functions), through `call` / `call_async`,
    or as ``with breaker.guard():`` / ``async with breaker.guard():``. A refused call
    raises :class:`CircuitOpenError`. `clock` is a monotonic clock in seconds and
    `random` draws the jitter in [0, 1); both are injectable for tests.
    """

    def __init__(self, name: str, config: BreakerConfig | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 random: Callable[[], float] = _random.random) -> None:
        self.name = name
        self.config = config if config is not None else BreakerConfig()
        self._clock = clock
        self._random = random
        self._lock = threading.Lock()
        self._window = window_for(self.config)
        self._times_calls = self.config.slow_call_duration is not None
        self._slow_after = self.config.slow_call_duration or math.inf
        self._counts_each_call = self._times_calls or self.config.window_type is WindowType.TIME
        self._listeners: dict[str, list[Listener]] = {kind: [] for kind in LISTENER_KINDS}
        self._pending: deque[tuple[State, State]] = deque()
        self._epoch = _Epoch(State.CLOSED)
        self._lean_token: _Epoch | None = None
        self._lean = LeanCell()                     # the token again, for LeanCall's C code
        self._open_until = 0.0
        self._opens_in_a_row = 0
        self._not_permitted = 0
        self._probes: dict[object, float] = {}     # permit -> deadline
        self._probes_admitted = self._probe_failures = self._probe_slow = self._probes_done = 0
        self._refresh_lean()

    # ---- calling -------------------------------------------------------------------------

    def __call__(self, fn: F) -> F:
        """Decorate a sync or async function."""
        return wrap(fn, self)  # type: ignore[return-value]

    def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` if the breaker permits it; its outcome is recorded."""
        token = self._lean_token
        if token is not None:
            try:
                result = fn(*args, **kwargs)
            except BaseException as error:
                self._record_error(token, error, None)
                raise
            if self._lean_token is not token:     # the window changed during the call
                self._record(token, False, None, None)
            return result
        permit = self._acquire()
        start = self._clock() if self._times_calls else None
        try:
            result = fn(*args, **kwargs)
        except BaseException as error:
            self._record_error(permit, error, start)
            raise
        self._record_result(permit, result, start)
        return result

    async def call_async(self, fn: Callable[..., Awaitable[T]], /, *args: Any,
                         **kwargs: Any) -> T:
        """``await fn(*args, **kwargs)`` if the breaker permits it; its outcome is recorded."""
        token = self._lean_token
        if token is not None:
            try:
                result = await fn(*args, **kwargs)
            except BaseException as error:
                self._record_error(token, error, None)
                raise
            if self._lean_token is not token:
                self._record(token, False, None, None)
            return result
        permit = self._acquire()
        start = self._clock() if self._times_calls else None
        try:
            result = await fn(*args, **kwargs)
        except BaseException as error:
            self._record_error(permit, error, start)
            raise
        self._record_result(permit, result, start)
        return result

    def guard(self) -> Guard:
        """A context manager (sync or async) for one guarded block; a fresh one per block."""
        return Guard(self)

    # ---- state and control ---------------------------------------------------------------

    @property
    def state(self) -> State:
        """The current state; an expired open turns half-open when read."""
        self._advance_now()
        return self._epoch.state

    def metrics(self) -> BreakerMetrics:
        """A snapshot in O(1): running totals, never a scan of past calls."""
        now = self._clock()
        with self._lock:
            self._advance(now)
            state = self._epoch.state
            calls, failed, slow = self._window.totals(now)
            rated = (self.config.window_type is not WindowType.CONSECUTIVE
                     and calls >= self.config.minimum_calls)
            metrics = BreakerMetrics(
                self.name, state, calls, failed, slow,
                failed / calls if rated else None,
                slow / calls if rated and self._times_calls else None,
                self._not_permitted, len(self._probes), self._remaining(state, now),
                self._opens_in_a_row)
        self._flush()
        return metrics

    def open_for(self, seconds: float) -> None:
        """Open now for `seconds`, e.g. a server's Retry-After; a later deadline set wins."""
        self.open_until(self._clock() + seconds)

    def open_until(self, deadline: float) -> None:
        """Open until `deadline` on the breaker's clock. FORCED_OPEN and DISABLED are kept."""
        with self._lock:
            self._open_at_least_until(deadline)
        self._flush()

    def force_open(self) -> None:
        """Refuse every call until `reset`."""
        self._set_manual(State.FORCED_OPEN)

    def disable(self) -> None:
        """Permit every call and record nothing until `reset`."""
        self._set_manual(State.DISABLED)

    def reset(self) -> None:
        """Closed, with an empty window and the backoff back at its base."""
        with self._lock:
            self._opens_in_a_row = 0
            self._enter(State.CLOSED)
        self._flush()

    # ---- listeners -------------------------------------------------------------------------

    def on_state_change(self, listener: Listener) -> Listener:
        """Call ``listener(breaker, old_state, new_state)`` on every transition."""
        return self._listen("state_change", listener)

    def on_not_permitted(self, listener: Listener) -> Listener:
        """Call ``listener(breaker, error)`` with the CircuitOpenError of each refused call."""
        return self._listen("not_permitted", listener)

    def on_failure(self, listener: Listener) -> Listener:
        """Call ``listener(breaker, cause, duration)``; cause is the error or failing result."""
        return self._listen("failure", listener)

    def on_success(self, listener: Listener) -> Listener:
        """Call ``listener(breaker, duration)``; successes then leave the lean path."""
        return self._listen("success", listener)

    def on_slow_call(self, listener: Listener) -> Listener:
        """Call ``listener(breaker, duration)`` for each call slower than slow_call_duration."""
        return self._listen("slow_call", listener)

    def _listen(self, kind: str, listener: Listener) -> Listener:
        with self._lock:
            self._listeners[kind].append(listener)
            self._refresh_lean()
        return listener

    def _emit(self, kind: str, *args: object) -> None:
        for listener in self._listeners[kind]:
            try:
                listener(self, *args)
            except Exception:
                log.exception("circuit breaker %r: %s listener failed", self.name, kind)

    def _flush(self) -> None:
        """Tell listeners about transitions made under the lock, each exactly once."""
        while self._pending:
            try:
                old, new = self._pending.popleft()
            except IndexError:
                return
            log.log(logging.WARNING if new in (State.OPEN, State.FORCED_OPEN) else logging.INFO,
                    "circuit breaker %r: %s -> %s", self.name, old.value, new.value)
            self._emit("state_change", old, new)

    # ---- permits ---------------------------------------------------------------------------

    def _acquire(self) -> object:
        """A permit for one call, or CircuitOpenError."""
        epoch = self._epoch
        if epoch.state is State.CLOSED or epoch.state is State.DISABLED:
            return epoch
        now = self._clock()
        with self._lock:
            self._advance(now)
            permit = self._admit(now)
            if permit is None:
                self._not_permitted += 1
                state = self._epoch.state
                refusal = CircuitOpenError(self.name, self._remaining(state, now), state)
        self._flush()
        if permit is None:
            self._emit("not_permitted", refusal)
            raise refusal
        return permit

    def _admit(self, now: float) -> object | None:
        epoch = self._epoch
        if epoch.state is State.CLOSED or epoch.state is State.DISABLED:
            return epoch
        if epoch.state is State.HALF_OPEN and self._probes_admitted < self.config.half_open_probes:
            permit = object()
            self._probes[permit] = now + self.config.probe_timeout
            self._probes_admitted += 1
            return permit
        return None

    def _remaining(self, state: State, now: float) -> float:
        if state is State.FORCED_OPEN:
            return math.inf
        return max(0.0, self._open_until - now) if state is State.OPEN else 0.0

    # ---- outcomes --------------------------------------------------------------------------

    def _record_error(self, permit: object, error: BaseException, start: float | None) -> None:
        if self.config.is_failure(error):
            self._record(permit, True, start, error)
        else:
            self._release(permit)

    def _record_result(self, permit: object, result: object, start: float | None) -> None:
        judge = self.config.failure_result
        if judge is not None and judge(result):
            self._record(permit, True, start, result)
        else:
            self._record(permit, False, start, None)

    def _record(self, permit: object, failed: bool, start: float | None, cause: object) -> None:
        """Count one finished call in the state it started in, if that state still holds."""
        now = self._clock()
        duration = now - start if start is not None else None
        slow = duration is not None and duration >= self._slow_after
        with self._lock:
            disabled = self._epoch.state is State.DISABLED
            if permit is self._epoch and permit.state is State.CLOSED:
                self._window.record(failed, slow, now)
                if self._window.tripped(now):
                    self._trip(now)
                else:
                    self._refresh_lean()
            elif permit in self._probes:
                del self._probes[permit]
                self._count_probe(failed, slow, now)
            if failed and not disabled:
                self._open_for_retry_after(cause, now)
        if not disabled:
            if failed:
                self._emit("failure", cause, duration)
            else:
                self._emit("success", duration)
            if slow:
                self._emit("slow_call", duration)
        self._flush()

    def _release(self, permit: object) -> None:
        """An ignored outcome: a half-open probe gives its slot back, nothing is counted."""
        with self._lock:
            if self._probes.pop(permit, None) is not None:
                self._probes_admitted -= 1

    def _open_for_retry_after(self, cause: object, now: float) -> None:
        if self.config.retry_after is None:
            return
        seconds = self.config.retry_after(cause)
        if seconds is not None and seconds > 0:
            self._open_at_least_until(now + seconds)

    # ---- half-open probes ------------------------------------------------------------------

    def _count_probe(self, failed: bool, slow: bool, now: float) -> None:
        self._probes_done += 1
        self._probe_failures += failed
        self._probe_slow += slow
        probes = self.config.half_open_probes
        if self.config.window_type is WindowType.CONSECUTIVE:
            reopen = self._probe_failures > 0
        else:
            reopen = (self._probe_failures >= self.config.failure_rate_threshold * probes or (
                self._times_calls and self._probe_slow >= self.config.slow_call_rate_threshold
                * probes))
        if reopen:
            self._trip(now)
        elif self._probes_done >= probes:
            self._opens_in_a_row = 0
            self._enter(State.CLOSED)

    def _expire_probes(self, now: float) -> None:
        """A probe that outlived its timeout counts as failed, so a lost one cannot wedge us."""
        for permit, deadline in list(self._probes.items()):
            if deadline <= now and self._epoch.state is State.HALF_OPEN:
                del self._probes[permit]
                self._count_probe(True, False, now)

    # ---- transitions (under the lock) ------------------------------------------------------

    def _advance_now(self) -> None:
        if self._epoch.state in (State.OPEN, State.HALF_OPEN):
            now = self._clock()
            with self._lock:
                self._advance(now)
            self._flush()

    def _advance(self, now: float) -> None:
        """Apply what time alone changes: an open that ran out, probes that timed out."""
        if self._epoch.state is State.OPEN and now >= self._open_until:
            self._enter(State.HALF_OPEN)
        if self._epoch.state is State.HALF_OPEN:
            self._expire_probes(now)

    def _trip(self, now: float) -> None:
        self._open_until = now + self.config.backoff(self._opens_in_a_row, self._random())
        if self.config.backoff(self._opens_in_a_row, 0.0) < self.config.max_backoff:
            self._opens_in_a_row += 1             # stop counting once the cap is reached
        self._enter(State.OPEN)

    def _open_at_least_until(self, deadline: float) -> None:
        state = self._epoch.state
        if state is State.FORCED_OPEN or state is State.DISABLED:
            return
        if state is State.OPEN:
            self._open_until = max(self._open_until, deadline)
            return
        self._open_until = deadline
        self._enter(State.OPEN)

    def _set_manual(self, state: State) -> None:
        with self._lock:
            if self._epoch.state is not state:
                self._enter(state)
        self._flush()

    def _enter(self, state: State) -> None:
        old = self._epoch.state
        self._epoch = _Epoch(state)
        self._probes.clear()
        self._probes_admitted = self._probe_failures = self._probe_slow = self._probes_done = 0
        if state is State.CLOSED:
            self._window.clear()
        self._refresh_lean()
        if old is not state:
            self._pending.append((old, state))

    def _refresh_lean(self) -> None:
        """Let calls skip recording while a success would change nothing and nobody listens."""
        epoch = self._epoch
        lean = epoch.state is State.DISABLED or (
            epoch.state is State.CLOSED and self._window.clean and not self._counts_each_call
            and self.config.failure_result is None and not self._listeners["success"])
        self._lean_token = self._lean.token = epoch if lean else None

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self._epoch.state.value})"


class Guard:
    """One guarded block: ``with breaker.guard():`` or ``async with breaker.guard():``."""

    __slots__ = ("_breaker", "_permit", "_start")

    def __init__(self, breaker: CircuitBreaker) -> None:
        self._breaker = breaker

    def __enter__(self) -> Guard:
        breaker = self._breaker
        self._permit = breaker._lean_token or breaker._acquire()
        self._start = breaker._clock() if breaker._times_calls else None
        return self

    def __exit__(self, error_type: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if error is None:
            if self._permit is self._breaker._lean_token:     # the lean path: nothing to count
                return
            self._breaker._record(self._permit, False, self._start, None)
        else:
            self._breaker._record_error(self._permit, error, self._start)

    async def __aenter__(self) -> Guard:
        return self.__enter__()

    async def __aexit__(self, error_type: type[BaseException] | None,
                        error: BaseException | None, traceback: TracebackType | None) -> None:
        self.__exit__(error_type, error, traceback)
