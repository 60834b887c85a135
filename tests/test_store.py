"""Tests of obelisk/store: durability, group commit, backpressure, queries, codecs, schema.

Most tests run on both backends (the ``backend`` fixture): a SQLite file, and a
fresh database on a real, throwaway PostgreSQL server (tests/pg_server.py). The
tests of SQLite's file itself (unlinked or replaced, WAL and pragmas, query plans,
schema) stay SQLite-only; PostgreSQL's own are in tests/test_store_postgres.py.
"""

import importlib.machinery
import os
import re
import selectors
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import types
import zlib
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path

import numpy as np
import orjson
import pytest

from obelisk.errors import ObeliskError
from obelisk.store import (
    SCHEMA_VERSION,
    SQLiteTraceStore,
    Trace,
    TraceConfigError,
    TraceFallbackError,
    TraceQueueFullError,
    TraceSchemaError,
    TraceStore,
    TraceStoreError,
    UnknownTraceError,
    fallback_path,
    read_fallback,
)
from obelisk.store import queue as queue_module
from obelisk.store.codec import RAW, ZLIB, ZSTD, zstd_available
from obelisk.store.fallback import append_rows, replay_fallback
from obelisk.store.ids import (
    WRITER_SHIFT,
    first_id_of_ms,
    ms_of_id,
    ms_of_writer_id,
    next_id,
    writer_id_source,
    writer_of_id,
)
from obelisk.store.sqlite import connect

REPO = Path(__file__).resolve().parent.parent
LARGE = {"levels": [{"px": f"{64000 + i}.5", "sz": "1.25", "n": i} for i in range(200)]}
LAZY = {"batch_size": 10_000, "batch_flush_ms": 3_600_000}  # the writer waits for a flush
CHILD_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


class Backend:
    """How a test reaches its database: stores on it, what is stored, a write lock held."""

    name: str
    location: str           # what TraceStore is given
    fallback: str           # the fallback file of the stores opened on it
    locked_text: str        # in the error of a write that found the traces locked
    disk_full_text: str     # in the error of :meth:`disk_full`

    def store(self, **settings) -> TraceStore:
        return TraceStore(self.location, **settings)

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Every row of `sql` (with ``?`` for each parameter), on a connection of its own."""
        raise NotImplementedError

    def execute(self, sql: str, params: tuple = ()) -> None:
        raise NotImplementedError

    def write_locked(self):
        """A context in which another connection holds the traces' write lock."""
        raise NotImplementedError

    @property
    def driver_error(self) -> type[Exception]:
        raise NotImplementedError

    def disk_full(self) -> Exception:
        """The error this database's driver raises when the disk is full."""
        raise NotImplementedError

    def ms_of_id(self, trace_id: int) -> int:
        raise NotImplementedError

    def next_id(self, last_id: int, now_ms: int) -> int:
        """The id a store issues after `last_id` at `now_ms` (same writer, on PostgreSQL)."""
        raise NotImplementedError

    def stored_ids(self) -> list[int]:
        return [trace_id for (trace_id,) in self.rows("SELECT id FROM traces ORDER BY id")]

    def reopened_ids(self) -> list[int]:
        """The ids stored once a store opened the database (and replayed its fallback)."""
        with self.store():
            pass
        return self.stored_ids()


class SQLiteBackend(Backend):
    name = "sqlite"
    locked_text = "database is locked"
    disk_full_text = "disk is full"
    driver_error = sqlite3.OperationalError

    def __init__(self, path: str) -> None:
        self.location = path
        self.fallback = fallback_path(path)

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        with closing(sqlite3.connect(self.location)) as conn:
            return conn.execute(sql, params).fetchall()

    def execute(self, sql: str, params: tuple = ()) -> None:
        with closing(sqlite3.connect(self.location)) as conn, conn:
            conn.execute(sql, params)

    @contextmanager
    def write_locked(self) -> Iterator[None]:
        conn = sqlite3.connect(self.location, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()

    def disk_full(self) -> Exception:
        return sqlite3.OperationalError("database or disk is full")

    def ms_of_id(self, trace_id: int) -> int:
        return ms_of_id(trace_id)

    def next_id(self, last_id: int, now_ms: int) -> int:
        return next_id(last_id, now_ms)


class PostgresBackend(Backend):
    name = "postgres"
    locked_text = "lock timeout"
    disk_full_text = "No space left"

    def __init__(self, url: str) -> None:
        import psycopg

        from obelisk.store.postgres import default_fallback_path

        self.location = url
        with psycopg.connect(url) as conn:
            self.fallback = default_fallback_path(conn.info)

    @property
    def driver_error(self) -> type[Exception]:
        import psycopg

        return psycopg.OperationalError

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.location) as conn:
            return conn.execute(sql.replace("?", "%s"), params).fetchall()

    def execute(self, sql: str, params: tuple = ()) -> None:
        import psycopg

        with psycopg.connect(self.location) as conn:
            conn.execute(sql.replace("?", "%s"), params)

    @contextmanager
    def write_locked(self) -> Iterator[None]:
        import psycopg

        with psycopg.connect(self.location) as conn:
            conn.execute("LOCK TABLE traces IN EXCLUSIVE MODE")    # reads still go through
            yield
            conn.rollback()

    def disk_full(self) -> Exception:
        import psycopg

        return psycopg.errors.DiskFull("could not extend file: No space left on device")

    def ms_of_id(self, trace_id: int) -> int:
        return ms_of_writer_id(trace_id)

    def next_id(self, last_id: int, now_ms: int) -> int:
        return writer_id_source(writer_of_id(last_id))(last_id, now_ms)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path: Path, monkeypatch) -> Backend:
    if request.param == "sqlite":
        return SQLiteBackend(str(tmp_path / "traces.db"))
    url = request.getfixturevalue("pg_url")
    monkeypatch.chdir(tmp_path)                 # where the fallback file goes by default
    return PostgresBackend(url)


sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture
def db(backend: Backend) -> str:
    return backend.location


@pytest.fixture
def open_store(backend: Backend):
    """Open stores on the backend's database, closed at teardown if a test left them open."""
    opened: list[TraceStore] = []

    def make(**settings) -> TraceStore:
        opened.append(backend.store(**settings))
        return opened[-1]

    yield make
    for store in opened:
        with suppress(TraceStoreError):
            store.close()


