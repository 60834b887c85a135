"""What the local exchange tells its listeners (the websocket hub) after each change.

Events carry data in Hyperliquid's wire shapes (order updates build theirs on
demand), so the hub only wraps them in frames. They are emitted after the change
is complete: a listener never sees half of an action.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from obelisk.server.records import StatusChange

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
    changes: list[StatusChange]

    @property
    def updates(self) -> list[Wire]:
        """The ``orderUpdates`` elements, built only when someone subscribed."""
        return [change.update_wire() for change in self.changes]


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
