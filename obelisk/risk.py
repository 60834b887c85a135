"""Pre-trade risk management: every order is checked against limits and the account first.

The checks themselves are compiled (:class:`obelisk._core.risk.RiskChecks`) and
read the portfolio's positions and margin directly, so a decision is never
stale and costs well under a microsecond. This module adds coin names, limit
configuration, the trading state and kill switch, and a TTL/LRU cache for
expensive strategy signals (portfolio-derived values need none: they are
recomputed whenever a fill, mark or funding changes the portfolio).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from cachetools import TTLCache

from obelisk._core.risk import (
    PER_ASSET_LIMITS,
    RISK_ORDER_DTYPE,
    OrderFlags,
    RiskChecks,
    RiskReason,
    TradingState,
)
from obelisk.envvars import env_number
from obelisk.errors import OpenOrderUnderflowError, UnknownAssetError
from obelisk.portfolio import Portfolio

log = logging.getLogger(__name__)

__all__ = ["RISK_ORDER_DTYPE", "AssetLimits", "OrderFlags", "RiskDecision", "RiskLimits",
           "RiskManager", "RiskReason", "TradingState"]

_T = TypeVar("_T")
INF = math.inf


@dataclass(frozen=True)
class AssetLimits:
    """Limits of one asset: sizes in its units, notionals in USDC, the band a fraction of mark."""

    max_order_size: float = INF
    max_order_notional: float = INF
    max_position_size: float = INF
    max_position_notional: float = INF
    price_band: float = INF       # 0.05: prices and triggers within 5 % of mark and oracle


@dataclass(frozen=True)
class RiskLimits:
    """Every limit the risk manager enforces; ``inf`` (the default) turns one off."""

    default: AssetLimits = AssetLimits()
    per_coin: Mapping[str, AssetLimits] = field(default_factory=dict)
    max_total_notional: float = INF
    max_leverage: float = INF            # total notional / account value after the fill
    min_liquidation_distance: float = 0.0  # fraction of mark between mark and liquidation
    daily_loss_limit: float = INF        # USDC below the day's starting equity -> REDUCING
    max_drawdown: float = INF            # fraction below the peak equity -> REDUCING
    max_open_orders: int = 2**62
    max_data_age_s: float = 5.0          # older marks fail closed
    orders_per_second: float = INF
    burst: float = INF                   # orders the budget holds; inf: one second's worth


@dataclass(frozen=True)
class RiskDecision:
    """The verdict on one order: a reason code, and the numbers behind a refusal."""

    reason: RiskReason
    value: float = 0.0
    limit: float = 0.0

    @property
    def allowed(self) -> bool:
        return self.reason == RiskReason.OK

    @property
    def message(self) -> str:
        if self.allowed:
            return "allowed"
        return _MESSAGES[self.reason].format(value=self.value, limit=self.limit)


ALLOWED = RiskDecision(RiskReason.OK)

_MESSAGES = {
    RiskReason.INVALID_ORDER: "order side, size, price or trigger is invalid",
    RiskReason.UNKNOWN_ASSET: "asset {value:g} is not in the portfolio ({limit:g} assets)",
    RiskReason.KILL_SWITCH: "the kill switch is engaged",
    RiskReason.HALTED: "trading is halted",
    RiskReason.REDUCE_ONLY_INCREASES: "reduce-only order of {value:g} would grow a position "
                                      "of {limit:g}",
    RiskReason.STALE_MARKET_DATA: "market data is {value:.3g} s old (limit {limit:g} s) or missing",
    RiskReason.REDUCING_ONLY: "only reducing orders are allowed: position would go to {value:g}",
    RiskReason.DAILY_LOSS: "daily loss {value:.2f} exceeds {limit:g}; trading is now REDUCING",
    RiskReason.DRAWDOWN: "drawdown {value:.2%} exceeds {limit:.2%}; trading is now REDUCING",
    RiskReason.PRICE_BAND: "price is {value:.2%} from mark or oracle, band {limit:.2%}",
    RiskReason.ORDER_SIZE: "order size {value:g} exceeds {limit:g}",
    RiskReason.ORDER_NOTIONAL: "order notional {value:.2f} exceeds {limit:g}",
    RiskReason.POSITION_SIZE: "position would be {value:g}, limit {limit:g}",
    RiskReason.POSITION_NOTIONAL: "position notional would be {value:.2f}, limit {limit:g}",
    RiskReason.TOTAL_NOTIONAL: "total notional would be {value:.2f}, limit {limit:g}",
    RiskReason.LEVERAGE: "leverage would be {value:.2f}x, limit {limit:g}x",
    RiskReason.MARGIN: "margin required {value:.2f} exceeds the {limit:.2f} available",
    RiskReason.LIQUIDATION_DISTANCE: "liquidation would be {value:.2%} from mark, "
                                     "minimum {limit:.2%}",
    RiskReason.OPEN_ORDERS: "{value:g} open orders would exceed {limit:g}",
    RiskReason.RATE_LIMIT: "order rate budget of {limit:g}/s is spent",
    RiskReason.NON_FINITE_ACCOUNT: "account or order values are not finite ({value:g}): "
                                   "refused, failing closed",
}


class RiskManager:
    """Pre-trade checks of orders against `limits` and `portfolio`.

    ``check`` answers one order; ``check_batch`` a RISK_ORDER_DTYPE array,
    exactly as if each were checked in turn after every allowed one before it
    had filled at its price (taker fee). Orders that only shrink a
    position always pass unless trading is halted or the rate budget is spent.
    """

    def __init__(self, portfolio: Portfolio, limits: RiskLimits | None = None, *,
                 clock: Callable[[], int] | None = None, signal_cache_size: int = 1000,
                 signal_ttl_ms: float | None = None) -> None:
        self.portfolio = portfolio
        self.limits = limits = limits or RiskLimits()
        unknown = set(limits.per_coin) - set(portfolio.coins)
        if unknown:
            raise UnknownAssetError(f"limits for coins not in the portfolio: {sorted(unknown)}")
        per_asset = {name: np.array([getattr(limits.per_coin.get(coin, limits.default), name)
                                     for coin in portfolio.coins], dtype=np.float64)
                     for name in PER_ASSET_LIMITS}
        self.checks = RiskChecks(
            portfolio.book, per_asset, max_total_notional=limits.max_total_notional,
            max_leverage=limits.max_leverage,
            min_liquidation_distance=limits.min_liquidation_distance,
            daily_loss_limit=limits.daily_loss_limit, max_drawdown=limits.max_drawdown,
            max_open_orders=limits.max_open_orders, max_data_age_s=limits.max_data_age_s,
            orders_per_second=limits.orders_per_second, burst=limits.burst, clock=clock)
        ttl_ms = env_number("RISK_CACHE_TTL_MS", signal_ttl_ms, default=1000, minimum=0,
                            argument="signal_ttl_ms")
        self._signals: TTLCache[Hashable, Any] = TTLCache(
            maxsize=signal_cache_size, ttl=ttl_ms / 1000,
            timer=(lambda: clock() / 1e9) if clock else time.monotonic)
        self.signal_hits = 0
        self.signal_misses = 0

    # ------------------------------------------------------------- checks

    def check(self, coin: str, side: int, size: float, price: float, *,
              trigger_price: float = 0.0, reduce_only: bool = False, protective: bool = False,
              immediate: bool = False) -> RiskDecision:
        """May this order go out? `side` is +1 to buy, -1 to sell; `price` the limit price
        (for a market order its protection price). Allowed orders spend the rate budget."""
        flags = reduce_only | (protective << 1) | (immediate << 2)
        reason = self.checks.check(self.portfolio.index(coin), side, size, price, trigger_price,
                                   flags)
        if reason == 0:
            return ALLOWED
        return RiskDecision(RiskReason(reason), self.checks.last_value, self.checks.last_limit)

    def check_batch(self, orders: np.ndarray) -> np.ndarray:
        """RiskReason codes (uint8) for a RISK_ORDER_DTYPE array; ``asset`` is ``index(coin)``."""
        return self.checks.check_batch(orders)

    def check_events(self, events: np.ndarray, rows: np.ndarray, flags: np.ndarray) -> np.ndarray:
        """RiskReason codes (uint8) for an EVENT_DTYPE batch in the portfolio's ticks and lots,
        with each event's row and OrderFlags; cancels and reduce-only orders get 0
        (``RiskChecks.check_events``)."""
        table = self.portfolio.instruments
        return self.checks.check_events(events, rows, flags, table.tick, table.lot)

    # -------------------------------------------------------- market data

    def update_market(self, coin: str, mark: float, oracle: float = math.nan) -> None:
        """A fresh mark (and oracle) price: the checks use it, and the portfolio is marked."""
        self.checks.update_market(self.portfolio.index(coin), mark, oracle, mark_book=True)

    # -------------------------------------------------------------- state

    @property
    def state(self) -> TradingState:
        return TradingState(self.checks.state)

    def set_state(self, state: TradingState) -> None:
        previous = TradingState(self.checks.state)
        self.checks.state = TradingState(state)
        if previous != state:
            log.info("trading state %s -> %s", previous.name, TradingState(state).name)

    def engage_kill_switch(self) -> None:
        """Refuse every order until ``release_kill_switch``."""
        self.checks.kill_switch = True
        log.warning("kill switch engaged: every order is refused until it is released")

    def release_kill_switch(self) -> None:
        self.checks.kill_switch = False
        log.info("kill switch released")

    @property
    def kill_switch(self) -> bool:
        return self.checks.kill_switch

    def reset_daily(self, equity: float | None = None) -> None:
        """Start a new day's loss and drawdown accounting (from the account value by default)."""
        self.checks.reset_daily(equity)

    def order_opened(self) -> None:
        self.checks.open_orders += 1

    def order_closed(self) -> None:
        if self.checks.open_orders == 0:
            raise OpenOrderUnderflowError("no open order to close")
        self.checks.open_orders -= 1

    def set_open_orders(self, count: int) -> None:
        """The account's resting orders, as whoever tracks them (the engine) counts them."""
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)):
            raise TypeError(f"open order count must be an int, got {count!r}")
        if count < 0:
            raise OpenOrderUnderflowError(f"open order count must be >= 0, got {count}")
        self.checks.open_orders = int(count)

    @property
    def open_orders(self) -> int:
        return self.checks.open_orders

    # ------------------------------------------------------------ signals

    def signal(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        """`compute()`'s value, cached for the TTL (``RISK_CACHE_TTL_MS``), LRU-bounded."""
        try:
            value: _T = self._signals[key]
        except KeyError:
            self.signal_misses += 1
            value = self._signals[key] = compute()
            return value
        self.signal_hits += 1
        return value

    def signal_stats(self) -> dict[str, int]:
        return {"hits": self.signal_hits, "misses": self.signal_misses,
                "size": len(self._signals), "max_size": int(self._signals.maxsize)}
