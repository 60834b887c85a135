"""Hyperliquid behind obelisk's :class:`~obelisk.execution.venue.Venue` protocol.

Recovery (and anything else written against ``Venue``) then runs unchanged on
the real exchange or on :class:`obelisk.SimVenue`. Positions, open orders,
fills and order statuses come from the info client; orders, cancels and
leverage go through the exchange client.
"""

from __future__ import annotations

import hashlib
from typing import Any

from obelisk.execution.venue import (
    OrderRequest,
    OrderStatusName,
    PlaceResult,
    VenueFill,
    VenueOrder,
    VenuePosition,
)
from obelisk.hyperliquid.errors import HyperliquidError
from obelisk.hyperliquid.exchange import AsyncExchange
from obelisk.hyperliquid.info import AsyncInfo
from obelisk.hyperliquid.wire import Cloid

__all__ = ["HyperliquidVenue"]

_STATUS: dict[str, OrderStatusName] = {"open": "open", "filled": "filled",
                                       "triggered": "triggered", "scheduledCancel": "canceled"}


def _status(name: str) -> OrderStatusName:
    """Hyperliquid's status as the Venue protocol names it: ``*Rejected`` are rejections,
    ``*Canceled`` cancellations; anything new counts as still open, never as closed."""
    if name in _STATUS:
        return _STATUS[name]
    if name.lower().endswith("rejected"):
        return "rejected"
    if name.lower().endswith("canceled"):
        return "canceled"
    return "open"


def _fill_id(fill: Any) -> int:
    """A fill's tid, or for old answers without one a stable id from what identifies it."""
    if fill.tid is not None:
        return int(fill.tid)
    key = f"{fill.hash}|{fill.oid}|{fill.time}|{fill.px!r}|{fill.sz!r}|{fill.side}"
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") >> 2


class HyperliquidVenue:
    """The account `user` on Hyperliquid, read through `info` and traded through `exchange`."""

    def __init__(self, info: AsyncInfo, exchange: AsyncExchange, user: str) -> None:
        self.info, self.exchange, self.user = info, exchange, user

    async def positions(self) -> list[VenuePosition]:
        state = await self.info.clearinghouse_state(self.user)
        out = []
        for p in state.positions:
            isolated = p.leverage.type == "isolated"
            entry = p.entry_px or 0.0
            margin = (p.leverage.raw_usd or 0.0) + p.szi * entry if isolated else 0.0
            out.append(VenuePosition(p.coin, p.szi, entry, p.leverage.value, isolated, margin))
        return out

    async def balance(self) -> float:
        state = await self.info.clearinghouse_state(self.user)
        return state.margin_summary.account_value \
            - sum(p.margin_used for p in state.positions if p.leverage.type == "isolated") \
            - sum(p.unrealized_pnl for p in state.positions if p.leverage.type != "isolated")

    async def open_orders(self) -> list[VenueOrder]:
        return [VenueOrder(o.oid, o.coin, o.side == "B", o.sz, o.limit_px,
                           bool(o.reduce_only), o.trigger_px if o.is_trigger else None, o.cloid)
                for o in await self.info.frontend_open_orders(self.user)]

    async def fills_since(self, time_ms: int) -> list[VenueFill]:
        return [VenueFill(_fill_id(f), f.oid, f.coin, f.sz if f.side == "B" else -f.sz, f.px,
                          f.fee, f.time, maker=not f.crossed)
                for f in await self.info.user_fills_by_time(self.user, time_ms)]

    async def order_status(self, *, oid: int | None = None,
                           cloid: str | None = None) -> OrderStatusName | None:
        if (oid is None) == (cloid is None):
            raise ValueError("give exactly one of oid and cloid")
        found = await self.info.order_status(self.user, oid if oid is not None else str(cloid))
        return None if found is None else _status(found.status)

    async def place(self, order: OrderRequest) -> PlaceResult:
        order_type: dict[str, Any] = (
            {"limit": {"tif": order.tif}} if order.trigger_px is None else
            # a triggered stop executes as a market order, `price` bounding its slippage
            {"trigger": {"triggerPx": order.trigger_px, "isMarket": True, "tpsl": "sl"}})
        cloid = Cloid.from_str(order.cloid) if order.cloid else None
        result = await self.exchange.order(order.coin, order.is_buy, order.size, order.price,
                                           order_type, order.reduce_only, cloid)
        status = result.statuses[0] if result.statuses else None
        oid = status.oid if status is not None and status.oid is not None else -1
        if status is None or status.kind == "error":
            return PlaceResult(oid, "rejected")
        if status.kind == "filled":
            return PlaceResult(oid, "filled", status.total_size or 0.0)
        return PlaceResult(oid, "open")                   # resting, or waiting for a trigger

    async def cancel(self, coin: str, oid: int) -> bool:
        result = await self.exchange.cancel(coin, oid)
        return bool(result.statuses) and result.statuses[0].kind == "success"

    async def set_leverage(self, coin: str, leverage: int, *, isolated: bool) -> None:
        result = await self.exchange.update_leverage(leverage, coin, is_cross=not isolated)
        if not result.ok:
            raise HyperliquidError(f"leverage of {coin} was not changed: {result.error}")
