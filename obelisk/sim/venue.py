"""An honest in-memory exchange: the `Venue` protocol over core books.

Recovery, the trading engine and ``obelisk stress`` run against it instead of
Hyperliquid. Each coin has one :class:`~obelisk.OrderBook`, so orders match with
price-time priority at the maker's price; the account's fills pay its FeeRates
and move a venue-side :class:`~obelisk.Portfolio`. Tests can make calls fail and
change the account behind the client's back, as happens while a bot is down.
"""

from __future__ import annotations

import functools
import itertools
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

from obelisk._core.book import OrderBook, OrderEventKind, OrderStatus, Side, TimeInForce
from obelisk.errors import InstrumentError, InvalidOrderError
from obelisk.execution.venue import (
    ACCOUNT,
    LIQUIDITY,
    OrderRequest,
    OrderStatusName,
    PlaceResult,
    VenueFill,
    VenueOrder,
    VenuePosition,
)
from obelisk.fees import FeeRates
from obelisk.instruments import Instrument, InstrumentTable
from obelisk.portfolio import Portfolio

__all__ = ["OUTSIDE", "SimVenue"]

OUTSIDE = 3       # owner id of the crossing orders external_fill sends (after ACCOUNT, LIQUIDITY)

_TIF = {"Gtc": TimeInForce.GTC, "Ioc": TimeInForce.IOC, "Alo": TimeInForce.ALO}
_CALLS: set[str] = set()  # the methods fail_next can make fail

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _side(is_buy: bool) -> Side:
    return Side.BUY if is_buy else Side.SELL


