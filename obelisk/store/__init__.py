"""A complete, queryable audit trail of decisions, orders and fills.

:class:`TraceStore` accepts a trace in about a microsecond on the caller's thread
and commits it from a writer thread in batches; :meth:`TraceStore.flush`,
:meth:`TraceStore.wait` and ``record(..., durable=True)`` say when it is on disk.
"""

from obelisk.store.errors import (
    TraceConfigError,
    TraceQueueFullError,
    TraceSchemaError,
    TraceStoreError,
    UnknownTraceError,
)
from obelisk.store.schema import MIGRATIONS, SCHEMA_VERSION
from obelisk.store.sqlite import TraceStore
from obelisk.store.trace import Trace, record_dtype

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Trace",
    "TraceConfigError",
    "TraceQueueFullError",
    "TraceSchemaError",
    "TraceStore",
    "TraceStoreError",
    "UnknownTraceError",
    "record_dtype",
]
