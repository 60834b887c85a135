"""The trace store in one SQLite file, the default backend: no server needed.

`record` serializes on the caller's thread and queues the row; one writer thread
commits the queue in batches (group commit), so callers never wait on the disk
unless they ask to. WAL with ``synchronous=NORMAL`` loses nothing committed when
the process crashes; ``FULL`` also survives power loss, at one fsync per batch.
Rows the database will not take before the write deadline go to the fallback
file beside it (:mod:`obelisk.store.fallback`), replayed when the store reopens.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from typing import TYPE_CHECKING, Literal

from obelisk.store.base import StoreConfig, TraceStore, resolve_location
from obelisk.store.codec import Compressor
from obelisk.store.errors import TraceConfigError, TraceStoreError
from obelisk.store.fallback import fallback_path, insert_missing, replay_fallback
from obelisk.store.queue import Row, TraceQueue
from obelisk.store.reader import COLUMNS, TraceReader
from obelisk.store.schema import migrate
from obelisk.store.writer import TraceWriter

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from obelisk.store.base import Settings

log = logging.getLogger(__name__)

__all__ = ["INSERT_SQL", "SQLiteTraceStore", "connect"]

Synchronous = Literal["NORMAL", "FULL"]
FileIdentity = tuple[int, int]      # (st_dev, st_ino)

# One fixed statement, so sqlite3 prepares it once and re-binds it for every row.
INSERT_SQL = f"INSERT INTO traces ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_OR_IGNORE_SQL = INSERT_SQL.replace("INSERT", "INSERT OR IGNORE", 1)


def connect(path: str | os.PathLike[str], *, synchronous: Synchronous = "NORMAL",
            busy_timeout_ms: int = 5_000, read_only: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with the store's pragmas."""
    if synchronous not in ("NORMAL", "FULL"):
        raise TraceConfigError(f"synchronous must be 'NORMAL' or 'FULL', got {synchronous!r}")
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in ("journal_mode = WAL", f"synchronous = {synchronous}",
                   "cache_size = -65536", "temp_store = MEMORY", "mmap_size = 268435456",
                   f"busy_timeout = {int(busy_timeout_ms)}",
                   f"query_only = {int(read_only)}"):
        conn.execute(f"PRAGMA {pragma}")
    return conn


def claim_writer(path: str) -> int | None:
    """Hold `<path>-writer.lock` exclusively (POSIX advisory lock, released by the kernel
    when the process ends), so that a second store on the same file is refused at once:
    two writers issue the same ids, and the second one's every batch would fail. Its file
    descriptor, to close when the store closes; None where there is no fcntl."""
    try:
        import fcntl
    except ImportError:     # Windows: nothing to lock with
        return None
    lock = os.open(f"{path}-writer.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        raise TraceStoreError(f"another trace store is open on {path}; open one store per "
                              "database file") from None
    return lock


def file_identity(path: str) -> FileIdentity:
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino


