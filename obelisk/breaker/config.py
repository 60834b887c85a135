"""How a circuit breaker judges calls: windows, thresholds, backoff and exception classes.

Settings left out are read from the environment (``CB_BASE_BACKOFF_MS``,
``CB_MAX_BACKOFF_MS``) when the config is built, so deployments can tune the
open duration without code changes.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from obelisk.breaker.backoff import backoff_delay
from obelisk.envvars import check_number, env_number
from obelisk.errors import ObeliskError

__all__ = ["BreakerConfig", "BreakerConfigError", "WindowType", "env_seconds"]

DEFAULT_BASE_BACKOFF_MS = 1_000
DEFAULT_MAX_BACKOFF_MS = 60_000


class BreakerConfigError(ObeliskError, ValueError):
    """A breaker setting is out of range or an environment variable is not a number."""


class WindowType(enum.Enum):
    """What the breaker remembers: the last N calls, the last N seconds, or a failure streak."""

    COUNT = "count"
    TIME = "time"
    CONSECUTIVE = "consecutive"


def env_seconds(variable: str, default_ms: float) -> float:
    """Milliseconds (> 0) from the environment variable `variable`, else `default_ms`, in
    seconds."""
    return env_number(variable, default=default_ms, minimum=0, inclusive=False,
                      error=BreakerConfigError) / 1000


def _base_backoff_from_env() -> float:
    return env_seconds("CB_BASE_BACKOFF_MS", DEFAULT_BASE_BACKOFF_MS)


def _max_backoff_from_env() -> float:
    return env_seconds("CB_MAX_BACKOFF_MS", DEFAULT_MAX_BACKOFF_MS)


ExceptionTypes = tuple[type[BaseException], ...]
ExceptionTest = Callable[[BaseException], bool]


@dataclass(frozen=True)
class BreakerConfig:
    """Settings of one breaker. Durations are in seconds, rates are fractions (0.5 is 50 %).

    A COUNT window holds the last `window_size` calls, a TIME window the calls of the
    last `window_size` whole seconds; either trips once it holds `minimum_calls` and
    the failure rate or the slow-call rate reaches its threshold. A CONSECUTIVE window
    trips after `consecutive_failures` failures in a row.

    An exception is a failure when it matches `record_exceptions` or `record_when`
    (when both are empty, every ``Exception`` is), unless it matches
    `ignore_exceptions` or `ignore_when`; any other exception is ignored: neither
    failure nor success. ``CancelledError``, ``KeyboardInterrupt`` and other
    non-``Exception`` errors are never counted. `failure_result` marks returned
    values as failures (an HTTP 429 that did not raise), and `retry_after` reads a
    server's Retry-After, in seconds, from a failure to open the breaker for that long.
    """

    window_type: WindowType = WindowType.COUNT
    window_size: int = 100
    minimum_calls: int = 20
    failure_rate_threshold: float = 0.5
    slow_call_rate_threshold: float = 1.0
    slow_call_duration: float | None = None       # None: calls are not timed
    consecutive_failures: int = 5
    half_open_probes: int = 1
    probe_timeout: float = 30.0
    base_backoff: float = field(default_factory=_base_backoff_from_env)
    max_backoff: float = field(default_factory=_max_backoff_from_env)
    backoff_multiplier: float = 2.0
    jitter: float = 0.2                           # an open lasts (1 - jitter .. 1) x its backoff
    record_exceptions: ExceptionTypes = ()
    ignore_exceptions: ExceptionTypes = ()
    record_when: ExceptionTest | None = None
    ignore_when: ExceptionTest | None = None
    failure_result: Callable[[Any], bool] | None = None
    retry_after: Callable[[object], float | None] | None = None

    def __post_init__(self) -> None:
        self._check_window()
        self._check_rates()
        self._check_durations()
        for name in ("record_exceptions", "ignore_exceptions"):
            types = getattr(self, name)
            if not (isinstance(types, tuple) and all(
                    isinstance(t, type) and issubclass(t, BaseException) for t in types)):
                raise BreakerConfigError(f"{name} must be a tuple of exception classes, "
                                         f"got {types!r}")

    def _check_window(self) -> None:
        if not isinstance(self.window_type, WindowType):
            raise BreakerConfigError(f"window_type must be a WindowType, got {self.window_type!r}")
        for name in ("window_size", "minimum_calls", "consecutive_failures", "half_open_probes"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise BreakerConfigError(f"{name} must be an integer >= 1, got {value!r}")
        if self.window_type is WindowType.COUNT and self.minimum_calls > self.window_size:
            raise BreakerConfigError(
                f"minimum_calls ({self.minimum_calls}) exceeds the count window of "
                f"{self.window_size} calls, so the breaker could never trip")
        if self.window_type is WindowType.CONSECUTIVE and self.slow_call_duration is not None:
            raise BreakerConfigError("slow-call detection needs a COUNT or TIME window, "
                                     "not CONSECUTIVE")

    def _check_rates(self) -> None:
        for name in ("failure_rate_threshold", "slow_call_rate_threshold"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 < value <= 1):
                raise BreakerConfigError(f"{name} must be a fraction in (0, 1], got {value!r}")
        if not (isinstance(self.jitter, (int, float)) and 0 <= self.jitter < 1):
            raise BreakerConfigError(f"jitter must be a fraction in [0, 1), got {self.jitter!r}")

    def _check_durations(self) -> None:
        for name in ("probe_timeout", "base_backoff", "max_backoff"):
            check_number(name, getattr(self, name), 0, inclusive=False, error=BreakerConfigError)
        if self.slow_call_duration is not None:
            check_number("slow_call_duration", self.slow_call_duration, 0, inclusive=False,
                         error=BreakerConfigError)
        if self.max_backoff < self.base_backoff:
            raise BreakerConfigError(f"max_backoff ({self.max_backoff}s) is below base_backoff "
                                     f"({self.base_backoff}s)")
        if not (isinstance(self.backoff_multiplier, (int, float))
                and 1 <= self.backoff_multiplier <= 100):
            raise BreakerConfigError(f"backoff_multiplier must be in [1, 100], "
                                     f"got {self.backoff_multiplier!r}")

    def is_failure(self, error: BaseException) -> bool:
        """Whether `error` counts as a failure; False means the call is ignored."""
        if not isinstance(error, Exception):
            return False
        if isinstance(error, self.ignore_exceptions) or (
                self.ignore_when is not None and self.ignore_when(error)):
            return False
        if not self.record_exceptions and self.record_when is None:
            return True
        return isinstance(error, self.record_exceptions) or (
            self.record_when is not None and self.record_when(error))

    def backoff(self, opens_in_a_row: int, draw: float) -> float:
        """How long the next open lasts: exponential in the opens so far, capped, jittered down.

        `draw` is a uniform random number in [0, 1).
        """
        return backoff_delay(opens_in_a_row, self.base_backoff, self.max_backoff,
                             self.backoff_multiplier, self.jitter, draw)

    @classmethod
    def position_recovery(cls, **overrides: Any) -> BreakerConfig:
        """Settings for a breaker guarding exchange reconciliation calls (positions, open orders).

        Reconciliation runs every few seconds and must resume quickly, so the window is
        short, an answer slower than 5 s counts as slow, two probes must pass before
        closing, and backoff starts at 2 s and stops at 30 s. obelisk's own validation
        errors say nothing about the exchange's health, so they are ignored.
        """
        settings: dict[str, Any] = {
            "window_type": WindowType.COUNT, "window_size": 20, "minimum_calls": 5,
            "failure_rate_threshold": 0.5, "slow_call_duration": 5.0,
            "slow_call_rate_threshold": 0.8, "half_open_probes": 2, "probe_timeout": 10.0,
            "base_backoff": 2.0, "max_backoff": 30.0, "jitter": 0.2,
            "ignore_exceptions": (ObeliskError,),
        }
        settings.update(overrides)
        return cls(**settings)