def _venue_call(
    method: Callable[Concatenate[SimVenue, _P], Coroutine[Any, Any, _R]],
) -> Callable[Concatenate[SimVenue, _P], Coroutine[Any, Any, _R]]:
    """Count every call and raise an injected failure before it acts (or after, if asked)."""
    name = method.__name__
    _CALLS.add(name)

    @functools.wraps(method)
    async def call(self: SimVenue, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        self.calls[name] += 1
        failure = self._failures[name].popleft() if self._failures[name] else None
        if failure is not None and not failure.after:
            raise failure.exc
        result = await method(self, *args, **kwargs)
        if failure is not None:
            raise failure.exc
        return result

    return call


@dataclass(frozen=True)
class _Failure:
    exc: BaseException
    after: bool       # the call takes effect and then raises, like a lost response


@dataclass
class _Order:
    """The venue's record of one account order; sizes in lots."""

    oid: int
    request: OrderRequest
    price: int                        # limit price in ticks
    left: int                         # lots not yet filled (nor clipped by reduce-only)
    filled: int = 0
    status: OrderStatusName = "open"
    result: PlaceResult | None = None

    @property
    def coin(self) -> str:
        return self.request.coin

    @property
    def is_buy(self) -> bool:
        return self.request.is_buy


class SimVenue:
    """An in-memory Hyperliquid for one account, driven by the account and by test helpers.

    Parameters
    ----------
    instruments : sequence of Instrument
        The coins it lists; prices and sizes must lie on their grids.
    balance : float
        The account's starting cross balance in USDC.
    fees : FeeRates
        The account's maker and taker rates.
    clock_ms : callable, optional
        Milliseconds now, stamped on fills; the wall clock by default.

    Oids come from one counter shared by every coin and owner, so they are unique
    and increasing. The Venue calls are ``async``, counted in ``calls`` and can be
    made to fail with :meth:`fail_next`; the helpers that move the market or act
    behind the account's back are plain methods.
    """

    def __init__(self, instruments: Sequence[Instrument], *, balance: float = 0.0,
                 fees: FeeRates | None = None,
                 clock_ms: Callable[[], int] | None = None) -> None:
        self._instruments = InstrumentTable(instruments)
        self._books = {coin: OrderBook() for coin in self._instruments.coins}
        self._fees = fees or FeeRates()
        self._portfolio = Portfolio(self._instruments, balance=balance, fees=self._fees)
        self._clock = clock_ms or _wall_clock_ms
        self._orders: dict[int, _Order] = {}
        self._open: dict[int, _Order] = {}       # resting on a book or waiting for a trigger
        self._by_cloid: dict[str, _Order] = {}
        self._fills: list[VenueFill] = []
        self._marks: dict[str, float] = {}
        self._oids = itertools.count(1)
        self._tids = itertools.count(1)
        self._failures: defaultdict[str, deque[_Failure]] = defaultdict(deque)
        self.calls: Counter[str] = Counter()

    @property
    def portfolio(self) -> Portfolio:
        """The account as the venue sees it (read it; change it only through the venue)."""
        return self._portfolio

    def fail_next(self, method_name: str, exc: BaseException, *, after: bool = False) -> None:
        """Make the next call of ``method_name`` raise ``exc``; queued calls fail in turn.

        With ``after`` the call first takes effect, as when the exchange acted but the
        response was lost.
        """
        if method_name not in _CALLS:
            raise ValueError(f"{method_name!r} is not a SimVenue call "
                             f"({', '.join(sorted(_CALLS))})")
        self._failures[method_name].append(_Failure(exc, after))

    # ------------------------------------------------------------ the Venue protocol

    @_venue_call
    async def positions(self) -> list[VenuePosition]:
        return [VenuePosition(p.coin, p.size, p.entry_px, p.leverage, p.isolated, p.margin)
                for p in self._portfolio.open_positions()]

    @_venue_call
    async def balance(self) -> float:
        return self._portfolio.balance

    @_venue_call
    async def open_orders(self) -> list[VenueOrder]:
        return [VenueOrder(o.oid, o.coin, o.is_buy, self._size(o.coin, o.left), o.request.price,
                           o.request.reduce_only, o.request.trigger_px, o.request.cloid)
                for o in sorted(self._open.values(), key=lambda o: o.oid)]

    @_venue_call
    async def fills_since(self, time_ms: int) -> list[VenueFill]:
        """The account's fills at or after ``time_ms``, oldest first."""
        return [fill for fill in self._fills if fill.time_ms >= time_ms]

    @_venue_call
    async def order_status(self, *, oid: int | None = None,
                           cloid: str | None = None) -> OrderStatusName | None:
        if oid is not None:
            order = self._orders.get(oid)
        elif cloid is not None:
            order = self._by_cloid.get(cloid)
        else:
            raise ValueError("order_status needs an oid or a cloid")
        return order.status if order else None

    @_venue_call
    async def place(self, order: OrderRequest) -> PlaceResult:
        """Place an order; a known cloid returns the first placement's result instead.

        Off-grid prices or sizes raise InvalidOrderError and change nothing; an Alo
        that would take and a reduce-only order that cannot reduce are "rejected".
        """
        if order.cloid is not None and order.cloid in self._by_cloid:
            return self._replay(order)
        instrument = self._instrument(order.coin)
        price = _ticks(instrument, order.price, "price")
        lots = _lots(instrument, order.size)
        if order.trigger_px is not None:
            _ticks(instrument, order.trigger_px, "trigger price")
        record = _Order(next(self._oids), order, price, lots)
        self._orders[record.oid] = record
        if order.cloid is not None:
            self._by_cloid[order.cloid] = record
        if order.reduce_only and not self._reducible(order.coin, order.is_buy):
            record.status = "rejected"
        elif order.trigger_px is not None:
            self._open[record.oid] = record
            self._fire_triggers(order.coin)
        else:
            self._execute(record, _TIF[order.tif])
        record.result = PlaceResult(record.oid, record.status,
                                    self._size(order.coin, record.filled))
        return record.result

    @_venue_call
    async def cancel(self, coin: str, oid: int) -> bool:
        """Cancel an open order; False if it is not open on ``coin`` (never an error)."""
        self._instrument(coin)
        order = self._open.get(oid)
        if order is None or order.coin != coin:
            return False
        self._cancel_open(order)
        return True

    @_venue_call
    async def set_leverage(self, coin: str, leverage: int, *, isolated: bool) -> None:
        self._portfolio.set_leverage(coin, leverage, isolated=isolated)

    # ------------------------------------------------------------ the rest of the market
    # Test helpers, not venue calls: synchronous, not counted, never made to fail.

    def add_liquidity(self, coin: str, is_buy: bool, price: float, size: float) -> int:
        """Rest an order of another participant for the account to trade against; its oid.

        It only adds liquidity: one that would cross the book raises InvalidOrderError.
        """
        instrument = self._instrument(coin)
        price_ticks, lots = _ticks(instrument, price, "price"), _lots(instrument, size)
        oid = next(self._oids)
        status = self._books[coin].add(oid, _side(is_buy), price_ticks, lots, TimeInForce.ALO,
                                       LIQUIDITY)
        if status == OrderStatus.REJECTED:
            raise InvalidOrderError(f"liquidity at {price} would cross the {coin} book; "
                                    "add_liquidity only rests (external_fill trades)")
        return oid

    def remove_liquidity(self, coin: str, oid: int) -> bool:
        """Cancel one add_liquidity order; False if it is not resting."""
        book = self._book(coin)
        resting = book.order(oid)
        if resting is None or resting.owner != LIQUIDITY:
            return False
        book.cancel(oid)
        return True

    def clear_liquidity(self, coin: str) -> int:
        """Cancel every add_liquidity order on ``coin``; how many there were."""
        book = self._book(coin)
        oids = [int(o["oid"]) for o in book.orders() if o["owner"] == LIQUIDITY]
        for oid in oids:
            book.cancel(oid)
        return len(oids)

    def set_mark(self, coin: str, mark: float) -> None:
        """Move the mark price; trigger orders it crosses fire now, oldest first."""
        self._instrument(coin)
        self._portfolio.mark({coin: mark})
        self._marks[coin] = mark
        self._fire_triggers(coin)

    # ------------------------------------------------------------ behind the account's back

    def external_fill(self, coin: str, is_buy: bool, size: float, price: float) -> float:
        """Another participant sends an IOC (``is_buy`` is its side) for ``size`` limited at
        ``price``, filling the account's resting orders it reaches; the account's filled size.
        Liquidity ahead of the account's orders in price-time priority is taken first."""
        instrument = self._instrument(coin)
        price_ticks, lots = _ticks(instrument, price, "price"), _lots(instrument, size)
        book = self._books[coin]
        book.add(next(self._oids), _side(is_buy), price_ticks, lots, TimeInForce.IOC, OUTSIDE)
        return self._size(coin, self._settle(coin))

    def drop_order(self, oid: int) -> bool:
        """The venue cancels an open account order (say, for margin); False if none is open."""
        order = self._open.get(oid)
        if order is None:
            return False
        self._cancel_open(order)
        return True

    # ------------------------------------------------------------ matching

    def _execute(self, order: _Order, tif: TimeInForce) -> None:
        """Send an order to its book (reduce-only clipped to the position) and settle."""
        if order.request.reduce_only:
            order.left = min(order.left, self._reducible(order.coin, order.is_buy))
            if not order.left:
                return
        book = self._books[order.coin]
        status = book.add(order.oid, _side(order.is_buy), order.price, order.left, tif, ACCOUNT)
        self._settle(order.coin)
        if status == OrderStatus.RESTED:
            self._open[order.oid] = order
        elif status == OrderStatus.REJECTED:
            order.status = "rejected"

    def _settle(self, coin: str) -> int:
        """Book the account's side of the last book call; the account's filled lots."""
        book = self._books[coin]
        filled = 0
        for fill in book.last_fills():
            if fill["taker_owner"] == ACCOUNT:
                filled += self._account_fill(coin, int(fill["taker_oid"]), fill, maker=False)
            elif fill["maker_owner"] == ACCOUNT:
                filled += self._account_fill(coin, int(fill["maker_oid"]), fill, maker=True)
        for event in book.last_order_events():
            order = self._orders.get(int(event["oid"]))
            if (event["owner"] == ACCOUNT and event["kind"] == OrderEventKind.CANCELLED
                    and order is not None and order.status == "open"):
                self._close(order, "canceled")
        if filled:
            self._trim_reduce_only(coin)
        return filled

    def _account_fill(self, coin: str, oid: int, fill: Any, *, maker: bool) -> int:
        order = self._orders[oid]
        lots = int(fill["qty"])
        order.left -= lots
        order.filled += lots
        size = self._size(coin, lots) if order.is_buy else -self._size(coin, lots)
        price = float(self._instrument(coin).ticks_to_price(int(fill["price"])))
        self._portfolio.apply_fill(coin, size, price, maker=maker)
        self._fills.append(VenueFill(next(self._tids), oid, coin, size, price,
                                     self._fees.fee(size, price, maker=maker), self._clock(),
                                     maker))
        if not order.left and order.status == "open":
            self._close(order, "filled")
        return lots

    def _trim_reduce_only(self, coin: str) -> None:
        """Shrink resting reduce-only orders to the position, cancelling those that can't reduce."""
        book = self._books[coin]
        for order in list(self._open.values()):
            if (order.coin != coin or not order.request.reduce_only
                    or order.request.trigger_px is not None):
                continue
            reducible = self._reducible(coin, order.is_buy)
            if not reducible:
                self._cancel_open(order)
            elif order.left > reducible:
                book.modify(order.oid, order.price, reducible)
                order.left = reducible

    def _fire_triggers(self, coin: str) -> None:
        """Send as IOC every waiting trigger order of ``coin`` the mark has crossed."""
        mark = self._marks.get(coin)
        if mark is None:
            return
        waiting = [o for o in self._open.values()
                   if o.coin == coin and o.request.trigger_px is not None]
        for order in sorted(waiting, key=lambda o: o.oid):
            trigger = order.request.trigger_px
            assert trigger is not None
            if (mark >= trigger) if order.is_buy else (mark <= trigger):
                self._close(order, "triggered")
                self._execute(order, TimeInForce.IOC)

    def _cancel_open(self, order: _Order) -> None:
        if order.request.trigger_px is None:
            self._books[order.coin].cancel(order.oid)
        self._close(order, "canceled")

    def _close(self, order: _Order, status: OrderStatusName) -> None:
        order.status = status
        self._open.pop(order.oid, None)

    def _replay(self, request: OrderRequest) -> PlaceResult:
        """The first result for a repeated cloid, which must name the same order."""
        assert request.cloid is not None
        order = self._by_cloid[request.cloid]
        if order.request != request:
            raise InvalidOrderError(f"cloid {request.cloid} was already used for {order.request}")
        assert order.result is not None
        return order.result

    # ------------------------------------------------------------ units

    def _instrument(self, coin: str) -> Instrument:
        return self._instruments.of(coin)

    def _book(self, coin: str) -> OrderBook:
        self._instrument(coin)
        return self._books[coin]

    def _reducible(self, coin: str, is_buy: bool) -> int:
        """Lots an order on this side can close of the current position (0 if none)."""
        return self._portfolio.reducible_lots(self._portfolio.index(coin), is_buy)

    def _size(self, coin: str, lots: int) -> float:
        return float(self._instrument(coin).lots_to_size(lots, allow_zero=True))


def _ticks(instrument: Instrument, price: float, what: str) -> int:
    """Ticks of a price on the grid; off the grid it is refused, as Hyperliquid does."""
    try:
        return instrument.price_to_ticks(price)
    except InstrumentError as exc:
        raise InvalidOrderError(f"order has invalid {what}: {exc}") from exc


def _lots(instrument: Instrument, size: float) -> int:
    try:
        return instrument.size_to_lots(size)
    except InstrumentError as exc:
        raise InvalidOrderError(f"order has invalid size: {exc}") from exc
