"""Logging rows of ``obelisk bench``: ``obelisk stress`` with logging at INFO and logging off.

Logging must cost nothing that matters: INFO is for state changes, and the
per-batch DEBUG lines are guarded by ``isEnabledFor``. The two settings run
alternately in one process, so machine noise hits both alike; the ratio line
of the report says how close they are (the goal is within 2 %).
"""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
from collections.abc import Iterator

from obelisk.perf.settings import StressConfig
from obelisk.perf.stress import run_stress
from obelisk.perf.timing import BenchRow

LOGGING_INFO = "obelisk stress, logging at INFO"
LOGGING_OFF = "obelisk stress, logging off"


@contextlib.contextmanager
def obelisk_logging(level: int | None) -> Iterator[None]:
    """obelisk's loggers at `level` into a handler that formats every record and writes it
    to the null device; `None` turns logging off. The previous setup is restored after."""
    logger = logging.getLogger("obelisk")
    saved = logger.level, logger.propagate, logging.root.manager.disable
    handler = None
    if level is None:
        logging.disable(logging.CRITICAL)
    else:
        logging.disable(logging.NOTSET)
        handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 - closed below
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
    try:
        yield
    finally:
        if handler is not None:
            logger.removeHandler(handler)
            handler.stream.close()
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
        logging.disable(saved[2])


def logging_rows(repeat: int, config: StressConfig | None = None) -> list[BenchRow]:
    """The stress flow `repeat` times per setting, alternating INFO and off."""
    config = config or StressConfig()
    seconds: dict[int | None, list[float]] = {logging.INFO: [], None: []}
    trades = 0
    for _ in range(repeat):
        for level in seconds:
            with obelisk_logging(level):
                report = run_stress(config)
            seconds[level].append(report.seconds)
            trades = report.trades
    return [BenchRow(name, trades, min(seconds[level]), statistics.median(seconds[level]))
            for name, level in ((LOGGING_INFO, logging.INFO), (LOGGING_OFF, None))]
