"""obelisk: trade Hyperliquid perpetual futures from Python, on a compiled core.

Strategy code imports everything from here; ``obelisk._core`` is private.

The names are imported on first use (PEP 562), so importing a light subpackage
such as ``obelisk.hyperliquid`` or ``obelisk.errors`` loads neither the compiled
core nor numpy; ``from obelisk import OrderBook`` loads what that name needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from obelisk import errors

__version__ = "0.1.0"

if TYPE_CHECKING:
    from obelisk._core.book import (
        EVENT_DTYPE,
        FILL_DTYPE,
        MAX_PRICE_TICKS,
        MAX_QTY_LOTS,
        ORDER_DTYPE,
        ORDER_EVENT_DTYPE,
        RESULT_DTYPE,
        BatchResult,
        EventKind,
        OrderBook,
        OrderEventKind,
        OrderStatus,
        Reason,
        RestingOrderInfo,
        SelfTradePrevention,
        Side,
        TimeInForce,
    )
    from obelisk._core.histogram import LatencyHistogram
    from obelisk._core.l2 import (
        L2_DELTA_DTYPE,
        L2_TOP_DTYPE,
        CrossedPolicy,
        L2Book,
    )
    from obelisk._core.pool import OrderPool
    from obelisk._core.position import (
        POSITION_DTYPE,
        POSITION_FILL_DTYPE,
        MarginMode,
        PositionBook,
        funding_premium,
        funding_rate,
        hourly_funding_rate,
    )
    from obelisk.breaker import (
        BreakerConfig,
        BreakerRegistry,
        CircuitBreaker,
        CircuitOpenError,
    )
    from obelisk.execution.engine import (
        EngineStats,
        TradingEngine,
    )
    from obelisk.execution.ledger import OrderLedger
    from obelisk.execution.recovery import (
        PositionRecovery,
        RecoveryReport,
    )
    from obelisk.execution.venue import (
        OrderRequest,
        Venue,
        VenueFill,
        VenueOrder,
        VenuePosition,
    )
    from obelisk.fees import (
        FeeRates,
        perp_fee_rates,
    )
    from obelisk.hyperliquid.l2frames import apply_l2_message
    from obelisk.instruments import (
        Instrument,
        Rounding,
    )
    from obelisk.margin import margin_tiers_from_meta
    from obelisk.monitor import PerformanceMonitor
    from obelisk.portfolio import (
        Difference,
        Portfolio,
        Position,
    )
    from obelisk.risk import (
        RISK_ORDER_DTYPE,
        AssetLimits,
        OrderFlags,
        RiskDecision,
        RiskLimits,
        RiskManager,
        RiskReason,
        TradingState,
    )
    from obelisk.sim.batch import SimBatchVenue
    from obelisk.sim.matching import MatchingEngine
    from obelisk.sim.venue import SimVenue
    from obelisk.store import TraceStore

# module -> the public names it defines
_EXPORTS: dict[str, tuple[str, ...]] = {
    "obelisk._core.book": ("EVENT_DTYPE", "FILL_DTYPE", "MAX_PRICE_TICKS", "MAX_QTY_LOTS",
                           "ORDER_DTYPE", "ORDER_EVENT_DTYPE", "RESULT_DTYPE", "BatchResult",
                           "EventKind", "OrderBook", "OrderEventKind", "OrderStatus", "Reason",
                           "RestingOrderInfo", "SelfTradePrevention", "Side", "TimeInForce"),
    "obelisk._core.histogram": ("LatencyHistogram",),
    "obelisk._core.l2": ("L2_DELTA_DTYPE", "L2_TOP_DTYPE", "CrossedPolicy", "L2Book"),
    "obelisk._core.pool": ("OrderPool",),
    "obelisk._core.position": ("POSITION_DTYPE", "POSITION_FILL_DTYPE", "MarginMode",
                               "PositionBook", "funding_premium", "funding_rate",
                               "hourly_funding_rate"),
    "obelisk.breaker": ("BreakerConfig", "BreakerRegistry", "CircuitBreaker", "CircuitOpenError"),
    "obelisk.execution.engine": ("EngineStats", "TradingEngine"),
    "obelisk.execution.ledger": ("OrderLedger",),
    "obelisk.execution.venue": ("OrderRequest", "Venue", "VenueFill", "VenueOrder",
                                "VenuePosition"),
    "obelisk.fees": ("FeeRates", "perp_fee_rates"),
    "obelisk.hyperliquid.l2frames": ("apply_l2_message",),
    "obelisk.instruments": ("Instrument", "Rounding"),
    "obelisk.margin": ("margin_tiers_from_meta",),
    "obelisk.monitor": ("PerformanceMonitor",),
    "obelisk.portfolio": ("Difference", "Portfolio", "Position"),
    "obelisk.risk": ("RISK_ORDER_DTYPE", "AssetLimits", "OrderFlags", "RiskDecision",
                     "RiskLimits", "RiskManager", "RiskReason", "TradingState"),
    "obelisk.sim.batch": ("SimBatchVenue",),
    "obelisk.sim.matching": ("MatchingEngine",),
    "obelisk.store": ("TraceStore",),
    "obelisk.execution.recovery": ("PositionRecovery", "RecoveryReport"),
    "obelisk.sim.venue": ("SimVenue",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> object:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'obelisk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "EVENT_DTYPE",
    "FILL_DTYPE",
    "L2_DELTA_DTYPE",
    "L2_TOP_DTYPE",
    "MAX_PRICE_TICKS",
    "MAX_QTY_LOTS",
    "ORDER_DTYPE",
    "ORDER_EVENT_DTYPE",
    "POSITION_DTYPE",
    "POSITION_FILL_DTYPE",
    "RESULT_DTYPE",
    "RISK_ORDER_DTYPE",
    "AssetLimits",
    "BatchResult",
    "BreakerConfig",
    "BreakerRegistry",
    "CircuitBreaker",
    "CircuitOpenError",
    "CrossedPolicy",
    "Difference",
    "EngineStats",
    "EventKind",
    "FeeRates",
    "Instrument",
    "L2Book",
    "LatencyHistogram",
    "MarginMode",
    "MatchingEngine",
    "OrderBook",
    "OrderEventKind",
    "OrderFlags",
    "OrderLedger",
    "OrderPool",
    "OrderRequest",
    "PerformanceMonitor",
    "OrderStatus",
    "Portfolio",
    "Position",
    "PositionBook",
    "PositionRecovery",
    "RecoveryReport",
    "Reason",
    "RestingOrderInfo",
    "RiskDecision",
    "RiskLimits",
    "RiskManager",
    "RiskReason",
    "Rounding",
    "SelfTradePrevention",
    "SimBatchVenue",
    "SimVenue",
    "Side",
    "TimeInForce",
    "TraceStore",
    "TradingEngine",
    "TradingState",
    "Venue",
    "VenueFill",
    "VenueOrder",
    "VenuePosition",
    "errors",
    "apply_l2_message",
    "funding_premium",
    "funding_rate",
    "hourly_funding_rate",
    "margin_tiers_from_meta",
    "perp_fee_rates",
]
