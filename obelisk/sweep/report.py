"""The results of ``obelisk sweep`` as people read them (a table) and as programs do (JSON)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from obelisk.sweep.runner import Point
from obelisk.sweep.simulation import SimResult

__all__ = ["format_table", "orders_per_run", "to_json"]

WIDTH = 96                 # table lines stay under 100 columns, as ``obelisk stress``'s


def orders_per_run(points: Sequence[Point[SimResult]]) -> str:
    """The runs' order counts, each once, smallest first: "50,000" or "10,000, 50,000"."""
    return ", ".join(f"{t:,}" for t in sorted({p.params["trades"] for p in points}))


def format_table(points: Sequence[Point[SimResult]], where: str) -> str:
    """One row per run in grid order; latencies are end to end per order, as ``stress``'s
    end_to_end row, in milliseconds."""
    lines = [f"obelisk sweep: {len(points)} runs of {orders_per_run(points)} orders each, "
             f"on {where}", "",
             f"{'batch':>6}{'wait ms':>8}{'rate/s':>9}{'assets':>7} {'mix':<11}{'seed':>5}"
             f"{'fills':>8}{'trades/s':>9}{'avg ms':>8}{'p99 ms':>8}{'max ms':>9}  criteria"]
    for point in points:
        p, r = point.params, point.result
        ms = {name: r.latency_us[name] / 1000 for name in ("avg", "p99", "max")}
        verdict = "pass" if r.passed else ("CRASH" if r.crashes else "fail")
        lines.append(f"{p['batch_size']:>6,}{p['max_wait_ms']:>8g}{p['rate']:>9,.0f}"
                     f"{p['assets']:>7,} "
                     f"{p['mix']:<11}{p['seed']:>5}{r.fills:>8,}{r.trades_per_second:>9,.0f}"
                     f"{ms['avg']:>8.3f}{ms['p99']:>8.3f}{ms['max']:>9.3f}  {verdict}")
    lines += ["", "batch: orders per batch; wait ms: the engine's max batch wait; rate/s: "
              "orders arriving", "per second (0: each round at once); mix: % IOC takers/"
              "passive GTC/cancels; criteria: those", "of obelisk stress"]
    errors = [f"  run {i + 1}: {e}"[:WIDTH] for i, point in enumerate(points)
              for e in point.result.errors[:3]]
    return "\n".join([*lines, *errors[:10]])


def to_json(grid: Mapping[str, Sequence[Any]], points: Sequence[Point[SimResult]]) -> str:
    """One document: the grid as given, then every run's parameters and result in grid order."""
    return json.dumps({"grid": {name: list(values) for name, values in grid.items()},
                       "runs": [{"params": p.params, "result": p.result.to_dict()}
                                for p in points]}, indent=2)
