"""One run of ``obelisk sweep``: the ``obelisk stress`` flow through a fresh engine, built
inside the task so nothing is shared between runs or shipped between processes.

With orders arriving all at once (rate 0), everything a seed decides (orders,
fills, outcomes, traces) is the same on every run with the same parameters, on any
worker; only the timings differ. At a rate, when a batch goes out depends on the
clock too, and so do the fills.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from obelisk.perf.settings import DEFAULT_MIX, FlowMix, StressConfig

if TYPE_CHECKING:
    from obelisk.perf.stress import StressReport

__all__ = ["DEFAULT_MIX_TEXT", "SimResult", "mix_text", "parse_mix", "simulate"]

_MIX = re.compile(r"\s*(\d+(?:\.\d*)?)\s*/\s*(\d+(?:\.\d*)?)\s*/\s*(\d+(?:\.\d*)?)\s*")


def parse_mix(text: str) -> FlowMix:
    """``TAKE/REST/CANCEL`` in percent of the account's orders, e.g. ``60/30/10``: IOC takers,
    passive GTC orders and cancels. ValueError, saying what is allowed, for anything else."""
    match = _MIX.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a flow mix; give TAKE/REST/CANCEL percentages of "
                         "IOC takers, passive GTC orders and cancels, e.g. 60/30/10")
    take, rest, cancel = (float(part) for part in match.groups())
    if not math.isclose(take + rest + cancel, 100.0, abs_tol=1e-9):
        raise ValueError(f"flow mix {text!r} adds up to {take + rest + cancel:g} %; the three "
                         "percentages must add up to 100, e.g. 60/30/10")
    # no rest: cancel = 1 - take exactly, which 0.605 + 0.395 in floating point may exceed
    return FlowMix(take=take / 100, cancel=min(cancel / 100, 1.0 - take / 100))


def mix_text(mix: FlowMix) -> str:
    """The ``TAKE/REST/CANCEL`` spelling of `mix`, as `parse_mix` reads it."""
    return f"{100 * mix.take:g}/{100 * mix.rest:g}/{100 * mix.cancel:g}"


DEFAULT_MIX_TEXT = mix_text(DEFAULT_MIX)


@dataclass(frozen=True)
class SimResult:
    """What one run measured: the counts its seed decides, then its timings."""

    trades: int                      # orders sent
    fills: int                       # fills applied to the portfolio
    outcomes: dict[str, int]         # orders by outcome, as ``obelisk stress`` counts them
    traces: int                      # trace records written, one per batch
    seconds: float
    trades_per_second: float
    latency_us: dict[str, float]     # end to end per order: count, avg, p50, p99, p999, max
    success_rate: float              # % of orders filled, rested or cancelled as sent
    crashes: int
    passed: bool                     # every ``obelisk stress`` success criterion held
    errors: list[str]

    @classmethod
    def from_report(cls, report: StressReport) -> SimResult:
        crashes = next(int(c.value) for c in report.criteria if c.name == "crashes")
        return cls(report.trades, report.fills, dict(report.outcomes), report.traces,
                   report.seconds, report.trades_per_second,
                   dict(report.stages_us["end_to_end"]), report.success_rate, crashes,
                   report.passed, list(report.errors))

    def counts(self) -> dict[str, Any]:
        """The quantities a seed decides, equal on every run of the same parameters."""
        return {"trades": self.trades, "fills": self.fills, "outcomes": dict(self.outcomes),
                "traces": self.traces}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def simulate(batch_size: int = StressConfig.batch_size,
             max_wait_ms: float = StressConfig.max_batch_wait_ms,
             rate: float = StressConfig.arrival_rate,
             assets: int = StressConfig.assets, mix: str = DEFAULT_MIX_TEXT,
             seed: int = StressConfig.seed, trades: int = StressConfig.trades) -> SimResult:
    """One ``obelisk stress`` run (simulated exchange, trace store on) with these settings.

    `rate` is the orders a second arriving at the engine, which then sends a batch
    when it is full or its oldest order has waited `max_wait_ms`; 0 hands it each
    round's orders at once and sends them at once (the wait then never matters, and
    the counts a seed decides are the same on every run).
    """
    config = StressConfig(trades=trades, assets=assets, seed=seed, batch_size=batch_size,
                          max_batch_wait_ms=max_wait_ms, arrival_rate=rate,
                          mix=parse_mix(mix))
    from obelisk.perf.stress import run_stress  # the pipeline: only where a run happens

    return SimResult.from_report(run_stress(config))
