"""Store settings that deployments tune without code changes, read from the environment.

An argument given to the constructor wins over the environment variable, which
wins over the default.
"""

from __future__ import annotations

import os

from obelisk.store.errors import TraceConfigError

__all__ = [
    "DEFAULT_BATCH_FLUSH_MS", "DEFAULT_BATCH_SIZE", "DEFAULT_CACHE_SIZE", "check_int", "setting",
]

DEFAULT_BATCH_SIZE = 100
DEFAULT_BATCH_FLUSH_MS = 5_000
DEFAULT_CACHE_SIZE = 500


def setting(name: str, given: int | None, default: int, minimum: int) -> int:
    """`given`, else the integer in environment variable `name`, else `default`; >= `minimum`."""
    if given is not None:
        return check_int(name.lower().removeprefix("trace_"), given, minimum)
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise TraceConfigError(f"{name} must be an integer, got {raw!r}") from None
    return check_int(name, value, minimum)


def check_int(name: str, value: object, minimum: int) -> int:
    """`value` if it is an int >= `minimum`, else TraceConfigError naming the setting."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise TraceConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value
