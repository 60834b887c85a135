"""Seeded order-flow workloads shared by ``obelisk bench``, the asv suite and tests.

The standard L3 mix: 60% passive limit adds near the touch, 25% cancels of
live orders, 15% aggressive orders (half market sweeps, half limits two ticks
through), over a seeded book whose size the sweeps hold roughly steady.
Generation replays the flow on a shadow book, so every cancel names an order
that is live at that point of the stream.

The deep mix (issue 14) starts from an empty book, as a backtest or a replay
does, and builds it to tens of thousands of orders over about 125 levels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from obelisk._core.book import EVENT_DTYPE, EventKind, OrderBook, OrderStatus, Side, TimeInForce
from obelisk._core.l2 import L2_DELTA_DTYPE, CrossedPolicy, L2Book
from obelisk._core.position import POSITION_FILL_DTYPE, PositionBook


@dataclass(frozen=True)
class Workload:
    """A seed book and the event stream to run over it (both EVENT_DTYPE)."""

    seed_events: np.ndarray
    events: np.ndarray

    def with_asset(self, asset: int) -> Workload:
        """The same flow addressed to another asset id."""
        seed_events, events = self.seed_events.copy(), self.events.copy()
        seed_events["asset"] = asset
        events["asset"] = asset
        return Workload(seed_events, events)


def standard_mix(events: int = 200_000, seed_orders: int = 5_000, seed: int = 42,
                 mid: int = 1_000_000) -> Workload:
    """Build the standard mix deterministically from `seed`."""
    rng = np.random.default_rng(seed)
    shadow = OrderBook(max(seed_orders * 2, 1024))
    seed_batch = _seed_book(rng, seed_orders, mid)
    shadow.process(seed_batch)
    live = [int(oid) for oid in seed_batch["oid"] if int(oid) in shadow]
    next_oid = int(seed_batch["oid"].max(initial=0)) + 1

    draws = rng.random(events).tolist()
    sides = rng.integers(0, 2, events).tolist()
    offsets = rng.geometric(0.25, events).tolist()
    sizes = rng.integers(1, 101, events).tolist()
    sweeps = rng.integers(1, 101, events).tolist()
    picks = rng.random(events).tolist()
    rows: list[tuple[int, int, int, int]] = []  # kind, oid, price, qty
    for i in range(events):
        side = sides[i]
        bid, _, ask, _ = shadow.bbo()
        draw = draws[i]
        if draw < 0.25:
            oid = _pop_live(live, picks[i], shadow)
            if oid is not None:
                shadow.cancel(oid)
                rows.append((EventKind.CANCEL, oid, 0, 0))
                continue
            draw = 0.5  # nothing left to cancel: add liquidity instead
        oid = next_oid
        next_oid += 1
        if draw < 0.925 and draw >= 0.85:
            # Sweeps grow while the book is above its seeded size, holding it near there.
            qty = sweeps[i] * 5 if len(shadow) > seed_orders else sweeps[i]
            shadow.market(oid, side, qty)
            rows.append((EventKind.MARKET, oid, 0, qty))
            continue
        if draw < 0.85:
            # Passive: join or improve near the touch without crossing it.
            if side == Side.BUY:
                price = (ask if ask is not None else mid + 1) - offsets[i]
            else:
                price = (bid if bid is not None else mid - 1) + offsets[i]
        else:
            # Aggressive limit, two ticks through the far touch.
            if side == Side.BUY:
                price = (ask if ask is not None else mid) + 2
            else:
                price = (bid if bid is not None else mid) - 2
        if shadow.add(oid, side, price, sizes[i]) == OrderStatus.RESTED:
            live.append(oid)
        rows.append((EventKind.LIMIT, oid, price, sizes[i]))
    out = np.zeros(events, dtype=EVENT_DTYPE)
    if rows:
        out["kind"], out["oid"], out["price"], out["qty"] = zip(*rows, strict=True)
    out["side"] = sides
    out["tif"] = TimeInForce.GTC
    return Workload(seed_batch, out)


DEEP_CANCELS = 0.25          # shares of the deep mix's events; the rest are limit adds
DEEP_SWEEPS = 0.07
DEEP_MARKETABLE = 0.04       # share of the adds priced a tick or two through the far touch
DEEP_AT_TOUCH = 1 / 3        # share of the passive adds at the touch (improving a wide spread)
DEEP_SWEEP_GROWTH = 10       # sweep size multiple while the book holds more than `resting`


def deep_mix(events: int = 200_000, levels: int = 125, resting: int = 30_000, seed: int = 42,
             mid: int = 1_000_000) -> Workload:
    """A deep book built from empty, deterministically from `seed` (no seed book).

    68 % limit adds (4 % of them marketable, one or two ticks through the far
    touch; a third of the rest at the touch, the others 1 to ``levels // 2``
    ticks behind the far touch, so about `levels` levels hold the book), 25 %
    cancels of live orders, 7 % market sweeps. Sweeps grow tenfold while the
    book holds more than `resting` orders, so once built it stays near that
    many: a few hundred orders per level. Every order has owner 0 (no
    self-trade prevention) and ids are dense from 1.
    """
    rng = np.random.default_rng(seed)
    shadow = OrderBook()
    live: list[int] = []
    next_oid = 1
    half = max(1, levels // 2)
    draws = rng.random(events).tolist()
    sides = rng.integers(0, 2, events).tolist()
    behind = rng.integers(1, half + 1, events).tolist()
    at_touch = (rng.random(events) < DEEP_AT_TOUCH).tolist()
    through = rng.integers(1, 3, events).tolist()
    sizes = rng.integers(1, 101, events).tolist()
    sweeps = rng.integers(1, 101, events).tolist()
    picks = rng.random(events).tolist()
    passive_below = DEEP_CANCELS + (1 - DEEP_CANCELS - DEEP_SWEEPS) * (1 - DEEP_MARKETABLE)
    rows: list[tuple[int, int, int, int]] = []  # kind, oid, price, qty
    for i in range(events):
        side = sides[i]
        draw = draws[i]
        if draw < DEEP_CANCELS:
            oid = _pop_live(live, picks[i], shadow)
            if oid is not None:
                shadow.cancel(oid)
                rows.append((EventKind.CANCEL, oid, 0, 0))
                continue
            draw = DEEP_CANCELS     # nothing left to cancel: add liquidity instead
        oid = next_oid
        next_oid += 1
        if draw >= 1 - DEEP_SWEEPS:
            qty = sweeps[i] * (DEEP_SWEEP_GROWTH if len(shadow) > resting else 1)
            shadow.market(oid, side, qty)
            rows.append((EventKind.MARKET, oid, 0, qty))
            continue
        bid, _, ask, _ = shadow.bbo()
        if side == Side.BUY:
            far = ask if ask is not None else mid + 1
        else:
            far = bid if bid is not None else mid - 1
        step = 1 if side == Side.BUY else -1
        if draw < passive_below:
            price = far - step * (1 if at_touch[i] else behind[i])
        else:
            price = far + step * through[i]
        if shadow.add(oid, side, price, sizes[i]) == OrderStatus.RESTED:
            live.append(oid)
        rows.append((EventKind.LIMIT, oid, price, sizes[i]))
    out = np.zeros(events, dtype=EVENT_DTYPE)
    if rows:
        out["kind"], out["oid"], out["price"], out["qty"] = zip(*rows, strict=True)
    out["side"] = sides
    out["tif"] = TimeInForce.GTC
    return Workload(np.zeros(0, dtype=EVENT_DTYPE), out)


FIBONACCI = 0x9E3779B97F4A7C15     # the id index's hash until ids abuse it


def order_ids(kind: str, count: int, seed: int = 42) -> list[int]:
    """`count` distinct order ids, for the id index: ``counter`` (1, 2, 3, ... as
    strategies number orders), ``random`` (below 2**62) or ``chosen`` (an attacker's,
    all with one Fibonacci hash value, so unkeyed they would share one home)."""
    if kind == "counter":
        return list(range(1, count + 1))
    if kind == "random":
        return np.random.default_rng(seed).choice(2**62, count, replace=False).tolist()
    if kind != "chosen":
        raise ValueError(f"kind must be counter, random or chosen, got {kind!r}")
    inverse = pow(FIBONACCI, -1, 2**64)
    ids: list[int] = []
    low = 0
    while len(ids) < count:
        oid = (((0x5EED << 32) | low) * inverse) % 2**64    # (oid * FIBONACCI) >> 32 == 0x5EED
        low += 1
        if 0 < oid < 2**63:
            ids.append(oid)
    return ids


def _pop_live(live: list[int], pick: float, shadow: OrderBook) -> int | None:
    """Remove and return a random id from `live` that still rests, or None."""
    while live:
        j = int(pick * len(live))
        candidate = live[j]
        live[j] = live[-1]
        live.pop()
        if candidate in shadow:
            return candidate
    return None


def _seed_book(rng: np.random.Generator, orders: int, mid: int) -> np.ndarray:
    """Resting orders on both sides, 1-250 ticks from `mid`, denser near the touch."""
    seed = np.zeros(orders, dtype=EVENT_DTYPE)
    sides = rng.integers(0, 2, orders)
    distance = np.minimum(rng.geometric(0.02, orders), 250)
    seed["kind"] = EventKind.LIMIT
    seed["oid"] = np.arange(1, orders + 1)
    seed["side"] = sides
    seed["price"] = np.where(sides == Side.BUY, mid - distance, mid + distance)
    seed["qty"] = rng.integers(1, 101, orders)
    seed["tif"] = TimeInForce.GTC
    return seed


def interleave(workloads: list[Workload]) -> Workload:
    """Merge per-asset workloads into one batch, alternating events, each asset's order kept."""
    def merge(arrays: list[np.ndarray]) -> np.ndarray:
        ranks = np.concatenate([np.arange(len(a)) * len(arrays) + k for k, a in enumerate(arrays)])
        stacked = np.empty(len(ranks), dtype=EVENT_DTYPE)
        start = 0
        for array in arrays:
            stacked[start:start + len(array)] = array
            start += len(array)
        return np.take(stacked, np.argsort(ranks, kind="stable"))

    return Workload(merge([w.seed_events for w in workloads]), merge([w.events for w in workloads]))


