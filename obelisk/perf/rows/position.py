"""Position rows of ``obelisk bench``: fills, marks and margin over many assets.

Fills go through the per-call paths (``Portfolio.apply_fill`` by coin and
``PositionBook.apply_fill`` by index), the batch path and the pure-Python
reference; a full recompute (uPnL, margins, liquidation prices) of every
position is timed on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from obelisk._core.position import PositionBook
from obelisk.instruments import Instrument
from obelisk.perf.timing import BenchRow, reference_repeat, timed_row
from obelisk.portfolio import Portfolio
from obelisk.testing.reference.position import ReferencePositionBook
from obelisk.testing.workload import FillWorkload, fill_stream

RECOMPUTES = 100          # recomputes per timed run, so one run is long enough to time
UNIVERSE = 200            # about the number of perps Hyperliquid lists: one account's assets


def apply_each_fill(book: PositionBook | ReferencePositionBook,
                    fills: list[tuple[int, float, float, bool]]) -> None:
    """One ``apply_fill`` call per (asset, size, price, maker) fill."""
    apply = book.apply_fill
    for asset, size, price, maker in fills:
        apply(asset, size, price, maker)


def position_rows(fills: int, assets: int, seed: int, repeat: int,
                  reference_fills: int) -> list[BenchRow]:
    """Fills over one account's universe of assets, then over `assets` rows, then a recompute."""
    account = fill_stream(fills, UNIVERSE, seed)
    many = fill_stream(fills, assets, seed)
    rows_of = account.fills[["asset", "size", "price", "maker"]].tolist()

    coins = [Instrument(f"C{i}", i, 2, 50) for i in range(UNIVERSE)]
    named = [(f"C{asset}", size, price, bool(maker)) for asset, size, price, maker in rows_of]

    def fresh_portfolio() -> Portfolio:
        portfolio = Portfolio(coins, balance=1e9, margin_tiers={
            coin.name: tiers for coin, tiers in zip(coins, account.margin_tiers, strict=True)})
        for coin, isolated in zip(coins, account.isolated.tolist(), strict=True):
            portfolio.set_leverage(coin.name, 5, isolated=isolated)
        return portfolio

    def portfolio_per_call(portfolio: Portfolio) -> None:
        apply = portfolio.apply_fill
        for coin, size, price, maker in named:
            apply(coin, size, price, maker=maker)

    prefix = rows_of[:reference_fills]

    def filled_book() -> PositionBook:
        book = many.fresh_book()
        book.apply_fills(many.fills)
        return book

    marks = [many.marks, many.marks * 1.001]

    def recompute(book: PositionBook) -> None:
        mark = book.mark
        for i in range(RECOMPUTES):
            mark(marks[i & 1])

    return [
        timed_row(f"Portfolio.apply_fill (by coin), per call, {UNIVERSE} assets", fills,
                  portfolio_per_call, fresh_portfolio, repeat),
        timed_row("PositionBook.apply_fill (by index), per call", fills,
                  lambda b: apply_each_fill(b, rows_of), account.fresh_book, repeat),
        timed_row("reference positions (pure Python), per call", len(prefix),
                  lambda r: apply_each_fill(r, prefix), reference_book_for(account),
                  reference_repeat(repeat)),
        timed_row(f"PositionBook.apply_fills, one batch, {UNIVERSE} assets", fills,
                  lambda b: b.apply_fills(account.fills), account.fresh_book, repeat),
        timed_row(f"PositionBook.apply_fills, one batch, {assets:,} assets", fills,
                  lambda b: b.apply_fills(many.fills), many.fresh_book, repeat),
        timed_row(f"mark + full recompute, {assets:,} positions (positions/s)",
                  assets * RECOMPUTES, recompute, filled_book, repeat),
    ]


def reference_book_for(workload: FillWorkload) -> Callable[[], ReferencePositionBook]:
    """A maker of fresh reference books set up like ``workload.fresh_book()``."""
    def fresh() -> ReferencePositionBook:
        reference = ReferencePositionBook([list(t) for t in workload.margin_tiers], balance=1e9)
        for position, isolated in zip(reference.positions, workload.isolated.tolist(),
                                      strict=True):
            position.leverage, position.isolated = 5.0, isolated
        return reference
    return fresh


def position_facts(rows: list[BenchRow]) -> dict[str, Any]:
    """The recompute time, and whether the paths agree with each other and with the reference."""
    workload = fill_stream(20_000, 1_000, 7)
    batch, one = workload.fresh_book(), workload.fresh_book()
    batch.apply_fills(workload.fills)
    fills = workload.fills[["asset", "size", "price", "maker"]].tolist()
    apply_each_fill(one, fills)
    reference = reference_book_for(workload)()
    apply_each_fill(reference, fills)
    ours = batch.positions
    matches = all(
        np.isclose(ours["size"][i], p.size, rtol=1e-9, atol=1e-9)
        and np.isclose(ours["entry_px"][i], p.entry_px, rtol=1e-9, atol=1e-9)
        and np.isclose(ours["realized_pnl"][i], p.realized_pnl, rtol=1e-9, atol=1e-9)
        for i, p in enumerate(reference.positions))
    return {
        "recompute_microseconds": round(rows[-1].best_seconds / RECOMPUTES * 1e6, 1),
        "position_paths_agree": bool(np.array_equal(batch.positions.view(np.uint8),
                                                    one.positions.view(np.uint8))),
        "positions_match_reference": bool(matches and np.isclose(batch.balance, reference.balance,
                                                                  rtol=1e-12)),
    }
