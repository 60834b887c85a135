"""The fallback file: traces the database would not take, as JSON lines.

When writing keeps failing past the write deadline, the writer appends every
queued row to the fallback file (``<database>-fallback.jsonl`` beside a SQLite
file; see :class:`~obelisk.store.postgres.PostgresTraceStore` for PostgreSQL) and
fsyncs it. Each line is one trace, ``{"id", "ts", "kind", "asset", "order_id",
"cloid", "payload"}``, with the payload as the JSON it was recorded as, so ``jq``
or :func:`read_fallback` read it back. Opening a store on the database replays
the file into it (:func:`replay_fallback`) and then removes it. Appends and
replays lock the file (``flock``), since stores of several processes may share
one: a replay never removes lines appended after it read the file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from obelisk.store.codec import RAW, decode_payload, decompress, encode_payload
from obelisk.store.errors import TraceStoreError
from obelisk.store.queue import Row
from obelisk.store.trace import Trace

try:
    import fcntl
except ImportError:                     # Windows: one process per fallback file
    fcntl = None  # type: ignore[assignment]

__all__ = ["FALLBACK_SUFFIX", "append_rows", "check_stored", "fallback_lines", "fallback_path",
           "insert_missing", "read_fallback", "replay_fallback", "same_trace"]

log = logging.getLogger(__name__)

FALLBACK_SUFFIX = "-fallback.jsonl"
_PAYLOAD_KEY = b',"payload":'


def fallback_path(database: str | os.PathLike[str]) -> str:
    """Where the store at `database` puts the traces it could not write there."""
    return os.fspath(database) + FALLBACK_SUFFIX


def fallback_lines(rows: Iterable[Row]) -> bytes:
    """`rows` as JSON lines, the fallback file's format."""
    return b"".join(_line(row) for row in rows)


def append_rows(path: str, rows: list[Row]) -> None:
    """Append `rows` to the fallback file at `path` and fsync it (and its folder when new)."""
    data = fallback_lines(rows)
    with _locked(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT) as fd:
        assert fd is not None
        start = os.fstat(fd).st_size
        created = start == 0
        try:
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        except BaseException:
            # no half line may stay: the rows are spilled again later, and a fragment
            # glued to them would make the file unreadable for every later replay
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            raise
    if created:
        folder = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def read_fallback(path: str | os.PathLike[str]) -> list[Trace]:
    """The traces in a fallback file, in file order, decoded like :meth:`TraceStore.get`."""
    path = os.fspath(path)
    with open(path, "rb") as file:
        rows = _parse(file.read(), path)
    return [Trace(*row[:6], decode_payload(row[6], row[7])) for row in rows]


def replay_fallback(path: str, insert_rows: Callable[[list[Row]], int]) -> int:
    """Insert the traces of the fallback file at `path`, then remove the file; returns
    how many were new.

    `insert_rows` is the backend's: it commits all rows in one durable transaction,
    skips those whose id is stored already (their batch committed after all, or
    the file was replayed before) after :func:`check_stored`, and returns how many
    it inserted. If it raises, the file is kept.
    """
    with _locked(path, os.O_RDONLY) as fd:
        if fd is None:
            return 0
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        rows = _parse(b"".join(chunks), path)
        inserted = insert_rows(rows)
        os.unlink(path)
    log.warning("replayed %d traces (%d new) from the fallback file %s into the database",
                len(rows), inserted, path)
    return inserted


def insert_missing(conn: Any, rows: list[Row], path: str, insert_sql: str,
                   select_sql: str) -> int:
    """Inside the backend's open transaction: insert each of `rows` that `insert_sql`
    (an insert that skips a stored id) takes; check the others against what is stored
    under their id (`select_sql`). How many were inserted."""
    inserted = 0
    for row in rows:
        if conn.execute(insert_sql, row).rowcount:
            inserted += 1
            continue
        stored = conn.execute(select_sql, (row[0],)).fetchone()
        if stored is None:
            raise TraceStoreError(f"trace {row[0]} of {path} was neither inserted nor found")
        check_stored(stored, row, path)
    return inserted


def same_trace(stored: tuple, row: Row) -> bool:
    """Whether the `stored` row is the trace `row` (payloads compared decoded: a codec may
    differ)."""
    return _decoded(stored) == _decoded(row)


def check_stored(stored: tuple, row: Row, path: str) -> None:
    """Raise TraceStoreError unless the `stored` row with the id of `row` is the same trace."""
    if not same_trace(stored, row):
        raise TraceStoreError(f"trace {row[0]} in {path} differs from the trace with "
                              f"that id in the database; the file is kept")


def _decoded(row: tuple) -> tuple:
    return (*row[:6], decode_payload(row[6], row[7]))


def _line(row: Row) -> bytes:
    trace_id, ts, kind, asset, order_id, cloid, codec, payload = row
    fields = {"id": trace_id, "ts": ts, "kind": kind, "asset": asset, "order_id": order_id,
              "cloid": cloid}
    try:
        head = orjson.dumps(fields)
    except orjson.JSONEncodeError:       # a lone surrogate, which only the stdlib escapes
        head = json.dumps(fields, separators=(",", ":")).encode()
    return head[:-1] + _PAYLOAD_KEY + decompress(codec, payload) + b"}\n"


def _parse(data: bytes, path: str) -> list[Row]:
    lines = data.split(b"\n")
    if lines[-1]:                         # a spill cut short; its rows were never acknowledged
        log.warning("%s ends in an incomplete line, skipped: %r", path, lines[-1])
    rows: list[Row] = []
    for number, line in enumerate(lines[:-1], 1):
        try:
            fields = _loads(line)
            rows.append((fields["id"], fields["ts"], fields["kind"], fields["asset"],
                         fields["order_id"], fields["cloid"], RAW,
                         encode_payload(fields["payload"])))
        except (ValueError, KeyError, TypeError) as error:
            raise TraceStoreError(f"line {number} of {path} is not a trace: {error}") from error
    return rows


@contextmanager
def _locked(path: str, flags: int) -> Iterator[int | None]:
    """The file at `path` opened with `flags` and locked; None if it does not exist.

    A file a replay removed while this waited for its lock is not the one at the
    path any more: it is closed, and the path opened again.
    """
    while True:
        try:
            fd = os.open(path, flags, 0o644)
        except FileNotFoundError:
            if flags & os.O_CREAT:
                raise
            yield None
            return
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            if _same_file(fd, path):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        yield fd
    finally:
        os.close(fd)


def _same_file(fd: int, path: str) -> bool:
    try:
        at_path = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (opened.st_dev, opened.st_ino) == (at_path.st_dev, at_path.st_ino)


def _loads(line: bytes) -> dict:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:       # the stdlib's escape of a lone surrogate
        return json.loads(line)
