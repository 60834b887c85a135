"""Circuit breakers for calls to Hyperliquid and other services.

:class:`CircuitBreaker` guards one service; :class:`BreakerConfig` says how it
judges calls; :class:`BreakerRegistry` holds many, runs their health probes in
parallel and de-duplicates alerts.
"""

from obelisk.breaker.config import BreakerConfig, BreakerConfigError, WindowType
from obelisk.breaker.core import BreakerMetrics, CircuitBreaker, CircuitOpenError, Guard, State
from obelisk.breaker.registry import (
    Alert,
    AlertDeduplicator,
    BreakerRegistry,
    HealthReport,
    ServiceHealth,
)

__all__ = [
    "Alert",
    "AlertDeduplicator",
    "BreakerConfig",
    "BreakerConfigError",
    "BreakerMetrics",
    "BreakerRegistry",
    "CircuitBreaker",
    "CircuitOpenError",
    "Guard",
    "HealthReport",
    "ServiceHealth",
    "State",
    "WindowType",
]
