"""obelisk: trade Hyperliquid perpetual futures from Python, on a compiled core.

Strategy code imports everything from here; ``obelisk._core`` is private.
"""

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
from obelisk._core.l2 import L2_DELTA_DTYPE, L2_TOP_DTYPE, CrossedPolicy, L2Book
from obelisk._core.pool import OrderPool
from obelisk.instruments import Instrument, Rounding
from obelisk.marketdata import apply_l2_message
from obelisk.matching import MatchingEngine

__version__ = "0.1.0"

__all__ = [
    "EVENT_DTYPE",
    "FILL_DTYPE",
    "L2_DELTA_DTYPE",
    "L2_TOP_DTYPE",
    "MAX_PRICE_TICKS",
    "MAX_QTY_LOTS",
    "ORDER_DTYPE",
    "ORDER_EVENT_DTYPE",
    "RESULT_DTYPE",
    "BatchResult",
    "CrossedPolicy",
    "EventKind",
    "Instrument",
    "L2Book",
    "MatchingEngine",
    "OrderBook",
    "OrderEventKind",
    "OrderPool",
    "OrderStatus",
    "Reason",
    "RestingOrderInfo",
    "Rounding",
    "SelfTradePrevention",
    "Side",
    "TimeInForce",
    "errors",
    "apply_l2_message",
]
