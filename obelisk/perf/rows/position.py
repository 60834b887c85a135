"""Position rows of ``obelisk bench``: fills, marks and margin over many assets.

Fills go through the per-call paths (``Portfolio.apply_fill`` by coin and
``PositionBook.apply_fill`` by index), the batch path and the pure-Python
reference; a mark and full recompute (uPnL, margins, liquidation prices) of
every position takes turns with its limit loop (``RecomputeLimitLoop``: the same
numbers over columns, nothing checked or kept), whose speed bounds it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from obelisk._core.limit import RecomputeLimitLoop
from obelisk._core.position import PositionBook
from obelisk.instruments import Instrument
from obelisk.perf.timing import BenchRow, reference_repeat, rows_in_turns, timed_row
from obelisk.portfolio import Portfolio
from obelisk.testing.reference.position import ReferencePositionBook
from obelisk.testing.workload import FillWorkload, fill_stream

RECOMPUTES = 100          # recomputes per timed run, so one run is long enough to time
RECOMPUTE = "mark + full recompute, {assets:,} positions (positions/s)"
RECOMPUTE_LIMIT = "recompute limit loop (minimal C, columns), {assets:,} positions"
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

    def limit_loop() -> tuple[RecomputeLimitLoop, list[np.ndarray]]:
        loop = RecomputeLimitLoop(filled_book())
        return loop, [loop.padded_marks(m) for m in marks]

    def run_limit(state: tuple[RecomputeLimitLoop, list[np.ndarray]]) -> None:
        loop, padded = state
        for i in range(RECOMPUTES):
            loop.run(padded[i & 1])

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
        *rows_in_turns({RECOMPUTE.format(assets=assets): (filled_book, recompute),
                        RECOMPUTE_LIMIT.format(assets=assets): (limit_loop, run_limit)},
                       assets * RECOMPUTES, repeat),
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
    """The recompute time, and whether the paths agree with each other, with the reference
    and with the limit loop."""
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
        "recompute_microseconds": round(rows[-2].best_seconds / RECOMPUTES * 1e6, 1),
        "recompute_limit_microseconds": round(rows[-1].best_seconds / RECOMPUTES * 1e6, 1),
        "recompute_limit_agrees": recompute_limit_agrees(workload),
        "position_paths_agree": bool(np.array_equal(batch.positions.view(np.uint8),
                                                    one.positions.view(np.uint8))),
        "positions_match_reference": bool(matches and np.isclose(batch.balance, reference.balance,
                                                                  rtol=1e-12)),
    }


def recompute_limit_agrees(workload: FillWorkload) -> bool:
    """Whether the limit loop did the book's work: every derived number, bit for bit, and
    the totals the liquidation prices take, after the same marks."""
    book = workload.fresh_book()
    book.apply_fills(workload.fills)
    loop = RecomputeLimitLoop(book)
    marks = workload.marks * 1.001
    book.mark(marks)
    loop.run(loop.padded_marks(marks))
    ours = book.positions
    return all(np.array_equal(ours[name], column, equal_nan=True)
               for name, column in loop.derived.items()) \
        and loop.cross_maintenance_margin == book.cross_maintenance_margin \
        and book.balance + loop.cross_unrealized_pnl == book.cross_account_value
