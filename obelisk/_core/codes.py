"""The core's codes as plain ints, for numpy expressions.

numpy compares an array with an IntEnum or IntFlag member (or fills one with it) about
5x slower than with the same int (~2.3 us more per operation on a batch), so the
batch paths (engine, venues, the stress flow) use these; the enums stay the API.
"""

from obelisk._core.book import EventKind, OrderEventKind, OrderStatus, Reason, Side, TimeInForce
from obelisk._core.risk import OrderFlags

__all__ = ["ALO", "BUY", "CANCEL", "CANCELLED", "EVENT_CANCELLED", "FILLED", "GTC", "IOC",
           "IOC_REMAINDER", "LIMIT", "MARKET", "REDUCE_ONLY", "REJECTED", "RESTED", "SELF_TRADE",
           "SELL", "USER_CANCEL"]

LIMIT, MARKET, CANCEL = int(EventKind.LIMIT), int(EventKind.MARKET), int(EventKind.CANCEL)
BUY, SELL = int(Side.BUY), int(Side.SELL)
GTC, IOC, ALO = int(TimeInForce.GTC), int(TimeInForce.IOC), int(TimeInForce.ALO)
RESTED, FILLED = int(OrderStatus.RESTED), int(OrderStatus.FILLED)
REJECTED, CANCELLED = int(OrderStatus.REJECTED), int(OrderStatus.CANCELLED)
EVENT_CANCELLED = int(OrderEventKind.CANCELLED)
SELF_TRADE, IOC_REMAINDER = int(Reason.SELF_TRADE), int(Reason.IOC_REMAINDER)
USER_CANCEL = int(Reason.USER_CANCEL)
REDUCE_ONLY = int(OrderFlags.REDUCE_ONLY)
