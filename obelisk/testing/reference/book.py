"""Pure-Python twin of :class:`obelisk.OrderBook`, written to be obviously right.

It takes the same EVENT_DTYPE batches and returns the same result, fill and
order-event records, so tests can compare the compiled book with it record for
record, and ``obelisk bench`` can measure what compiling buys. Speed is not a
goal here; clarity is.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from obelisk._core.book import (
    EVENT_DTYPE,
    FILL_DTYPE,
    MAX_PRICE_TICKS,
    MAX_QTY_LOTS,
    ORDER_DTYPE,
    ORDER_EVENT_DTYPE,
    RESULT_DTYPE,
    BatchResult,
    EventKind,
    OrderEventKind,
    OrderStatus,
    Reason,
    SelfTradePrevention,
    Side,
    TimeInForce,
)

INT64_MAX = 2**63 - 1


@dataclass(eq=False)
class _Order:
    oid: int
    side: int
    price: int
    qty: int
    owner: int
    tif: int


@dataclass
class _Result:
    filled_qty: int = 0
    resting_qty: int = 0
    fill_count: int = 0
    status: int = OrderStatus.REJECTED
    reason: int = Reason.NONE


class ReferenceBook:
    """A price-time priority book: a dict of FIFO lists per side plus sorted price lists."""

    def __init__(self, capacity: int = 1024, *, growable: bool = True,
                 stp: int = SelfTradePrevention.CANCEL_RESTING) -> None:
        self.capacity = capacity
        self.growable = growable
        self.stp = stp
        self.queues: dict[int, dict[int, list[_Order]]] = {Side.BUY: {}, Side.SELL: {}}
        self.prices: dict[int, list[int]] = {Side.BUY: [], Side.SELL: []}
        self.by_id: dict[int, _Order] = {}
        self.seq = 0
        self.fills: list[tuple] = []
        self.order_events: list[tuple] = []

    # ------------------------------------------------------------ queries

    def best_price(self, side: int) -> int | None:
        prices = self.prices[side]
        if not prices:
            return None
        return prices[-1] if side == Side.BUY else prices[0]

    def best_bid(self) -> int | None:
        return self.best_price(Side.BUY)

    def best_ask(self) -> int | None:
        return self.best_price(Side.SELL)

    def size_at(self, side: int, price: int) -> int:
        return sum(order.qty for order in self.queues[side].get(price, []))

    def bbo(self) -> tuple[int | None, int, int | None, int]:
        bid, ask = self.best_bid(), self.best_ask()
        return (bid, 0 if bid is None else self.size_at(Side.BUY, bid),
                ask, 0 if ask is None else self.size_at(Side.SELL, ask))

    def __len__(self) -> int:
        return len(self.by_id)

    def orders(self) -> np.ndarray:
        """Every resting order, bids best first then asks, FIFO within a level."""
        rows = []
        for side in (Side.BUY, Side.SELL):
            prices = self.prices[side]
            for price in (reversed(prices) if side == Side.BUY else prices):
                ahead = 0
                for order in self.queues[side][price]:
                    rows.append((order.oid, order.price, order.qty, order.owner, order.side,
                                 order.tif, ahead))
                    ahead += order.qty
        return np.array(rows, dtype=ORDER_DTYPE)

    # ------------------------------------------------------------ batches

    def process(self, events: np.ndarray) -> BatchResult:
        if events.dtype != EVENT_DTYPE:
            raise TypeError(f"events must have dtype obelisk.EVENT_DTYPE, got {events.dtype}")
        self.fills = []
        self.order_events = []
        results = []
        for index, event in enumerate(events.tolist()):
            oid, price, qty, owner, _asset, kind, side, tif = event
            result = self.apply(index, kind, oid, side, price, qty, tif, owner)
            results.append((result.filled_qty, result.resting_qty, result.fill_count,
                            result.status, result.reason))
        return BatchResult(np.array(results, dtype=RESULT_DTYPE),
                           np.array(self.fills, dtype=FILL_DTYPE),
                           np.array(self.order_events, dtype=ORDER_EVENT_DTYPE))

    def apply(self, index: int, kind: int, oid: int, side: int, price: int, qty: int,
              tif: int, owner: int) -> _Result:
        """Apply one event, appending to the fill and order-event tapes."""
        result = _Result()
        event = (oid, side, price, qty, owner)
        if kind in (EventKind.LIMIT, EventKind.MARKET):
            self._place(index, kind, event, tif, result)
        elif kind == EventKind.CANCEL:
            self._cancel(index, event, result)
        elif kind == EventKind.MODIFY:
            self._modify(index, event, result)
        else:
            self._reject(index, event, result, Reason.INVALID_KIND)
        return result

    # ------------------------------------------------------------- events

    def _place(self, index, kind, event, tif, result) -> None:
        oid, side, price, qty, owner = event
        if side not in (Side.BUY, Side.SELL):
            return self._reject(index, event, result, Reason.INVALID_SIDE)
        if kind == EventKind.LIMIT:
            if tif not in (TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.ALO):
                return self._reject(index, event, result, Reason.INVALID_TIF)
            if not 0 < price <= MAX_PRICE_TICKS:
                return self._reject(index, event, result, Reason.INVALID_PRICE)
            limit = price
        else:
            if not 0 <= price <= MAX_PRICE_TICKS:
                return self._reject(index, event, result, Reason.INVALID_PRICE)
            tif = TimeInForce.IOC
            limit = price if price > 0 else None
        if not 0 < qty <= MAX_QTY_LOTS:
            return self._reject(index, event, result, Reason.INVALID_QTY)
        if oid in self.by_id:
            return self._reject(index, event, result, Reason.DUPLICATE_OID)
        if tif == TimeInForce.ALO and self._marketable(side, limit):
            return self._reject(index, event, result, Reason.ALO_WOULD_CROSS)
        if tif == TimeInForce.FOK and self._fillable(side, limit, owner) < qty:
            return self._reject(index, event, result, Reason.FOK_UNFILLABLE)
        pool_full = not self.growable and len(self.by_id) >= self.capacity
        if tif in (TimeInForce.GTC, TimeInForce.ALO) and pool_full \
                and self._fillable(side, limit, owner) < qty:
            return self._reject(index, event, result, Reason.POOL_FULL)
        self._execute(index, oid, side, price, qty, tif, owner, limit, result)

    def _owns(self, event, oid) -> bool:
        """A cancel or modify that names an owner acts only on that owner's orders."""
        owner = event[-1]
        return oid in self.by_id and (owner == 0 or owner == self.by_id[oid].owner)

    def _cancel(self, index, event, result) -> None:
        oid = event[0]
        if not self._owns(event, oid):
            return self._reject(index, event, result, Reason.UNKNOWN_OID)
        order = self.by_id[oid]
        self._order_event(index, OrderEventKind.CANCELLED, Reason.USER_CANCEL, order.oid,
                          order.price, order.qty, order.owner, order.side)
        result.status = OrderStatus.CANCELLED
        result.reason = Reason.USER_CANCEL
        self._remove(order)

    def _modify(self, index, event, result) -> None:
        oid, _side, price, qty, _owner = event
        if not self._owns(event, oid):
            return self._reject(index, event, result, Reason.UNKNOWN_OID)
        if not 0 < price <= MAX_PRICE_TICKS:
            return self._reject(index, event, result, Reason.INVALID_PRICE)
        if not 0 <= qty <= MAX_QTY_LOTS:
            return self._reject(index, event, result, Reason.INVALID_QTY)
        order = self.by_id[oid]
        if qty == 0:
            return self._cancel(index, event, result)
        if price == order.price and qty <= order.qty:
            order.qty = qty
            self._order_event(index, OrderEventKind.MODIFIED, Reason.NONE, order.oid,
                              order.price, order.qty, order.owner, order.side)
            result.status = OrderStatus.MODIFIED
            result.resting_qty = qty
            return None
        if order.tif == TimeInForce.ALO and self._marketable(order.side, price):
            return self._reject(index, event, result, Reason.ALO_WOULD_CROSS)
        others = sum(o.qty for o in self.queues[order.side].get(price, []) if o is not order)
        if others + qty > INT64_MAX:
            return self._reject(index, event, result, Reason.LEVEL_OVERFLOW)
        self._remove(order)
        self._execute(index, oid, order.side, price, qty, order.tif, order.owner, price, result)

    # ----------------------------------------------------------- matching

    def _marketable(self, side: int, limit: int | None) -> bool:
        """Whether the best opposite price is acceptable to a taker with this limit."""
        best = self.best_price(1 - side)
        if best is None:
            return False
        if limit is None:
            return True
        return best <= limit if side == Side.BUY else best >= limit

    def _opposite_queues_in_priority(self, side: int, limit: int | None):
        opposite = 1 - side
        prices = self.prices[opposite]
        for price in (list(prices) if side == Side.BUY else list(reversed(prices))):
            if limit is not None and (price > limit if side == Side.BUY else price < limit):
                return
            yield self.queues[opposite][price]

    def _self_trade(self, owner: int, maker: _Order) -> bool:
        return owner != 0 and maker.owner == owner and self.stp != SelfTradePrevention.ALLOW

    def _fillable(self, side: int, limit: int | None, owner: int) -> int:
        """Quantity a taker could fill before self-trade prevention stops it."""
        total = 0
        for queue in self._opposite_queues_in_priority(side, limit):
            for maker in queue:
                if self._self_trade(owner, maker):
                    if self.stp != SelfTradePrevention.CANCEL_RESTING:
                        return total
                else:
                    total += maker.qty
        return total

    def _execute(self, index, oid, side, price, qty, tif, owner, limit, result) -> None:
        remaining = qty
        stopped = False
        for queue in self._opposite_queues_in_priority(side, limit):
            for maker in list(queue):
                if self._self_trade(owner, maker):
                    if self.stp != SelfTradePrevention.CANCEL_INCOMING:
                        self._order_event(index, OrderEventKind.CANCELLED, Reason.SELF_TRADE,
                                          maker.oid, maker.price, maker.qty, maker.owner,
                                          maker.side)
                        self._remove(maker)
                    if self.stp != SelfTradePrevention.CANCEL_RESTING:
                        stopped = True
                        break
                    continue
                traded = min(remaining, maker.qty)
                remaining -= traded
                maker.qty -= traded
                self.seq += 1
                self.fills.append((self.seq, oid, maker.oid, maker.price, traded, owner,
                                   maker.owner, index, side, maker.qty == 0))
                result.fill_count += 1
                if maker.qty == 0:
                    self._remove(maker)
                if remaining == 0:
                    break
            if stopped or remaining == 0:
                break
        result.filled_qty = qty - remaining
        if remaining == 0:
            result.status = OrderStatus.FILLED
            return
        if stopped:
            reason = Reason.SELF_TRADE
        elif tif in (TimeInForce.GTC, TimeInForce.ALO):
            if self.size_at(side, price) + remaining > INT64_MAX:
                reason = Reason.LEVEL_OVERFLOW
            else:
                self._rest(_Order(oid, side, price, remaining, owner, tif))
                self._order_event(index, OrderEventKind.RESTED, Reason.NONE, oid, price,
                                  remaining, owner, side)
                result.status = OrderStatus.RESTED
                result.resting_qty = remaining
                return
        else:
            reason = Reason.IOC_REMAINDER
        self._order_event(index, OrderEventKind.CANCELLED, reason, oid, price, remaining, owner,
                          side)
        result.status = OrderStatus.CANCELLED
        result.reason = reason

    # ------------------------------------------------------------ plumbing

    def _rest(self, order: _Order) -> None:
        queues = self.queues[order.side]
        if order.price not in queues:
            queues[order.price] = []
            bisect.insort(self.prices[order.side], order.price)
        queues[order.price].append(order)
        self.by_id[order.oid] = order

    def _remove(self, order: _Order) -> None:
        queue = self.queues[order.side][order.price]
        queue.remove(order)
        if not queue:
            del self.queues[order.side][order.price]
            self.prices[order.side].remove(order.price)
        del self.by_id[order.oid]

    def _reject(self, index, event, result, reason) -> None:
        oid, side, price, qty, owner = event
        self._order_event(index, OrderEventKind.REJECTED, reason, oid, price, qty, owner, side)
        result.status = OrderStatus.REJECTED
        result.reason = reason

    def _order_event(self, index, kind, reason, oid, price, qty, owner, side) -> None:
        self.seq += 1
        self.order_events.append((self.seq, oid, price, qty, owner, index, kind, reason, side))
