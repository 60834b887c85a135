"""The thread that owns the write connection and commits the queue batch by batch.

A batch that fails is retried (the queue schedules when); once the write deadline
has passed, every queued row is appended to the fallback file and the store
stops. Whatever goes wrong, the rows end up in the database, in the fallback file
or, if that cannot be written either when the store closes, in a CRITICAL log
record: never nowhere.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading

from obelisk.store.codec import Compressor
from obelisk.store.errors import TraceFallbackError, TraceStoreError
from obelisk.store.fallback import append_rows, fallback_lines
from obelisk.store.queue import Row, TraceQueue

__all__ = ["INSERT_SQL", "TraceWriter"]

log = logging.getLogger(__name__)

# One fixed statement, so sqlite3 prepares it once and re-binds it for every row.
INSERT_SQL = ("INSERT INTO traces (id, ts, kind, asset, order_id, cloid, codec, payload) "
              "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")

FileIdentity = tuple[int, int]      # (st_dev, st_ino)


def file_identity(path: str) -> FileIdentity:
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino


class TraceWriter:
    """Writes each due batch in one transaction; a failure is handed to the queue to report.

    `identity` is the (device, inode) of the database file when the store opened it;
    a batch is written only while the file at `path` still is that file, so a
    database deleted or replaced under the store never receives rows as an orphan.
    """

    def __init__(self, conn: sqlite3.Connection, queue: TraceQueue, compressor: Compressor,
                 compress_above: int, *, path: str, identity: FileIdentity,
                 fallback: str) -> None:
        self._conn = conn
        self._queue = queue
        self._codec, self._compress = compressor
        self._compress_above = compress_above
        self._path = path
        self._identity = identity
        self.fallback = fallback
        self._thread = threading.Thread(target=self._run, name="obelisk-trace-writer",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    def _run(self) -> None:
        queue = self._queue
        try:
            while True:
                try:
                    batch = queue.next_batch()
                    if batch is None:
                        break
                    self.write(batch)
                except BaseException as error:    # noqa: BLE001 - retried, then spilled
                    if queue.failed(error):
                        self._spill(error)
                    continue
                queue.committed(len(batch))
            self._checkpoint()
        except BaseException as error:            # a fault in the writer's own bookkeeping
            log.critical("the trace writer failed", exc_info=True)
            self._spill(error, final=True)
        finally:
            self._conn.close()

    def write(self, batch: list[Row]) -> None:
        """Insert `batch` in one transaction, compressing the large payloads."""
        limit = self._compress_above
        rows = [row if len(row[7]) <= limit else self._compressed(row) for row in batch]
        self._check_file()
        conn = self._conn
        if conn.in_transaction:                   # a ROLLBACK that failed left one open
            conn.execute("ROLLBACK")
        conn.execute("BEGIN")
        try:
            conn.executemany(INSERT_SQL, rows)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if log.isEnabledFor(logging.DEBUG):
            log.debug("wrote %d traces in one transaction", len(rows))
        self._check_file()        # replaced during the commit: the batch may be in the orphan

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

    def _spill(self, cause: BaseException, *, final: bool = False) -> None:
        """Append every queued row to the fallback file and stop the queue.

        If the file cannot be written either, the rows stay queued and are retried
        with the database, unless the store is closing (or `final`): then they are
        written to the log at CRITICAL as the fallback file's lines.
        """
        queue = self._queue
        rows = queue.freeze(cause)
        if not rows:
            if final:
                stopped = TraceStoreError(f"the trace writer stopped: {cause!r}")
                stopped.__cause__ = cause
                queue.give_up(0, stopped)
            return
        try:
            append_rows(self.fallback, rows)
        except Exception as fallback_error:
            error = TraceStoreError(f"writing {len(rows)} traces to {self._path} failed "
                                    f"({cause!r}), and so did appending them to the fallback "
                                    f"file {self.fallback} ({fallback_error!r})")
            error.__cause__ = cause
            if not (final or queue.closing):
                log.error("%s; retrying", error)
                queue.report(error)
                return
            lines = fallback_lines(rows).decode("utf-8", "backslashreplace")
            log.critical("%s; the traces follow as fallback-file lines:\n%s", error, lines)
            logged = TraceStoreError(f"{error}; the traces were logged at CRITICAL instead")
            logged.__cause__ = cause
            queue.give_up(len(rows), logged)
            return
        error = TraceFallbackError(
            f"{len(rows)} traces could not be written to {self._path} ({cause!r}) and were "
            f"appended to the fallback file {self.fallback}; the store takes no more traces. "
            f"Open a TraceStore on {self._path} to replay them into it.",
            self.fallback, len(rows))
        error.__cause__ = cause
        log.error("%s", error)
        queue.give_up(len(rows), error)

    def _compressed(self, row: Row) -> Row:
        packed = self._compress(row[7])
        if len(packed) >= len(row[7]):
            return row
        return (*row[:6], self._codec, packed)

    def _checkpoint(self) -> None:
        """Fold the WAL back into the database and truncate it, now that writing is over."""
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