def eventually(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.002)


@pytest.fixture
def deadline(monkeypatch) -> Callable[[int], None]:
    """Set the write deadline (ms) of the stores opened next, through its variable."""
    return lambda ms: monkeypatch.setenv("TRACE_WRITE_DEADLINE_MS", str(ms))


class FailingInserts:
    """The writer's real insert, except that it raises `error` while `failing` is set."""

    def __init__(self, insert: Callable, error: Exception) -> None:
        self._insert = insert
        self.error = error
        self.failing = True
        self.attempts: list[float] = []

    def __call__(self, rows) -> None:
        self.attempts.append(time.monotonic())
        if self.failing:
            raise self.error
        self._insert(rows)


def failing_writes(store: TraceStore, backend: Backend) -> FailingInserts:
    """Make the inserts of `store`'s writer fail like a full disk, until told otherwise."""
    inserts = FailingInserts(store._writer._insert, backend.disk_full())
    store._writer._insert = inserts
    return inserts



# ids


def test_next_id_is_time_prefixed_and_strictly_increasing():
    assert next_id(0, 1_000) == first_id_of_ms(1_000)
    assert ms_of_id(next_id(0, 1_000)) == 1_000
    burst = first_id_of_ms(1_000) + 65_535
    assert next_id(burst, 1_000) == burst + 1  # the 65,537th id of a millisecond
    assert next_id(first_id_of_ms(1_000), 999) == first_id_of_ms(1_000) + 1  # clock stepped back


def test_ids_increase_when_the_wall_clock_steps_back(open_store, monkeypatch, backend):
    clock = iter([5_000_000_000, 4_000_000_000, 3_000_000_000, 6_000_000_000])
    monkeypatch.setattr(queue_module, "time_ns", lambda: next(clock))
    store = open_store(**LAZY)
    ids = [store.record("tick", i) for i in range(4)]
    assert ids == sorted(set(ids))
    assert backend.ms_of_id(ids[0]) == 5_000 and backend.ms_of_id(ids[3]) == 6_000


def test_ids_strictly_increase_across_threads(open_store, backend):
    store = open_store(batch_size=500)
    per_thread: dict[int, list[int]] = {}

    def worker(n: int) -> None:
        per_thread[n] = [store.record("tick", {"t": n, "i": i}, asset=f"A{n}")
                         for i in range(2_000)]

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for ids in per_thread.values():
        assert ids == sorted(set(ids))
    every = sorted(i for ids in per_thread.values() for i in ids)
    assert len(set(every)) == 8_000
    store.flush()
    assert backend.stored_ids() == every


def test_writer_ids_carry_the_writer_number_and_strictly_increase():
    of_writer_5 = writer_id_source(5)
    first = of_writer_5(0, 1_000)
    assert (ms_of_writer_id(first), writer_of_id(first)) == (1_000, 5)
    burst = first + (2_047 << 10)                   # the 2,048th id of the millisecond
    assert of_writer_5(burst, 1_000) == (1_001 << WRITER_SHIFT) | 5     # borrows the next ms
    assert of_writer_5(first, 999) == first + (1 << 10)             # the clock stepped back
    of_writer_9 = writer_id_source(9, after=first)  # a new number, above the old holder's ids
    assert of_writer_9(0, 10) > first and writer_of_id(of_writer_9(0, 10)) == 9
    assert of_writer_9(first, 1_000) > first     # the store's own earlier ids had number 5
    with pytest.raises(ValueError):
        writer_id_source(1 << 10)


def test_reopened_store_continues_after_the_largest_stored_id(open_store, backend,
                                                              monkeypatch):
    first = open_store()
    last = first.record("tick", 1, durable=True)
    first.close()
    monkeypatch.setattr(queue_module, "time_ns", lambda: 1_000_000)  # a clock far behind
    assert open_store().record("tick", 2) == backend.next_id(last, 1) > last


# recording, durability, group commit


def test_record_round_trips_fields_and_payload(open_store):
    store = open_store()
    payload = {"px": "64321.5", "sz": 0.01, "ok": True, "fills": [1, 2], "n": None,
               "qty": np.float64(1.5), "lots": np.int64(3)}
    trace_id = store.record("fill", payload, asset="BTC", order_id=77, cloid="0xab", ts=123)
    store.flush()
    assert store.get(trace_id) == Trace(trace_id, 123, "fill", "BTC", 77, "0xab",
                                        {**payload, "qty": 1.5, "lots": 3})


def test_nan_and_infinity_in_a_payload_read_back_as_none(open_store):
    # JSON has no such numbers; what record() documents, kept so a codec change shows.
    store = open_store()
    trace_id = store.record("fill", {"px": float("nan"), "fees": np.array([1.0, np.inf]),
                                     "pnl": -float("inf")})
    store.flush()
    assert store.get(trace_id).payload == {"px": None, "fees": [1.0, None], "pnl": None}


def test_record_defaults_ts_to_the_ms_of_its_id(open_store, backend):
    store = open_store()
    trace_id = store.record("tick", [1, 2, 3], durable=True)
    trace = store.get(trace_id)
    assert trace.ts == backend.ms_of_id(trace_id)
    assert (trace.asset, trace.order_id, trace.cloid, trace.payload) == (None, None, None,
                                                                         [1, 2, 3])


def test_record_serializes_at_once(open_store):
    store = open_store(**LAZY)
    payload = {"step": 1}
    trace_id = store.record("decision", payload)
    payload["step"] = 2
    assert store.get(trace_id).payload == {"step": 1}


@pytest.mark.parametrize("bad", [
    {"kind": ""}, {"kind": 3}, {"asset": 1}, {"cloid": b"x"}, {"order_id": "12"},
    {"order_id": 1 << 63}, {"ts": 1.5}, {"ts": True}, {"order_id": False},
])
def test_record_rejects_bad_fields_and_queues_nothing(open_store, bad):
    store = open_store(**LAZY)
    fields = {"kind": "tick", **bad}
    kind = fields.pop("kind")
    with pytest.raises(TypeError):
        store.record(kind, {}, **fields)
    assert store.pending == 0


def test_record_rejects_unserializable_payload(open_store):
    store = open_store(**LAZY)
    with pytest.raises(TypeError):
        store.record("tick", {"x": object()})
    assert store.pending == 0


