"""Engine rows of ``obelisk bench``: what one batch costs through the whole pipeline.

A TradingEngine over the simulated venue (four assets, no trace store) takes
batches of one order and of 100, half buys and half sells, each taking one lot
from the other participants' resting quotes: every order trades (risk,
matching, the account's fills, the portfolio, the bookkeeping). With one order
a batch, a row's time per batch is the engine's fixed cost.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from obelisk._core.book import EVENT_DTYPE, EventKind, Side
from obelisk.execution.engine import TradingEngine
from obelisk.execution.venue import LIQUIDITY
from obelisk.instruments import Instrument
from obelisk.perf.timing import BenchRow, timed_row
from obelisk.portfolio import Portfolio
from obelisk.risk import RiskManager
from obelisk.sim.batch import SimBatchVenue

BATCHES = 2_000
COINS = [Instrument(f"C{i}", i, 2, 50) for i in range(4)]
PRICE = 100_000                # ticks: 10.0 at these coins' 0.0001 tick
Batch = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def engine_row_name(size: int) -> str:
    return f"TradingEngine, batches of {size} (submit_batch + flush; batches/s)"


def engine_rows(repeat: int) -> list[BenchRow]:
    """Batches of 1 and of 100 orders through a fresh engine, `BATCHES` of each."""
    return [timed_row(engine_row_name(size), BATCHES, run_batches, partial(prepare_batches, size),
                      repeat)
            for size in (1, 100)]


def prepare_batches(size: int) -> tuple[TradingEngine, list[Batch]]:
    """A fresh engine over the simulated venue and `BATCHES` batches of `size` orders."""
    portfolio = Portfolio(COINS, balance=1e12)
    risk = RiskManager(portfolio)
    for coin in COINS:
        risk.update_market(coin.name, PRICE * 1e-4)
    venue = SimBatchVenue(COINS)
    quotes = np.zeros(2 * len(COINS), dtype=EVENT_DTYPE)   # an ask at PRICE, a bid a tick below
    quotes["oid"] = (1 << 40) + np.arange(len(quotes))     # far from the engine's ids
    quotes["asset"] = np.repeat([coin.asset for coin in COINS], 2)
    quotes["side"] = np.tile([Side.SELL, Side.BUY], len(COINS))
    quotes["price"] = np.tile([PRICE, PRICE - 1], len(COINS))
    quotes["qty"], quotes["owner"], quotes["kind"] = BATCHES * size, LIQUIDITY, EventKind.LIMIT
    venue.provide(quotes)
    engine = TradingEngine(portfolio, venue, risk, batch_size=size, max_batch_wait_ms=1e9)
    batches = []
    for k in range(BATCHES):           # one order a batch: a buy, then a sell of the same coin
        rows = np.full(size, (k // 2) % len(COINS), np.int32)
        sells = np.full(size, k % 2, bool) if size == 1 else np.arange(size) >= size // 2
        batches.append((rows, sells.astype(np.uint8), np.where(sells, PRICE - 1, PRICE),
                        np.ones(size, np.int64), np.zeros(size, np.uint8)))
    return engine, batches


def run_batches(state: tuple[TradingEngine, list[Batch]]) -> None:
    """Each batch submitted and flushed, in turn."""
    engine, batches = state
    for batch in batches:
        engine.submit_batch(*batch)
        engine.flush()
