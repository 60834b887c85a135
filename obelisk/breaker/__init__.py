"""Circuit breakers for calls to Hyperliquid and other services.

:class:`CircuitBreaker` guards one service; :class:`BreakerConfig` says how it
judges calls; :class:`BreakerRegistry` holds many, runs their health probes in
parallel and de-duplicates alerts.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from obelisk.breaker.config import BreakerConfig, BreakerConfigError, WindowType
from obelisk.breaker.core import BreakerMetrics, CircuitBreaker, CircuitOpenError, Guard, State

if TYPE_CHECKING:
    from obelisk.breaker.registry import (
        Alert,
        AlertDeduplicator,
        BreakerRegistry,
        HealthReport,
        ServiceHealth,
    )

# The registry runs health probes on asyncio; a client that only guards calls (the
# Hyperliquid transport) should not pay for importing it.
_REGISTRY_NAMES = {"Alert", "AlertDeduplicator", "BreakerRegistry", "HealthReport",
                   "ServiceHealth"}


def __getattr__(name: str) -> object:
    if name not in _REGISTRY_NAMES:
        raise AttributeError(f"module 'obelisk.breaker' has no attribute {name!r}")
    value = getattr(importlib.import_module("obelisk.breaker.registry"), name)
    globals()[name] = value
    return value


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