def test_durable_record_is_committed_when_it_returns(open_store, backend):
    store = open_store(**LAZY)
    queued = store.record("tick", 1)
    durable = store.record("tick", 2, durable=True)
    assert backend.stored_ids() == [queued, durable]
    assert store.pending == 0


def test_wait_commits_up_to_the_id_and_times_out_while_blocked(open_store, backend):
    store = open_store(busy_timeout_ms=10_000, **LAZY)
    first = store.record("tick", 1)
    assert store.wait(first) is True
    assert backend.stored_ids() == [first]
    second = store.record("tick", 2)
    with backend.write_locked():
        assert store.wait(second, timeout=0.05) is False
    assert store.wait(second, timeout=5) is True
    with pytest.raises(ValueError):
        store.wait(second + 10)


def test_a_full_batch_commits_without_a_flush(open_store, backend):
    store = open_store(batch_size=10, batch_flush_ms=3_600_000)
    ids = [store.record("tick", i) for i in range(25)]
    eventually(lambda: len(backend.stored_ids()) == 20)
    assert backend.stored_ids() == ids[:20]
    assert store.pending == 5


def test_an_old_batch_commits_without_a_flush(open_store, backend):
    store = open_store(batch_size=10_000, batch_flush_ms=30)
    trace_id = store.record("tick", 1)
    eventually(lambda: backend.stored_ids() == [trace_id])


def test_close_flushes_and_refuses_new_traces(backend):
    with backend.store(**LAZY) as store:
        ids = [store.record("tick", i) for i in range(10)]
    assert backend.stored_ids() == ids
    with pytest.raises(TraceStoreError):
        store.record("tick", 11)
    store.close()


# backpressure


def test_full_queue_blocks_then_raises_after_the_timeout(open_store, backend):
    store = open_store(batch_size=5, queue_size=10, block_timeout=0.1, busy_timeout_ms=10_000)
    with backend.write_locked():
        ids = [store.record("tick", i) for i in range(10)]
        started = time.monotonic()
        with pytest.raises(TraceQueueFullError):
            store.record("tick", 10)
        assert time.monotonic() - started >= 0.1
        assert store.pending == 10
    store.flush()
    assert backend.stored_ids() == ids


def test_full_queue_blocks_until_the_writer_makes_room(open_store, backend):
    store = open_store(batch_size=5, queue_size=10, busy_timeout_ms=10_000)
    late: list[int] = []
    with backend.write_locked():
        ids = [store.record("tick", i) for i in range(10)]
        blocked = threading.Thread(target=lambda: late.append(store.record("tick", 10)))
        blocked.start()
        blocked.join(0.05)
        assert blocked.is_alive() and not late
    blocked.join(5)
    assert not blocked.is_alive()
    store.flush()
    assert backend.stored_ids() == ids + late


def test_full_queue_raises_at_once_with_on_full_raise(open_store, backend):
    store = open_store(batch_size=5, queue_size=10, on_full="raise", busy_timeout_ms=10_000)
    with backend.write_locked():
        ids = [store.record("tick", i) for i in range(10)]
        with pytest.raises(TraceQueueFullError) as raised:
            store.record("tick", 10)
        assert isinstance(raised.value, ObeliskError)
    store.flush()
    assert backend.stored_ids() == ids


# writer failures


def test_writer_failure_is_reported_and_the_rows_are_retried(open_store, backend):
    store = open_store(busy_timeout_ms=0, retry_ms=20, **LAZY)
    durable = store.record("tick", 0, durable=True)
    with backend.write_locked():
        queued = [store.record("tick", i) for i in range(1, 4)]
        with pytest.raises(TraceStoreError) as raised:
            store.flush()
        assert isinstance(raised.value.__cause__, backend.driver_error)
        with pytest.raises(TraceStoreError):
            store.record("tick", 4)
        assert store.pending == 3
    eventually(lambda: store.pending == 0)
    store.flush()
    assert backend.stored_ids() == [durable, *queued]


def test_writer_that_cannot_write_loses_no_acknowledged_trace(open_store, backend, monkeypatch,
                                                              deadline):
    deadline(100)
    store = open_store(retry_ms=10, **LAZY)
    durable = [store.record("fill", i, durable=True) for i in range(3)]

    def disk_full(batch):
        raise backend.disk_full()

    monkeypatch.setattr(store._writer, "write", disk_full)
    queued = [store.record("fill", i) for i in range(3, 6)]
    with pytest.raises(TraceStoreError, match=backend.disk_full_text):
        store.flush()
    with pytest.raises(TraceFallbackError, match=re.escape(backend.fallback)) as raised:
        store.close()
    assert (raised.value.path, raised.value.count) == (backend.fallback, 3)
    assert store.pending == 0
    assert backend.stored_ids() == durable
    assert [t.id for t in read_fallback(backend.fallback)] == queued
    assert backend.reopened_ids() == durable + queued
    assert not os.path.exists(backend.fallback)


def test_writer_recovers_once_the_disk_works_again(open_store, backend, monkeypatch):
    store = open_store(retry_ms=10, **LAZY)
    write = store._writer.write
    failures = iter([backend.disk_full()])

    def flaky(batch):
        error = next(failures, None)
        if error is not None:
            raise error
        write(batch)

    monkeypatch.setattr(store._writer, "write", flaky)
    ids = [store.record("fill", i) for i in range(5)]
    with pytest.raises(TraceStoreError):
        store.flush()
    eventually(lambda: store.pending == 0)
    assert store.flush() is True
    assert backend.stored_ids() == ids


def test_a_write_that_keeps_failing_goes_to_the_fallback_file_at_the_deadline(
        open_store, backend, deadline, caplog):
    deadline(300)
    store = open_store(retry_ms=10, **LAZY)
    durable = store.record("fill", {"n": 0}, asset="BTC", durable=True)
    inserts = failing_writes(store, backend)
    queued = [store.record("fill", {"n": n, "px": "64321.5"}, asset="ETH", order_id=n,
                           cloid=f"0x{n:032x}", ts=1_000 + n) for n in range(1, 4)]
    with pytest.raises(TraceStoreError, match=backend.disk_full_text):
        store.flush()
    eventually(lambda: store.pending == 0)
    fallback = backend.fallback
    assert read_fallback(fallback) == [
        Trace(i, 1_000 + n, "fill", "ETH", n, f"0x{n:032x}", {"n": n, "px": "64321.5"})
        for n, i in enumerate(queued, 1)]
    assert fallback in caplog.text                          # the ERROR names the file
    for refused in (lambda: store.record("fill", 4), store.flush, lambda: store.wait(queued[0]),
                    store.close):
        with pytest.raises(TraceFallbackError, match=re.escape(fallback)) as raised:
            refused()
        assert isinstance(raised.value.__cause__, backend.driver_error)
    assert len(inserts.attempts) >= 2                       # retried before it gave up
    assert backend.stored_ids() == [durable]
    assert backend.reopened_ids() == [durable, *queued]     # the reopened store replays the file
    assert not os.path.exists(fallback)


