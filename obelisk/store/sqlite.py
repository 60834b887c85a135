"""TraceStore: an audit trail of decisions, orders and fills in one SQLite file.

`record` serializes on the caller's thread and queues the row; one writer thread
commits the queue in batches (group commit), so callers never wait on the disk
unless they ask to. WAL with ``synchronous=NORMAL`` loses nothing committed when
the process crashes; ``FULL`` also survives power loss, at one fsync per batch.
Rows the database will not take before the write deadline go to the fallback
file beside it (:mod:`obelisk.store.fallback`), replayed when the store reopens.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import weakref
from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from obelisk.envvars import check_int, env_int
from obelisk.store.codec import encode_payload, make_compressor
from obelisk.store.errors import TraceConfigError
from obelisk.store.fallback import fallback_path, replay_fallback
from obelisk.store.queue import OnFull, TraceQueue
from obelisk.store.reader import TraceFilter, TraceReader
from obelisk.store.schema import migrate
from obelisk.store.trace import Trace
from obelisk.store.writer import TraceWriter, file_identity

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from functools import _CacheInfo

__all__ = ["TraceStore", "connect"]

DEFAULT_BATCH_SIZE = 100
DEFAULT_BATCH_FLUSH_MS = 5_000
DEFAULT_CACHE_SIZE = 500
DEFAULT_WRITE_DEADLINE_MS = 10_000

Synchronous = Literal["NORMAL", "FULL"]
_INT64 = 1 << 63


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


class TraceStore:
    """A durable, queryable audit trail; ``record`` returns at once with a time-ordered id.

    Open one store per database file: it is the file's only writer, and its ids
    continue from the largest id already stored. Opening replays the fallback file
    (``<path>-fallback.jsonl``) left by an earlier store, then removes it.

    Parameters
    ----------
    path : database file; created (and older schemas migrated) on open.
    batch_size : rows per transaction (``TRACE_BATCH_SIZE``, default 100).
    batch_flush_ms : the longest a queued row waits for its batch to fill
        (``TRACE_BATCH_FLUSH_MS``, default 5000).
    cache_size : traces kept by :meth:`get` (``TRACE_CACHE_SIZE``, default 500).
    synchronous : "NORMAL" (survives process crashes) or "FULL" (also power loss).
    queue_size : the most rows waiting to be written; then ``on_full`` applies:
        "block" waits up to ``block_timeout`` seconds (None: no limit), "raise" raises
        :class:`TraceQueueFullError` at once. Rows are never dropped.
    compress_above : payloads longer than this many bytes of JSON are compressed.
    compression : "zstd", "zlib", or None for zstd when ``zstandard`` is installed.
    retry_ms : after a failed write, the wait before the writer tries the same rows
        again; it doubles after each failure in a row, up to 4 s.
    write_deadline_ms : how long writes may keep failing (``TRACE_WRITE_DEADLINE_MS``,
        default 10000; also at close and at exit). Then every queued trace is appended
        to the fallback file, an ERROR is logged naming it, and the store stops.

    A database file deleted or replaced while the store has it open counts as a
    failed write: the store never writes into the orphaned file, and it does not
    open a new file at the path on its own (the audit trail would silently split
    in two); the rows reach the fallback file, and reopening the store replays
    them into whatever database is at the path then.

    Raises
    ------
    TraceStoreError : from ``record``, ``flush`` and ``wait`` after the writer failed
        (until a retry succeeds); queued rows are kept and retried.
    TraceFallbackError : from then on (``close`` included) once the rows went to the
        fallback file.
    """

    def __init__(self, path: str | os.PathLike[str], *, batch_size: int | None = None,
                 batch_flush_ms: int | None = None, cache_size: int | None = None,
                 synchronous: Synchronous = "NORMAL", queue_size: int = 100_000,
                 on_full: OnFull = "block", block_timeout: float | None = None,
                 compress_above: int = 1024, compression: str | None = None,
                 busy_timeout_ms: int = 5_000, retry_ms: int = 250,
                 write_deadline_ms: int | None = None) -> None:
        batch_size = env_int("TRACE_BATCH_SIZE", batch_size, default=DEFAULT_BATCH_SIZE,
                             minimum=1, argument="batch_size", error=TraceConfigError)
        flush_ms = env_int("TRACE_BATCH_FLUSH_MS", batch_flush_ms, default=DEFAULT_BATCH_FLUSH_MS,
                           minimum=1, argument="batch_flush_ms", error=TraceConfigError)
        cache_size = env_int("TRACE_CACHE_SIZE", cache_size, default=DEFAULT_CACHE_SIZE,
                             minimum=0, argument="cache_size", error=TraceConfigError)
        deadline_ms = env_int("TRACE_WRITE_DEADLINE_MS", write_deadline_ms,
                              default=DEFAULT_WRITE_DEADLINE_MS, minimum=0,
                              argument="write_deadline_ms", error=TraceConfigError)
        check_int("queue_size", queue_size, 1, TraceConfigError)
        check_int("compress_above", compress_above, 0, TraceConfigError)
        check_int("retry_ms", retry_ms, 1, TraceConfigError)
        if on_full not in ("block", "raise"):
            raise TraceConfigError(f"on_full must be 'block' or 'raise', got {on_full!r}")
        if block_timeout is not None and not block_timeout >= 0:
            raise TraceConfigError(f"block_timeout must be None or >= 0, got {block_timeout!r}")
        compressor = make_compressor(compression)
        self.path = os.fspath(path)
        self.fallback_path = fallback_path(self.path)
        conn = connect(self.path, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms)
        try:
            self.schema_version = migrate(conn)
            identity = file_identity(self.path)
            replay_fallback(conn, self.fallback_path)
            (last_id,) = conn.execute("SELECT coalesce(max(id), 0) FROM traces").fetchone()
            reader = TraceReader(connect(self.path, busy_timeout_ms=busy_timeout_ms,
                                         read_only=True), cache_size)
        except BaseException:
            conn.close()
            raise
        self._queue = TraceQueue(capacity=queue_size, batch_size=batch_size,
                                 flush_s=flush_ms / 1000, on_full=on_full,
                                 block_timeout=block_timeout, retry_s=retry_ms / 1000,
                                 deadline_s=deadline_ms / 1000, last_id=last_id)
        self._put = self._queue.put
        self._reader = reader
        self._writer = TraceWriter(conn, self._queue, compressor, compress_above,
                                   path=self.path, identity=identity,
                                   fallback=self.fallback_path)
        self._writer.start()
        log.info("trace store opened: %s (schema %s, last trace id %d)", self.path,
                 self.schema_version, last_id)
        self._finalizer = weakref.finalize(self, _shut_down, self._queue, self._writer, reader)

    @property
    def batch_size(self) -> int:
        return self._queue.batch_size

    @property
    def batch_flush_ms(self) -> float:
        return self._queue.flush_s * 1000

    @property
    def write_deadline_ms(self) -> float:
        return self._queue.deadline_s * 1000

    @property
    def pending(self) -> int:
        """Traces recorded but not yet committed."""
        return len(self._queue)

    def record(self, kind: str, payload: Any, *, asset: str | None = None,
               order_id: int | None = None, cloid: str | None = None, ts: int | None = None,
               durable: bool = False) -> int:
        """Queue one trace and return its id; with `durable`, return once it is committed.

        `ts` is milliseconds since the epoch (default: now). `payload` is anything
        orjson serializes (dicts, lists, str, numbers, numpy scalars and arrays);
        it is serialized now, so later changes to it are not recorded. Text that
        UTF-8 cannot encode (a lone surrogate) raises ValueError.
        """
        if type(kind) is not str or not kind or not kind.isascii():
            _check_text("kind", kind, "a non-empty str")
        if asset is not None and (type(asset) is not str or not asset.isascii()):
            _check_text("asset", asset, "a str or None")
        if cloid is not None and (type(cloid) is not str or not cloid.isascii()):
            _check_text("cloid", cloid, "a str or None")
        if order_id is not None and not (type(order_id) is int and -_INT64 <= order_id < _INT64):
            raise TypeError(f"order_id must be a 64-bit int or None, got {order_id!r}")
        if ts is not None and not (type(ts) is int and -_INT64 <= ts < _INT64):
            raise TypeError(f"ts must be a 64-bit int of milliseconds or None, got {ts!r}")
        trace_id = self._put(ts, kind, asset, order_id, cloid, encode_payload(payload))
        if durable:
            self._queue.wait(trace_id)
        return trace_id

    def wait(self, trace_id: int, timeout: float | None = None) -> bool:
        """Block until trace `trace_id` is committed; False if `timeout` seconds ran out."""
        return self._queue.wait(trace_id, timeout)

    def flush(self, timeout: float | None = None) -> bool:
        """Block until every trace recorded so far is committed; False on timeout."""
        return self._queue.flush(timeout)

    def get(self, trace_id: int) -> Trace:
        """The trace with this id (waiting for its commit if it is still queued)."""
        if self._queue.committed_id < trace_id <= self._queue.last_id:
            self._queue.wait(trace_id)
        return self._reader.get(trace_id)

    def cache_info(self) -> _CacheInfo:
        """Hits, misses and size of the :meth:`get` cache."""
        return self._reader.cache_info()

    def query(self, *, start: int | None = None, end: int | None = None,
              kind: str | None = None, asset: str | None = None, order_id: int | None = None,
              cloid: str | None = None, limit: int | None = None,
              descending: bool = False) -> Iterator[Trace]:
        """Committed traces with `start` <= ts < `end` and the given fields, in time order.

        Traces still queued are not seen; call :meth:`flush` first to include them.
        """
        return self._reader.query(TraceFilter(start=start, end=end, kind=kind, asset=asset,
                                              order_id=order_id, cloid=cloid, limit=limit,
                                              descending=descending))

    def query_records(self, *, start: int | None = None, end: int | None = None,
                      kind: str | None = None, asset: str | None = None,
                      order_id: int | None = None, cloid: str | None = None,
                      limit: int | None = None, descending: bool = False) -> np.ndarray:
        """Like :meth:`query`, as a structured array (id, ts, kind, asset, order_id)."""
        return self._reader.records(TraceFilter(start=start, end=end, kind=kind, asset=asset,
                                                order_id=order_id, cloid=cloid, limit=limit,
                                                descending=descending))

    def query_plan(self, **filters: Any) -> list[str]:
        """SQLite's plan for ``query(**filters)``: which index serves it."""
        return self._reader.explain(TraceFilter(**filters))

    def close(self) -> None:
        """Commit what is queued, stop the writer and close the database.

        Failing writes are retried up to the write deadline first. Raises
        TraceFallbackError naming the fallback file if traces went there instead,
        or TraceStoreError if even that could not be written (the traces are then
        in the log, at CRITICAL).
        """
        if self._finalizer.alive:
            self._finalizer()
            log.info("trace store closed: %s", self.path)
        self._queue.raise_if_failed()

    def __enter__(self) -> TraceStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _check_text(name: str, value: object, expected: str) -> None:
    """Raise for a `value` the fast checks of ``record`` did not pass, unless it is a
    non-empty str that UTF-8 can encode (SQLite's TEXT).

    A lone surrogate (e.g. from ``json.loads('"\\ud800"')``) is refused here, where
    the caller can still act, rather than failing every write of its batch.
    """
    if type(value) is not str or not value:
        raise TypeError(f"{name} must be {expected}, got {value!r}")
    try:
        value.encode()
    except UnicodeEncodeError as error:
        raise ValueError(f"{name} must be valid Unicode text, got {value!r}: {error}") from None


def _shut_down(queue: TraceQueue, writer: TraceWriter, reader: TraceReader) -> None:
    """Drain and stop the writer; also run at exit and when an open store is collected."""
    queue.close()
    writer.join()
    reader.close()
