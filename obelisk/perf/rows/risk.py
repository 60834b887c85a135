"""Risk rows of ``obelisk bench``: pre-trade checks one at a time and in a batch.

The account holds positions in a 200-asset universe and every limit is on,
so each allowed order runs the whole list of checks.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from obelisk.instruments import Instrument
from obelisk.perf.timing import BenchRow, timed_row
from obelisk.portfolio import Portfolio
from obelisk.risk import RISK_ORDER_DTYPE, AssetLimits, RiskLimits, RiskManager
from obelisk.testing.workload import fill_stream

ASSETS = 200


def risk_workload(orders: int, seed: int
                  ) -> tuple[Callable[[], RiskManager], list[tuple], np.ndarray]:
    """A maker of set-up risk managers, and the same orders as tuples and as an array."""
    workload = fill_stream(20_000, ASSETS, seed)
    coins = [Instrument(f"C{i}", i, 2, 50) for i in range(ASSETS)]
    rng = np.random.default_rng(seed)
    batch = np.zeros(orders, dtype=RISK_ORDER_DTYPE)
    batch["asset"] = rng.integers(0, ASSETS, orders)
    batch["side"] = rng.choice([-1, 1], orders)
    batch["size"] = rng.choice([0.01, 0.1, 0.5], orders)
    batch["price"] = workload.marks[batch["asset"]] * rng.uniform(0.995, 1.005, orders)
    named = [(f"C{a}", s, q, p) for a, s, q, p in
             batch[["asset", "side", "size", "price"]].tolist()]

    def fresh() -> RiskManager:
        portfolio = Portfolio(coins, balance=1e9)
        portfolio.book.apply_fills(workload.fills)
        limits = RiskLimits(
            default=AssetLimits(max_order_size=1e6, max_order_notional=1e9,
                                max_position_size=1e6, max_position_notional=1e9,
                                price_band=0.05),
            max_total_notional=1e12, max_leverage=50, min_liquidation_distance=0.01,
            daily_loss_limit=1e9, max_drawdown=0.5, max_open_orders=1_000_000,
            max_data_age_s=3_600)
        risk = RiskManager(portfolio, limits)
        for coin, mark in zip(coins, workload.marks.tolist(), strict=True):
            risk.update_market(coin.name, mark)
        return risk

    return fresh, named, batch


def check_each(risk: RiskManager, orders: list[tuple]) -> None:
    """One ``check`` call per (coin, side, size, price) order."""
    check = risk.check
    for coin, side, size, price in orders:
        check(coin, side, size, price)


def risk_rows(orders: int, seed: int, repeat: int) -> list[BenchRow]:
    fresh, named, batch = risk_workload(orders, seed)
    return [
        timed_row("RiskManager.check, per call, every limit on", orders,
                  lambda risk: check_each(risk, named), fresh, repeat),
        timed_row("RiskManager.check_batch, every limit on", orders,
                  lambda risk: risk.check_batch(batch), fresh, repeat),
    ]