def test_failed_writes_are_retried_with_a_doubling_wait_until_the_deadline(open_store, backend,
                                                                            deadline):
    deadline(700)
    store = open_store(retry_ms=10, **LAZY)
    inserts = failing_writes(store, backend)
    store.record("tick", 1)
    with pytest.raises(TraceStoreError):
        store.flush()
    eventually(lambda: store.pending == 0)
    gaps = np.diff(inserts.attempts)
    # 10, 20, 40, 80, 160, 320 ms, then the last attempt on the deadline: 8 attempts, where
    # a constant 10 ms wait would make 70
    assert 3 <= len(inserts.attempts) <= 10
    assert all(gap >= 0.009 * 2 ** i for i, gap in enumerate(gaps[:5]))
    assert inserts.attempts[-1] - inserts.attempts[0] >= 0.69


def test_close_retries_until_the_database_takes_the_rows(open_store, backend, deadline):
    deadline(10_000)
    store = open_store(busy_timeout_ms=0, retry_ms=10, **LAZY)
    errors: list[BaseException] = []

    def close() -> None:
        try:
            store.close()
        except BaseException as error:
            errors.append(error)

    closer = threading.Thread(target=close)
    with backend.write_locked():
        ids = [store.record("tick", i) for i in range(5)]
        closer.start()
        closer.join(0.3)                    # the first writes of the close fail on the lock
        assert closer.is_alive() and not errors
    closer.join(10)
    assert not closer.is_alive() and errors == []
    assert backend.stored_ids() == ids
    assert not os.path.exists(backend.fallback)


def test_close_spills_the_queue_when_the_database_stays_locked(open_store, backend, deadline):
    deadline(200)
    store = open_store(busy_timeout_ms=0, retry_ms=10, **LAZY)
    first = store.record("tick", 0, durable=True)
    with backend.write_locked():
        ids = [store.record("tick", i) for i in range(1, 6)]
        with pytest.raises(TraceFallbackError, match=re.escape(backend.fallback)) as raised:
            store.close()
    assert raised.value.count == 5
    assert backend.locked_text in str(raised.value)
    assert [t.id for t in read_fallback(backend.fallback)] == ids
    assert backend.reopened_ids() == [first, *ids]


@sqlite_only
def test_an_unlinked_database_file_is_not_written_as_an_orphan(open_store, db, deadline,
                                                               backend):
    deadline(200)
    store = open_store(retry_ms=10, **LAZY)
    store.record("tick", 0, durable=True)
    os.unlink(db)
    ids = [store.record("tick", i) for i in range(1, 4)]
    with pytest.raises(TraceStoreError, match="deleted"):
        store.flush()
    eventually(lambda: store.pending == 0)
    with pytest.raises(TraceFallbackError, match="deleted"):
        store.close()
    assert [t.id for t in read_fallback(backend.fallback)] == ids
    assert backend.reopened_ids() == ids              # a new database at the path, from the file


@sqlite_only
def test_a_replaced_database_file_is_not_written_as_an_orphan(open_store, db, deadline,
                                                             tmp_path, backend):
    deadline(200)
    store = open_store(retry_ms=10, **LAZY)
    first = store.record("tick", 0, durable=True)
    backup = str(tmp_path / "backup.db")
    with closing(sqlite3.connect(db)) as source, closing(sqlite3.connect(backup)) as copy:
        source.backup(copy)
    os.replace(backup, db)                      # e.g. a restore from a backup
    ids = [store.record("tick", i) for i in range(1, 4)]
    with pytest.raises(TraceStoreError, match="replaced"):
        store.flush()
    eventually(lambda: store.pending == 0)
    with pytest.raises(TraceFallbackError, match="replaced"):
        store.close()
    assert [t.id for t in read_fallback(backend.fallback)] == ids
    assert backend.reopened_ids() == [first, *ids]


def flush_error(store: TraceStore) -> str:
    """What flush() reports right now ("" if it does not raise)."""
    try:
        store.flush(timeout=0)
    except TraceStoreError as error:
        return str(error)
    return ""


def test_traces_stay_queued_while_the_fallback_file_fails_too(open_store, backend, deadline):
    deadline(50)
    store = open_store(retry_ms=10, **LAZY)
    os.mkdir(backend.fallback)                  # nothing can be written at that path
    inserts = failing_writes(store, backend)
    ids = [store.record("tick", i) for i in range(3)]
    eventually(lambda: "so did appending them to the fallback file" in flush_error(store))
    assert store.pending == 3
    inserts.failing = False                     # the database works again
    eventually(lambda: store.pending == 0, timeout=10)     # retries are 4 s apart at most
    assert store.flush() is True
    assert backend.stored_ids() == ids


def test_traces_go_to_the_log_when_nothing_can_be_written_at_close(open_store, backend,
                                                                   deadline, caplog):
    deadline(50)
    store = open_store(retry_ms=10, **LAZY)
    os.mkdir(backend.fallback)
    failing_writes(store, backend)
    ids = [store.record("tick", {"n": i}) for i in range(3)]
    eventually(lambda: "fallback file" in flush_error(store))
    with pytest.raises(TraceStoreError, match="logged at CRITICAL"):
        store.close()
    (logged,) = [r for r in caplog.records if r.levelname == "CRITICAL"]
    lines = logged.getMessage().splitlines()[1:]
    assert [orjson.loads(line)["id"] for line in lines] == ids
    assert [orjson.loads(line)["payload"] for line in lines] == [{"n": i} for i in range(3)]


@pytest.mark.parametrize(("backend", "cause"), [("sqlite", "locked"), ("sqlite", "unlinked"),
                                               ("postgres", "locked")], indirect=["backend"])
