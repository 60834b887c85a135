"""obelisk: trade Hyperliquid perpetual futures from Python, on a compiled core.

Strategy code imports everything from here; ``obelisk._core`` is private.
"""

from typing import TYPE_CHECKING

from obelisk import errors
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
from obelisk._core.l2 import L2_DELTA_DTYPE, L2_TOP_DTYPE, CrossedPolicy, L2Book
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
from obelisk.execution.engine import EngineStats, TradingEngine
from obelisk.execution.ledger import OrderLedger
from obelisk.execution.venue import OrderRequest, Venue, VenueFill, VenueOrder, VenuePosition
from obelisk.fees import FeeRates, perp_fee_rates
from obelisk.hyperliquid.l2frames import apply_l2_message
from obelisk.instruments import Instrument, Rounding
from obelisk.margin import margin_tiers_from_meta
from obelisk.monitor import PerformanceMonitor
from obelisk.portfolio import Difference, Portfolio, Position
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

__version__ = "0.1.0"

if TYPE_CHECKING:
    from obelisk.execution.recovery import PositionRecovery, RecoveryReport
    from obelisk.sim.venue import SimVenue
    from obelisk.store import TraceStore

# Imported on first use: they pull in sqlite3, a writer thread and asyncio machinery
# that most strategy code never needs at `import obelisk`.
_LAZY = {"TraceStore": "obelisk.store", "PositionRecovery": "obelisk.execution.recovery",
         "RecoveryReport": "obelisk.execution.recovery", "SimVenue": "obelisk.sim.venue"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'obelisk' has no attribute {name!r}")

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
