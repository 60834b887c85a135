"""What this process believes about its orders and fills: the local side of reconciliation.

Every change is written to a journal (the trace store, in production) before
it is applied, so a restarted process replays the journal and knows exactly
which orders it had open and which fills it had applied.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from obelisk.execution.venue import VenueFill, VenueOrder

Journal = Callable[[str, dict[str, Any]], object]
"""Records one ledger event durably: ``journal(kind, payload)``."""

ORDER_OPENED, ORDER_CLOSED, FILL_APPLIED = "order_opened", "order_closed", "fill_applied"
LEDGER_KINDS = (ORDER_OPENED, ORDER_CLOSED, FILL_APPLIED)

FILL_MEMORY_MS = 3_600_000      # fills a ledger knows by tid: an hour before the newest
CLOSED_KEPT = 100_000           # closed orders it remembers, the latest


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
    """Open orders by oid, fills applied by tid, and the time of the newest fill.

    What it remembers of the past is bounded, for a process that trades for weeks (it
    kept every tid and every closed order, ~365 bytes a fill and order, for as long as
    it ran): the tids of fills up to `fill_memory_ms` older than the newest (recovery
    fetches fills again only from a little before the newest: see
    PositionRecovery.fill_lookback_ms), and the latest `closed_kept` closed orders.
    """

    def __init__(self, journal: Journal | None = None, *, fill_memory_ms: int = FILL_MEMORY_MS,
                 closed_kept: int = CLOSED_KEPT) -> None:
        if fill_memory_ms < 0 or closed_kept < 1:
            raise ValueError(f"fill_memory_ms must be >= 0 and closed_kept >= 1, got "
                             f"{fill_memory_ms} and {closed_kept}")
        self.orders: dict[int, VenueOrder] = {}
        self.closed: OrderedDict[int, ClosedOrder] = OrderedDict()
        self.fill_ids: set[int] = set()
        self.checkpoint_ms = 0
        self.fill_memory_ms, self.closed_kept = fill_memory_ms, closed_kept
        self._fill_times: deque[tuple[int, int]] = deque()     # (time_ms, tid), as applied
        self._journal = journal

    def order_opened(self, order: VenueOrder) -> None:
        self._write(ORDER_OPENED, asdict(order))
        self.orders[order.oid] = order

    def order_closed(self, oid: int, status: str) -> None:
        self._write(ORDER_CLOSED, {"oid": oid, "status": status})
        self.orders.pop(oid, None)
        self.closed[oid] = ClosedOrder(oid, status)
        self.closed.move_to_end(oid)
        if len(self.closed) > self.closed_kept:
            self.closed.popitem(last=False)

    def fill_applied(self, fill: VenueFill) -> bool:
        """Journal a fill about to be applied; False (and nothing written) if its tid is
        already known, so that no fill is ever applied twice."""
        if fill.tid in self.fill_ids:
            return False
        self._write(FILL_APPLIED, asdict(fill))
        self.fill_ids.add(fill.tid)
        self.checkpoint_ms = max(self.checkpoint_ms, fill.time_ms)
        self._fill_times.append((fill.time_ms, fill.tid))
        self._forget_fills()
        return True

    def _forget_fills(self) -> None:
        """Drop the tids of fills older than `fill_memory_ms` before the newest, in the order
        they were applied (one applied late with an old time waits for those before it)."""
        horizon = self.checkpoint_ms - self.fill_memory_ms
        times = self._fill_times
        while times and times[0][0] < horizon:
            self.fill_ids.discard(times.popleft()[1])

    def closed_filled(self, oid: int) -> bool:
        """Whether order `oid` (the exchange's id) was closed as filled."""
        closed = self.closed.get(oid)
        return closed is not None and closed.status == "filled"

    def knows_fill(self, tid: int) -> bool:
        return tid in self.fill_ids

    @classmethod
    def replay(cls, events: Iterable[tuple[str, dict[str, Any]]],
               journal: Journal | None = None, *, fill_memory_ms: int = FILL_MEMORY_MS,
               closed_kept: int = CLOSED_KEPT) -> tuple[OrderLedger, list[VenueFill]]:
        """The ledger a journal describes, and its fills in order (to rebuild the portfolio)."""
        ledger = cls(fill_memory_ms=fill_memory_ms, closed_kept=closed_kept)
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
