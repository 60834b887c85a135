"""``obelisk sweep``: the ``obelisk stress`` flow over a grid of settings on a Dask cluster.

Wired into ``obelisk.cli`` by ``add_parser`` (the subcommand and its flags) and
``run_cli`` (the run). The grid is checked while the command line is parsed, so a
bad value is one line and exit 2 before any cluster starts. ``obelisk.cli`` is
imported inside the functions: it imports this module from ``build_parser``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

__all__ = ["add_parser", "run_cli"]

T = TypeVar("T")
PROG = "obelisk sweep"
EXIT_CRASH = 1             # a run crashed: its result is reported, the sweep still "failed"
_WHOLE = re.compile(r"[+-]?\d[\d_]*")
DEFAULT_RATE = "100_000"   # orders/s: batches of 100..5,000 fill in 1..50 ms, around the wait


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``sweep`` to the ``obelisk`` subcommands; its parser."""
    from obelisk import cli as base
    from obelisk.perf.settings import StressConfig
    from obelisk.sweep.simulation import DEFAULT_MIX_TEXT

    stress = StressConfig()
    sweep = commands.add_parser(
        "sweep", parents=[base._common("warning")],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="the stress flow over a grid of batch sizes, waits, assets, mixes and seeds "
             "on a Dask cluster (needs: pip install \"obelisk[dask]\")",
        description=base._wrapped(
            "Run the obelisk stress flow once for every combination of the listed batch "
            "sizes, max waits, arrival rates, assets, flow mixes and seeds, each run on a "
            "Dask worker with an engine of its own; print a table of throughput and "
            "latency per run. Needs the dask extra: pip install \"obelisk[dask]\"."),
        epilog="Lists are comma-separated (write thousands as 5_000, not 5,000); every\n"
               "combination of the grid is one run.\n"
               "Every worker needs the same obelisk installed: see docs/sweep.md.\n"
               "Orders arrive at --rate a second, evenly; the engine sends a batch when it\n"
               "is full or its oldest order has waited --max-wait-ms. At rate 0 each\n"
               "round's orders arrive at once and go at once (the max wait never matters).\n"
               "Exit status: 0, 1 when a run crashed, 2 for a bad command line.")
    grid = sweep.add_argument_group("the grid")
    grid.add_argument("--batch-size", type=_listed(_count_item, "100,500,1_000"),
                      default="100,500,1000,5000", metavar="N,N,...",
                      help=base._defaulted("orders per batch", "100,500,1000,5000"))
    grid.add_argument("--max-wait-ms", type=_listed(base._milliseconds, "10,50"),
                      default=f"{stress.max_batch_wait_ms:g}", metavar="MS,MS,...",
                      help=base._defaulted("the engine's max batch wait in milliseconds",
                                           f"{stress.max_batch_wait_ms:g}"))
    grid.add_argument("--rate", type=_listed(base._rate, "50_000,200_000"), default=DEFAULT_RATE,
                      metavar="N,N,...",
                      help=base._defaulted("orders arriving per second (0: each round at "
                                           "once)", DEFAULT_RATE))
    grid.add_argument("--assets", type=_listed(_count_item, "1,4"), default=str(stress.assets),
                      metavar="N,N,...", help=base._defaulted("assets traded", stress.assets))
    grid.add_argument("--mix", type=_listed(_mix, "60/30/10,80/10/10"),
                      default=DEFAULT_MIX_TEXT, metavar="T/R/C,...",
                      help=base._defaulted("flow mixes: percent of IOC takers / passive GTC "
                                           "orders / cancels, adding up to 100",
                                           DEFAULT_MIX_TEXT))
    grid.add_argument("--seeds", type=_listed(_seed, "1,2,3"), default=str(stress.seed),
                      metavar="N,N,...", help=base._defaulted("order-flow seeds", stress.seed))
    sweep.add_argument("--trades", type=base._count, default=stress.trades, metavar="N",
                       help=base._defaulted("orders sent by every run", stress.trades))
    where = sweep.add_mutually_exclusive_group()
    where.add_argument("--workers", type=base._count, default=2, metavar="N",
                       help=base._defaulted("worker processes of the local cluster started "
                                            "for the sweep (one thread each, on 127.0.0.1)", 2))
    where.add_argument("--scheduler", type=_scheduler, metavar="tcp://HOST:PORT",
                       help="run on an existing Dask cluster instead of a local one")
    sweep.add_argument("--json", type=_json_target, metavar="FILE",
                       help="also write the grid and every run's result as JSON to FILE; "
                            "'-' prints it instead of the table")
    sweep.add_argument("--plot", type=base._writable_file("sweep.png"), metavar="FILE.png",
                       help="also draw p99 latency against trades/s, a line per max wait, "
                            "assets and mix, a point per batch size, into a PNG (needs: "
                            "pip install \"obelisk[plot]\")")
    return sweep


