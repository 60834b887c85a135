from enum import IntEnum
from typing import Any, NamedTuple, SupportsIndex, final

import numpy as np
import numpy.typing as npt
from typing_extensions import Self

from obelisk._core.pool import _PoolStats

class Side(IntEnum):
    BUY = 0
    SELL = 1

class EventKind(IntEnum):
    LIMIT = 1
    MARKET = 2
    CANCEL = 3
    MODIFY = 4

class TimeInForce(IntEnum):
    GTC = 0
    IOC = 1
    FOK = 2
    ALO = 3

class SelfTradePrevention(IntEnum):
    CANCEL_RESTING = 0
    CANCEL_INCOMING = 1
    CANCEL_BOTH = 2
    ALLOW = 3

class OrderStatus(IntEnum):
    REJECTED = 0
    RESTED = 1
    FILLED = 2
    CANCELLED = 3
    MODIFIED = 4

class OrderEventKind(IntEnum):
    RESTED = 1
    CANCELLED = 2
    REJECTED = 3
    MODIFIED = 4

class Reason(IntEnum):
    NONE = 0
    INVALID_KIND = 1
    INVALID_SIDE = 2
    INVALID_TIF = 3
    INVALID_PRICE = 4
    INVALID_QTY = 5
    DUPLICATE_OID = 6
    UNKNOWN_OID = 7
    ALO_WOULD_CROSS = 8
    FOK_UNFILLABLE = 9
    SELF_TRADE = 10
    IOC_REMAINDER = 11
    USER_CANCEL = 12
    POOL_FULL = 13
    LEVEL_OVERFLOW = 14
    UNKNOWN_ASSET = 15
    OUT_OF_MEMORY = 16

MAX_PRICE_TICKS: int
MAX_QTY_LOTS: int
STREAM_TAPES_FROM_EVENTS: int

EVENT_DTYPE: np.dtype[np.void]
RESULT_DTYPE: np.dtype[np.void]
FILL_DTYPE: np.dtype[np.void]
ORDER_EVENT_DTYPE: np.dtype[np.void]
ORDER_DTYPE: np.dtype[np.void]

_Records = npt.NDArray[np.void]
_Int64Array = npt.NDArray[np.int64]

class BatchResult(NamedTuple):
    results: _Records
    fills: _Records
    order_events: _Records

class RestingOrderInfo(NamedTuple):
    oid: int
    side: Side
    price: int
    qty: int
    owner: int
    tif: TimeInForce


@final
class OrderBook:
    @property
    def stp(self) -> int: ...
    def __init__(self, capacity: int = 1024, *, growable: bool = True,
                 stp: int = ...) -> None: ...
    def reserve(self, fills: int, order_events: int) -> None: ...
    # Integer arguments: int, bool or a numpy integer; floats and Decimals raise TypeError.
    def add(self, oid: SupportsIndex, side: SupportsIndex, price: SupportsIndex,
            qty: SupportsIndex, tif: SupportsIndex = 0, owner: SupportsIndex = 0) -> int: ...
    def market(self, oid: SupportsIndex, side: SupportsIndex, qty: SupportsIndex,
               protection_price: SupportsIndex = 0, owner: SupportsIndex = 0) -> int: ...
    def cancel(self, oid: SupportsIndex, owner: SupportsIndex = 0) -> int: ...
    def modify(
        self, oid: SupportsIndex, price: SupportsIndex, qty: SupportsIndex,
        owner: SupportsIndex = 0,
    ) -> int: ...
    @property
    def last_status(self) -> int: ...
    @property
    def last_reason(self) -> int: ...
    @property
    def last_filled_qty(self) -> int: ...
    @property
    def last_resting_qty(self) -> int: ...
    @property
    def last_fill_count(self) -> int: ...
    @property
    def last_order_event_count(self) -> int: ...
    def last_fills(self) -> _Records: ...
    def last_order_events(self) -> _Records: ...
    def last_fill_rows(self) -> list[tuple[int, int, int, int]]: ...
    def last_order_event_rows(self) -> list[tuple[int, int, int]]: ...
    def process(self, events: _Records) -> BatchResult: ...
    def best_bid(self) -> int | None: ...
    def best_ask(self) -> int | None: ...
    def best_bid_qty(self) -> int: ...
    def best_ask_qty(self) -> int: ...
    def bbo(self) -> tuple[int | None, int, int | None, int]: ...
    def spread(self) -> int | None: ...
    def mid(self) -> float | None: ...
    def depth(
        self, side: SupportsIndex, levels: SupportsIndex = 10
    ) -> tuple[_Int64Array, _Int64Array, _Int64Array]: ...
    def size_at(self, side: SupportsIndex, price: SupportsIndex) -> int: ...
    def order(self, oid: SupportsIndex) -> RestingOrderInfo | None: ...
    def queue_ahead(self, oid: SupportsIndex) -> int: ...
    def __contains__(self, oid: object, /) -> bool: ...
    def __len__(self) -> int: ...
    @property
    def order_count(self) -> int: ...
    @property
    def bid_order_count(self) -> int: ...
    @property
    def ask_order_count(self) -> int: ...
    @property
    def bid_level_count(self) -> int: ...
    @property
    def ask_level_count(self) -> int: ...
    @property
    def sequence(self) -> int: ...
    def pool_stats(self) -> _PoolStats: ...
    def memory_usage(self) -> dict[str, int]: ...
    def orders(self) -> _Records: ...
    def snapshot(self) -> bytes: ...
    @classmethod
    def restore(cls, data: bytes | bytearray | memoryview, *, capacity: int | None = None,
                growable: bool = True) -> Self: ...
    def check_integrity(self) -> None: ...

def as_event_array(events: Any) -> _Records: ...
