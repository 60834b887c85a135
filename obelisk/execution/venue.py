"""What obelisk needs from an exchange: the two protocols every venue implements.

- `Venue`: one order per call, async, prices and sizes as floats in the coin's
  units (sizes of positions and fills signed, + long). Recovery speaks it.
- `BatchVenue`: numpy batches in the core's ticks and lots. The trading engine
  speaks it. A venue answers a batch with a `BatchReport`, at once (in-process)
  or in parts (a network venue acknowledges now and reports fills later, which
  the engine collects with `BatchVenue.collect`).

The simulators (`obelisk.sim`) and the Hyperliquid adapters implement them; this
module imports neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Literal, Protocol

import numpy as np

from obelisk._core.book import RESULT_DTYPE
from obelisk._core.position import POSITION_FILL_DTYPE
from obelisk.instruments import InstrumentTable

ACCOUNT = 1        # owner id of the account's orders in a venue's books
LIQUIDITY = 2      # owner id of other participants' quotes

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

    async def balance(self) -> float:
        """The cross balance in USDC: account value less isolated margin and cross uPnL."""
        ...

    async def open_orders(self) -> list[VenueOrder]: ...

    async def fills_since(self, time_ms: int) -> list[VenueFill]: ...

    async def order_status(self, *, oid: int | None = None,
                           cloid: str | None = None) -> OrderStatusName | None: ...

    async def place(self, order: OrderRequest) -> PlaceResult: ...

    async def cancel(self, coin: str, oid: int) -> bool: ...

    async def set_leverage(self, coin: str, leverage: int, *, isolated: bool) -> None: ...


@dataclass(frozen=True)
class BatchReport:
    """What a batch venue tells the engine.

    ``results`` (RESULT_DTYPE) answers the events of the batch it was sent for,
    one per event in order; a report of later activity has none. The rest is
    the account's activity that no earlier report carried, in the order it
    happened: ``fills`` (POSITION_FILL_DTYPE, ``asset`` = row of the venue's
    InstrumentTable, signed size, price, maker) with their ``fees`` in USDC and
    order ids, the resting orders the venue removed (self-trade prevention), and
    the resting orders a fill completed.
    """

    results: np.ndarray
    fills: np.ndarray
    fees: np.ndarray
    fill_oids: np.ndarray
    removed_oids: np.ndarray
    done_oids: np.ndarray

    @classmethod
    def empty(cls, events: int = 0) -> BatchReport:
        """A report with no activity (and zeroed results for `events` events)."""
        return cls(np.zeros(events, RESULT_DTYPE), np.zeros(0, POSITION_FILL_DTYPE),
                   np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64),
                   np.zeros(0, np.int64))

    @classmethod
    def concat(cls, reports: Sequence[BatchReport]) -> BatchReport:
        """One report of several, in order (results of successive batches are appended)."""
        if len(reports) == 1:
            return reports[0]
        return cls(*(np.concatenate([getattr(r, f.name) for r in reports])
                     for f in fields(cls)))

    @property
    def has_activity(self) -> bool:
        return bool(len(self.fills) or len(self.removed_oids) or len(self.done_oids))


class BatchVenue(Protocol):
    """What the trading engine needs from a venue, and nothing more.

    The engine calls both methods from one thread; a venue that learns of fills
    on another thread or task (a websocket) queues them until ``collect``.
    """

    instruments: InstrumentTable      # rows of the fills it reports; the engine's too

    def execute(self, events: np.ndarray) -> BatchReport:
        """Send the account's EVENT_DTYPE events (owner ACCOUNT), in order. The report
        answers each event and carries every account activity not yet reported."""
        ...

    def collect(self) -> BatchReport | None:
        """Account activity not yet reported (fills that others' orders caused, late fills
        of a network venue), or None. Never blocks."""
        ...
