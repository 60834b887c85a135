"""The simulated exchange for batches: every asset's core book behind one MatchingEngine.

The trading engine sends it whole batches of EVENT_DTYPE records (in ticks and
lots); it answers with the core's per-order results and the account's fills,
already signed and in coin units, with Hyperliquid's maker/taker fees. Other
participants' quotes arrive through :meth:`provide`; mark prices through
:meth:`set_marks`. Post-only is the core's ALO; the engine enforces reduce-only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from obelisk._core.book import OrderEventKind, Reason, Side
from obelisk._core.position import POSITION_FILL_DTYPE
from obelisk.fees import FeeRates
from obelisk.instruments import Instrument
from obelisk.sim.matching import MatchingEngine

__all__ = ["ACCOUNT", "LIQUIDITY", "BatchExecution", "SimBatchVenue"]

ACCOUNT = 1        # owner id of the account's orders
LIQUIDITY = 2      # owner id of the other participants' quotes


@dataclass(frozen=True)
class BatchExecution:
    """What one batch did: core results (RESULT_DTYPE, one per event), the account's fills
    (POSITION_FILL_DTYPE: row, signed size, price, maker) and their fees in USDC."""

    results: np.ndarray
    fills: np.ndarray
    fees: np.ndarray
    fill_oids: np.ndarray
    self_trade_cancels: np.ndarray   # the account's resting orders a self-trade removed
    done_oids: np.ndarray            # the account's resting orders a fill completed


class SimBatchVenue:
    """Core books per asset (rows in `instruments` order), matched in batches."""

    def __init__(self, instruments: Sequence[Instrument], *, fees: FeeRates | None = None,
                 capacity: int = 65_536, threads: int = 1) -> None:
        self.instruments = tuple(instruments)
        self.fees = fees or FeeRates()
        self.engine = MatchingEngine([i.asset for i in self.instruments], capacity=capacity,
                                     threads=threads)
        top = max(i.asset for i in self.instruments) + 1
        self.row_of = np.full(top, -1, dtype=np.int32)
        for row, instrument in enumerate(self.instruments):
            self.row_of[instrument.asset] = row
        self.tick = np.array([10.0 ** -i.price_decimals for i in self.instruments])
        self.lot = np.array([10.0 ** -i.sz_decimals for i in self.instruments])
        self.marks = np.full(len(self.instruments), np.nan)
        self.executed = 0

    def execute(self, events: np.ndarray) -> BatchExecution:
        """Match the account's events (owner ACCOUNT) in input order."""
        self.executed += len(events)
        return self.provide(events)

    def provide(self, events: np.ndarray) -> BatchExecution:
        """Other participants' orders and cancels; returns the account's fills they caused."""
        out = self.engine.process(events)
        return self._account_side(events, out.results, out.fills, out.order_events)

    def set_marks(self, marks: np.ndarray) -> None:
        """Mark prices per row (NaN keeps one), as the exchange's feed publishes them."""
        marks = np.asarray(marks, dtype=np.float64)
        self.marks = np.where(np.isnan(marks), self.marks, marks)

    def _account_side(self, events: np.ndarray, results: np.ndarray, fills: np.ndarray,
                      order_events: np.ndarray) -> BatchExecution:
        taker = fills["taker_owner"] == ACCOUNT
        maker = fills["maker_owner"] == ACCOUNT
        mine = taker | maker
        chosen = fills[mine]
        rows = self.row_of[events["asset"][chosen["event_index"]]]
        buys = chosen["taker_side"] == Side.BUY
        as_maker = maker[mine] & ~taker[mine]
        sign = np.where(buys != as_maker, 1.0, -1.0)     # a maker is on the other side
        out = np.zeros(len(chosen), dtype=POSITION_FILL_DTYPE)
        out["asset"] = rows
        out["size"] = sign * chosen["qty"] * self.lot[rows]
        out["price"] = chosen["price"] * self.tick[rows]
        out["maker"] = as_maker
        rates = np.where(as_maker, self.fees.maker, self.fees.taker)
        fees = np.abs(out["size"]) * out["price"] * rates
        oids = np.where(as_maker, chosen["maker_oid"], chosen["taker_oid"])
        removed = order_events[(order_events["kind"] == OrderEventKind.CANCELLED)
                               & (order_events["owner"] == ACCOUNT)
                               & (order_events["reason"] == Reason.SELF_TRADE)]["oid"]
        done = chosen["maker_oid"][as_maker & (chosen["maker_done"] != 0)]
        return BatchExecution(results, out, fees, oids, removed, done)

    def close(self) -> None:
        self.engine.close()
