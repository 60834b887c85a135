"""The simulated exchange for batches: every asset's core book behind one MatchingEngine.

It speaks `BatchVenue`: the trading engine sends it whole batches of EVENT_DTYPE
records (in ticks and lots) and it answers at once with the core's per-order
results and the account's fills, signed and in coin units, with their fees.
Other participants' orders arrive through :meth:`provide`; the account fills
they cause wait for the engine's next ``execute`` or ``collect``. Post-only is
the core's ALO; the engine enforces reduce-only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from obelisk._core.position import account_fills, self_trade_cancels
from obelisk.execution.venue import ACCOUNT, BatchReport
from obelisk.fees import FeeRates
from obelisk.instruments import Instrument, InstrumentTable
from obelisk.sim.matching import MatchingEngine

__all__ = ["SimBatchVenue"]


class SimBatchVenue:
    """Core books per asset (rows in `instruments` order), matched in batches."""

    def __init__(self, instruments: Sequence[Instrument] | InstrumentTable, *,
                 fees: FeeRates | None = None, capacity: int = 65_536, threads: int = 1) -> None:
        self.instruments = instruments if isinstance(instruments, InstrumentTable) \
            else InstrumentTable(instruments)
        self.fees = fees or FeeRates()
        self.matcher = MatchingEngine(self.instruments.assets.tolist(), capacity=capacity,
                                      threads=threads)
        self.executed = 0
        self._unreported: list[BatchReport] = []

    def execute(self, events: np.ndarray) -> BatchReport:
        """Match the account's events in input order; the report also carries what
        other participants' orders did to the account since the last report."""
        self.executed += len(events)
        reports = [*self._unreported, self._match(events)]
        self._unreported.clear()
        return BatchReport.concat(reports)

    def collect(self) -> BatchReport | None:
        if not self._unreported:
            return None
        report = BatchReport.concat(self._unreported)
        self._unreported.clear()
        return report

    def provide(self, events: np.ndarray) -> None:
        """Other participants' orders and cancels; the account fills they cause are kept
        for the next report."""
        report = self._match(events)
        if report.has_activity:
            self._unreported.append(replace(report, results=report.results[:0]))

    def _match(self, events: np.ndarray) -> BatchReport:
        out = self.matcher.process(events)
        table = self.instruments
        account, fees, oids, done = account_fills(
            out.fills, events["asset"], table.row_of_asset, table.lot, table.tick, ACCOUNT,
            self.fees.taker, self.fees.maker)
        removed = self_trade_cancels(out.order_events, ACCOUNT)
        return BatchReport(out.results, account, fees, oids, removed, done)

    def close(self) -> None:
        self.matcher.close()
