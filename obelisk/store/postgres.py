"""The trace store in a PostgreSQL database, shared by the stores of many processes and hosts.

``TraceStore("postgresql://user:password@host:5432/db")`` (or ``postgres://``, or
``TRACE_STORE_URL``) opens it, with the API and the durability contract of the
SQLite store: ``record`` returns an id at once; ``durable=True``, ``wait`` and
``flush`` return after the commit. Batches go in by binary COPY
(:mod:`obelisk.store.pg_writer`), ids carry a leased writer number
(:mod:`obelisk.store.pg_writers`), and the tables migrate like SQLite's
(:mod:`obelisk.store.pg_schema`). Needs the ``postgres`` extra (psycopg 3).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from time import time_ns
from typing import TYPE_CHECKING

import psycopg

from obelisk.store.base import StoreConfig, TraceStore, resolve_location
from obelisk.store.errors import TraceStoreError
from obelisk.store.fallback import FALLBACK_SUFFIX, insert_missing, replay_fallback
from obelisk.store.pg_connect import DatabaseURL
from obelisk.store.pg_schema import migrate
from obelisk.store.pg_writer import PostgresWriter
from obelisk.store.pg_writers import HEARTBEAT_S, claim
from obelisk.store.queue import Row
from obelisk.store.reader import COLUMNS, TraceReader

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from obelisk.store.base import Settings

__all__ = ["PostgresTraceStore", "default_fallback_path"]

log = logging.getLogger(__name__)

_INSERT_NEW_SQL = (f"INSERT INTO traces ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                   "ON CONFLICT (id) DO NOTHING")


def default_fallback_path(info: psycopg.ConnectionInfo) -> str:
    """``<database>-<host>-<port>-fallback.jsonl`` in the working directory."""
    name = re.sub(r"[^\w.-]+", "_", f"{info.dbname}-{info.host}-{info.port}").strip("_")
    return os.path.abspath(name + FALLBACK_SUFFIX)


class PostgresTraceStore(TraceStore):
    """The trace store in a PostgreSQL database; :class:`TraceStore` has the API.

    Any number of stores, in any processes on any hosts, may write into one
    database at once. Each leases a writer number for its ids' low bits, so ids
    are unique across all of them, increase per store and follow the clock.

    Parameters
    ----------
    path : a ``postgresql://`` or ``postgres://`` URL (libpq's form; a password in
        it is never shown: ``path``, errors and logs mask it). None: ``TRACE_STORE_URL``.
    fallback_path : where traces the database would not take before the write
        deadline go (None: ``<database>-<host>-<port>-fallback.jsonl`` in the
        working directory). Opening a store replays the file into the database and
        removes it; stores sharing the file lock it while they append or replay.
    connect_timeout_s : how long opening a connection may take (the URL's
        ``connect_timeout`` wins).
    **settings : as :class:`TraceStore`; ``busy_timeout_ms`` is the writer's
        ``lock_timeout``.

    Raises
    ------
    TraceStoreError : the server cannot be reached or refuses the connection; the
        message names the URL with its password masked.
    """

    _log = log

    def __init__(self, path: str | os.PathLike[str] | None = None, *,
                 fallback_path: str | os.PathLike[str] | None = None,
                 connect_timeout_s: float = 5.0, **settings: Unpack[Settings]) -> None:
        config = StoreConfig.resolve(**settings)
        url = DatabaseURL(resolve_location(path))
        self.path = url.masked
        conn = url.connect(application_name="obelisk-trace-writer", timeout_s=connect_timeout_s,
                           lock_timeout_ms=config.busy_timeout_ms)
        reader: PostgresReader | None = None
        try:
            self.schema_version = migrate(conn)
            self.fallback_path = (os.path.abspath(fallback_path) if fallback_path is not None
                                  else default_fallback_path(conn.info))
            replay_fallback(self.fallback_path,
                            lambda rows: _insert_new(conn, rows, self.fallback_path))
            reader = PostgresReader(url, config.cache_size, connect_timeout_s)
            claimed_ms = time_ns() // 1_000_000
            lease = claim(conn)                 # last: nothing after it can fail
        except BaseException as error:
            if reader is not None:
                reader.close()
            conn.close()
            if isinstance(error, psycopg.Error):    # the driver's text may echo the URL
                raise TraceStoreError(f"cannot open the trace database {self.path}: "
                                      f"{url.scrub(str(error)).strip()}") from None
            raise
        self._start(config, last_id=lease.last_id, reader=reader, heartbeat_s=HEARTBEAT_S,
                    writer=lambda queue: PostgresWriter(
                        url, conn, queue, config.compressor, config.compress_above,
                        lease=lease, claimed_ms=claimed_ms, fallback=self.fallback_path,
                        lock_timeout_ms=config.busy_timeout_ms, timeout_s=connect_timeout_s))
        self._log.info("trace store opened: %s (schema %s, writer number %d, last trace id %d)",
                       self.path, self.schema_version, lease.writer, lease.last_id)

    @property
    def writer_number(self) -> int:
        """The number in the low bits of the ids this store issues now."""
        writer = self._writer
        assert isinstance(writer, PostgresWriter)
        return writer.lease.writer


class PostgresReader(TraceReader):
    """One autocommit connection shared by the caller threads, opened again if it dropped.

    Reads change nothing, so one that failed on a dropped connection is run once more
    on a new one.
    """

    placeholder = "%s"
    explain_prefix = "EXPLAIN "

    def __init__(self, url: DatabaseURL, cache_size: int, timeout_s: float) -> None:
        super().__init__(cache_size)
        self._url = url
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._closed = False
        self._conn = self._connect()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._conn.close()

    def _connect(self) -> psycopg.Connection:
        return self._url.connect(application_name="obelisk-trace-reader",
                                 timeout_s=self._timeout_s)

    def _fetch(self, sql: str, params: tuple) -> list[tuple]:
        with self._lock:
            if self._closed:                # not a dropped connection: opened again it would leak
                raise TraceStoreError("the trace store is closed")
            if self._conn.closed:
                self._conn = self._connect()
            try:
                return self._conn.execute(sql, params).fetchall()
            except psycopg.OperationalError:
                if not self._conn.closed:
                    raise
            self._conn = self._connect()
            return self._conn.execute(sql, params).fetchall()


def _insert_new(conn: psycopg.Connection, rows: list[Row], path: str) -> int:
    """Insert the fallback file's `rows` that are not stored yet, in one transaction that
    waits for the server's disk (the file goes once the rows are safe)."""
    with conn.transaction():        # the connection commits with synchronous_commit=on
        return insert_missing(conn, rows, path, _INSERT_NEW_SQL,
                              f"SELECT {COLUMNS} FROM traces WHERE id = %s")
