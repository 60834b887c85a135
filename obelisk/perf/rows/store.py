"""Trace-store rows of ``obelisk bench``: the caller's cost of a trace, and sustained rates.

Every row writes the same traces (order decisions of ~340 B of JSON with
increasing order ids) into a fresh database in a temporary directory: through
:class:`TraceStore` with batches of 100 and of 10,000, and as one transaction per
trace, the pattern the store replaces. The sustained rows time ``record`` of all
traces plus the ``flush`` that commits them.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from time import time_ns
from typing import Any

from obelisk.perf.timing import BenchRow, timed_row
from obelisk.store import TraceStore
from obelisk.store.codec import encode_payload
from obelisk.store.ids import next_id
from obelisk.store.schema import migrate
from obelisk.store.sqlite import INSERT_SQL, connect

TRACES = 50_000
COINS = ("BTC", "ETH", "SOL", "HYPE", "kPEPE", "DOGE", "AVAX", "LINK")

# (kind, payload, asset, order_id)
TraceArgs = tuple[str, dict[str, Any], str, int]


def trace_workload(count: int) -> list[TraceArgs]:
    """`count` order decisions, each ~340 B as JSON, with increasing order ids."""
    traces = []
    for i in range(count):
        coin = COINS[i % len(COINS)]
        order_id = 40_000_000_000 + i
        payload = {
            "coin": coin, "side": "B" if i % 2 else "A", "px": f"{64321.5 + i % 97:.1f}",
            "sz": f"{0.001 * (1 + i % 13):.4f}", "oid": order_id,
            "cloid": f"0x{i:032x}", "tif": "Alo", "reduce_only": False,
            "reason": "requote: mid moved two ticks", "edge_bps": 1.25 + (i % 7) / 10,
            "inventory": -0.034, "signals": [0.1, 0.2, -0.3, 0.45],
            "book": {"bid": "64321.0", "ask": "64322.0", "bid_sz": "1.234", "ask_sz": "0.987"},
        }
        traces.append(("order", payload, coin, order_id))
    return traces


def record_all(store: TraceStore, traces: list[TraceArgs]) -> None:
    record = store.record
    for kind, payload, asset, order_id in traces:
        record(kind, payload, asset=asset, order_id=order_id)


def record_and_flush(store: TraceStore, traces: list[TraceArgs]) -> None:
    record_all(store, traces)
    store.flush()


def one_transaction_per_trace(conn: sqlite3.Connection, traces: list[TraceArgs]) -> None:
    """The original pattern: serialize, then insert and commit each trace on its own."""
    last_id = 0
    execute = conn.execute
    for kind, payload, asset, order_id in traces:
        now_ms = time_ns() // 1_000_000
        last_id = next_id(last_id, now_ms)
        execute(INSERT_SQL, (last_id, now_ms, kind, asset, order_id, None, 0,
                             encode_payload(payload)))


@contextmanager
def fresh_databases() -> Iterator[Callable[[], str]]:
    """A maker of new database paths in a temporary directory removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="obelisk-bench-") as folder:
        made = itertools.count()
        yield lambda: os.path.join(folder, f"traces-{next(made)}.db")


def store_rows(repeat: int) -> list[BenchRow]:
    """The four rows, `TRACES` traces per timed run, each run into a fresh database.

    Each untimed prepare closes the previous run's store, which commits its traces.
    """
    traces = trace_workload(TRACES)
    opened: list[Any] = []

    def close_opened() -> None:
        while opened:
            opened.pop().close()

    with fresh_databases() as new_path:

        def store(**settings: Any) -> Callable[[], TraceStore]:
            def prepare() -> TraceStore:
                close_opened()
                opened.append(TraceStore(new_path(), queue_size=2 * TRACES, **settings))
                return opened[-1]
            return prepare

        def plain_connection() -> sqlite3.Connection:
            close_opened()
            conn = connect(new_path())
            migrate(conn)
            opened.append(conn)
            return conn

        try:
            return [
                timed_row("TraceStore.record, caller's thread", TRACES,
                          lambda s: record_all(s, traces),
                          store(batch_size=2 * TRACES, batch_flush_ms=3_600_000), repeat),
                timed_row("TraceStore sustained, batches of 100", TRACES,
                          lambda s: record_and_flush(s, traces), store(batch_size=100),
                          repeat),
                timed_row("TraceStore sustained, batches of 10,000", TRACES,
                          lambda s: record_and_flush(s, traces), store(batch_size=10_000),
                          repeat),
                timed_row("one transaction per trace (baseline)", TRACES,
                          lambda conn: one_transaction_per_trace(conn, traces),
                          plain_connection, repeat),
            ]
        finally:
            close_opened()