def run_cli(args: argparse.Namespace) -> int:
    """Run the sweep `args` describe; the exit status (0, 1 when a run crashed, 2 for an
    unusable setting found after parsing: a missing extra, an unreachable scheduler)."""
    from obelisk.cli import EXIT_USAGE, _progress_bar
    from obelisk.perf.plot import PlotUnavailableError, require_matplotlib
    from obelisk.sweep.runner import (
        DaskUnavailableError,
        RunFailedError,
        local_client,
        remote_client,
        require_dask,
        run,
    )
    from obelisk.sweep.simulation import simulate

    grid = {"batch_size": args.batch_size, "max_wait_ms": args.max_wait_ms,
            "rate": args.rate, "assets": args.assets, "mix": args.mix, "seed": args.seeds,
            "trades": [args.trades]}
    try:
        require_dask()
    except DaskUnavailableError as exc:
        return _error(f"{exc}", EXIT_USAGE)
    # importing distributed set its loggers to INFO, and they reach the root handler that
    # --log-level configured: make them follow that level
    logging.getLogger("distributed").setLevel(logging.getLogger().getEffectiveLevel())
    if args.plot is not None:
        try:
            require_matplotlib()        # before the sweep, not after it
        except PlotUnavailableError as exc:
            return _error(f"argument --plot: {exc}", EXIT_USAGE)
    with contextlib.ExitStack() as stack:
        try:
            if args.scheduler is None:
                client = stack.enter_context(local_client(args.workers))
                workers = args.workers
                where = f"a local cluster of {workers} worker processes"
            else:
                client = stack.enter_context(remote_client(args.scheduler))
                workers = len(client.scheduler_info()["workers"])
                where = f"the cluster at {args.scheduler} ({workers} workers)"
        except OSError as exc:
            if args.scheduler is None:
                raise
            return _error(f"argument --scheduler: cannot reach a Dask scheduler at "
                          f"{args.scheduler} ({exc}); start one (dask scheduler) or leave "
                          "--scheduler out for a local cluster", EXIT_USAGE)
        if not workers:                     # the runs would wait for one forever
            return _error(f"argument --scheduler: the cluster at {args.scheduler} has no "
                          "workers; start some (dask worker ADDRESS) and run again",
                          EXIT_USAGE)
        try:
            points = run(simulate, grid, client,
                         progress=_progress_bar if sys.stderr.isatty() else None)
        except RunFailedError as exc:
            return _error(f"{exc}", EXIT_CRASH)
    from obelisk.sweep.report import format_table, to_json

    if args.json == "-":
        print(to_json(grid, points))
    else:
        print(format_table(points, where))
        if args.json is not None:
            Path(args.json).write_text(to_json(grid, points) + "\n")
            print(f"{PROG}: results written to {args.json}", file=sys.stderr)
    if args.plot is not None:
        from obelisk.sweep.plot import plot_sweep

        plot_sweep(points, args.plot)
        print(f"{PROG}: plot written to {args.plot}", file=sys.stderr)
    return EXIT_CRASH if any(p.result.crashes for p in points) else 0


def _error(message: str, status: int) -> int:
    """One line on stderr (a run's exception may span several), and the exit status."""
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr)
    return status


# ------------------------------------------------------------------ argument types

def _listed(item: Callable[[str], T], example: str) -> Callable[[str], list[T]]:
    """A checker for a comma-separated list of `item`s: none empty, none twice."""
    def check(text: str) -> list[T]:
        parts = [part.strip() for part in text.split(",")]
        if not all(parts):
            raise argparse.ArgumentTypeError(f"{text!r} has an empty value; give values "
                                             f"separated by commas, e.g. {example}")
        values: list[T] = []
        for part in parts:
            value = item(part)
            if value in values:
                raise argparse.ArgumentTypeError(f"{part} is listed twice in {text!r}; give "
                                                 "each value once")
            values.append(value)
        return values
    return check


def _whole_item(text: str, at_least: int) -> int:
    """One whole number of a list: 5_000 but not 5,000, whose comma separates values."""
    from obelisk import cli as base

    if not _WHOLE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give whole numbers "
                                         f">= {at_least} separated by commas (write thousands "
                                         "as 5_000)")
    return base._whole(text, at_least=at_least)


def _count_item(text: str) -> int:
    return _whole_item(text, 1)


def _seed(text: str) -> int:
    return _whole_item(text, 0)     # numpy's generators take no negative seed


def _mix(text: str) -> str:
    from obelisk.sweep.simulation import mix_text, parse_mix

    try:
        return mix_text(parse_mix(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _scheduler(text: str) -> str:
    match = re.fullmatch(r"(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(\d{1,5})", text.strip())
    if match is None or not 0 < int(match[3]) <= 65_535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a scheduler address; give "
                                         "tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786")
    return text.strip()


def _json_target(text: str) -> str:
    from obelisk import cli as base

    return text if text == "-" else base._writable_file("sweep.json")(text)
