"""The local exchange's records of orders and fills, and their Hyperliquid wire shapes.

Numbers go out as Hyperliquid writes them: strings for anything fractional
(``"29792.0"``, ``"0.0335"``), JSON integers for ids and millisecond times.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

Wire = dict[str, Any]
_FIXED = tuple(f".{decimals}f" for decimals in range(16))     # format specs, made once


def num(value: float | Decimal | int, decimals: int = 8) -> str:
    """A number as Hyperliquid prints it: no exponent, at least one decimal, no float noise
    (a float is rounded to `decimals`, at most 8)."""
    if isinstance(value, float) and -1e7 < value < 1e7:
        # 15 significant digits at most: the fixed-point text is the rounded float's repr
        if value == 0.0:                           # closedPnl of every opening fill
            return "0.0"
        if not decimals:
            text = f"{value:.0f}.0"
        elif (text := format(value, _FIXED[decimals]).rstrip("0"))[-1] == ".":
            text += "0"
        return "0.0" if text == "-0.0" else text
    if isinstance(value, float):
        text = repr(round(value, decimals) + 0.0)        # + 0.0 turns -0.0 into 0.0
        if "e" not in text and "n" not in text:    # plain digits (not 1e-05, inf or nan):
            return text                            # a float's repr has no trailing zeros
        value = Decimal(text)
    text = format(Decimal(value).normalize(), "f")
    return text if "." in text else text + ".0"


@functools.lru_cache(maxsize=1 << 16)
def units_text(units: int, decimals: int) -> str:
    """`units` of 10**-decimals (ticks or lots) as `num` prints them; sizes and prices repeat,
    so this is cached."""
    return num(Decimal(units).scaleb(-decimals))


@dataclass(frozen=True)
class Trigger:
    trigger_px: str
    is_market: bool
    tpsl: str                                    # "tp" or "sl"

    def fires(self, is_buy: bool, mark: float) -> bool:
        """A stop loss fires when the mark moves against the position it closes, a take
        profit when it moves in its favour."""
        px = float(self.trigger_px)
        above = (is_buy and self.tpsl == "sl") or (not is_buy and self.tpsl == "tp")
        return mark >= px if above else mark <= px

    @property
    def order_type(self) -> str:
        kind = "Stop" if self.tpsl == "sl" else "Take Profit"
        return f"{kind} {'Market' if self.is_market else 'Limit'}"


@dataclass(slots=True)
class Order:
    """One order of one account, as the exchange knows it (sizes as lot counts)."""

    oid: int
    user: str
    coin: str
    asset: int
    is_buy: bool
    limit_px: str
    price_ticks: int
    lots: int                                    # left to fill
    orig_lots: int
    sz_decimals: int
    timestamp: int
    tif: str | None                              # "Gtc", "Ioc", "Alo"; None for triggers
    reduce_only: bool
    cloid: str | None
    trigger: Trigger | None = None
    position_tpsl: bool = False
    status: str = "open"
    status_ts: int = 0
    children: list[Order] = field(default_factory=list)   # normalTpsl children waiting

    @property
    def sz(self) -> str:
        return units_text(self.lots, self.sz_decimals)

    def open_wire(self, lots: int | None = None) -> Wire:
        """An ``openOrders`` row (with `lots` left, if given: the size at a past change)."""
        sz = self.sz if lots is None else units_text(lots, self.sz_decimals)
        row: Wire = {"coin": self.coin, "side": "B" if self.is_buy else "A",
                     "limitPx": self.limit_px, "sz": sz, "oid": self.oid,
                     "timestamp": self.timestamp,
                     "origSz": units_text(self.orig_lots, self.sz_decimals)}
        if self.cloid is not None:
            row["cloid"] = self.cloid
        if self.reduce_only:
            row["reduceOnly"] = True
        return row

    def frontend_wire(self, lots: int | None = None) -> Wire:
        """A ``frontendOpenOrders`` row (and the order inside ``orderStatus``)."""
        trigger = self.trigger
        condition = "N/A"
        if trigger is not None:
            above = trigger.fires(self.is_buy, float("inf"))
            condition = f"Price {'above' if above else 'below'} {trigger.trigger_px}"
        row: Wire = {
            "coin": self.coin, "side": "B" if self.is_buy else "A", "limitPx": self.limit_px,
            "sz": self.sz if lots is None else units_text(lots, self.sz_decimals),
            "oid": self.oid, "timestamp": self.timestamp, "triggerCondition": condition,
            "isTrigger": trigger is not None,
            "triggerPx": trigger.trigger_px if trigger else "0.0",
            "children": [child.frontend_wire() for child in self.children],
            "isPositionTpsl": self.position_tpsl, "reduceOnly": self.reduce_only,
            "orderType": trigger.order_type if trigger else "Limit",
            "origSz": units_text(self.orig_lots, self.sz_decimals),
            "tif": self.tif, "cloid": self.cloid}
        return row



class StatusChange(NamedTuple):
    """An order as it was at one status change: what orderStatus, historicalOrders and
    orderUpdates show (the order is shared, its size and status are kept). A tuple: one
    is made per change."""

    order: Order
    lots: int
    status: str
    status_ts: int

    def status_wire(self) -> Wire:
        """An ``orderStatus`` / ``historicalOrders`` element."""
        return {"order": self.order.frontend_wire(self.lots), "status": self.status,
                "statusTimestamp": self.status_ts}

    def update_wire(self) -> Wire:
        """An ``orderUpdates`` element."""
        return {"order": self.order.open_wire(self.lots), "status": self.status,
                "statusTimestamp": self.status_ts}


def fill_wire(*, coin: str, px: str, sz: str, is_buy: bool, time: int, start_position: str,
              direction: str, closed_pnl: float, oid: int, crossed: bool, fee: float, tid: int,
              cloid: str | None, liquidation: Wire | None = None) -> Wire:
    """A ``userFills`` element, keys in the order the exchange sends them."""
    row: Wire = {"coin": coin, "px": px, "sz": sz, "side": "B" if is_buy else "A",
                 "time": time, "startPosition": start_position, "dir": direction,
                 "closedPnl": num(closed_pnl), "hash": "0x" + f"{tid:064x}", "oid": oid,
                 "crossed": crossed, "fee": num(fee), "tid": tid}
    if cloid is not None:
        row["cloid"] = cloid
    if liquidation is not None:
        row["liquidation"] = liquidation
    row["feeToken"] = "USDC"
    row["twapId"] = None
    return row


def direction(start: float, is_buy: bool, lots_after: float) -> str:
    """The fill's ``dir``: what it did to the position it met."""
    if start == 0 or (start > 0) == is_buy:
        return "Open Long" if is_buy else "Open Short"
    if lots_after != 0 and (lots_after > 0) == is_buy:
        return "Long > Short" if not is_buy else "Short > Long"
    return "Close Short" if is_buy else "Close Long"
