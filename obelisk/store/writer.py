"""The thread that owns the write connection and commits the queue batch by batch.

A batch that fails is retried (the queue schedules when); once the write deadline
has passed, every queued row is appended to the fallback file and the store
stops. Whatever goes wrong, the rows end up in the database, in the fallback file
or, if that cannot be written either when the store closes, in a CRITICAL log
record: never nowhere. Each backend subclasses :class:`TraceWriter` with how one
batch is committed.
"""

from __future__ import annotations

import logging
import threading

from obelisk.store.codec import Compressor
from obelisk.store.errors import TraceFallbackError, TraceStoreError
from obelisk.store.fallback import append_rows, fallback_lines
from obelisk.store.queue import Row, TraceQueue

__all__ = ["TraceWriter"]

log = logging.getLogger(__name__)

class TraceWriter:
    """Commits each due batch in one transaction; a failure is handed to the queue to report.

    `target` names the database in messages (never with a password). Subclasses
    implement :meth:`_commit`; :meth:`_finish` runs once the queue is drained and closed.
    """

    def __init__(self, queue: TraceQueue, compressor: Compressor, compress_above: int, *,
                 target: str, fallback: str) -> None:
        self._queue = queue
        self._codec, self._compress = compressor
        self._compress_above = compress_above
        self.target = target
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
            self._finish()
        except BaseException as error:            # a fault in the writer's own bookkeeping
            log.critical("the trace writer failed", exc_info=True)
            self._spill(error, final=True)
        finally:
            self._close()

    def write(self, batch: list[Row]) -> None:
        """Commit `batch` in one transaction, compressing the large payloads.

        An empty batch is a heartbeat: the backend shows it is alive, if it must.
        """
        limit = self._compress_above
        rows = [row if len(row[7]) <= limit else self._compressed(row) for row in batch]
        self._commit(rows)
        if rows and log.isEnabledFor(logging.DEBUG):
            log.debug("wrote %d traces in one transaction", len(rows))

    def _commit(self, rows: list[Row]) -> None:
        """Insert `rows` in one transaction; raise if it did not commit."""
        raise NotImplementedError

    def _finish(self) -> None:
        """The queue is closed and every row was written or spilled; writing is over."""

    def _close(self) -> None:
        """Close the write connection (the writer thread's last act)."""
        raise NotImplementedError

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
            error = TraceStoreError(f"writing {len(rows)} traces to {self.target} failed "
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
            f"{len(rows)} traces could not be written to {self.target} ({cause!r}) and were "
            f"appended to the fallback file {self.fallback}; the store takes no more traces. "
            f"Open a TraceStore on {self.target} to replay them into it.",
            self.fallback, len(rows))
        error.__cause__ = cause
        log.error("%s", error)
        queue.give_up(len(rows), error)

    def _compressed(self, row: Row) -> Row:
        packed = self._compress(row[7])
        if len(packed) >= len(row[7]):
            return row
        return (*row[:6], self._codec, packed)
