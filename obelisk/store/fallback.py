"""The fallback file: traces the database would not take, as JSON lines beside it.

When writing keeps failing past the write deadline, the writer appends every
queued row to ``<database>-fallback.jsonl`` and fsyncs it. Each line is one
trace, ``{"id", "ts", "kind", "asset", "order_id", "cloid", "payload"}``, with the
payload as the JSON it was recorded as, so ``jq`` or :func:`read_fallback` read it
back. Opening a :class:`~obelisk.store.TraceStore` on the database replays the
file into it (:func:`replay_fallback`) and then removes it.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterable

import orjson

from obelisk.store.codec import RAW, decode_payload, decompress, encode_payload
from obelisk.store.errors import TraceStoreError
from obelisk.store.queue import Row
from obelisk.store.trace import Trace

__all__ = ["FALLBACK_SUFFIX", "append_rows", "fallback_lines", "fallback_path", "read_fallback",
           "replay_fallback"]

log = logging.getLogger(__name__)

FALLBACK_SUFFIX = "-fallback.jsonl"
_PAYLOAD_KEY = b',"payload":'
_INSERT_OR_IGNORE_SQL = ("INSERT OR IGNORE INTO traces "
                         "(id, ts, kind, asset, order_id, cloid, codec, payload) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
_STORED_SQL = "SELECT id, ts, kind, asset, order_id, cloid, codec, payload FROM traces WHERE id = ?"


def fallback_path(database: str | os.PathLike[str]) -> str:
    """Where the store at `database` puts the traces it could not write there."""
    return os.fspath(database) + FALLBACK_SUFFIX


def fallback_lines(rows: Iterable[Row]) -> bytes:
    """`rows` as JSON lines, the fallback file's format."""
    return b"".join(_line(row) for row in rows)


def append_rows(path: str, rows: list[Row]) -> None:
    """Append `rows` to the fallback file at `path` and fsync it (and its folder when new)."""
    created = not os.path.exists(path)
    data = fallback_lines(rows)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = 0
        while written < len(data):
            written += os.write(fd, data[written:])
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        folder = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def read_fallback(path: str | os.PathLike[str]) -> list[Trace]:
    """The traces in a fallback file, in file order, decoded like :meth:`TraceStore.get`."""
    return [Trace(*row[:6], decode_payload(row[6], row[7])) for row in _read_rows(os.fspath(path))]


def replay_fallback(conn: sqlite3.Connection, path: str) -> int:
    """Insert the traces of the fallback file at `path` in one durable transaction, then
    remove the file; returns how many were new.

    A trace whose id is already stored (its batch committed after all, or the file
    was replayed before) must be identical to the stored one, else
    :class:`TraceStoreError` is raised and the file is kept. `conn` is in autocommit
    mode and no other transaction is open on it.
    """
    if not os.path.exists(path):
        return 0
    rows = _read_rows(path)
    (synchronous,) = conn.execute("PRAGMA synchronous").fetchone()
    conn.execute("PRAGMA synchronous = FULL")    # the file goes once the rows are on disk
    try:
        inserted = _insert_all(conn, rows, path)
    finally:
        conn.execute(f"PRAGMA synchronous = {int(synchronous)}")
    os.unlink(path)
    log.warning("replayed %d traces (%d new) from the fallback file %s into the database",
                len(rows), inserted, path)
    return inserted


def _insert_all(conn: sqlite3.Connection, rows: list[Row], path: str) -> int:
    inserted = 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        for row in rows:
            if conn.execute(_INSERT_OR_IGNORE_SQL, row).rowcount:
                inserted += 1
                continue
            stored = conn.execute(_STORED_SQL, (row[0],)).fetchone()
            if _decoded(stored) != _decoded(row):
                raise TraceStoreError(f"trace {row[0]} in {path} differs from the trace with "
                                      f"that id in the database; the file is kept")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return inserted


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


def _read_rows(path: str) -> list[Row]:
    with open(path, "rb") as file:
        lines = file.read().split(b"\n")
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


def _loads(line: bytes) -> dict:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:       # the stdlib's escape of a lone surrogate
        return json.loads(line)
