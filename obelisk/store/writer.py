"""The thread that owns the write connection and commits the queue batch by batch."""

from __future__ import annotations

import contextlib
import sqlite3
import threading

from obelisk.store.codec import Compressor
from obelisk.store.queue import Row, TraceQueue

__all__ = ["INSERT_SQL", "TraceWriter"]

# One fixed statement, so sqlite3 prepares it once and re-binds it for every row.
INSERT_SQL = ("INSERT INTO traces (id, ts, kind, asset, order_id, cloid, codec, payload) "
              "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")


class TraceWriter:
    """Writes each due batch in one transaction; a failure is handed to the queue to report."""

    def __init__(self, conn: sqlite3.Connection, queue: TraceQueue, compressor: Compressor,
                 compress_above: int) -> None:
        self._conn = conn
        self._queue = queue
        self._codec, self._compress = compressor
        self._compress_above = compress_above
        self._thread = threading.Thread(target=self._run, name="obelisk-trace-writer",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    def _run(self) -> None:
        queue = self._queue
        try:
            while (batch := queue.next_batch()) is not None:
                try:
                    self.write(batch)
                except Exception as exc:
                    queue.failed(exc)
                else:
                    queue.committed(len(batch))
            self._checkpoint()
        finally:
            self._conn.close()

    def write(self, batch: list[Row]) -> None:
        """Insert `batch` in one transaction, compressing the large payloads."""
        limit = self._compress_above
        rows = [row if len(row[7]) <= limit else self._compressed(row) for row in batch]
        conn = self._conn
        conn.execute("BEGIN")
        try:
            conn.executemany(INSERT_SQL, rows)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _compressed(self, row: Row) -> Row:
        packed = self._compress(row[7])
        if len(packed) >= len(row[7]):
            return row
        return (*row[:6], self._codec, packed)

    def _checkpoint(self) -> None:
        """Fold the WAL back into the database and truncate it, now that writing is over."""
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
