"""``obelisk sweep --plot``: p99 latency against throughput, to pick a batch size from.

One line per combination of the other settings (max wait, rate, assets, mix), one point
per batch size along it, labelled with that size: a larger batch usually moves a
point right (more trades/s) and up (a longer wait for the first order of a batch),
and the knee of the line is the size to look at. With several seeds a point is
their median. matplotlib is an optional extra: ``pip install "obelisk[plot]"``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from obelisk.perf.plot import require_matplotlib
from obelisk.sweep.report import orders_per_run
from obelisk.sweep.runner import Point
from obelisk.sweep.simulation import SimResult

__all__ = ["plot_sweep"]

# Parameters that place a point on its line rather than choose the line.
_ALONG = ("batch_size", "seed")


def plot_sweep(points: Sequence[Point[SimResult]], path: str) -> None:
    """Draw the sweep's latency-throughput lines into the PNG at `path`."""
    require_matplotlib()
    from matplotlib.figure import Figure  # no pyplot: no global figure, no GUI backend
    from matplotlib.ticker import FuncFormatter, StrMethodFormatter

    figure = Figure(figsize=(10, 6), layout="constrained")
    axes = figure.subplots()
    for label, line in _lines(points).items():
        sizes = sorted(line)
        rates = [statistics.median(r.trades_per_second for r in line[s]) for s in sizes]
        p99_ms = [statistics.median(r.latency_us["p99"] for r in line[s]) / 1000
                  for s in sizes]
        drawn = axes.plot(rates, p99_ms, marker="o", label=label)[0]
        for size, x, y in zip(sizes, rates, p99_ms, strict=True):
            axes.annotate(f"{size:,}", (x, y), textcoords="offset points", xytext=(5, 5),
                          fontsize=8, color=drawn.get_color())
    seeds = len({p.params["seed"] for p in points})
    axes.set_xlabel("throughput (trades/s)")
    axes.set_ylabel("p99 end-to-end latency per order (ms)")
    axes.set_yscale("log")
    axes.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    plain = FuncFormatter(lambda value, _: f"{value:g}")      # 20, not 2 x 10^1
    axes.yaxis.set_major_formatter(plain)
    axes.yaxis.set_minor_formatter(plain)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(title="each point: a batch size", fontsize=8)
    axes.set_title(f"obelisk sweep: {orders_per_run(points)} orders per run"
                   + (f", median of {seeds} seeds" if seeds > 1 else ""))
    figure.savefig(path, dpi=100, format="png")


def _lines(points: Sequence[Point[SimResult]]) -> dict[str, dict[int, list[SimResult]]]:
    """Line label -> batch size -> the results of its seeds, in grid order. A label names
    the settings that differ between lines (all of them when only one line is drawn)."""
    varying = {k for k in points[0].params if k not in _ALONG
               and len({repr(p.params[k]) for p in points}) > 1}
    lines: dict[str, dict[int, list[SimResult]]] = {}
    for point in points:
        chosen = {k: v for k, v in point.params.items() if k in varying
                  or not varying and k not in (*_ALONG, "trades")}
        line = lines.setdefault(_label(chosen), {})
        line.setdefault(point.params["batch_size"], []).append(point.result)
    return lines


def _label(params: dict[str, Any]) -> str:
    names = {"max_wait_ms": "max wait {:g} ms", "rate": "{:,.0f} orders/s",
             "assets": "{:,} asset{}", "mix": "mix {}", "trades": "{:,} orders"}
    return ", ".join("orders at once" if k == "rate" and not v else
                     names.get(k, k + " {}").format(v, "" if v == 1 else "s")
                     for k, v in params.items())
