"""Exceptions of the trace store, under :class:`obelisk.errors.ObeliskError`."""

from __future__ import annotations

from obelisk.errors import ObeliskError

__all__ = [
    "TraceConfigError",
    "TraceFallbackError",
    "TraceQueueFullError",
    "TraceSchemaError",
    "TraceStoreError",
    "UnknownTraceError",
]


class TraceStoreError(ObeliskError):
    """The trace store cannot accept or write traces; the cause is chained."""


class TraceFallbackError(TraceStoreError):
    """The database would not take `count` traces, so they were appended to the fallback
    file at `path`; the store takes no more. Opening a store on the database replays them."""

    def __init__(self, message: str, path: str = "", count: int = 0) -> None:
        super().__init__(message)
        self.path = path
        self.count = count


class TraceQueueFullError(TraceStoreError):
    """The queue of unwritten traces is full and the caller chose not to wait (longer)."""


class TraceConfigError(TraceStoreError, ValueError):
    """A store setting (argument or environment variable) is out of range."""


class TraceSchemaError(TraceStoreError):
    """The database was written by a newer obelisk, or is not a trace database."""


class UnknownTraceError(TraceStoreError, KeyError):
    """No trace has this id."""
