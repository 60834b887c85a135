"""What a query returns: one decoded trace, or many as a numpy structured array."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Trace", "record_dtype"]


@dataclass(frozen=True, slots=True)
class Trace:
    """One decision, order or fill as stored. `ts` is milliseconds since the epoch.

    Traces never change once written, so a cached one is shared between callers:
    treat `payload` as read-only.
    """

    id: int
    ts: int
    kind: str
    asset: str | None
    order_id: int | None
    cloid: str | None
    payload: Any


def record_dtype(kind_width: int, asset_width: int) -> np.dtype:
    """Columns of :meth:`TraceStore.query_records`; a missing asset is "", a missing order id -1."""
    return np.dtype([("id", np.int64), ("ts", np.int64), ("kind", f"U{max(kind_width, 1)}"),
                     ("asset", f"U{max(asset_width, 1)}"), ("order_id", np.int64)])
