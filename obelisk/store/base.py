"""TraceStore: the audit trail's API, the same on SQLite and on PostgreSQL.

``TraceStore(location)`` opens the backend the location names: a
``postgresql://`` or ``postgres://`` URL opens
:class:`~obelisk.store.postgres.PostgresTraceStore`, anything else a SQLite file
(:class:`~obelisk.store.sqlite.SQLiteTraceStore`, the default, which needs no
server). Without a location, ``TRACE_STORE_URL`` names it. Both backends share
the queue, the writer thread's loop, the reader and the fallback file; they
differ in how a batch is committed, how ids stay unique and how queries reach
the database.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from obelisk.envvars import check_int, env_int
from obelisk.store.codec import Compressor, encode_payload, make_compressor
from obelisk.store.errors import TraceConfigError
from obelisk.store.queue import OnFull, TraceQueue
from obelisk.store.reader import TraceFilter, TraceReader
from obelisk.store.trace import Trace
from obelisk.store.writer import TraceWriter

if TYPE_CHECKING:
    from functools import _CacheInfo

__all__ = ["POSTGRES_SCHEMES", "Settings", "StoreConfig", "TraceStore", "resolve_location"]

DEFAULT_BATCH_SIZE = 100
DEFAULT_BATCH_FLUSH_MS = 5_000
DEFAULT_CACHE_SIZE = 500
DEFAULT_WRITE_DEADLINE_MS = 10_000
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_INT64 = 1 << 63


class Settings(TypedDict, total=False):
    """The keyword arguments both backends take; :class:`TraceStore` documents them."""

    batch_size: int | None
    batch_flush_ms: int | None
    cache_size: int | None
    queue_size: int
    on_full: OnFull
    block_timeout: float | None
    compress_above: int
    compression: str | None
    busy_timeout_ms: int
    retry_ms: int
    write_deadline_ms: int | None


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """The settings of one store, validated and with the environment applied."""

    batch_size: int
    flush_s: float
    cache_size: int
    queue_size: int
    on_full: OnFull
    block_timeout: float | None
    compress_above: int
    compressor: Compressor
    busy_timeout_ms: int
    retry_s: float
    deadline_s: float

    @classmethod
    def resolve(cls, *, batch_size: int | None = None, batch_flush_ms: int | None = None,
                cache_size: int | None = None, queue_size: int = 100_000,
                on_full: OnFull = "block", block_timeout: float | None = None,
                compress_above: int = 1024, compression: str | None = None,
                busy_timeout_ms: int = 5_000, retry_ms: int = 250,
                write_deadline_ms: int | None = None) -> StoreConfig:
        """Validate the arguments before anything is opened; an argument beats its variable."""
        batch_size = env_int("TRACE_BATCH_SIZE", batch_size, default=DEFAULT_BATCH_SIZE,
                             minimum=1, argument="batch_size", error=TraceConfigError)
        flush_ms = env_int("TRACE_BATCH_FLUSH_MS", batch_flush_ms,
                           default=DEFAULT_BATCH_FLUSH_MS, minimum=1,
                           argument="batch_flush_ms", error=TraceConfigError)
        cache_size = env_int("TRACE_CACHE_SIZE", cache_size, default=DEFAULT_CACHE_SIZE,
                             minimum=0, argument="cache_size", error=TraceConfigError)
        deadline_ms = env_int("TRACE_WRITE_DEADLINE_MS", write_deadline_ms,
                              default=DEFAULT_WRITE_DEADLINE_MS, minimum=0,
                              argument="write_deadline_ms", error=TraceConfigError)
        check_int("queue_size", queue_size, 1, TraceConfigError)
        check_int("compress_above", compress_above, 0, TraceConfigError)
        check_int("busy_timeout_ms", busy_timeout_ms, 0, TraceConfigError)
        check_int("retry_ms", retry_ms, 1, TraceConfigError)
        if on_full not in ("block", "raise"):
            raise TraceConfigError(f"on_full must be 'block' or 'raise', got {on_full!r}")
        if block_timeout is not None and not block_timeout >= 0:
            raise TraceConfigError(f"block_timeout must be None or >= 0, got {block_timeout!r}")
        return cls(batch_size, flush_ms / 1000, cache_size, queue_size, on_full, block_timeout,
                   compress_above, make_compressor(compression), busy_timeout_ms,
                   retry_ms / 1000, deadline_ms / 1000)


def resolve_location(location: str | os.PathLike[str] | None) -> str:
    """`location` as a string, or ``TRACE_STORE_URL`` when it is None."""
    if location is not None:
        return os.fspath(location)
    from_env = os.environ.get("TRACE_STORE_URL", "").strip()
    if not from_env:
        raise TraceConfigError("no database given: pass a SQLite path or a postgresql:// URL, "
                               "or set TRACE_STORE_URL")
    return from_env


def _backend(location: str) -> type[TraceStore]:
    if location.startswith(POSTGRES_SCHEMES):
        try:
            from obelisk.store.postgres import PostgresTraceStore
        except ImportError as error:
            if not (error.name or "").startswith("psycopg"):
                raise
            raise TraceConfigError(f"a PostgreSQL trace store needs psycopg 3: "
                                   f"pip install 'obelisk[postgres]' ({error})") from None
        return PostgresTraceStore
    from obelisk.store.sqlite import SQLiteTraceStore

    return SQLiteTraceStore


class TraceStore:
    """A durable, queryable audit trail; ``record`` returns at once with a time-ordered id.

    ``TraceStore(path)`` opens a SQLite file (see
    :class:`~obelisk.store.sqlite.SQLiteTraceStore`), ``TraceStore("postgresql://...")``
    a PostgreSQL database (see :class:`~obelisk.store.postgres.PostgresTraceStore`);
    without either, ``TRACE_STORE_URL`` names the database. Both take these settings:

    Parameters
    ----------
    batch_size : rows per transaction (``TRACE_BATCH_SIZE``, default 100).
    batch_flush_ms : the longest a queued row waits for its batch to fill
        (``TRACE_BATCH_FLUSH_MS``, default 5000).
    cache_size : traces kept by :meth:`get` (``TRACE_CACHE_SIZE``, default 500).
    queue_size : the most rows waiting to be written; then ``on_full`` applies:
        "block" waits up to ``block_timeout`` seconds (None: no limit), "raise" raises
        :class:`TraceQueueFullError` at once. Rows are never dropped.
    compress_above : payloads longer than this many bytes of JSON are compressed.
    compression : "zstd", "zlib", or None for zstd when ``zstandard`` is installed.
    busy_timeout_ms : how long a write waits for a lock another connection holds.
    retry_ms : after a failed write, the wait before the writer tries the same rows
        again; it doubles after each failure in a row, up to 4 s.
    write_deadline_ms : how long writes may keep failing (``TRACE_WRITE_DEADLINE_MS``,
        default 10000; also at close and at exit). Then every queued trace is appended
        to the fallback file (:attr:`fallback_path`), an ERROR is logged naming it,
        and the store stops.

    Raises
    ------
    TraceStoreError : from ``record``, ``flush`` and ``wait`` after the writer failed
        (until a retry succeeds); queued rows are kept and retried.
    TraceFallbackError : from then on (``close`` included) once the rows went to the
        fallback file.
    """

    path: str                   # the database file, or the URL with its password masked
    fallback_path: str
    schema_version: int
    _log = logging.getLogger(__name__)      # each backend logs as its module
    _queue: TraceQueue
    _reader: TraceReader
    _writer: TraceWriter

    def __new__(cls, path: str | os.PathLike[str] | None = None, **settings: Any) -> TraceStore:
        if cls is TraceStore:
            cls = _backend(resolve_location(path))
        return super().__new__(cls)

    def _start(self, config: StoreConfig, *, last_id: int, reader: TraceReader,
               writer: Callable[[TraceQueue], TraceWriter],
               heartbeat_s: float | None = None) -> None:
        """Start writing: the queue from `last_id`, the writer thread and the exit hook.

        `writer` makes the backend's writer for the queue (and may set how it issues ids).
        """
        self._queue = TraceQueue(capacity=config.queue_size, batch_size=config.batch_size,
                                 flush_s=config.flush_s, on_full=config.on_full,
                                 block_timeout=config.block_timeout, retry_s=config.retry_s,
                                 deadline_s=config.deadline_s, last_id=last_id,
                                 heartbeat_s=heartbeat_s)
        self._put = self._queue.put
        self._reader = reader
        self._writer = writer(self._queue)
        self._writer.start()
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
        it is serialized now, so later changes to it are not recorded. JSON has no
        NaN or infinity: those floats read back as None. Text that UTF-8 cannot
        encode (a lone surrogate) or that holds NUL raises ValueError.
        """
        if type(kind) is not str or not kind or not kind.isascii() or "\0" in kind:
            _check_text("kind", kind, "a non-empty str")
        if asset is not None and (type(asset) is not str or not asset.isascii()
                                  or "\0" in asset):
            _check_text("asset", asset, "a str or None")
        if cloid is not None and (type(cloid) is not str or not cloid.isascii()
                                  or "\0" in cloid):
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
        """The database's plan for ``query(**filters)``: which index serves it."""
        return self._reader.plan(TraceFilter(**filters))

    def close(self) -> None:
        """Commit what is queued, stop the writer and close the database.

        Failing writes are retried up to the write deadline first. Raises
        TraceFallbackError naming the fallback file if traces went there instead,
        or TraceStoreError if even that could not be written (the traces are then
        in the log, at CRITICAL).
        """
        if self._finalizer.alive:
            self._finalizer()
            self._log.info("trace store closed: %s", self.path)
        self._queue.raise_if_failed()

    def __enter__(self) -> TraceStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path}>"


def _check_text(name: str, value: object, expected: str) -> None:
    """Raise for a `value` the fast checks of ``record`` did not pass, unless it is a
    non-empty str that both databases store as text (UTF-8 without NUL).

    A lone surrogate (e.g. from ``json.loads('"\\ud800"')``) or a NUL is refused
    here, where the caller can still act, rather than failing every write of its
    batch.
    """
    if type(value) is not str or not value:
        raise TypeError(f"{name} must be {expected}, got {value!r}")
    if "\0" in value:
        raise ValueError(f"{name} must be valid Unicode text without NUL, got {value!r}")
    try:
        value.encode()
    except UnicodeEncodeError as error:
        raise ValueError(f"{name} must be valid Unicode text, got {value!r}: {error}") from None


def _shut_down(queue: TraceQueue, writer: TraceWriter, reader: TraceReader) -> None:
    """Drain and stop the writer; also run at exit and when an open store is collected."""
    queue.close()
    writer.join()
    reader.close()
