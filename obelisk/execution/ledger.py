"""What this process believes about its orders and fills: the local side of reconciliation.

Every change is written to a journal (the trace store, in production) before
it is applied, so a restarted process replays the journal and knows exactly
which orders it had open and which fills it had applied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

from obelisk.execution.venue import VenueFill, VenueOrder

Journal = Callable[[str, dict[str, Any]], object]
"""Records one ledger event durably: ``journal(kind, payload)``."""

ORDER_OPENED, ORDER_CLOSED, FILL_APPLIED = "order_opened", "order_closed", "fill_applied"
LEDGER_KINDS = (ORDER_OPENED, ORDER_CLOSED, FILL_APPLIED)


class _Stored(Protocol):
    id: int
    kind: str
    payload: Any


class TraceLog(Protocol):
    """What the ledger needs of :class:`obelisk.store.TraceStore`."""

    def record(self, kind: str, payload: Any, *, asset: str | None = ...,
               order_id: int | None = ..., cloid: str | None = ...,
               durable: bool = ...) -> int: ...

    def query(self, *, kind: str | None = ...) -> Iterator[_Stored]: ...

    def flush(self) -> bool: ...


def store_journal(store: TraceLog) -> Journal:
    """A journal that commits each ledger event to the trace store before it is applied."""
    def write(kind: str, payload: dict[str, Any]) -> None:
        store.record(kind, payload, asset=payload.get("coin"), order_id=payload.get("oid"),
                     cloid=payload.get("cloid"), durable=True)
    return write


def stored_events(store: TraceLog) -> list[tuple[str, dict[str, Any]]]:
    """The ledger events in a trace store, in the order they were recorded."""
    store.flush()
    traces = sorted((t for kind in LEDGER_KINDS for t in store.query(kind=kind)),
                    key=lambda t: t.id)
    return [(t.kind, dict(t.payload)) for t in traces]


@dataclass(frozen=True)
class ClosedOrder:
    oid: int
    status: str


class OrderLedger:
    """Open orders by oid, fills applied by tid, and the time of the newest fill."""

    def __init__(self, journal: Journal | None = None) -> None:
        self.orders: dict[int, VenueOrder] = {}
        self.closed: dict[int, ClosedOrder] = {}
        self.fill_ids: set[int] = set()
        self.checkpoint_ms = 0
        self._journal = journal

    def order_opened(self, order: VenueOrder) -> None:
        self._write(ORDER_OPENED, asdict(order))
        self.orders[order.oid] = order

    def order_closed(self, oid: int, status: str) -> None:
        self._write(ORDER_CLOSED, {"oid": oid, "status": status})
        self.orders.pop(oid, None)
        self.closed[oid] = ClosedOrder(oid, status)

    def fill_applied(self, fill: VenueFill) -> bool:
        """Journal a fill about to be applied; False (and nothing written) if its tid is
        already known, so that no fill is ever applied twice."""
        if fill.tid in self.fill_ids:
            return False
        self._write(FILL_APPLIED, asdict(fill))
        self.fill_ids.add(fill.tid)
        self.checkpoint_ms = max(self.checkpoint_ms, fill.time_ms)
        order = self.orders.get(fill.oid)
        if order is not None:       # an open order's size is what is left of it
            self.orders[fill.oid] = replace(order, size=max(0.0, order.size - abs(fill.size)))
        return True

    def closed_filled(self, oid: int) -> bool:
        """Whether order `oid` (the exchange's id) was closed as filled."""
        closed = self.closed.get(oid)
        return closed is not None and closed.status == "filled"

    def knows_fill(self, tid: int) -> bool:
        return tid in self.fill_ids

    @classmethod
    def replay(cls, events: Iterable[tuple[str, dict[str, Any]]],
               journal: Journal | None = None) -> tuple[OrderLedger, list[VenueFill]]:
        """The ledger a journal describes, and its fills in order (to rebuild the portfolio)."""
        ledger = cls()
        fills = []
        for kind, payload in events:
            if kind == ORDER_OPENED:
                ledger.order_opened(VenueOrder(**payload))
            elif kind == ORDER_CLOSED:
                ledger.order_closed(payload["oid"], payload["status"])
            elif kind == FILL_APPLIED:
                fill = VenueFill(**payload)
                if ledger.fill_applied(fill):
                    fills.append(fill)
        ledger._journal = journal
        return ledger, fills

    def _write(self, kind: str, payload: dict[str, Any]) -> None:
        if self._journal is not None:
            self._journal(kind, payload)