@dataclass(frozen=True)
class L2Workload:
    """A depth snapshot (int64 arrays, best first) and the level deltas that follow it."""

    bid_prices: np.ndarray
    bid_sizes: np.ndarray
    ask_prices: np.ndarray
    ask_sizes: np.ndarray
    deltas: np.ndarray

    def load(self, book: L2Book) -> None:
        """Put the snapshot into `book`."""
        book.apply_snapshot(self.bid_prices, self.bid_sizes, self.ask_prices, self.ask_sizes)


def l2_stream(deltas: int = 200_000, levels: int = 500, seed: int = 42,
              mid: int = 1_000_000) -> L2Workload:
    """The standard L2 stream: 70% size updates near the touch, 15% deletes, 15% new levels.

    Deltas are sequenced and never cross the book; they are generated against
    a shadow book so updates and deletes name levels that exist.
    """
    rng = np.random.default_rng(seed)
    per_side = max(1, levels // 2)
    bid_prices = mid - 1 - np.arange(per_side, dtype=np.int64)
    ask_prices = mid + 1 + np.arange(per_side, dtype=np.int64)
    bid_sizes = rng.integers(1, 1_000, per_side)
    ask_sizes = rng.integers(1, 1_000, per_side)
    shadow = L2Book(SYNTHETIC_GRID, crossed_policy=CrossedPolicy.RAISE)
    shadow.apply_snapshot(bid_prices, bid_sizes, ask_prices, ask_sizes)
    draws = rng.random(deltas).tolist()
    sides = rng.integers(0, 2, deltas).tolist()
    depths = (rng.geometric(0.3, deltas) - 1).tolist()
    sizes = rng.integers(1, 1_000, deltas).tolist()
    rows: list[tuple[int, int, int]] = []  # side, price, size
    for i in range(deltas):
        side = sides[i]
        count = shadow.bid_levels if side == Side.BUY else shadow.ask_levels
        draw = draws[i]
        if draw < 0.85 and count:
            prices, _ = shadow.depth(side, depths[i] + 1)
            price = int(prices[-1])
            size = 0 if draw >= 0.70 and count > 1 else sizes[i]
        else:
            price = _free_price_near_touch(shadow, side, depths[i], mid)
            size = sizes[i]
        shadow.apply(side, price, size)
        rows.append((side, price, size))
    out = np.zeros(deltas, dtype=L2_DELTA_DTYPE)
    if rows:
        out["side"], out["price"], out["size"] = zip(*rows, strict=True)
    out["seq"] = np.arange(1, deltas + 1)
    return L2Workload(bid_prices, bid_sizes.astype(np.int64), ask_prices,
                      ask_sizes.astype(np.int64), out)


def _free_price_near_touch(book: L2Book, side: int, depth: int, mid: int) -> int:
    """A price with no level yet: inside the spread when there is room, else the first
    gap `depth` or more ticks behind the touch; never crossing the other side."""
    bid, ask = book.best_bid(), book.best_ask()
    step = -1 if side == Side.BUY else 1
    best = bid if side == Side.BUY else ask
    other = ask if side == Side.BUY else bid
    if best is None:
        return (other - step * -1) if other is not None else mid + step
    inside = best - step
    if other is None or (inside < other if side == Side.BUY else inside > other):
        return inside  # the spread is wider than a tick: tighten it, as makers do
    price = best + step * max(depth, 1)
    while book.size_at(side, price):
        price += step
    return price


@dataclass(frozen=True)
class TickGrid:
    """What an L2Book needs of an instrument, for streams written in raw ticks and lots."""

    name: str = "SYNTHETIC"
    price_decimals: int = 2
    sz_decimals: int = 4


SYNTHETIC_GRID = TickGrid()


# A spread of Hyperliquid-like margin tables: BTC-like, ETH-like, a tiered alt, a flat alt.
STANDARD_MARGIN_TABLES: tuple[tuple[tuple[float, int], ...], ...] = (
    ((0.0, 40), (150e6, 20)),
    ((0.0, 25), (100e6, 15)),
    ((0.0, 10), (3e6, 5)),
    ((0.0, 20),),
)


@dataclass(frozen=True)
class FillWorkload:
    """Fills over many assets for a PositionBook: tiers per asset, modes, fills, then marks."""

    margin_tiers: list[tuple[tuple[float, int], ...]]
    isolated: np.ndarray
    fills: np.ndarray
    marks: np.ndarray

    def fresh_book(self, balance: float = 1e9) -> PositionBook:
        """A book with every asset's mode and a leverage of 5 set, and no position yet."""
        book = PositionBook(self.margin_tiers, balance=balance)
        for asset, isolated in enumerate(self.isolated.tolist()):
            book.set_leverage(asset, 5, isolated=isolated)
        return book


def fill_stream(fills: int = 200_000, assets: int = 10_000, seed: int = 42) -> FillWorkload:
    """Random fills (opens, adds, partial closes and flips; a third as maker) over `assets`.

    A quarter of the assets are isolated; prices wander within +-10 % of 100.
    """
    rng = np.random.default_rng(seed)
    out = np.zeros(fills, dtype=POSITION_FILL_DTYPE)
    out["asset"] = rng.integers(0, assets, fills)
    out["size"] = rng.choice([-3.0, -1.0, -0.5, 0.25, 1.0, 2.0], fills)
    out["price"] = np.round(rng.uniform(90.0, 110.0, fills), 2)
    out["maker"] = rng.random(fills) < 1 / 3
    tables = [STANDARD_MARGIN_TABLES[i % len(STANDARD_MARGIN_TABLES)] for i in range(assets)]
    return FillWorkload(tables, rng.random(assets) < 0.25, out,
                        np.round(rng.uniform(90.0, 110.0, assets), 2))