class SQLiteTraceStore(TraceStore):
    """The trace store in one SQLite file (WAL); :class:`TraceStore` has the API.

    Open one store per database file: it is the file's only writer, and its ids
    (``ms << 16 | sequence``) continue from the largest id already stored.
    Opening replays the fallback file (``<path>-fallback.jsonl``) left by an
    earlier store, then removes it.

    Parameters
    ----------
    path : database file; created (and older schemas migrated) on open.
        None: ``TRACE_STORE_URL``.
    synchronous : "NORMAL" (survives process crashes) or "FULL" (also power loss).
    **settings : as :class:`TraceStore`.

    A database file deleted or replaced while the store has it open counts as a
    failed write: the store never writes into the orphaned file, and it does not
    open a new file at the path on its own (the audit trail would silently split
    in two); the rows reach the fallback file, and reopening the store replays
    them into whatever database is at the path then.
    """

    _log = log

    def __init__(self, path: str | os.PathLike[str] | None = None, *,
                 synchronous: Synchronous = "NORMAL", **settings: Unpack[Settings]) -> None:
        config = StoreConfig.resolve(**settings)
        self.path = resolve_location(path)
        self.fallback_path = fallback_path(self.path)
        busy_timeout_ms = config.busy_timeout_ms
        lock = claim_writer(self.path)
        try:
            conn = connect(self.path, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms)
        except BaseException:
            _release(lock)
            raise
        try:
            self.schema_version = migrate(conn)
            identity = file_identity(self.path)
            replay_fallback(self.fallback_path,
                            lambda rows: _insert_new(conn, rows, self.fallback_path))
            (last_id,) = conn.execute("SELECT coalesce(max(id), 0) FROM traces").fetchone()
            reader = SQLiteReader(connect(self.path, busy_timeout_ms=busy_timeout_ms,
                                          read_only=True), config.cache_size)
        except BaseException:
            conn.close()
            _release(lock)
            raise
        self._start(config, last_id=last_id, reader=reader,
                    writer=lambda queue: SQLiteWriter(
                        conn, queue, config.compressor, config.compress_above, path=self.path,
                        identity=identity, fallback=self.fallback_path, lock=lock))
        self._log.info("trace store opened: %s (schema %s, last trace id %d)", self.path,
                 self.schema_version, last_id)


class SQLiteReader(TraceReader):
    """One read-only connection shared by the caller threads."""

    def __init__(self, conn: sqlite3.Connection, cache_size: int) -> None:
        super().__init__(cache_size)
        self._conn = conn
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _fetch(self, sql: str, params: tuple) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()


class SQLiteWriter(TraceWriter):
    """Inserts each batch with one prepared statement in one transaction.

    `identity` is the (device, inode) of the database file when the store opened it;
    a batch is written only while the file at `path` still is that file, so a
    database deleted or replaced under the store never receives rows as an orphan.
    """

    def __init__(self, conn: sqlite3.Connection, queue: TraceQueue, compressor: Compressor,
                 compress_above: int, *, path: str, identity: FileIdentity,
                 fallback: str, lock: int | None = None) -> None:
        super().__init__(queue, compressor, compress_above, target=path, fallback=fallback)
        self._conn = conn
        self._path = path
        self._identity = identity
        self._lock = lock           # claim_writer's: let go once the writer is done

    def _commit(self, rows: list[Row]) -> None:
        self._check_file()
        conn = self._conn
        if conn.in_transaction:                   # a ROLLBACK that failed left one open
            conn.execute("ROLLBACK")
        conn.execute("BEGIN")
        try:
            self._insert(rows)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._check_file()        # replaced during the commit: the batch may be in the orphan

    def _insert(self, rows: list[Row]) -> None:
        self._conn.executemany(INSERT_SQL, rows)

    def _check_file(self) -> None:
        """Raise TraceStoreError unless the file at the path is the one the store opened."""
        try:
            same = file_identity(self._path) == self._identity
        except OSError as error:
            raise TraceStoreError(f"the database file {self._path} was deleted while the store "
                                  f"had it open ({error.strerror})") from error
        if not same:
            raise TraceStoreError(f"the database file {self._path} was replaced by another "
                                  f"file while the store had it open")

    def _finish(self) -> None:
        """Fold the WAL back into the database and truncate it, now that writing is over."""
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _close(self) -> None:
        self._conn.close()
        _release(self._lock)
        self._lock = None


def _release(lock: int | None) -> None:
    if lock is not None:
        os.close(lock)


def _insert_new(conn: sqlite3.Connection, rows: list[Row], path: str) -> int:
    """Insert the fallback file's `rows` that are not stored yet, in one transaction synced
    to disk (the file goes once they are); `conn` is in autocommit mode, no transaction open."""
    (synchronous,) = conn.execute("PRAGMA synchronous").fetchone()
    conn.execute("PRAGMA synchronous = FULL")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            inserted = insert_missing(conn, rows, path, _INSERT_OR_IGNORE_SQL,
                                      f"SELECT {COLUMNS} FROM traces WHERE id = ?")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        conn.execute(f"PRAGMA synchronous = {int(synchronous)}")
    return inserted
