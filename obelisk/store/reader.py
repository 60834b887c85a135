"""Reads of committed traces: filtered queries, numpy records, and cached lookups by id.

The SQL is the same on both databases but for the parameter placeholder and the
EXPLAIN form; each backend's reader supplies those and how a query reaches its
connection (:meth:`TraceReader._fetch`).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from obelisk.store.codec import decode_payload
from obelisk.store.errors import UnknownTraceError
from obelisk.store.trace import Trace, record_dtype

if TYPE_CHECKING:
    from functools import _CacheInfo

__all__ = ["COLUMNS", "TraceFilter", "TraceReader"]

COLUMNS = "id, ts, kind, asset, order_id, cloid, codec, payload"
_RECORD_COLUMNS = "id, ts, kind, coalesce(asset, ''), coalesce(order_id, -1)"


class TraceFilter:
    """The WHERE, ORDER BY and LIMIT of a query, built from its keyword arguments."""

    def __init__(self, *, start: int | None = None, end: int | None = None,
                 kind: str | None = None, asset: str | None = None, order_id: int | None = None,
                 cloid: str | None = None, limit: int | None = None,
                 descending: bool = False) -> None:
        terms: list[str] = []           # each compared with the next parameter
        params: list[Any] = []
        for column, value in (("kind", kind), ("asset", asset), ("order_id", order_id),
                              ("cloid", cloid)):
            if value is not None:
                terms.append(f"{column} = ")
                params.append(value)
        if start is not None:
            terms.append("ts >= ")
            params.append(start)
        if end is not None:
            terms.append("ts < ")
            params.append(end)
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        self._terms = terms
        self._order = " DESC" if descending else ""
        self._limited = limit is not None
        self.params = (*params, limit) if limit is not None else tuple(params)

    def sql_tail(self, placeholder: str) -> str:
        """The query after ``FROM traces``, with `placeholder` for each parameter."""
        where = " AND ".join(term + placeholder for term in self._terms)
        order = self._order
        return ((f" WHERE {where}" if where else "") + f" ORDER BY ts{order}, id{order}"
                + (f" LIMIT {placeholder}" if self._limited else ""))


class TraceReader:
    """An LRU cache of traces by id over the queries a backend runs with :meth:`_fetch`.

    Queries read every matching row before returning, so no read transaction stays
    open while the caller iterates (an open one would hold back WAL checkpoints on
    SQLite and vacuum on PostgreSQL).
    """

    placeholder = "?"
    explain_prefix = "EXPLAIN QUERY PLAN "

    def __init__(self, cache_size: int) -> None:
        self.get = lru_cache(maxsize=cache_size)(self._load)

    def cache_info(self) -> _CacheInfo:
        return self.get.cache_info()

    def close(self) -> None:
        raise NotImplementedError

    def query(self, where: TraceFilter) -> Iterator[Trace]:
        rows = self._fetch(f"SELECT {COLUMNS} FROM traces{where.sql_tail(self.placeholder)}",
                           where.params)
        return (_trace(row) for row in rows)

    def records(self, where: TraceFilter) -> np.ndarray:
        rows = self._fetch(f"SELECT {_RECORD_COLUMNS} FROM traces"
                           f"{where.sql_tail(self.placeholder)}", where.params)
        kind_width = max((len(row[2]) for row in rows), default=1)
        asset_width = max((len(row[3]) for row in rows), default=1)
        return np.array(rows, dtype=record_dtype(kind_width, asset_width))

    def plan(self, where: TraceFilter) -> list[str]:
        """The database's query plan for `where`, to check which index serves a query."""
        rows = self._fetch(f"{self.explain_prefix}SELECT {COLUMNS} FROM traces"
                           f"{where.sql_tail(self.placeholder)}", where.params)
        return [row[-1] for row in rows]

    def _load(self, trace_id: int) -> Trace:
        rows = self._fetch(f"SELECT {COLUMNS} FROM traces WHERE id = {self.placeholder}",
                           (trace_id,))
        if not rows:
            raise UnknownTraceError(trace_id)
        return _trace(rows[0])

    def _fetch(self, sql: str, params: tuple) -> list[tuple]:
        """Every row of `sql` run with `params` (thread-safe)."""
        raise NotImplementedError


def _trace(row: tuple) -> Trace:
    trace_id, ts, kind, asset, order_id, cloid, codec, payload = row
    return Trace(trace_id, ts, kind, asset, order_id, cloid, decode_payload(codec, payload))
