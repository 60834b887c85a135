from enum import IntEnum
from typing import Any, final

import numpy as np
import numpy.typing as npt

from obelisk._core.position import PositionBook

RISK_ORDER_DTYPE: np.dtype
PER_ASSET_LIMITS: tuple[str, ...]

class TradingState(IntEnum):
    ACTIVE = 0
    REDUCING = 1
    HALTED = 2

class OrderFlags(IntEnum):
    REDUCE_ONLY = 1
    PROTECTIVE = 2
    IMMEDIATE = 4

class RiskReason(IntEnum):
    OK = 0
    INVALID_ORDER = 1
    UNKNOWN_ASSET = 2
    KILL_SWITCH = 3
    HALTED = 4
    REDUCE_ONLY_INCREASES = 5
    STALE_MARKET_DATA = 6
    REDUCING_ONLY = 7
    DAILY_LOSS = 8
    DRAWDOWN = 9
    PRICE_BAND = 10
    ORDER_SIZE = 11
    ORDER_NOTIONAL = 12
    POSITION_SIZE = 13
    POSITION_NOTIONAL = 14
    TOTAL_NOTIONAL = 15
    LEVERAGE = 16
    MARGIN = 17
    LIQUIDATION_DISTANCE = 18
    OPEN_ORDERS = 19
    RATE_LIMIT = 20
    NON_FINITE_ACCOUNT = 21

@final
class RiskChecks:
    max_total_notional: float
    max_leverage: float
    min_liquidation_distance: float
    daily_loss_limit: float
    max_drawdown: float
    max_open_orders: int
    max_data_age_ns: int
    orders_per_second: float
    burst: float
    state: int
    kill_switch: bool
    open_orders: int
    peak_equity: float
    day_start_equity: float
    last_value: float
    last_limit: float
    def __init__(
        self, book: PositionBook, per_asset: dict[str, Any], *,
        max_total_notional: float = ..., max_leverage: float = ...,
        min_liquidation_distance: float = 0.0, daily_loss_limit: float = ...,
        max_drawdown: float = ..., max_open_orders: int = ..., max_data_age_s: float = ...,
        orders_per_second: float = ..., burst: float = ..., clock: Any = None
    ) -> None: ...
    def update_market(
        self, asset: int, mark: float, oracle: float = ..., *, mark_book: bool = False
    ) -> None: ...
    def reset_daily(self, equity: float | None = None) -> None: ...
    def check(
        self, asset: int, side: int, size: float, price: float, trigger_price: float = 0.0,
        flags: int = 0
    ) -> int: ...
    def check_batch(self, orders: np.ndarray) -> np.ndarray: ...
    def check_events(
        self, events: np.ndarray, rows: npt.ArrayLike, flags: npt.ArrayLike,
        ticks: npt.ArrayLike, lots: npt.ArrayLike
    ) -> np.ndarray: ...