def test_traces_queued_when_the_process_exits_reach_the_fallback_file(db, cause, backend):
    """The exit hook's last write fails: the rows go to the fallback file, an ERROR names it."""
    env = {**CHILD_ENV, "TRACE_WRITE_DEADLINE_MS": "300"}
    child = subprocess.Popen([sys.executable, str(REPO / "tests" / "store_child.py"), db, "exit"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env, cwd=os.getcwd())
    try:
        queued = [int(i) for i in child.stdout.readline().split()[1:]]
        assert len(queued) == 5, child.stderr.read()
        if cause == "locked":
            with backend.write_locked():
                _, stderr = child.communicate("exit\n", timeout=30)
        else:
            _, stderr = child.communicate("unlink\n", timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert backend.fallback in stderr, stderr
    assert [t.id for t in read_fallback(backend.fallback)] == queued
    assert set(queued) <= set(backend.reopened_ids())


def test_an_error_while_taking_a_batch_is_a_failed_write_not_a_dead_writer(backend, monkeypatch):
    store = backend.store(retry_ms=10, **LAZY)
    try:
        ids = [store.record("tick", i) for i in range(3)]
        failures = iter([MemoryError()])

        def islice(rows, count):
            error = next(failures, None)
            if error is not None:
                raise error
            return queue_module.islice.__wrapped__(rows, count)

        islice.__wrapped__ = queue_module.islice
        monkeypatch.setattr(queue_module, "islice", islice)
        with pytest.raises(TraceStoreError, match="MemoryError"):
            store.flush(timeout=5)
        eventually(lambda: store.pending == 0)
        assert backend.stored_ids() == ids
    finally:
        if store._writer._thread.is_alive():   # a dead writer would make close() wait forever
            store.close()


def test_a_base_exception_from_a_write_is_a_failed_write_not_a_dead_writer(backend):
    store = backend.store(retry_ms=10, compress_above=0, compression="zlib", **LAZY)
    try:
        compress = store._writer._compress
        failures = iter([SystemExit(3)])

        def flaky(data: bytes) -> bytes:
            error = next(failures, None)
            if error is not None:
                raise error
            return compress(data)

        store._writer._compress = flaky
        ids = [store.record("book", LARGE) for _ in range(3)]
        with pytest.raises(TraceStoreError, match="SystemExit"):
            store.flush(timeout=5)
        eventually(lambda: store.pending == 0)
        assert backend.stored_ids() == ids
    finally:
        if store._writer._thread.is_alive():
            store.close()


def test_a_fault_in_the_writer_itself_hands_the_queue_to_the_fallback_file(backend,
                                                                            monkeypatch):
    store = backend.store(**LAZY)
    ids = [store.record("tick", i) for i in range(3)]
    monkeypatch.setattr(store._queue, "committed", lambda count: 1 / 0)
    with pytest.raises(TraceFallbackError, match="ZeroDivisionError"):
        store.flush(timeout=5)
    with pytest.raises(TraceFallbackError):
        store.close()
    assert [t.id for t in read_fallback(backend.fallback)] == ids
    assert backend.reopened_ids() == ids    # committed and in the file: replayed once, no conflict


def test_a_rollback_that_failed_does_not_wedge_the_writer(open_store, backend):
    store = open_store(retry_ms=10, **LAZY)
    conn = store._writer._conn
    store.record("tick", 0, durable=True)
    conn.execute("BEGIN")                       # what a failed ROLLBACK leaves behind
    ids = [store.record("tick", i) for i in range(1, 3)]
    assert store.flush(timeout=5) is True
    assert backend.stored_ids()[1:] == ids


def test_record_refuses_text_the_databases_cannot_store(open_store):
    store = open_store(**LAZY)
    for fields in ({"kind": "fill\ud800"}, {"asset": "\udcff"}, {"cloid": "0x\ud83d"},
                   {"kind": "fill\0"}, {"asset": "BT\0C"}, {"cloid": "\0"},
                   {"asset": "É\0"}):
        kind = fields.pop("kind", "fill")
        with pytest.raises(ValueError, match="Unicode"):
            store.record(kind, 1, **fields)
    assert store.pending == 0
    trace_id = store.record("fill", {"coin": "kPEPE"}, asset="ÉTH", cloid="ü", durable=True)
    assert store.get(trace_id).asset == "ÉTH"


# the fallback file


def test_replay_skips_traces_already_stored_and_refuses_a_conflicting_one(backend):
    with backend.store() as store:
        stored = store.record("fill", {"px": "1.5"}, durable=True)
    row = (stored, backend.ms_of_id(stored), "fill", None, None, None, RAW, b'{"px":"1.5"}')
    late = (stored + 1, 5, "order", "BTC", 7, None, RAW, b"[1,2]")
    append_rows(backend.fallback, [row, late])
    assert backend.reopened_ids() == [stored, stored + 1]
    append_rows(backend.fallback, [(*row[:7], b'{"px":"9.9"}')])
    with pytest.raises(TraceStoreError, match=f"trace {stored} .* differs"):
        backend.store()
    assert os.path.exists(backend.fallback)


def test_the_fallback_file_is_json_lines_and_a_cut_last_line_is_skipped(backend):
    rows = [(10, 1, "fill", "BTC", 3, None, RAW, b'{"px":"1.5"}'),
            (11, 2, "order", None, None, "0xab", RAW, b"[1]")]
    append_rows(backend.fallback, rows)
    with open(backend.fallback, "ab") as file:
        file.write(b'{"id":12,"ts":3,"kind":"fi')        # a spill the process died in
    with open(backend.fallback, "rb") as file:
        first = orjson.loads(file.readline())
    assert first == {"id": 10, "ts": 1, "kind": "fill", "asset": "BTC", "order_id": 3,
                     "cloid": None, "payload": {"px": "1.5"}}
    assert [t.id for t in read_fallback(backend.fallback)] == [10, 11]
    with backend.store() as store:
        assert store.get(11) == Trace(11, 2, "order", None, None, "0xab", [1])


@pytest.mark.skipif(sys.platform == "win32", reason="the fallback file is locked with flock")
def test_traces_appended_while_a_replay_runs_are_kept_for_the_next(tmp_path):
    """Stores of several processes may share a fallback file: a replay holds its lock, so
    an append waits, then finds the file gone and starts a new one; nothing is lost."""
    path = str(tmp_path / "shared-fallback.jsonl")
    early = (10, 1, "fill", "BTC", 3, None, RAW, b"1")
    late = (11, 2, "fill", "ETH", 4, None, RAW, b"2")
    append_rows(path, [early])
    appender = threading.Thread(target=append_rows, args=(path, [late]))
    replayed: list[list[int]] = []

    def insert_rows(rows) -> int:
        appender.start()
        appender.join(0.2)
        assert appender.is_alive()                  # waits for the replay's lock
        replayed.append([row[0] for row in rows])
        return len(rows)

    assert replay_fallback(path, insert_rows) == 1
    appender.join(5)
    assert replayed == [[10]]
    assert [t.id for t in read_fallback(path)] == [11]


# compression


def codecs() -> list:
    zstd = pytest.param("zstd", marks=pytest.mark.skipif(not zstd_available(),
                                                         reason="zstandard is not installed"))
    return ["zlib", zstd]


@pytest.mark.parametrize("compression", codecs())
def test_payloads_round_trip_raw_below_and_compressed_above_the_threshold(open_store, backend,
                                                                          compression):
    store = open_store(compression=compression, compress_above=1024)
    small = {"px": "64321.5", "sz": "0.01"}
    ids = [store.record("book", small), store.record("book", LARGE)]
    store.flush()
    stored = dict(backend.rows("SELECT id, codec FROM traces"))
    [(blob,)] = backend.rows("SELECT payload FROM traces WHERE id = ?", (ids[1],))
    assert stored == {ids[0]: RAW, ids[1]: {"zlib": ZLIB, "zstd": ZSTD}[compression]}
    assert len(blob) < len(orjson.dumps(LARGE)) // 2
    assert [t.payload for t in store.query()] == [small, LARGE]


def test_payload_that_compression_would_grow_is_stored_raw(open_store, backend):
    store = open_store(compression="zlib", compress_above=0)
    trace_id = store.record("tick", 7, durable=True)
    assert backend.rows("SELECT codec, payload FROM traces") == [(RAW, b"7")]
    assert store.get(trace_id).payload == 7


def test_rows_of_both_codecs_read_back_in_one_database(backend):
    with backend.store(compression="zlib", compress_above=0) as store:
        packed = store.record("book", LARGE)
    backend.execute("INSERT INTO traces (id, ts, kind, payload, codec) VALUES (1, 1, 'raw', ?, 0)",
                    (orjson.dumps([1]),))
    backend.execute("INSERT INTO traces (id, ts, kind, payload, codec) VALUES (2, 1, 'z', ?, 1)",
                    (zlib.compress(b'{"a":1}'),))
    with backend.store() as store:
        assert [store.get(i).payload for i in (1, 2, packed)] == [[1], {"a": 1}, LARGE]


@pytest.fixture
def stand_in_zstandard(monkeypatch):
    """A ``zstandard`` module backed by zlib, to check the codec choice where zstd is absent."""
    if zstd_available():
        pytest.skip("the real zstandard is installed; the codec tests above cover it")
    module = types.ModuleType("zstandard")
    module.__spec__ = importlib.machinery.ModuleSpec("zstandard", None)

    class ZstdCompressor:
        def __init__(self, level: int) -> None:
            assert level == 3

        def compress(self, data: bytes) -> bytes:
            return b"zstd" + zlib.compress(data)

    class ZstdDecompressor:
        def decompress(self, blob: bytes) -> bytes:
            assert blob.startswith(b"zstd")
            return zlib.decompress(blob[4:])

    module.ZstdCompressor, module.ZstdDecompressor = ZstdCompressor, ZstdDecompressor
    monkeypatch.setitem(sys.modules, "zstandard", module)
    return monkeypatch


def test_zstd_is_preferred_when_importable(stand_in_zstandard, backend):
    with backend.store() as store:
        trace_id = store.record("book", LARGE)
    assert backend.rows("SELECT codec FROM traces") == [(ZSTD,)]
    with backend.store() as store:
        assert store.get(trace_id).payload == LARGE
    stand_in_zstandard.delitem(sys.modules, "zstandard")
    with backend.store() as store, pytest.raises(TraceStoreError, match="zstandard"):
        store.get(trace_id)
    with pytest.raises(TraceConfigError):
        backend.store(compression="zstd")


def test_unknown_compression_is_rejected(backend):
    with pytest.raises(TraceConfigError):
        backend.store(compression="lz4")


# queries


@pytest.fixture
def filled(open_store):
    """12 traces over 3 kinds, 2 assets and ts 0..11, committed."""
    store = open_store()
    for ts in range(12):
        store.record(("order", "fill", "decision")[ts % 3], {"ts": ts},
                     asset=("BTC", "ETH")[ts % 2], order_id=100 + ts // 3,
                     cloid=f"0x{ts:032x}" if ts % 4 == 0 else None, ts=ts)
    store.flush()
    return store


def payload_ts(traces) -> list[int]:
    return [t.payload["ts"] for t in traces]


def test_query_by_time_range_kind_and_asset(filled):
    assert payload_ts(filled.query()) == list(range(12))
    assert payload_ts(filled.query(start=3, end=7)) == [3, 4, 5, 6]
    assert payload_ts(filled.query(kind="fill")) == [1, 4, 7, 10]
    assert payload_ts(filled.query(asset="ETH", start=4)) == [5, 7, 9, 11]
    assert payload_ts(filled.query(kind="order", asset="BTC")) == [0, 6]
    assert list(filled.query(kind="cancel")) == []


def test_query_by_order_id_and_cloid(filled):
    assert payload_ts(filled.query(order_id=102)) == [6, 7, 8]
    assert payload_ts(filled.query(cloid=f"0x{8:032x}")) == [8]
    assert [t.cloid for t in filled.query(order_id=100)] == [f"0x{0:032x}", None, None]


def test_query_limit_and_order(filled):
    assert payload_ts(filled.query(limit=3)) == [0, 1, 2]
    assert payload_ts(filled.query(kind="order", descending=True, limit=2)) == [9, 6]
    assert list(filled.query(limit=0)) == []
    with pytest.raises(ValueError):
        filled.query(limit=-1)


@pytest.mark.parametrize(("filters", "index"), [
    ({"kind": "fill", "start": 3}, "traces_kind_ts"),
    ({"asset": "BTC", "start": 3, "end": 9}, "traces_asset_ts"),
    ({"order_id": 7}, "traces_order_ts"),
    ({"cloid": "0xab"}, "traces_cloid_ts"),
    ({"start": 3, "end": 9}, "traces_ts"),
])
@sqlite_only
def test_queries_are_served_by_their_index(filled, filters, index):
    plan = " ".join(filled.query_plan(**filters))
    assert f"USING INDEX {index}" in plan
    assert "TEMP B-TREE" not in plan


def test_query_records_is_a_structured_array(filled):
    records = filled.query_records(asset="ETH", end=6)
    assert list(records.dtype.names) == ["id", "ts", "kind", "asset", "order_id"]
    assert records["ts"].tolist() == [1, 3, 5]
    assert records["kind"].tolist() == ["fill", "order", "decision"]
    assert records["asset"].tolist() == ["ETH"] * 3
    assert records["order_id"].tolist() == [100, 101, 101]
    assert records["id"].tolist() == [t.id for t in filled.query(asset="ETH", end=6)]
    assert np.all(np.diff(records["id"]) > 0)


def test_query_records_marks_missing_fields_and_handles_no_rows(open_store):
    store = open_store()
    store.record("tick", 1, durable=True)
    records = store.query_records()
    assert (records["asset"][0], records["order_id"][0]) == ("", -1)
    assert len(store.query_records(kind="none")) == 0


# lookups by id


def test_get_is_cached_and_counts_hits(open_store):
    store = open_store(cache_size=2)
    ids = [store.record("tick", i) for i in range(3)]
    store.flush()
    assert store.get(ids[0]).payload == 0
    assert store.get(ids[0]) is store.get(ids[0])
    assert (store.cache_info().hits, store.cache_info().misses) == (2, 1)
    store.get(ids[1])
    store.get(ids[2])
    store.get(ids[0])
    info = store.cache_info()
    assert (info.hits, info.misses, info.maxsize, info.currsize) == (2, 4, 2, 2)


def test_get_of_a_queued_trace_commits_it_first(open_store):
    store = open_store(**LAZY)
    trace_id = store.record("tick", "queued")
    assert store.get(trace_id).payload == "queued"


def test_get_of_an_unknown_id_raises_and_is_not_cached(open_store):
    store = open_store()
    trace_id = store.record("tick", 1, durable=True)
    with pytest.raises(UnknownTraceError) as raised:
        store.get(trace_id - 1)
    assert isinstance(raised.value, KeyError)
    assert store.cache_info().currsize == 0


# settings


def test_settings_come_from_the_environment(backend, monkeypatch):
    monkeypatch.setenv("TRACE_BATCH_SIZE", "7")
    monkeypatch.setenv("TRACE_BATCH_FLUSH_MS", "250")
    monkeypatch.setenv("TRACE_CACHE_SIZE", "3")
    monkeypatch.setenv("TRACE_WRITE_DEADLINE_MS", "1500")
    with backend.store() as store:
        assert (store.batch_size, store.batch_flush_ms, store.cache_info().maxsize,
                store.write_deadline_ms) == (7, 250, 3, 1500)
    with backend.store(batch_size=9, batch_flush_ms=10, cache_size=0,
                       write_deadline_ms=0) as store:
        assert (store.batch_size, store.batch_flush_ms, store.cache_info().maxsize,
                store.write_deadline_ms) == (9, 10, 0, 0)


def test_defaults_without_environment(backend, monkeypatch):
    for name in ("TRACE_BATCH_SIZE", "TRACE_BATCH_FLUSH_MS", "TRACE_WRITE_DEADLINE_MS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRACE_CACHE_SIZE", "  ")                 # blank counts as unset
    with backend.store() as store:
        assert (store.batch_size, store.batch_flush_ms, store.cache_info().maxsize,
                store.write_deadline_ms) == (100, 5_000, 500, 10_000)


@pytest.mark.parametrize(("name", "value"), [
    ("TRACE_BATCH_SIZE", "0"), ("TRACE_BATCH_SIZE", "many"), ("TRACE_BATCH_FLUSH_MS", "-5"),
    ("TRACE_CACHE_SIZE", "1.5"), ("TRACE_WRITE_DEADLINE_MS", "-1"),
    ("TRACE_WRITE_DEADLINE_MS", "soon"),
])
def test_bad_environment_values_are_rejected(backend, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(TraceConfigError, match=name):
        backend.store()


def test_a_bad_argument_names_it_and_its_variable(backend):
    with pytest.raises(TraceConfigError, match=r"batch_flush_ms \(TRACE_BATCH_FLUSH_MS\)"):
        backend.store(batch_flush_ms=0)


@pytest.mark.parametrize("settings", [
    {"batch_size": 0}, {"queue_size": 0}, {"on_full": "drop"}, {"block_timeout": -1},
    {"compress_above": -1}, {"busy_timeout_ms": -1}, {"retry_ms": 0}, {"write_deadline_ms": -1},
])
def test_bad_arguments_are_rejected(backend, settings):
    with pytest.raises(TraceConfigError):
        backend.store(**settings)


@sqlite_only
def test_a_bad_synchronous_is_rejected(backend):
    with pytest.raises(TraceConfigError, match="synchronous"):
        backend.store(synchronous="OFF")
    assert not os.path.exists(backend.location)


def test_a_path_opens_sqlite_and_trace_store_url_names_the_database(tmp_path, monkeypatch):
    path = tmp_path / "traces.db"
    with TraceStore(path) as store:
        assert type(store) is SQLiteTraceStore and isinstance(store, TraceStore)
        assert store.path == str(path) and repr(store) == f"<SQLiteTraceStore {path}>"
    monkeypatch.setenv("TRACE_STORE_URL", str(tmp_path / "from-env.db"))
    with TraceStore(batch_size=7) as store:
        assert store.path == str(tmp_path / "from-env.db") and store.batch_size == 7
    monkeypatch.setenv("TRACE_STORE_URL", " ")
    with pytest.raises(TraceConfigError, match="TRACE_STORE_URL"):
        TraceStore()


@sqlite_only
@pytest.mark.parametrize(("synchronous", "level"), [("NORMAL", 1), ("FULL", 2)])
def test_connections_use_wal_and_the_tuned_pragmas(db, synchronous, level, backend):
    conn = connect(db, synchronous=synchronous)
    try:
        pragmas = {name: conn.execute(f"PRAGMA {name}").fetchone()[0]
                   for name in ("journal_mode", "synchronous", "cache_size", "temp_store",
                                "mmap_size")}
    finally:
        conn.close()
    assert pragmas == {"journal_mode": "wal", "synchronous": level, "cache_size": -65536,
                       "temp_store": 2, "mmap_size": 268435456}
    with backend.store(synchronous=synchronous) as store:
        store.record("tick", 1, durable=True)


# schema


def make_v1_database(path: str) -> None:
    """The version 1 layout as an older obelisk wrote it: no codec column, one index."""
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE schema_version (version INTEGER PRIMARY KEY,
                                         applied_ms INTEGER NOT NULL);
            INSERT INTO schema_version VALUES (1, 0);
            CREATE TABLE traces (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL,
                                 kind TEXT NOT NULL, asset TEXT, order_id INTEGER, cloid TEXT,
                                 payload BLOB NOT NULL);
            CREATE INDEX traces_kind_ts ON traces (kind, ts);
        """)
        conn.execute("INSERT INTO traces VALUES (5, 10, 'fill', 'BTC', 42, NULL, ?)",
                     (b'{"px":"1.5"}',))


@sqlite_only
def test_opening_a_v1_database_migrates_it(db, backend):
    make_v1_database(db)
    with backend.store() as store:
        assert store.schema_version == SCHEMA_VERSION == 2
        assert store.get(5) == Trace(5, 10, "fill", "BTC", 42, None, {"px": "1.5"})
        assert [t.id for t in store.query(order_id=42)] == [5]
        new = store.record("fill", LARGE, asset="BTC", durable=True)
        assert new > 5 and store.get(new).payload == LARGE
    with sqlite3.connect(db) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_version")]
        columns = [row[1] for row in conn.execute("PRAGMA table_info(traces)")]
        indices = {row[1] for row in conn.execute("PRAGMA index_list(traces)")}
    assert versions == [1, 2]
    assert "codec" in columns
    assert {"traces_asset_ts", "traces_order_ts", "traces_cloid_ts", "traces_ts"} <= indices


@sqlite_only
def test_a_new_database_gets_every_version(db, backend):
    with backend.store():
        pass
    with sqlite3.connect(db) as conn:
        assert [v for (v,) in conn.execute("SELECT version FROM schema_version")] == [1, 2]


@sqlite_only
def test_a_newer_schema_is_refused(db, backend):
    with backend.store():
        pass
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO schema_version VALUES (99, 0)")
    with pytest.raises(TraceSchemaError, match="99"):
        backend.store()


@sqlite_only
def test_a_traces_table_without_a_version_is_refused(db, backend):
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE traces (id INTEGER PRIMARY KEY)")
    with pytest.raises(TraceSchemaError):
        backend.store()


# crash safety


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_acknowledged_traces_survive_sigkill(db, backend):
    child = subprocess.Popen([sys.executable, str(REPO / "tests" / "store_child.py"), db,
                              "crash"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=CHILD_ENV, cwd=os.getcwd())
    durable: list[int] = []
    flushed: list[tuple[int, int]] = []
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(child.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + 10
            while len(durable) < 40 or len(flushed) < 2:
                assert time.monotonic() < deadline, "the child acknowledged too little"
                if not selector.select(timeout=0.5):
                    continue
                line = child.stdout.readline()
                assert line, f"the child exited: {child.stderr.read()}"
                what, *numbers = line.split()
                (durable.append(int(numbers[0])) if what == "durable"
                 else flushed.append((int(numbers[0]), int(numbers[1]))))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    if backend.name == "sqlite":
        assert backend.rows("PRAGMA integrity_check") == [("ok",)]
    for last_id, count in flushed:
        assert backend.rows("SELECT count(*) FROM traces WHERE id <= ?", (last_id,)) == [(count,)]
    assert set(durable) <= set(backend.stored_ids())
    with backend.store() as reopened:
        assert reopened.get(durable[-1]).payload["n"] % 50 == 0


def test_a_full_queue_is_written_at_once_not_when_the_batch_ages(open_store, backend):
    store = open_store(queue_size=5, batch_size=100, batch_flush_ms=3_600_000, on_full="raise")
    queue = store._queue
    ids = [store.record("tick", 0)]
    # The writer took in the first row and now waits an hour for it to age: from here only
    # the row that fills the queue can wake it (all five arriving at once would not show it).
    eventually(lambda: queue._writer_waiting and queue._batch_started is not None)
    ids += [store.record("tick", i) for i in range(1, 5)]
    eventually(lambda: store.pending == 0)
    assert backend.stored_ids() == ids
    store.record("tick", 5)                     # room again: no TraceQueueFullError


def test_an_append_that_fails_half_way_leaves_no_half_line(tmp_path, monkeypatch):
    # the rows stay queued and are spilled again: a fragment left in front of them would
    # make the file unreadable for every later replay (found in review)
    from obelisk.store import fallback as fallback_module

    path = str(tmp_path / "spill.jsonl")
    first, second = [(n, n, "fill", None, None, None, RAW, orjson.dumps({"n": n}))
                     for n in (1, 2)]
    append_rows(path, [first])
    write = os.write

    def half_then_full(fd, data):
        if len(data) > 10:
            write(fd, data[:10])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fallback_module.os, "write", half_then_full)
    with pytest.raises(OSError):
        append_rows(path, [second])
    monkeypatch.undo()
    append_rows(path, [second])
    assert [(t.id, t.payload) for t in read_fallback(path)] == [(1, {"n": 1}), (2, {"n": 2})]


def test_a_second_store_on_the_same_file_is_refused_until_the_first_closes(tmp_path):
    # It was accepted: both issued ids from the clock, the second one's batches failed on
    # the primary key until it spilled everything to its fallback file and stopped.
    path = tmp_path / "traces.db"
    first = TraceStore(path)
    try:
        with pytest.raises(TraceStoreError, match="another trace store is open on"):
            TraceStore(path)
        trace = first.record("tick", 1, durable=True)
    finally:
        first.close()
    again = TraceStore(path)            # the first let go of the file
    try:
        assert again.get(trace).payload == 1
    finally:
        again.close()
    assert not (tmp_path / "traces.db-fallback.jsonl").exists()
