"""What the local exchange tells its listeners (the websocket hub) after each change.

Events carry data already in Hyperliquid's wire shapes, so the hub only wraps
them in frames. They are emitted after the change is complete: a listener
never sees half of an action.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Wire = dict[str, Any]


@dataclass(frozen=True)
class BookChanged:
    coin: str


@dataclass(frozen=True)
class Trades:
    coin: str
    trades: list[Wire]


@dataclass(frozen=True)
class UserFills:
    user: str
    fills: list[Wire]


@dataclass(frozen=True)
class OrderUpdates:
    user: str
    updates: list[Wire]


@dataclass(frozen=True)
class UserFunding:
    user: str
    funding: Wire


@dataclass(frozen=True)
class Liquidation:
    user: str
    data: Wire


@dataclass(frozen=True)
class NonUserCancel:
    user: str
    cancels: list[Wire]


Event = BookChanged | Trades | UserFills | OrderUpdates | UserFunding | Liquidation | NonUserCancel
