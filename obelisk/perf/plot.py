"""``obelisk stress --plot``: the run as a picture, for when a table of percentiles is not enough.

Left, each stage's latency against percentile on the HDR axis (1 / (1 - p), log
scale), so the tail that decides whether a strategy misses a quote is as wide as
the median. Right, throughput over the run, so a stall or a slow start shows where
the average hides it. matplotlib is an optional extra: ``pip install "obelisk[plot]"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from obelisk.perf.stress import StressReport

__all__ = ["PlotUnavailableError", "plot_stress", "require_matplotlib"]

# Where the percentile axis is labelled: 1 / (1 - p) for each.
_PERCENTILE_TICKS = (0.0, 50.0, 90.0, 99.0, 99.9, 99.99, 99.999, 99.9999)


class PlotUnavailableError(ImportError):
    """matplotlib, which only plotting needs, is not installed."""


def require_matplotlib() -> None:
    """Fail before a long run rather than after it when plots cannot be drawn."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise PlotUnavailableError('plots need matplotlib: pip install "obelisk[plot]"') from exc


def plot_stress(report: StressReport, path: str) -> None:
    """Draw `report`'s latency distributions and throughput timeline into the PNG at `path`."""
    require_matplotlib()
    from matplotlib.figure import Figure  # no pyplot: no global figure, no GUI backend

    figure = Figure(figsize=(13, 5), layout="constrained")
    latency, throughput = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    _draw_latency(latency, report)
    _draw_throughput(throughput, report)
    c = report.config
    figure.suptitle(f"obelisk stress: {report.trades:,} trades, {c.assets} assets, "
                    f"batches of {c.batch_size:,}, venue {c.venue}, seed {c.seed}")
    figure.savefig(path, dpi=100, format="png")


def _spread(percentile: float) -> float:
    """The HDR axis: 1 at p0, 10 at p90, 100 at p99 ... (the maximum is drawn at the last)."""
    return 1.0 / max(1.0 - percentile / 100.0, 1e-7)


def _draw_latency(axes: Axes, report: StressReport) -> None:
    from matplotlib.ticker import NullLocator

    widest = 1.0
    for name, curve in report.latency_curves_us.items():
        points = [(p, us) for p, us in curve if us > 0]
        if len(points) < 2:
            continue
        # the last point is the maximum: draw it one step past the last percentile
        *body, (_, top) = points
        xs = [_spread(p) for p, _ in body]
        xs.append(xs[-1] * 10 ** 0.25)
        axes.plot(xs, [us for _, us in body] + [top], marker=".", label=name)
        widest = max(widest, xs[-1])
    axes.set_xscale("log")
    axes.set_yscale("log")
    ticks = [t for t in _PERCENTILE_TICKS if _spread(t) <= widest * 1.5]
    axes.set_xticks([_spread(t) for t in ticks], [f"{t:g}%" for t in ticks])
    axes.xaxis.set_minor_locator(NullLocator())
    axes.set_xlabel("percentile")
    axes.set_ylabel("latency (us, log scale)")
    axes.set_title("latency by percentile, per stage (last point: max)")
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(fontsize="small")


def _draw_throughput(axes: Axes, report: StressReport) -> None:
    from matplotlib.ticker import FuncFormatter

    seconds = [0.0] + [t for t, _ in report.timeline]
    done = [0.0] + [n for _, n in report.timeline]
    rates = [(n1 - n0) / (t1 - t0) for t0, t1, n0, n1
             in zip(seconds, seconds[1:], done, done[1:], strict=False) if t1 > t0]
    times = [t1 for t0, t1 in zip(seconds, seconds[1:], strict=False) if t1 > t0]
    axes.step(times, rates, where="pre", label="per round")
    if report.seconds > 0:
        axes.axhline(report.trades_per_second, color="grey", linestyle="--",
                     label=f"overall {report.trades_per_second:,.0f}/s")
    axes.set_xlabel("seconds since start")
    axes.set_ylabel("trades/s")
    axes.set_title("throughput over the run")
    axes.set_ylim(bottom=0)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small")
