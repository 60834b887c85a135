"""Seeded order-flow workloads shared by ``obelisk bench``, the asv suite and tests.

The standard L3 mix: 60% passive limit adds near the touch, 25% cancels of
live orders, 15% aggressive orders (half market sweeps, half limits two ticks
through), over a seeded book whose size the sweeps hold roughly steady.
Generation replays the flow on a shadow book, so every cancel names an order
that is live at that point of the stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from obelisk._core.book import EVENT_DTYPE, EventKind, OrderBook, OrderStatus, Side, TimeInForce


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
