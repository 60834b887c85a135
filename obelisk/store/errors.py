"""Exceptions of the trace store, under :class:`obelisk.errors.ObeliskError`."""

from __future__ import annotations

from obelisk.errors import ObeliskError

__all__ = [
    "TraceConfigError",
    "TraceQueueFullError",
    "TraceSchemaError",
    "TraceStoreError",
    "UnknownTraceError",
]


class TraceStoreError(ObeliskError):
    """The trace store cannot accept or write traces; the cause is chained."""


class TraceQueueFullError(TraceStoreError):
    """The queue of unwritten traces is full and the caller chose not to wait (longer)."""


class TraceConfigError(TraceStoreError, ValueError):
    """A store setting (argument or environment variable) is out of range."""


class TraceSchemaError(TraceStoreError):
    """The database was written by a newer obelisk, or is not a trace database."""


class UnknownTraceError(TraceStoreError, KeyError):
    """No trace has this id."""
