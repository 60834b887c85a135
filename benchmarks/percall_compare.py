"""Per-call cost of the compiled core's hot entry points, compared across builds.

Each case replays a fixed, seeded workload through one entry point and reports
the cost of one call (or, for the batch paths, of one event in a batch), the
Python loop that makes the calls included, as a caller would pay it. The
workloads come from ``obelisk.testing.workload``, so two builds of obelisk see
the same calls.

Three modes, all run against whatever ``obelisk`` the build directories hold
(each BUILD is a source tree built in place, put first on PYTHONPATH). Keep the
builds on one file system: on the shared machines, the same build read 1.3-1.5x
slower in medians from the checkout's mount than from a copy in /tmp. Builds of
another commit and of the working tree::

    mkdir -p /tmp/base && git archive 8e42ed2 | tar -x -C /tmp/base
    (cd /tmp/base && python setup.py --quiet build_ext --inplace)
    mkdir -p /tmp/head && cp -r obelisk /tmp/head/      # after building in place

Wall clock, builds alternated in one run (subprocess per build and round; the
median and the best of the rounds, each round the best of a few passes)::

    python benchmarks/percall_compare.py time /tmp/base /tmp/head --rounds 7

Instruction counts under callgrind (deterministic, immune to machine noise; the
builds need their symbols: build with ``OBELISK_SYMBOLS=1``, as release builds strip
them, and the case's count then reads 0):
the inclusive cost of the entry point's compiled wrapper (argument conversion,
the call's work, the result object), and the whole call as a caller pays it (the
interpreter's loop and call dispatch around the wrapper included). Each case
runs twice, with N1 and N2 calls, and the difference is divided by N2 - N1, so
one-off costs of the first calls cancel out. Needs valgrind (callgrind and
callgrind_annotate); a case takes about a minute under it::

    python benchmarks/percall_compare.py callgrind /tmp/base /tmp/head

One build, one case, `calls` calls (what the two modes above run)::

    PYTHONPATH=/tmp/base python benchmarks/percall_compare.py run histogram.record 5000

The first build named is the reference: the tables give each build's ratio to it.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

Run = Callable[[], None]
# A case builds its state for `calls` calls (untimed) and returns what makes them.
Case = Callable[[int], Run]

SEED = 42
ASSETS = 200              # one account's universe, as in ``obelisk bench``
# Calls of the two callgrind runs of a case (N1, N2).
CALLGRIND_CALLS = (1_000, 6_000)
# Every workload is generated at least this long and then cut to the calls asked, so
# the set-up of a case costs the same for N1 and N2 calls and cancels out.
WORKLOAD = CALLGRIND_CALLS[1]


def _size(calls: int) -> int:
    return max(calls, WORKLOAD)


# ------------------------------------------------------------------ order book

@functools.cache
def _workload(kind: str, size: int):
    """A seeded workload, generated once per process (the passes of a case share it)."""
    from obelisk.perf.rows.risk import risk_workload
    from obelisk.testing.workload import fill_stream, l2_stream, standard_mix

    if kind == "mix":
        return standard_mix(size, seed_orders=2_000, seed=SEED)
    if kind == "l2":
        return l2_stream(size, seed=SEED)
    if kind == "fills":
        return fill_stream(size, ASSETS, SEED)
    return risk_workload(size, SEED)


def _standard_mix(calls: int):
    from obelisk._core.book import OrderBook

    workload = _workload("mix", _size(calls))
    book = OrderBook(8_192)
    book.process(workload.seed_events)
    return book, workload.events


def book_process_single(calls: int) -> Run:
    """``OrderBook.process`` on a one-event array, once per event of the standard mix."""
    book, events = _standard_mix(calls)
    singles = [events[i:i + 1] for i in range(len(events))][:calls]

    def run() -> None:
        process = book.process
        for event in singles:
            process(event)
    return run


def book_process_batch(calls: int) -> Run:
    """``OrderBook.process`` on the standard mix in one array: the cost per event."""
    book, events = _standard_mix(calls)
    events = events[:calls]
    return lambda: (book.process(events) if calls else None)


def book_per_call(calls: int) -> Run:
    """The standard mix through ``add`` / ``market`` / ``cancel`` / ``modify``."""
    from obelisk.perf.bench import replay_per_call

    book, events = _standard_mix(calls)
    rows = events[["kind", "oid", "side", "price", "qty", "tif", "owner"]].tolist()[:calls]
    return lambda: replay_per_call(book, rows)


# ------------------------------------------------------------------ L2 book

def _l2(calls: int):
    from obelisk._core.l2 import L2Book
    from obelisk.testing.workload import SYNTHETIC_GRID

    workload = _workload("l2", _size(calls))
    book = L2Book(SYNTHETIC_GRID)
    workload.load(book)
    return book, workload.deltas


def l2_apply(calls: int) -> Run:
    """``L2Book.apply(side, price, size)`` once per delta of the standard depth stream."""
    book, deltas = _l2(calls)
    rows = deltas[["side", "price", "size"]].tolist()[:calls]

    def run() -> None:
        apply = book.apply
        for side, price, size in rows:
            apply(side, price, size)
    return run


def l2_apply_batch(calls: int) -> Run:
    """``L2Book.apply_batch`` with the top of book after each delta: the cost per delta."""
    from obelisk._core.l2 import L2_TOP_DTYPE

    book, deltas = _l2(calls)
    deltas = deltas[:calls]
    top = np.zeros(len(deltas), dtype=L2_TOP_DTYPE)
    return lambda: (book.apply_batch(deltas, top) if calls else None)


# ------------------------------------------------------------------ positions and risk

def _fills(calls: int):
    workload = _workload("fills", _size(calls))
    rows = workload.fills[["asset", "size", "price", "maker"]].tolist()
    return workload, rows


def position_apply_fill(calls: int) -> Run:
    """``PositionBook.apply_fill(asset, size, price, maker)``, one fill per call."""
    workload, rows = _fills(calls)
    rows = rows[:calls]
    book = workload.fresh_book()

    def run() -> None:
        apply = book.apply_fill
        for asset, size, price, maker in rows:
            apply(asset, size, price, maker)
    return run


def portfolio_apply_fill(calls: int) -> Run:
    """``Portfolio.apply_fill(coin, ...)``: the by-coin wrapper over the same fills."""
    from obelisk.instruments import Instrument
    from obelisk.portfolio import Portfolio

    workload, rows = _fills(calls)
    coins = [Instrument(f"C{i}", i, 2, 50) for i in range(ASSETS)]
    portfolio = Portfolio(coins, balance=1e9, margin_tiers={
        coin.name: tiers for coin, tiers in zip(coins, workload.margin_tiers, strict=True)})
    for coin, isolated in zip(coins, workload.isolated.tolist(), strict=True):
        portfolio.set_leverage(coin.name, 5, isolated=isolated)
    named = [(f"C{asset}", size, price, bool(maker)) for asset, size, price, maker in rows]
    named = named[:calls]

    def run() -> None:
        apply = portfolio.apply_fill
        for coin, size, price, maker in named:
            apply(coin, size, price, maker=maker)
    return run


def risk_check(calls: int) -> Run:
    """``RiskChecks.check(asset, side, size, price)`` with every limit on (allowed orders)."""
    fresh, _, batch = _workload("risk", _size(calls))
    checks = fresh().checks
    rows = batch[["asset", "side", "size", "price"]].tolist()[:calls]

    def run() -> None:
        check = checks.check
        for asset, side, size, price in rows:
            check(asset, side, size, price)
    return run


# ------------------------------------------------------------------ latency histogram

def _latencies(calls: int) -> np.ndarray:
    rng = np.random.default_rng(SEED)
    return rng.lognormal(10.0, 1.5, _size(calls)).astype(np.int64)


def histogram_record(calls: int) -> Run:
    """``LatencyHistogram.record(ns)``, one sample per call."""
    from obelisk._core.histogram import LatencyHistogram

    histogram = LatencyHistogram()
    values = _latencies(calls).tolist()[:calls]

    def run() -> None:
        record = histogram.record
        for value in values:
            record(value)
    return run


def histogram_record_many(calls: int) -> Run:
    """``LatencyHistogram.record_many`` on one array: the cost per sample."""
    from obelisk._core.histogram import LatencyHistogram

    histogram = LatencyHistogram()
    values = _latencies(calls)[:calls]
    return lambda: histogram.record_many(values)


# The compiled wrapper(s) each case calls: callgrind also reports their inclusive cost
# alone, i.e. the entry point without the Python loop around it.
ENTRY = {
    "book.process single": r"OrderBook_\d+process",
    "book.process batch/event": r"OrderBook_\d+process",
    "book.add/market/cancel/modify": r"OrderBook_\d+(add|market|cancel|modify)",
    "l2.apply": r"L2Book_\d+apply",
    "l2.apply_batch/delta": r"L2Book_\d+apply_batch",
    "position.apply_fill": r"PositionBook_\d+apply_fill",
    "portfolio.apply_fill": r"PositionBook_\d+apply_fill",
    "risk.check": r"RiskChecks_\d+check",
    "histogram.record": r"LatencyHistogram_\d+record",
    "histogram.record_many/sample": r"LatencyHistogram_\d+record_many",
}

CASES: dict[str, Case] = {
    "book.process single": book_process_single,
    "book.process batch/event": book_process_batch,
    "book.add/market/cancel/modify": book_per_call,
    "l2.apply": l2_apply,
    "l2.apply_batch/delta": l2_apply_batch,
    "position.apply_fill": position_apply_fill,
    "portfolio.apply_fill": portfolio_apply_fill,
    "risk.check": risk_check,
    "histogram.record": histogram_record,
    "histogram.record_many/sample": histogram_record_many,
}
# Calls per timed pass (wall clock); the batch cases amortise their fixed cost over these.
TIMED_CALLS = 20_000


# ------------------------------------------------------------------ modes

def wall_clock_cases(names: list[str], calls: int, passes: int) -> dict[str, float]:
    """Best ns per call of `passes` passes of each case, each pass from fresh state (not
    named time_*: asv would take it for a benchmark)."""
    result = {}
    for name in names:
        best = float("inf")
        for _ in range(passes):
            run = CASES[name](calls)
            gc.disable()
            start = time.perf_counter_ns()
            run()
            best = min(best, (time.perf_counter_ns() - start) / calls)
            gc.enable()
        result[name] = best
    return result


def _build_env(build: str) -> dict[str, str]:
    """The environment of a child that runs `build`. One BLAS thread: idle pool threads
    spin, and would count in the instructions and take a core from the timing."""
    return dict(os.environ, PYTHONPATH=build, PYTHONHASHSEED="0", OPENBLAS_NUM_THREADS="1")


def _child(build: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, __file__, *args], env=_build_env(build), check=True,
                          capture_output=True, text=True)


def compare_time(builds: list[str], names: list[str], rounds: int, passes: int) -> None:
    samples: dict[str, dict[str, list[float]]] = {b: {n: [] for n in names} for b in builds}
    for r in range(rounds):
        order = builds if r % 2 == 0 else builds[::-1]     # alternate who goes first
        for build in order:
            out = _child(build, "_times", str(TIMED_CALLS), str(passes), *names).stdout
            for name, ns in json.loads(out.splitlines()[-1]).items():
                samples[build][name].append(ns)
        print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    for what, statistic in (("median", statistics.median), ("best", min)):
        values = {b: {n: statistic(v) for n, v in s.items()} for b, s in samples.items()}
        _table(f"wall clock, ns per call ({what} of rounds, each the best of passes)",
               builds, names, values, "{:.1f}")


def _instructions(build: str, name: str, calls: int, out_dir: str) -> tuple[int, int]:
    """Instructions inside the case's entry point(s) (inclusive: all they call), and in
    the whole run."""
    out = Path(out_dir) / f"cg.{abs(hash((build, name, calls)))}"
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                    sys.executable, __file__, "run", name, str(calls)],
                   env=_build_env(build), check=True, capture_output=True, text=True)
    report = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100",
                             "--show-percs=no", str(out)],
                            check=True, capture_output=True, text=True).stdout
    out.unlink()
    # one line per function and object file: "  1,234  path.c:__pyx_pw_..._3record [lib.so]"
    entry = re.compile(rf"^\s*([\d,]+)\s+\S*:__pyx_pw_\w*?{ENTRY[name]} \[", re.MULTILINE)
    total = re.search(r"^\s*([\d,]+)\s+\(?PROGRAM TOTALS", report, re.MULTILINE)
    return (sum(int(m.group(1).replace(",", "")) for m in entry.finditer(report)),
            int(total.group(1).replace(",", "")))


def compare_callgrind(builds: list[str], names: list[str], jobs: int) -> None:
    low, high = CALLGRIND_CALLS
    jobs_list = [(b, n, c) for b in builds for n in names for c in (low, high)]
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(jobs) as pool:
        counts = dict(zip(jobs_list, pool.map(lambda j: _instructions(*j, tmp), jobs_list),
                          strict=True))
    for part, what in enumerate(("inside the entry point", "as the caller pays it")):
        per_call = {b: {n: (counts[b, n, high][part] - counts[b, n, low][part]) / (high - low)
                        for n in names} for b in builds}
        _table(f"callgrind, instructions per call {what} "
               f"((Ir({high}) - Ir({low})) / {high - low})", builds, names, per_call, "{:.0f}")


def _table(title: str, builds: list[str], names: list[str],
           values: dict[str, dict[str, float]], fmt: str) -> None:
    print(f"\n{title}")
    reference = builds[0]
    header = ["entry point"] + builds + [f"{b} / {reference}" for b in builds[1:]]
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for name in names:
        cells = [name] + [fmt.format(values[b][name]) for b in builds]
        cells += [f"{values[b][name] / values[reference][name]:.3f}" for b in builds[1:]]
        print(" | ".join(cells))
    print(json.dumps(values), file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    timing = modes.add_parser("time", help="wall clock, builds alternated")
    timing.add_argument("builds", nargs="+")
    timing.add_argument("--rounds", type=int, default=7)
    timing.add_argument("--passes", type=int, default=3)
    timing.add_argument("--case", action="append", choices=CASES, dest="cases")
    grind = modes.add_parser("callgrind", help="instruction counts under valgrind")
    grind.add_argument("builds", nargs="+")
    grind.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    grind.add_argument("--case", action="append", choices=CASES, dest="cases")
    one = modes.add_parser("run", help="one case in this interpreter")
    one.add_argument("case", choices=CASES)
    one.add_argument("calls", type=int)
    times = modes.add_parser("_times")      # a child of `time`: JSON on the last line
    times.add_argument("calls", type=int)
    times.add_argument("passes", type=int)
    times.add_argument("cases", nargs="+")
    args = parser.parse_args()

    if args.mode == "run":
        run = CASES[args.case](args.calls)
        gc.disable()            # no collection inside an entry point's count
        run()
    elif args.mode == "_times":
        print(json.dumps(wall_clock_cases(args.cases, args.calls, args.passes)))
    elif args.mode == "time":
        compare_time(args.builds, args.cases or list(CASES), args.rounds, args.passes)
    else:
        compare_callgrind(args.builds, args.cases or list(CASES), args.jobs)


if __name__ == "__main__":
    main()
