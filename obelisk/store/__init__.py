"""A complete, queryable audit trail of decisions, orders and fills.

:class:`TraceStore` accepts a trace in about a microsecond on the caller's thread
and commits it from a writer thread in batches; :meth:`TraceStore.flush`,
:meth:`TraceStore.wait` and ``record(..., durable=True)`` say when it is on disk.
Traces the database will not take go to a fallback file (:func:`read_fallback`),
replayed into the database when a store reopens it. The database is a SQLite
file (:class:`SQLiteTraceStore`, the default) or, for a ``postgresql://`` URL,
PostgreSQL (:class:`obelisk.store.postgres.PostgresTraceStore`, with the
``postgres`` extra), shared by the stores of many processes and hosts.
"""

from obelisk.store.base import TraceStore
from obelisk.store.errors import (
    TraceConfigError,
    TraceFallbackError,
    TraceQueueFullError,
    TraceSchemaError,
    TraceStoreError,
    UnknownTraceError,
)
from obelisk.store.fallback import fallback_path, read_fallback
from obelisk.store.schema import MIGRATIONS, SCHEMA_VERSION
from obelisk.store.sqlite import SQLiteTraceStore
from obelisk.store.trace import Trace, record_dtype

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SQLiteTraceStore",
    "Trace",
    "TraceConfigError",
    "TraceFallbackError",
    "TraceQueueFullError",
    "TraceSchemaError",
    "TraceStore",
    "TraceStoreError",
    "UnknownTraceError",
    "fallback_path",
    "read_fallback",
    "record_dtype",
]
