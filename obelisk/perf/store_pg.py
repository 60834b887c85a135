"""``python -m obelisk.perf.store_pg``: the PostgreSQL trace store against raw binary COPY.

Sustained rows/s of the same traces (``obelisk bench``'s order decisions, ~340 B
of JSON each, from :func:`obelisk.perf.rows.store.trace_workload`) into the same
``traces`` table, 10,000 rows per transaction, measured in one run:

- store: ``record`` of every trace through :class:`~obelisk.store.TraceStore`
  (``batch_size=10_000``), then ``flush``; the clock runs from the first
  ``record`` to the return of ``flush``, so it counts the caller's serialization
  and queueing and the writer's COPY.
- raw COPY of the traces: psycopg's ``COPY traces ... FROM STDIN (FORMAT
  BINARY)`` with ``set_types``, one transaction per 10,000 rows, each row made
  (id, ts, JSON payload) as it is written: what a hand-written loader of the
  same traces does, with no queue, thread or lease.
- raw COPY of finished rows: the same, with every row built before the clock
  starts: the ceiling for this row shape, which leaves out the JSON encoding
  that any writer of these traces pays.

Rounds alternate (store, COPY, COPY of finished rows, store, ...), each into an
emptied table after a checkpoint, and the report gives each one's median and
best and the ratios of the medians (goal: the store at least 0.8x raw COPY).
Everything happens in a schema of its own, dropped at the end, so ``--url`` may
name any database. Without ``--url`` the benchmark starts a throwaway server
(:mod:`obelisk.testing.pg_server`, fsync on). Not a timed test: run it by hand,
on a quiet machine.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from time import time_ns

import psycopg

from obelisk.perf.rows.store import TraceArgs, record_and_flush, trace_workload
from obelisk.store import TraceStore
from obelisk.store.codec import RAW, encode_payload
from obelisk.store.ids import writer_id_source
from obelisk.store.pg_connect import mask_password
from obelisk.store.pg_schema import migrate
from obelisk.store.pg_writer import COPY_SQL, COPY_TYPES
from obelisk.store.queue import Row

GOAL = 0.8
ROWS_PER_TRANSACTION = 10_000
STORE = "TraceStore.record, then flush"
RAW_COPY = "raw COPY of the traces (JSON inline)"
FINISHED_COPY = "raw COPY of finished rows"


def rows_of(traces: list[TraceArgs]) -> Iterator[Row]:
    """The rows a store writes for `traces`: ids of one writer, now's ts, the JSON bytes."""
    next_id = writer_id_source(1)
    last_id = 0
    for kind, payload, asset, order_id in traces:
        now_ms = time_ns() // 1_000_000
        last_id = next_id(last_id, now_ms)
        yield last_id, now_ms, kind, asset, order_id, None, RAW, encode_payload(payload)


def copy_rows(conn: psycopg.Connection, rows: Iterable[Row], per_transaction: int) -> None:
    """Raw binary COPY of `rows` (made as they are written, if a generator), one COPY
    statement, and so one transaction (`conn` is in autocommit mode), per
    `per_transaction` rows."""
    source = iter(rows)
    for first in source:
        with conn.cursor() as cursor, cursor.copy(COPY_SQL) as copy:
            copy.set_types(COPY_TYPES)
            write_row = copy.write_row
            write_row(first)
            for row in itertools.islice(source, per_transaction - 1):
                write_row(row)


def seconds_of(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


@contextlib.contextmanager
def bench_schema(url: str) -> Iterator[str]:
    """The URL of a new schema on `url`'s database (with the trace tables), dropped at the end."""
    if "options=" in url:
        raise SystemExit("give a URL without an options= parameter; the benchmark sets one")
    schema = f"obelisk_bench_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")     # type: ignore[arg-type]
    try:
        scoped = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
        with psycopg.connect(scoped, autocommit=True) as conn:
            migrate(conn)
        yield scoped
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")     # type: ignore[arg-type]


def empty_table(conn: psycopg.Connection) -> None:
    """Start a round from an empty table and a fresh checkpoint (if we may ask for one)."""
    conn.execute("TRUNCATE traces")
    with contextlib.suppress(psycopg.Error):
        conn.execute("CHECKPOINT")


def run(url: str, count: int, rounds: int, per_transaction: int) -> float:
    """Print the three rates and the store's ratios; returns the store's ratio to raw COPY."""
    traces = trace_workload(count)
    finished = list(rows_of(traces))
    seconds: dict[str, list[float]] = {STORE: [], RAW_COPY: [], FINISHED_COPY: []}
    with bench_schema(url) as scoped, psycopg.connect(scoped, autocommit=True) as conn:
        for _ in range(rounds):
            empty_table(conn)
            with TraceStore(scoped, batch_size=per_transaction,
                            queue_size=max(100_000, count)) as store:   # opened untimed
                seconds[STORE].append(seconds_of(lambda: record_and_flush(store, traces)))
            check_count(conn, count)
            empty_table(conn)
            seconds[RAW_COPY].append(
                seconds_of(lambda: copy_rows(conn, rows_of(traces), per_transaction)))
            check_count(conn, count)
            empty_table(conn)
            seconds[FINISHED_COPY].append(
                seconds_of(lambda: copy_rows(conn, finished, per_transaction)))
            check_count(conn, count)
    print(f"PostgreSQL trace store vs raw binary COPY at {mask_password(url)}: {count:,} rows "
          f"per round, {per_transaction:,} per transaction, {rounds} rounds each, alternating")
    medians = {name: statistics.median(times) for name, times in seconds.items()}
    for name, times in seconds.items():
        print(f"  {name:<40} median {count / medians[name]:>9,.0f} rows/s"
              f"   best {count / min(times):>9,.0f} rows/s")
    ratio = medians[RAW_COPY] / medians[STORE]
    print(f"  {'store / raw COPY of the traces':<40} {ratio:.2f}x   (goal >= {GOAL}x: "
          f"{'met' if ratio >= GOAL else 'NOT met'})")
    print(f"  {'store / raw COPY of finished rows':<40} "
          f"{medians[FINISHED_COPY] / medians[STORE]:.2f}x")
    return ratio


def check_count(conn: psycopg.Connection, count: int) -> None:
    (stored,) = conn.execute("SELECT count(*) FROM traces").fetchone() or (0,)
    if stored != count:
        raise AssertionError(f"the round stored {stored} of {count} rows")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m obelisk.perf.store_pg",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--url", help="a postgresql:// URL (default: start a throwaway server)")
    parser.add_argument("--rows", type=int, default=100_000, help="rows per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each, alternating")
    parser.add_argument("--per-transaction", type=int, default=ROWS_PER_TRANSACTION)
    args = parser.parse_args(argv)
    if args.url:
        run(args.url, args.rows, args.rounds, args.per_transaction)
        return 0
    from obelisk.testing.pg_server import PostgresNotFoundError, PostgresServer

    try:
        with PostgresServer(durable=True) as server:
            print(f"started a throwaway PostgreSQL server ({server.bindir})")
            run(server.url(), args.rows, args.rounds, args.per_transaction)
    except PostgresNotFoundError as error:
        print(error, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
