"""The PostgreSQL store's writer: each batch by binary COPY in one transaction.

A batch is one ``COPY traces ... FROM STDIN (FORMAT BINARY)`` statement on a
connection in autocommit mode: the statement is its transaction, so a batch
costs one round trip (a BEGIN, COPY, COMMIT sequence costs three, and each is a
wait for the GIL while the caller's thread records). The writer lease is
renewed after a batch when its last renewal is `HEARTBEAT_S` old, and by the
queue's heartbeat (an empty batch) when the store is idle.

When the connection drops (a server restart, a failover), the writer connects
again and retries at once, then as the queue schedules until the write
deadline. A commit whose outcome is unknown (the connection dropped while it
ran) is never guessed at: ids are made by the client, so after any failed
attempt the next one asks which of the batch's ids are stored and writes only
the others. Nothing is lost and nothing is doubled.
"""

from __future__ import annotations

import contextlib
import logging
import time
from time import time_ns

import psycopg
from psycopg.pq import TransactionStatus

from obelisk.store.codec import Compressor
from obelisk.store.errors import TraceStoreError
from obelisk.store.fallback import same_trace
from obelisk.store.ids import writer_id_source
from obelisk.store.pg_connect import DatabaseURL
from obelisk.store.pg_writers import HEARTBEAT_S, ISSUE_MS, WriterLease, claim, release, renew
from obelisk.store.queue import Row, TraceQueue
from obelisk.store.reader import COLUMNS
from obelisk.store.writer import TraceWriter

__all__ = ["COPY_SQL", "COPY_TYPES", "PostgresWriter"]

log = logging.getLogger(__name__)

COPY_SQL = f"COPY traces ({COLUMNS}) FROM STDIN (FORMAT BINARY)"
COPY_TYPES = ("int8", "int8", "text", "text", "int8", "text", "int2", "bytea")
_STORED_ROWS_SQL = f"SELECT {COLUMNS} FROM traces WHERE id = ANY(%s::bigint[])"


class PostgresWriter(TraceWriter):
    """Commits batches by COPY under a writer lease, reconnecting when the server drops it.

    `conn` is the connection the store opened with (it is replaced when it drops);
    `lease` the writer number the queue's ids carry, claimed at `claimed_ms`.
    """

    def __init__(self, url: DatabaseURL, conn: psycopg.Connection, queue: TraceQueue,
                 compressor: Compressor, compress_above: int, *, lease: WriterLease,
                 claimed_ms: int, fallback: str, lock_timeout_ms: int,
                 timeout_s: float) -> None:
        super().__init__(queue, compressor, compress_above, target=url.masked,
                         fallback=fallback)
        self._url = url
        self._conn: psycopg.Connection | None = conn
        self._lock_timeout_ms = lock_timeout_ms
        self._timeout_s = timeout_s
        self.lease = lease
        self._unsure = False        # the last attempt failed: its batch may have committed
        self._renew_at = time.monotonic() + HEARTBEAT_S
        queue.use_ids(writer_id_source(lease.writer, lease.last_id),
                      until_ms=claimed_ms + ISSUE_MS)

    def _commit(self, rows: list[Row]) -> None:
        connected = self._conn is not None
        try:
            self._commit_once(rows)
        except psycopg.OperationalError as error:
            if not connected or self._conn is not None:
                raise                                   # not a connection that dropped
            log.warning("the connection to %s dropped (%s); connecting again", self.target,
                        self._url.scrub(str(error).strip()))
            self._commit_once(rows)

    def _commit_once(self, batch: list[Row]) -> None:
        """One attempt: connect if need be, skip rows already stored, then the transaction."""
        conn = self._connected()
        rows = batch
        last_id = batch[-1][0] if batch else 0
        inserted = False
        try:
            if batch:
                if self._unsure:
                    rows = self._unstored(conn, batch)
                self._unsure = True
            if conn.info.transaction_status != TransactionStatus.IDLE:
                conn.rollback()         # a transaction left open would swallow the batch
            if rows:
                self._insert(rows)      # committed when the statement ends
            inserted = True
            if not batch or time.monotonic() >= self._renew_at:
                self._renew(conn, last_id)
        except psycopg.Error:
            if conn.closed or conn.broken:
                self._drop()        # the commit's outcome is unknown: _unsure stays set
            else:
                # the server refused a statement: the batch is stored if the refused one
                # came after its insert (the lease's renewal), and a retry must skip it
                self._unsure = inserted and bool(batch)
            raise
        if batch:
            self._unsure = False

    def _insert(self, rows: list[Row]) -> None:
        assert self._conn is not None
        with self._conn.cursor() as cursor, cursor.copy(COPY_SQL) as copy:
            copy.set_types(COPY_TYPES)
            write_row = copy.write_row
            for row in rows:
                write_row(row)

    def _unstored(self, conn: psycopg.Connection, rows: list[Row]) -> list[Row]:
        """The rows of `rows` whose ids are not in the database. A stored row with one of
        these ids that is not the same trace is another writer's: TraceStoreError, so the
        batch is retried and at worst spilled to the fallback file, never dropped."""
        stored = {row[0]: row for row in
                  conn.execute(_STORED_ROWS_SQL, ([row[0] for row in rows],))}
        if not stored:
            return rows
        for row in rows:
            if row[0] in stored and not same_trace(stored[row[0]], row):
                raise TraceStoreError(f"trace {row[0]} is stored in {self.target} with other "
                                      "contents: another writer used the id")
        log.warning("%d of %d traces were committed by an attempt whose outcome was unknown; "
                    "not writing them again", len(stored), len(rows))
        return [row for row in rows if row[0] not in stored]

    def _renew(self, conn: psycopg.Connection, last_id: int) -> None:
        """Extend the lease, and let the queue issue ids for `ISSUE_MS` from now."""
        started_ms = time_ns() // 1_000_000
        renew_at = time.monotonic() + HEARTBEAT_S
        if renew(conn, self.lease, last_id):
            self._queue.use_ids(until_ms=started_ms + ISSUE_MS)
            self._renew_at = renew_at
        else:
            self._claim_again(conn)

    def _claim_again(self, conn: psycopg.Connection) -> None:
        """Our lease ran out and another store took the number: lease a new one for the
        ids from now on (the ids issued so far were issued while the old lease held)."""
        old = self.lease.writer
        started_ms = time_ns() // 1_000_000
        self.lease = claim(conn)
        self._queue.use_ids(writer_id_source(self.lease.writer, self.lease.last_id),
                            until_ms=started_ms + ISSUE_MS)
        self._renew_at = time.monotonic() + HEARTBEAT_S
        log.warning("the lease of writer number %d on %s ran out and another store took it; "
                    "this store now writes as number %d", old, self.target, self.lease.writer)

    def _connected(self) -> psycopg.Connection:
        conn = self._conn
        if conn is None or conn.closed:
            conn = self._conn = self._url.connect(application_name="obelisk-trace-writer",
                                                  timeout_s=self._timeout_s,
                                                  lock_timeout_ms=self._lock_timeout_ms)
        return conn

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def _finish(self) -> None:
        """Free the writer number at once if every id issued under it is committed."""
        if not self._queue.drained:
            return                  # the lease runs out on its own, after the spilled ids
        try:
            release(self._connected(), self.lease, self._queue.last_id)
        except (psycopg.Error, TraceStoreError) as error:
            log.info("could not free writer number %d on %s (%s); its lease runs out on "
                     "its own", self.lease.writer, self.target, self._url.scrub(str(error)))

    def _close(self) -> None:
        self._drop()
