"""What obelisk needs from an exchange, as one small async protocol.

The Hyperliquid client and the simulated venue both speak it, so recovery
(and the trading engine) run unchanged against either. Prices and sizes are
floats in the coin's units; sizes of positions and fills are signed (+ long).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

OrderStatusName = Literal["open", "filled", "canceled", "triggered", "rejected"]


@dataclass(frozen=True)
class OrderRequest:
    """An order to send. A trigger order (``trigger_px``) rests off the book until the mark
    crosses it; reduce-only trigger orders are the protective stops."""

    coin: str
    is_buy: bool
    size: float
    price: float                      # limit price; for a triggered market order its protection
    tif: Literal["Gtc", "Ioc", "Alo"] = "Gtc"
    reduce_only: bool = False
    trigger_px: float | None = None
    cloid: str | None = None          # the client's id: placing it twice places it once

    @property
    def is_protective(self) -> bool:
        return self.reduce_only and self.trigger_px is not None


@dataclass(frozen=True)
class VenueOrder:
    """An order resting on the venue (or waiting for its trigger)."""

    oid: int
    coin: str
    is_buy: bool
    size: float                       # what is left
    price: float
    reduce_only: bool = False
    trigger_px: float | None = None
    cloid: str | None = None

    @property
    def is_protective(self) -> bool:
        return self.reduce_only and self.trigger_px is not None


@dataclass(frozen=True)
class VenueFill:
    """One of the account's fills; ``tid`` is unique per fill."""

    tid: int
    oid: int
    coin: str
    size: float                       # signed: + bought
    price: float
    fee: float
    time_ms: int
    maker: bool


@dataclass(frozen=True)
class VenuePosition:
    coin: str
    size: float
    entry_px: float
    leverage: int
    isolated: bool
    margin: float = 0.0               # isolated collateral excluding uPnL


@dataclass(frozen=True)
class PlaceResult:
    oid: int
    status: OrderStatusName
    filled: float = 0.0               # size filled at once


class Venue(Protocol):
    """The calls recovery and the engine make. Every one may raise on a transport failure."""

    async def positions(self) -> list[VenuePosition]: ...

    async def open_orders(self) -> list[VenueOrder]: ...

    async def fills_since(self, time_ms: int) -> list[VenueFill]: ...

    async def order_status(self, *, oid: int | None = None,
                           cloid: str | None = None) -> OrderStatusName | None: ...

    async def place(self, order: OrderRequest) -> PlaceResult: ...

    async def cancel(self, coin: str, oid: int) -> bool: ...

    async def set_leverage(self, coin: str, leverage: int, *, isolated: bool) -> None: ...
