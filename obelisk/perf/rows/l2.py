"""L2 rows of ``obelisk bench``: the standard depth stream through L2Book, its reference
and, when installed, the peers ``order-book`` and ``nautilus_trader``, plus whole
Hyperliquid ``l2Book`` frames from bytes to an updated book.

Every per-call path does the same work per delta: set one level, then read the
best bid and the best ask.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from typing import Any

import numpy as np

from obelisk._core.l2 import L2_TOP_DTYPE, L2Book
from obelisk._core.limit import L2LimitLoop
from obelisk.hyperliquid.l2frames import apply_l2_json, apply_l2_message
from obelisk.instruments import Instrument
from obelisk.perf.timing import BenchRow, reference_repeat, rows_in_turns, timed_row
from obelisk.testing.reference.l2 import ReferenceL2Book
from obelisk.testing.workload import SYNTHETIC_GRID, L2Workload

BUY = 0
L2_CALL = "L2Book.apply + best bid/ask, per call"
L2_BATCH = "L2Book.apply_batch, top after each delta"
L2_LIMIT = "L2 limit loop (minimal C, a size per tick), top after each delta"
FRAMES = 2_000
DYDX = Instrument("DYDX", 4, 1, 50)        # the frames' coin: 4 price decimals


def apply_and_read_top(book: L2Book | ReferenceL2Book, deltas: list[tuple[int, int, int]]
                       ) -> None:
    """Each delta as a feed handler sees it: set the level, then read the best bid and ask."""
    apply, best_bid, best_ask = book.apply, book.best_bid, book.best_ask
    for side, price, size in deltas:
        apply(side, price, size)
        best_bid()
        best_ask()


def l2_rows(workload: L2Workload, repeat: int, reference_deltas: int) -> list[BenchRow]:
    """Bench rows for the L2 stream and Hyperliquid frames, in this order: per call, the
    batch, the limit loop, the reference, the peers that are installed, the frames."""
    deltas = len(workload.deltas)
    rows_of = workload.deltas[["side", "price", "size"]].tolist()
    rows = [timed_row(L2_CALL, deltas, lambda b: apply_and_read_top(b, rows_of),
                      lambda: fresh_l2_book(workload), repeat),
            *l2_batch_rows(workload, repeat)]
    prefix = rows_of[:reference_deltas]

    def fresh_reference() -> ReferenceL2Book:
        reference = ReferenceL2Book()
        reference.snapshot(dict(zip(workload.bid_prices.tolist(), workload.bid_sizes.tolist(),
                                    strict=True)),
                           dict(zip(workload.ask_prices.tolist(), workload.ask_sizes.tolist(),
                                    strict=True)))
        return reference

    rows.append(timed_row("reference L2 (pure Python), per call", len(prefix),
                          lambda r: apply_and_read_top(r, prefix), fresh_reference,
                          reference_repeat(repeat)))
    for name, (fresh_peer, replay) in _peers(workload).items():
        rows.append(timed_row(f"peer {name}, per call", deltas, replay, fresh_peer, repeat))
    rows.extend(_frame_rows(repeat))
    return rows


def fresh_l2_book(workload: L2Workload) -> L2Book:
    """An L2Book holding the workload's snapshot, ready for its deltas."""
    book = L2Book(SYNTHETIC_GRID)
    workload.load(book)
    return book


def l2_limit_loop(workload: L2Workload) -> L2LimitLoop:
    """The limit loop set up for the workload: its snapshot in, its deltas ready."""
    return L2LimitLoop(workload.bid_prices, workload.bid_sizes, workload.ask_prices,
                       workload.ask_sizes, workload.deltas)


def l2_batch_rows(workload: L2Workload, repeat: int) -> list[BenchRow]:
    """``L2Book.apply_batch`` with the top after each delta, and the limit loop doing the
    same, in turns within each repeat so that a noisy neighbour slows both alike."""
    top = np.zeros(len(workload.deltas), dtype=L2_TOP_DTYPE)     # touched, as the limit's
    paths: dict[str, tuple[Callable[[], Any], Callable[[Any], object]]] = {
        L2_BATCH: (lambda: fresh_l2_book(workload),
                   lambda book: book.apply_batch(workload.deltas, top)),
        L2_LIMIT: (lambda: l2_limit_loop(workload), lambda loop: loop.run()),
    }
    return rows_in_turns(paths, len(workload.deltas), repeat)


def l2_limit_agrees(workload: L2Workload) -> bool:
    """Whether the limit loop did the book's work: the same top after every delta."""
    top = np.zeros(len(workload.deltas), dtype=L2_TOP_DTYPE)
    fresh_l2_book(workload).apply_batch(workload.deltas, top)
    loop = l2_limit_loop(workload)
    loop.run()
    return bool(np.array_equal(top, loop.tops))


