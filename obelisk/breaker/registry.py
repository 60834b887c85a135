"""All of a process's breakers by name: one health check over every service, in
parallel, and alerts that fire once per cause per cooldown instead of once per call.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass

from obelisk.breaker.config import BreakerConfig, BreakerConfigError, env_seconds
from obelisk.breaker.core import CircuitBreaker, State
from obelisk.envvars import check_number

log = logging.getLogger(__name__)

__all__ = ["Alert", "AlertDeduplicator", "BreakerRegistry", "HealthReport", "ServiceHealth"]

DEFAULT_ALERT_COOLDOWN_MS = 60_000
HEALTHY_STATES = (State.CLOSED, State.DISABLED)
Probe = Callable[[], object]     # sync, or an async def; raising or timing out means unhealthy


@dataclass(frozen=True)
class Alert:
    """Something an operator should hear about once, not once per failed call."""

    breaker: str
    cause: str                   # the breaker's new state, or "probe failed"
    message: str


class AlertDeduplicator:
    """Lets one alert per cause through per `cooldown` seconds (``CB_ALERT_COOLDOWN_MS``)."""

    def __init__(self, cooldown: float | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cooldown = (env_seconds("CB_ALERT_COOLDOWN_MS", DEFAULT_ALERT_COOLDOWN_MS)
                         if cooldown is None else
                         check_number("alert cooldown", cooldown, 0, error=BreakerConfigError))
        self._clock = clock
        self._last_sent: dict[Hashable, float] = {}
        self._lock = threading.Lock()

    def admit(self, cause: Hashable) -> bool:
        """True if an alert for `cause` should go out now; it then starts the cooldown."""
        now = self._clock()
        with self._lock:
            last = self._last_sent.get(cause)
            if last is not None and now - last < self.cooldown:
                return False
            self._last_sent[cause] = now
            return True


@dataclass(frozen=True)
class ServiceHealth:
    """One service in a health check: its breaker's state and its probe's answer."""

    name: str
    state: State
    healthy: bool
    latency: float | None        # seconds the probe took; None without a probe
    error: str | None


@dataclass(frozen=True)
class HealthReport:
    """Every registered service, in registration order."""

    services: tuple[ServiceHealth, ...]

    @property
    def healthy(self) -> bool:
        return all(service.healthy for service in self.services)

    @property
    def unhealthy(self) -> tuple[str, ...]:
        return tuple(service.name for service in self.services if not service.healthy)


class BreakerRegistry:
    """Breakers by name, each with an optional health probe.

    Probes bypass their breaker, so a health check never spends a half-open permit.
    Sync probes run in worker threads; a sync probe that hangs past the timeout is
    reported unhealthy but its thread cannot be stopped.
    """

    def __init__(self, *, alert_sink: Callable[[Alert], object] | None = None,
                 alert_cooldown: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._alert_sink = alert_sink
        self._alerts = AlertDeduplicator(alert_cooldown, clock=clock)
        self._clock = clock
        self._breakers: dict[str, tuple[CircuitBreaker, Probe | None]] = {}
        self._lock = threading.Lock()

    def breaker(self, name: str, config: BreakerConfig | None = None, *,
                probe: Probe | None = None) -> CircuitBreaker:
        """The breaker called `name`, created with `config` (and the registry's clock) if new."""
        with self._lock:
            if name in self._breakers:
                return self._breakers[name][0]
        return self.register(CircuitBreaker(name, config, clock=self._clock), probe=probe)

    def register(self, breaker: CircuitBreaker, *, probe: Probe | None = None) -> CircuitBreaker:
        """Add `breaker`; its opens are alerted. Names are unique."""
        with self._lock:
            if breaker.name in self._breakers:
                raise BreakerConfigError(f"a breaker named {breaker.name!r} is already registered")
            self._breakers[breaker.name] = (breaker, probe)
        breaker.on_state_change(self._on_state_change)
        return breaker

    def __getitem__(self, name: str) -> CircuitBreaker:
        return self._breakers[name][0]

    def __contains__(self, name: object) -> bool:
        return name in self._breakers

    def __iter__(self) -> Iterator[CircuitBreaker]:
        return iter([breaker for breaker, _ in list(self._breakers.values())])

    def __len__(self) -> int:
        return len(self._breakers)

    async def health_check(self, timeout: float = 5.0) -> HealthReport:
        """Probe every service at once; each probe gets `timeout` seconds."""
        entries = list(self._breakers.values())
        services = await asyncio.gather(*(self._check(breaker, probe, timeout)
                                          for breaker, probe in entries))
        return HealthReport(tuple(services))

    async def _check(self, breaker: CircuitBreaker, probe: Probe | None,
                     timeout: float) -> ServiceHealth:
        state = breaker.state
        if probe is None:
            return ServiceHealth(breaker.name, state, state in HEALTHY_STATES, None, None)
        start = self._clock()
        error = None
        try:
            if inspect.iscoroutinefunction(probe):
                await asyncio.wait_for(probe(), timeout)
            else:
                await asyncio.wait_for(asyncio.to_thread(probe), timeout)
        except (asyncio.TimeoutError, TimeoutError):
            error = f"probe timed out after {timeout}s"
        except Exception as failure:
            error = f"{type(failure).__name__}: {failure}"
        latency = self._clock() - start
        if error is not None:
            log.warning("health probe of %r failed: %s", breaker.name, error)
            self._alert(Alert(breaker.name, "probe failed",
                              f"health probe of {breaker.name!r} failed: {error}"))
        return ServiceHealth(breaker.name, state, error is None and state in HEALTHY_STATES,
                             latency, error)

    def _on_state_change(self, breaker: CircuitBreaker, old: State, new: State) -> None:
        if new in (State.OPEN, State.FORCED_OPEN):
            self._alert(Alert(breaker.name, new.value,
                              f"circuit breaker {breaker.name!r} went {old.value} -> {new.value}"))

    def _alert(self, alert: Alert) -> None:
        if self._alert_sink is not None and self._alerts.admit((alert.breaker, alert.cause)):
            self._alert_sink(alert)
