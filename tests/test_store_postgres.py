"""Tests of the PostgreSQL trace store on a real server (tests/pg_server.py): many writers at
once, a server restarted mid-stream, a commit whose outcome was lost, writer-number leases,
refused connections that never show the password, schema migrations.

The behaviour both backends share is tested on both in tests/test_store.py.
"""

import contextlib
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from urllib.parse import quote

import orjson
import pytest
from pg_server import require_psycopg

require_psycopg()

import psycopg  # noqa: E402

from obelisk.store import (  # noqa: E402
    SCHEMA_VERSION,
    Trace,
    TraceConfigError,
    TraceFallbackError,
    TraceSchemaError,
    TraceStore,
    TraceStoreError,
    pg_writer,
    read_fallback,
)
from obelisk.store import postgres as postgres_module  # noqa: E402
from obelisk.store.ids import writer_of_id  # noqa: E402
from obelisk.store.postgres import PostgresTraceStore  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CHILD = str(REPO / "tests" / "store_child.py")
CHILD_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
LAZY = {"batch_size": 10_000, "batch_flush_ms": 3_600_000}  # the writer waits for a flush
SECRET = "s3cr3t-Pa55"


def rows(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def execute(url: str, sql: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def stored_ids(url: str) -> list[int]:
    return [trace_id for (trace_id,) in rows(url, "SELECT id FROM traces ORDER BY id")]


def with_password(url: str, password: str = SECRET) -> str:
    """`url` (of the test server, which trusts everyone) with a password in it."""
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{password}@", 1)


def eventually(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# many writers


def test_four_processes_writing_at_once_get_unique_ids_and_lose_none(pg_url, tmp_path):
    count = 3_000
    children = [subprocess.Popen([sys.executable, CHILD, pg_url, "burst", str(process),
                                  str(count)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=CHILD_ENV, cwd=tmp_path)
                for process in range(4)]
    try:
        for child in children:          # all opened the new database at once, and migrated it
            assert child.stdout.readline().strip() == "ready", child.stderr.read()
        for child in children:
            child.stdin.write("go\n")
            child.stdin.flush()
        outputs = [child.communicate(timeout=120) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert all(child.returncode == 0 for child in children), [err for _, err in outputs]
    acked = {process: [int(i) for i in out.split()[1:]] for process, (out, _) in
             enumerate(outputs)}
    every = [i for ids in acked.values() for i in ids]
    assert len(every) == len(set(every)) == 4 * count
    for ids in acked.values():
        assert ids == sorted(ids)                       # increasing per writer
        assert len({writer_of_id(i) for i in ids}) == 1
    assert len({writer_of_id(ids[0]) for ids in acked.values()}) == 4
    stored = {i: orjson.loads(payload) for i, payload in rows(pg_url,
                                                              "SELECT id, payload FROM traces")}
    assert stored == {i: {"p": p, "n": n} for p, ids in acked.items() for n, i in enumerate(ids)}


def test_open_stores_lease_distinct_writer_numbers_and_a_freed_one_is_reused(pg_url):
    stores = [TraceStore(pg_url) for _ in range(3)]
    try:
        assert sorted(store.writer_number for store in stores) == [0, 1, 2]
        ids = [store.record("tick", n, durable=True) for n, store in enumerate(stores)]
        assert [writer_of_id(i) for i in ids] == [store.writer_number for store in stores]
        number = stores[1].writer_number
        last = stores[1].record("tick", 9, durable=True)
        stores[1].close()
        stores[1] = TraceStore(pg_url)
        assert stores[1].writer_number == number
        assert stores[1].record("tick", 10, durable=True) > last
    finally:
        for store in stores:
            store.close()
    assert rows(pg_url, "SELECT count(*) FROM trace_writers WHERE holder IS NOT NULL") == [(0,)]


def test_a_store_whose_lease_was_taken_writes_on_under_a_new_number(pg_url, caplog,
                                                                     monkeypatch):
    monkeypatch.setattr(pg_writer, "HEARTBEAT_S", 0)       # renew after every batch
    old = TraceStore(pg_url, **LAZY)
    new = None
    try:
        first = old.record("tick", 0, durable=True)
        queued = old.record("tick", 1)          # issued while its lease held
        time.sleep(0.005)                       # a new holder's clock is past every such id
        execute(pg_url, "UPDATE trace_writers SET lease_until = now() - interval '1 second'")
        new = TraceStore(pg_url)                # as if the old store had been cut off
        assert new.writer_number == old.writer_number == 0
        taken = new.record("tick", 2, durable=True)
        assert old.flush(timeout=10) is True    # its queued row still goes in ...
        assert old.writer_number == 1           # ... and it claimed a free number for new ids
        later = old.record("tick", 3, durable=True)
        assert writer_of_id(later) == 1 and later > queued
    finally:
        old.close()
        if new is not None:
            new.close()
    assert stored_ids(pg_url) == sorted([first, queued, taken, later])
    assert "ran out and another store took it" in caplog.text


def test_no_ids_are_issued_once_the_lease_went_unrenewed_too_long(postgres_server, pg_url,
                                                                   monkeypatch):
    monkeypatch.setattr(pg_writer, "ISSUE_MS", 1_000)
    monkeypatch.setattr(pg_writer, "HEARTBEAT_S", 0.1)     # a batch renews after 0.1 s
    store = TraceStore(pg_url, retry_ms=10, **LAZY)
    try:
        store.record("tick", 0, durable=True)       # ids for at most 1 s more, unless renewed
        queued = store.record("tick", 1)
        postgres_server.pause()
        try:
            time.sleep(1.2)                         # no write, so no renewal, since
            with pytest.raises(TraceStoreError, match="may not issue ids"):
                store.record("tick", 2)
        finally:
            postgres_server.resume()
        assert store.flush(timeout=10) is True      # the batch renews the lease
        after = store.record("tick", 3, durable=True)
    finally:
        store.close()
    assert stored_ids(pg_url)[1:] == [queued, after]


def test_an_idle_store_renews_its_lease(pg_url, monkeypatch):
    monkeypatch.setattr(postgres_module, "HEARTBEAT_S", 0.05)
    with TraceStore(pg_url) as store:
        def lease_until():
            return rows(pg_url, "SELECT lease_until FROM trace_writers WHERE writer = %s",
                        (store.writer_number,))[0][0]

        claimed = lease_until()
        eventually(lambda: lease_until() > claimed, timeout=5)      # with nothing to write
        assert store.pending == 0
        store.record("tick", 1, durable=True)


# a server that goes away


def test_the_writer_reconnects_after_a_server_restart_and_loses_or_doubles_nothing(
        postgres_server, pg_url, tmp_path, caplog):
    fallback = tmp_path / "fallback.jsonl"
    store = TraceStore(pg_url, batch_size=50, batch_flush_ms=5, retry_ms=20,
                       write_deadline_ms=60_000, fallback_path=fallback)
    acked: list[int] = []
    stop = threading.Event()

    def produce() -> None:
        n = 0
        while not stop.is_set():
            try:
                acked.append(store.record("tick", {"n": n}))
            except TraceStoreError:             # while the writer cannot reach the server
                time.sleep(0.005)
            n += 1
            if n % 50 == 0:
                time.sleep(0.001)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        eventually(lambda: len(acked) > 3_000)
        postgres_server.restart()               # every connection drops mid-stream
        restarted = len(acked)
        eventually(lambda: len(acked) > restarted + 3_000, timeout=30)
    finally:
        stop.set()
        producer.join()
    try:
        assert store.flush(timeout=30) is True
        assert store.get(acked[-1]).payload["n"] > 0      # the reader reconnected too
    finally:
        store.close()
    assert stored_ids(pg_url) == acked                  # all, once each, in order
    assert not fallback.exists()
    assert "dropped" in caplog.text


class CommitCuttingProxy:
    """A TCP relay to the server that, when armed, cuts the connection right after the server
    committed a COPY statement (autocommit: its own transaction), before the client hears
    it: the client cannot know the outcome."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.armed = threading.Event()
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self._port))
            threading.Thread(target=self._relay, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._relay, args=(server, client, True), daemon=True).start()

    def _relay(self, source: socket.socket, sink: socket.socket, answers: bool) -> None:
        try:
            while data := source.recv(65536):
                if answers and self.armed.is_set() and re.search(rb"COPY \d+\x00", data):
                    self.armed.clear()
                    self.cuts += 1
                    break
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()


def test_a_commit_whose_outcome_was_lost_is_not_written_again(pg_url, tmp_path, caplog):
    port = int(re.search(r":(\d+)/", pg_url)[1])
    proxy = CommitCuttingProxy(port)
    fallback = tmp_path / "fallback.jsonl"
    store = TraceStore(pg_url.replace(f":{port}/", f":{proxy.port}/"), retry_ms=10,
                       fallback_path=fallback, **LAZY)
    try:
        first = store.record("tick", 0, durable=True)
        ids = [store.record("tick", n) for n in range(1, 200)]
        proxy.armed.set()
        assert store.flush(timeout=10) is True   # committed, the answer lost, not doubled
        assert proxy.cuts == 1
        later = store.record("tick", 200, durable=True)
    finally:
        store.close()
        proxy.close()
    assert stored_ids(pg_url) == [first, *ids, later]
    assert "199 of 199 traces were committed by an attempt whose outcome was unknown" in \
        caplog.text
    assert not fallback.exists()


def test_a_renewal_refused_after_its_batch_committed_does_not_write_the_batch_again(
        pg_url, tmp_path, monkeypatch):
    # The batch's COPY committed, then the lease renewal after it failed on a statement
    # error: the attempt was taken for "nothing stored", every retry hit the primary key,
    # and at the deadline the store spilled to its fallback file and refused all traces.
    real_renew = pg_writer.renew
    failures = [psycopg.errors.LockNotAvailable("canceling statement due to lock timeout")]

    def renew_failing_once(conn, lease, last_id):
        if failures:
            raise failures.pop()
        return real_renew(conn, lease, last_id)

    monkeypatch.setattr(pg_writer, "renew", renew_failing_once)
    monkeypatch.setattr(pg_writer, "HEARTBEAT_S", 0)       # renew after every batch
    fallback = tmp_path / "fallback.jsonl"
    store = TraceStore(pg_url, retry_ms=10, write_deadline_ms=3_000, fallback_path=fallback)
    try:
        first = store.record("tick", 1)
        def flushed():
            with contextlib.suppress(TraceStoreError):  # the attempt whose renewal failed
                return store.flush(timeout=1)
            return False

        eventually(flushed)                         # the retry skips what the attempt stored
        later = store.record("tick", 2, durable=True)
    finally:
        store.close()
    assert not failures and stored_ids(pg_url) == [first, later]
    assert not fallback.exists()


def test_traces_the_server_does_not_take_by_the_deadline_go_to_the_fallback_file(
        postgres_server, pg_url, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    url = with_password(pg_url)
    fallback = tmp_path / "fallback.jsonl"
    store = TraceStore(url, retry_ms=10, write_deadline_ms=300, fallback_path=fallback, **LAZY)
    shown = [repr(store), store.path]
    first = store.record("fill", {"n": 0}, asset="BTC", durable=True)
    postgres_server.pause()
    try:
        queued = [store.record("fill", {"n": n}, asset="ETH", order_id=n) for n in range(1, 4)]
        with pytest.raises(TraceStoreError) as failed:
            store.flush()
        eventually(lambda: store.pending == 0)
        with pytest.raises(TraceFallbackError, match=re.escape(str(fallback))) as spilled:
            store.close()
    finally:
        postgres_server.resume()
    assert spilled.value.count == 3
    assert [t.id for t in read_fallback(fallback)] == queued
    with TraceStore(url, fallback_path=fallback) as reopened:   # replays, then removes it
        assert reopened.get(queued[0]) == Trace(queued[0], reopened.get(queued[0]).ts, "fill",
                                                "ETH", 1, None, {"n": 1})
    assert stored_ids(pg_url) == [first, *queued]
    assert not fallback.exists()
    shown += [caplog.text, *("".join(traceback.format_exception(error.value))
                             for error in (failed, spilled))]
    assert "postgres:***@" in caplog.text and SECRET not in "".join(shown)


# connecting


@pytest.mark.parametrize("secret_url", [
    f"postgresql://trader:{SECRET}@127.0.0.1:{{port}}/traces",
    f"postgres://trader:{quote('p@ss/w:rd%', safe='')}@127.0.0.1:{{port}}/traces",
    f"postgresql://127.0.0.1:{{port}}/traces?user=trader&password={SECRET}&sslmode=disable",
])
def test_a_refused_connection_names_the_url_and_never_the_password(secret_url, caplog):
    caplog.set_level(logging.DEBUG)
    port = free_port()                          # nothing listens there
    url = secret_url.format(port=port)
    with pytest.raises(TraceStoreError) as raised:
        TraceStore(url, connect_timeout_s=2)
    message = str(raised.value)
    assert "cannot connect to the trace database" in message and "refused" in message
    assert f"127.0.0.1:{port}/traces" in message and "***" in message
    shown = "".join(traceback.format_exception(raised.value)) + repr(raised.value) + caplog.text
    for secret in (SECRET, "p@ss/w:rd%", quote("p@ss/w:rd%", safe="")):
        assert secret not in shown


def test_a_malformed_url_is_refused_without_the_password():
    with pytest.raises(TraceConfigError) as raised:
        TraceStore(f"postgresql://trader:{SECRET}@[::1/traces")
    assert "not a PostgreSQL URL" in str(raised.value)
    assert SECRET not in "".join(traceback.format_exception(raised.value))


def test_a_postgres_url_or_trace_store_url_opens_the_postgres_store(pg_url, tmp_path,
                                                                    monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    monkeypatch.chdir(tmp_path)
    url = with_password(pg_url).replace("postgresql://", "postgres://")
    database, port = pg_url.rsplit("/", 1)[1], re.search(r":(\d+)/", pg_url)[1]
    with TraceStore(url) as store:
        assert type(store) is PostgresTraceStore and isinstance(store, TraceStore)
        assert store.path == url.replace(SECRET, "***")
        assert repr(store) == f"<PostgresTraceStore {store.path}>"
        assert store.fallback_path == str(tmp_path / f"{database}-127.0.0.1-{port}"
                                                     f"-fallback.jsonl")
        store.record("tick", 1, durable=True)
    monkeypatch.setenv("TRACE_STORE_URL", url)
    with TraceStore(batch_size=7) as store:
        assert type(store) is PostgresTraceStore and store.batch_size == 7
        assert len(list(store.query())) == 1
    assert "trace store opened: postgres://postgres:***@" in caplog.text
    assert SECRET not in caplog.text


def test_lookups_are_served_by_their_index(pg_url):
    with TraceStore(pg_url, batch_size=5_000) as store:
        for n in range(5_000):
            store.record(("order", "fill")[n % 2], n, asset=f"A{n % 500}", order_id=n,
                         cloid=f"0x{n:x}" if n % 7 == 0 else None, ts=n)
        store.flush()
        execute(pg_url, "ANALYZE traces")
        for filters, index in [({"asset": "A7", "start": 10}, "traces_asset_ts"),
                               ({"order_id": 7}, "traces_order_ts"),
                               ({"cloid": "0x7"}, "traces_cloid_ts"),
                               ({"start": 30, "end": 40}, "traces_ts")]:
            plan = "\n".join(store.query_plan(**filters))
            assert index in plan and "Seq Scan" not in plan, plan
        assert [t.payload for t in store.query(order_id=7)] == [7]


# schema


def make_v1_database(url: str) -> None:
    """The version 1 layout: no codec column, one index, no writer leases."""
    execute(url, """
        CREATE TABLE schema_version (version integer PRIMARY KEY, applied_ms bigint NOT NULL);
        INSERT INTO schema_version VALUES (1, 0);
        CREATE TABLE traces (id bigint PRIMARY KEY, ts bigint NOT NULL, kind text NOT NULL,
                             asset text, order_id bigint, cloid text, payload bytea NOT NULL);
        CREATE INDEX traces_kind_ts ON traces (kind, ts);
        INSERT INTO traces VALUES (5, 10, 'fill', 'BTC', 42, NULL, '{"px":"1.5"}'::bytea);
    """)


def test_opening_a_v1_database_migrates_it(pg_url):
    make_v1_database(pg_url)
    with TraceStore(pg_url) as store:
        assert store.schema_version == SCHEMA_VERSION == 2
        assert store.get(5) == Trace(5, 10, "fill", "BTC", 42, None, {"px": "1.5"})
        assert [t.id for t in store.query(order_id=42)] == [5]
        new = store.record("fill", {"levels": list(range(500))}, asset="BTC", durable=True)
        assert new > 5 and store.get(new).payload == {"levels": list(range(500))}
    assert rows(pg_url, "SELECT version FROM schema_version ORDER BY version") == [(1,), (2,)]
    columns = {name for (name,) in rows(pg_url, "SELECT column_name FROM information_schema"
                                                ".columns WHERE table_name = 'traces'")}
    indices = {name for (name,) in rows(pg_url, "SELECT indexname FROM pg_indexes "
                                                "WHERE tablename = 'traces'")}
    assert "codec" in columns
    assert {"traces_asset_ts", "traces_order_ts", "traces_cloid_ts", "traces_ts"} <= indices
    assert rows(pg_url, "SELECT count(*) FROM trace_writers") == [(1,)]


def test_a_newer_schema_is_refused(pg_url):
    with TraceStore(pg_url):
        pass
    execute(pg_url, "INSERT INTO schema_version VALUES (99, 0)")
    with pytest.raises(TraceSchemaError, match="99"):
        TraceStore(pg_url)


def test_a_traces_table_without_a_version_is_refused(pg_url):
    execute(pg_url, "CREATE TABLE traces (id bigint PRIMARY KEY)")
    with pytest.raises(TraceSchemaError):
        TraceStore(pg_url)


# found in review: each of these failed before its fix


def test_a_row_another_writer_stored_under_our_id_is_not_taken_for_ours(pg_url, tmp_path):
    fallback = tmp_path / "fallback.jsonl"
    store = TraceStore(pg_url, retry_ms=10, write_deadline_ms=300, fallback_path=fallback,
                       **LAZY)
    ours = store.record("fill", {"who": "us"})
    with psycopg.connect(pg_url, autocommit=True) as conn:      # a clash on the primary key
        conn.execute("INSERT INTO traces (id, ts, kind, codec, payload) "
                     "VALUES (%s, 0, 'fill', 0, %s)", (ours, b'{"who":"them"}'))
    with pytest.raises(TraceStoreError):
        store.flush(timeout=10)
    eventually(lambda: store.pending == 0)
    with pytest.raises(TraceFallbackError):
        store.close()
    assert [(t.id, t.payload) for t in read_fallback(fallback)] == [(ours, {"who": "us"})]


def test_an_acknowledged_commit_waits_for_the_disk_whatever_the_database_default(pg_url):
    database = pg_url.rsplit("/", 1)[1].split("?")[0]
    execute(pg_url, f'ALTER DATABASE "{database}" SET synchronous_commit = off')
    try:
        with TraceStore(pg_url) as store:
            writer = store._writer._conn                          # the writer's own session
            assert writer.execute("SHOW synchronous_commit").fetchone() == ("on",)
    finally:
        execute(pg_url, f'ALTER DATABASE "{database}" RESET synchronous_commit')


def test_a_store_opening_during_another_migration_waits_for_it(pg_url):
    from obelisk.store.pg_schema import MIGRATION_LOCK

    with psycopg.connect(pg_url) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        opened = []
        opener = threading.Thread(target=lambda: opened.append(
            TraceStore(pg_url, busy_timeout_ms=100)))
        opener.start()
        time.sleep(0.5)                                   # five lock timeouts: still waiting
        assert opener.is_alive() and not opened
        holder.rollback()                                 # the migration elsewhere ends
        opener.join(timeout=10)
    assert len(opened) == 1
    opened[0].close()


def test_a_closed_store_refuses_queries_instead_of_opening_a_connection(pg_url):
    store = TraceStore(pg_url)
    store.record("tick", 1, durable=True)
    store.close()
    with pytest.raises(TraceStoreError, match="closed"):
        list(store.query(kind="tick"))
    assert rows(pg_url, "SELECT count(*) FROM pg_stat_activity "
                        "WHERE application_name = 'obelisk-trace-reader'") == [(0,)]


def test_a_password_given_as_a_query_parameter_in_any_case_is_masked(postgres_server):
    url = f"postgresql://127.0.0.1:1/traces?user=trader&Password={SECRET}"
    with pytest.raises(TraceStoreError) as refused:
        TraceStore(url, connect_timeout_s=1)
    assert SECRET not in "".join(traceback.format_exception(refused.value))