def l2_frames(count: int) -> list[bytes]:
    """`count` 20x20 l2Book websocket frames of `DYDX` with increasing times, as sent."""
    rng = np.random.default_rng(7)
    frames = []
    for i in range(count):
        mid = 2_110_000 + int(rng.integers(-50, 50))
        bids = [_level(mid - 5 - 3 * k, rng) for k in range(20)]
        asks = [_level(mid + 5 + 3 * k, rng) for k in range(20)]
        data = {"coin": "DYDX", "time": 1_700_000_000_000 + i, "levels": [bids, asks]}
        frames.append(json.dumps({"channel": "l2Book", "data": data},
                                 separators=(",", ":")).encode())
    return frames


def _frame_rows(repeat: int) -> list[BenchRow]:
    """Whole l2Book frames, bytes to an updated book.

    The general JSON-library path comes first, for comparison; the last row
    is what `apply_l2_message` does.
    """
    frames = l2_frames(FRAMES)

    def run(book: L2Book) -> None:
        for frame in frames:
            apply_l2_message(book, frame)

    def run_json(book: L2Book) -> None:
        for frame in frames:
            apply_l2_json(book, frame)

    return [timed_row("l2Book frame through orjson (general path)", len(frames), run_json,
                      lambda: L2Book(DYDX), repeat),
            timed_row("Hyperliquid l2Book frame (20x20), bytes to book", len(frames), run,
                      lambda: L2Book(DYDX), repeat)]


def _level(ticks: int, rng: np.random.Generator) -> dict[str, object]:
    """One level as Hyperliquid sends it: decimal strings and an order count."""
    return {"px": f"{ticks / 10_000:.4f}", "sz": f"{rng.integers(1, 30_000) / 10:.1f}",
            "n": int(rng.integers(1, 9))}


def _peers(workload: L2Workload) -> dict[str, tuple[Callable[[], object], Callable]]:
    """Adapters for the peers that are installed: (fresh book, replay) pairs."""
    peers: dict[str, tuple[Callable[[], object], Callable]] = {}
    rows = workload.deltas[["side", "price", "size"]].tolist()
    if importlib.util.find_spec("order_book") is not None:
        peers["order-book"] = _order_book_peer(workload, rows)
    if importlib.util.find_spec("nautilus_trader") is not None:
        peers["nautilus_trader"] = _nautilus_peer(workload, rows)
    return peers


def _order_book_peer(workload: L2Workload, rows: list) -> tuple[Callable, Callable]:
    from order_book import OrderBook as PeerBook

    def fresh() -> object:
        book = PeerBook()
        for price, size in zip(workload.bid_prices.tolist(), workload.bid_sizes.tolist(),
                               strict=True):
            book.bids[price] = size
        for price, size in zip(workload.ask_prices.tolist(), workload.ask_sizes.tolist(),
                               strict=True):
            book.asks[price] = size
        return book

    def replay(book: object) -> None:
        sides = (book.bids, book.asks)  # type: ignore[attr-defined]
        bids, asks = sides
        for side, price, size in rows:
            levels = sides[side]
            if size:
                levels[price] = size
            elif price in levels:
                del levels[price]
            bids.index(0)
            asks.index(0)

    return fresh, replay


def _nautilus_peer(workload: L2Workload, rows: list) -> tuple[Callable, Callable]:
    from nautilus_trader.model.book import OrderBook as PeerBook
    from nautilus_trader.model.data import BookOrder
    from nautilus_trader.model.enums import BookType, OrderSide
    from nautilus_trader.model.identifiers import InstrumentId
    from nautilus_trader.model.objects import Price, Quantity

    instrument_id = InstrumentId.from_str("SYNTHETIC-PERP.OBELISK")
    sides = (OrderSide.BUY, OrderSide.SELL)

    def order(side: int, price: int, size: int) -> object:
        return BookOrder(sides[side], Price(price / 100, 2), Quantity(size / 10_000, 4), 0)

    # Orders are built before timing, as a feed handler would have them decoded already.
    orders = [(size == 0, order(side, price, size or 1)) for side, price, size in rows]

    def fresh() -> object:
        book = PeerBook(instrument_id, BookType.L2_MBP)
        for price, size in zip(workload.bid_prices.tolist(), workload.bid_sizes.tolist(),
                               strict=True):
            book.update(order(BUY, price, size), 0)
        for price, size in zip(workload.ask_prices.tolist(), workload.ask_sizes.tolist(),
                               strict=True):
            book.update(order(1 - BUY, price, size), 0)
        return book

    def replay(book: object) -> None:
        update, delete = book.update, book.delete  # type: ignore[attr-defined]
        best_bid, best_ask = book.best_bid_price, book.best_ask_price  # type: ignore[attr-defined]
        for is_delete, peer_order in orders:
            if is_delete:
                delete(peer_order, 0)
            else:
                update(peer_order, 0)
            best_bid()
            best_ask()

    return fresh, replay

