"""Hyperliquid behind the engine's :class:`~obelisk.execution.venue.BatchVenue`.

The trading engine hands over numpy batches in ticks and lots; this venue turns
them into signed bulk ``order`` and ``cancelByCloid`` actions, maps the
immediate statuses to RESULT_DTYPE rows, and reports the account's fills as
they arrive over the websocket (``userFills``, ``orderUpdates``), or by polling
``userFillsByTime`` when there is none.

Client order ids. Every order carries the cloid :func:`cloid_of` derives from
its engine order id: ``0x`` + ``0b15`` (obelisk's tag) + the 48-bit `session`
(12 hex) + the engine oid (16 hex), 32 hex digits in all. A fill or order update
whose cloid starts with this venue's prefix names its engine oid without any
table, so a restarted process given the same session derives the same cloids,
and can ask for, cancel and recognise the orders of the run before it. (The
engine numbers orders from 1 in every process, so by default every venue takes a
new session from the clock; a restarted engine that reuses a session must also
continue its order ids, or the exchange refuses its first orders as duplicate
cloids.)

Never the same order twice. When an order action's answer is lost
(:class:`ExchangeOutcomeUnknownError`, or an answer that cannot be read), the
venue asks the exchange about each order of that action by cloid
(``orderStatus``): an order the exchange knows takes its status, and only the
unknown ones are sent again, once, in one action. If that action's answer is
lost too, ``execute`` raises, and the engine marks its batch *unknown* and halts
for reconciliation. Cancels are resolved the same way.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, Literal, NamedTuple, TypeVar

import numpy as np

from obelisk._core.book import RESULT_DTYPE, Reason
from obelisk._core.codes import ALO as _ALO
from obelisk._core.codes import BUY as _BUY
from obelisk._core.codes import CANCEL as _CANCEL
from obelisk._core.codes import CANCELLED as _CANCELLED
from obelisk._core.codes import FILLED as _FILLED
from obelisk._core.codes import GTC as _GTC
from obelisk._core.codes import IOC as _IOC
from obelisk._core.codes import IOC_REMAINDER as _IOC_REMAINDER
from obelisk._core.codes import LIMIT as _LIMIT
from obelisk._core.codes import MARKET as _MARKET
from obelisk._core.codes import REJECTED as _REJECTED
from obelisk._core.codes import RESTED as _RESTED
from obelisk._core.codes import USER_CANCEL as _USER_CANCEL
from obelisk._core.position import POSITION_FILL_DTYPE
from obelisk.breaker import CircuitOpenError
from obelisk.errors import ObeliskError
from obelisk.execution.venue import BatchReport, VenueOrder
from obelisk.hyperliquid.actions import OrderOutcome
from obelisk.hyperliquid.errors import (
    ExchangeOutcomeUnknownError,
    HyperliquidError,
    MalformedResponseError,
)
from obelisk.hyperliquid.exchange import DEFAULT_SLIPPAGE, Exchange, SignedAction, slippage_price
from obelisk.hyperliquid.types import OrderWithStatus
from obelisk.hyperliquid.wire import float_to_wire
from obelisk.hyperliquid.ws import Subscription, WebsocketClient
from obelisk.hyperliquid.ws_post import WebsocketPoster
from obelisk.instruments import Instrument, InstrumentTable

__all__ = ["CLOID_TAG", "MAX_INFLIGHT_ACTIONS", "MAX_ORDERS_PER_ACTION", "HyperliquidBatchVenue",
           "VenueStats", "WebsocketThread", "cloid_of", "oid_of_cloid"]

log = logging.getLogger(__name__)

T = TypeVar("T")
_Post = Callable[..., list[OrderOutcome]]               # posts a signed action: its outcomes
_Via = Callable[[dict[str, Any]], Any]                   # posts a body: the exchange's answer
_Settle = Callable[["_Batch", int, OrderOutcome, "_Results"], None]
_Sent = tuple[dict[int, dict[str, Any]], _Settle, Future[list[OrderOutcome]]]

MAX_ORDERS_PER_ACTION = 500
"""Orders (or cancels) per signed action. An action costs ``1 + n // 40`` of the IP
weight budget, so bigger actions are cheaper per order, but the exchange answers an
action only when all of it is done, and 500 order wires (~55 kB) stay far below the
1 MiB body limit; a batch of 1000 goes out as two actions."""
MAX_INFLIGHT_ACTIONS = 1
"""Order actions of one batch on their way at once over HTTP: one, so that the exchange
runs a batch's orders in the engine's order (see ``max_inflight``)."""
CLOID_TAG = 0x0B15
"""The 16 bits every obelisk cloid starts with."""
FILL_POLL_INTERVAL = 2.0        # s between userFillsByTime polls (weight 20 + 1 per 20 fills)
DRAIN_INTERVAL = 0.005          # s between reads of the websocket's news while an answer is due
FILL_POLL_LOOKBACK_MS = 60_000  # a polled fill reported late with an older time is still seen
FILL_PAGE = 2000                # userFillsByTime answers at most this many fills
_SEEN_TIDS = 1_000_000          # trade ids remembered for deduplication
_EXCHANGE_OIDS = 100_000        # exchange oid -> engine oid, for fills that carry no cloid
_ERRORS_KEPT = 10_000

_ORDER_TYPES = {_GTC: {"limit": {"tif": "Gtc"}}, _IOC: {"limit": {"tif": "Ioc"}},
                _ALO: {"limit": {"tif": "Alo"}}}
_WIRE_TEXTS = 1 << 16               # wire prices and sizes remembered per venue
_NO_MATCH = "could not immediately match"
# The exchange's error texts, lower-cased, and the core Reason they correspond to.
_REASONS = (("post only", Reason.ALO_WOULD_CROSS), ("invalid price", Reason.INVALID_PRICE),
            ("too far from oracle", Reason.INVALID_PRICE), ("invalid size", Reason.INVALID_QTY),
            ("zero size", Reason.INVALID_QTY), ("minimum value", Reason.INVALID_QTY),
            ("duplicate cloid", Reason.DUPLICATE_OID), ("never placed", Reason.UNKNOWN_OID),
            ("does not exist", Reason.UNKNOWN_ASSET))


# ------------------------------------------------------------------ client order ids

def new_session() -> int:
    """A session no earlier run has used: the wall clock in milliseconds (48 bits hold
    it until the year 10889), so a restarted process never repeats a cloid."""
    return time.time_ns() // 1_000_000 & (1 << 48) - 1


def cloid_of(oid: int, session: int = 0) -> str:
    """The cloid of engine order `oid` in `session` (see the module docstring)."""
    return f"0x{CLOID_TAG:04x}{session:012x}{oid:016x}"


def oid_of_cloid(cloid: str | None, session: int = 0) -> int | None:
    """The engine oid a cloid of `session` names; None for any other cloid."""
    if cloid is None or len(cloid) != 34 or cloid[:18].lower() != _prefix(session):
        return None
    return int(cloid[18:], 16)


@lru_cache(maxsize=64)
def _prefix(session: int) -> str:
    """``0x``, the tag and the session: what every cloid of `session` starts with (read
    once per fill, so formatted once per session)."""
    return cloid_of(0, session)[:18]


def _reason(text: str) -> int:
    lowered = text.lower()
    return next((int(reason) for key, reason in _REASONS if key in lowered), int(Reason.NONE))


# ------------------------------------------------------------------ the websocket thread

class WebsocketThread:
    """A started :class:`WebsocketClient` on its own event loop thread, for synchronous
    owners such as the engine (whose venue subscribes through :attr:`loop`)."""

    def __init__(self, url: str, *, connect_timeout: float = 10.0, **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                        name="obelisk-websocket")
        self._thread.start()
        self.client: WebsocketClient = self.call(self._start(url, options), connect_timeout)

    @staticmethod
    async def _start(url: str, options: Mapping[str, Any]) -> WebsocketClient:
        client = WebsocketClient(url, **options)
        client.start()
        await client.wait_connected()
        return client

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run `coroutine` on the websocket's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        """Close the client, then stop and join the loop thread."""
        if self.loop.is_closed():
            return
        try:
            self.call(self.client.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()

    def __enter__(self) -> WebsocketThread:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# ------------------------------------------------------------------ the venue

@dataclass
class VenueStats:
    """What the venue sent and heard, since it was made."""

    actions: int = 0              # signed actions posted (resends included)
    orders: int = 0               # orders and cancels in them
    refused_locally: int = 0      # never sent: FOK, modify, unknown asset, off-grid price
    not_sent: int = 0             # refused before sending: budget, breaker, 4xx
    lost_answers: int = 0         # actions whose answer was lost, resolved by cloid
    looked_up: int = 0            # orderStatus queries made to resolve them
    resent: int = 0               # orders the exchange did not know, sent again
    fills: int = 0                # fills reported to the engine
    duplicate_fills: int = 0      # fills seen again (same tid), dropped
    foreign_fills: int = 0        # fills of orders this venue did not send
    skipped_fills: int = 0        # fills dropped: a coin not in the table, or ignored foreign


class _Batch(NamedTuple):
    """The columns of an EVENT_DTYPE batch as Python lists, read once per execute."""

    oid: list[int]
    price: list[int]
    qty: list[int]
    asset: list[int]
    kind: list[int]
    side: list[int]
    tif: list[int]


def _actions(kinds: np.ndarray, oids: np.ndarray, limit: int
             ) -> Iterator[tuple[list[int], bool]]:
    """The batch as few actions as keep its meaning, at most `limit` events each: first the
    cancels of orders sent before (Hyperliquid itself runs a block's cancels before its
    GTC and IOC orders), then the orders in batch order, then the cancels of orders placed
    earlier in this batch, which must exist when their cancel arrives."""
    is_cancel = (kinds == _CANCEL).tolist()
    oid_list = oids.tolist()
    placed_at = {oid: i for i, (oid, cancel) in enumerate(zip(oid_list, is_cancel, strict=True))
                 if not cancel}
    early, orders, late = [], [], []
    for i, (oid, cancel) in enumerate(zip(oid_list, is_cancel, strict=True)):
        if not cancel:
            orders.append(i)
        elif placed_at.get(oid, len(oid_list)) < i:
            late.append(i)
        else:
            early.append(i)
    for group, cancels in ((early, True), (orders, False), (late, True)):
        for start in range(0, len(group), limit):
            yield group[start:start + limit], cancels


class HyperliquidBatchVenue:
    """The account on Hyperliquid as a :class:`BatchVenue` for :class:`TradingEngine`.

    Parameters
    ----------
    exchange : Exchange
        The signing client (its nonce source is the signer's one; its transport's
        request-weight budget and network breaker guard every request).
    instruments : InstrumentTable
        The engine's rows; each must be the exchange's instrument of that coin.
    account : str, optional
        The account traded (default: ``exchange.account``).
    websocket, loop : WebsocketClient and the event loop it runs on, optional
        Fills arrive over ``userFills`` and removals over ``orderUpdates``; without
        them ``collect`` polls ``userFillsByTime`` every `poll_interval` seconds.
        (See :class:`WebsocketThread`.) One account per websocket client: orderUpdates
        frames do not name the user.
    session : int or None
        48 bits that make this run's cloids (see :func:`cloid_of`); None (the default)
        takes a new one from the clock (:func:`new_session`). Give the previous run's
        session only to take over its orders, and then continue its order ids.
    max_orders_per_action : int
        Where a batch is split into signed actions.
    max_inflight : int
        How many of a batch's actions may be on their way at once (default 1). The
        next action is signed and queued meanwhile, and posted as soon as one is
        answered. More than one keeps the exchange busy while the venue reads an
        answer. Over HTTP the exchange may then run a batch's actions in another
        order, so an IOC can miss the liquidity it would have met: give more only when
        the orders of one batch do not depend on each other; cancels then wait for the
        actions before them. Over the websocket (`post_via`) the actions arrive in the
        batch's order however many are on their way.
    post_via : "http" or "websocket"
        How actions go out. ``"websocket"`` posts them on `websocket` (``post``
        requests, written in order; :class:`~obelisk.hyperliquid.ws_post.WebsocketPoster`)
        and over HTTP while the socket is down; an answer lost on the socket is resolved
        by cloid like a lost HTTP answer. Lookups and resends always use HTTP.
    slippage : float
        How far past the mid a market order without a protection price may trade.
    foreign_fills : "report" or "ignore"
        Live fills of orders this venue did not send (placed by hand, by recovery, by an
        earlier run) move the account too: reported with their engine oid when the cloid
        has this session's prefix, else oid 0, so the portfolio follows the exchange; or
        dropped. Fills in a snapshot (websocket (re)subscription) or a poll are history
        and only reported for orders this venue sent.

    Outcomes. ``resting`` -> RESTED (resting_qty = the order's size), ``filled`` ->
    FILLED (filled_qty = totalSz), an IOC or market order that met nothing -> CANCELLED
    (IOC_REMAINDER, as the core book reports it), any other error -> REJECTED, with the
    exchange's text in :attr:`last_errors` by engine oid. A FOK order, a modify or an
    asset outside the table is refused without sending; an action the transport
    refused before sending (request-weight budget, open breaker, HTTP 4xx) rejects its
    orders with that reason. The engine wraps ``execute`` in its own breaker, which
    counts only what ``execute`` raises (answers lost twice); the transport's breaker
    counts network faults per request. The venue adds no third one.

    Fills. The engine applies the fills it gets from ``execute`` (those queued by
    then) and from ``collect``; each trade id once. ``done_oids`` names a rested
    order when its fills reach its size; ``removed_oids`` a rested order the exchange
    closed otherwise (self-trade, margin, scheduled cancel).
    """

    def __init__(self, exchange: Exchange, instruments: InstrumentTable | Sequence[Instrument],
                 account: str | None = None, *, websocket: WebsocketClient | None = None,
                 loop: asyncio.AbstractEventLoop | None = None, session: int | None = None,
                 max_orders_per_action: int = MAX_ORDERS_PER_ACTION,
                 max_inflight: int = MAX_INFLIGHT_ACTIONS,
                 post_via: Literal["http", "websocket"] = "http",
                 slippage: float = DEFAULT_SLIPPAGE,
                 foreign_fills: Literal["report", "ignore"] = "report",
                 poll_interval: float = FILL_POLL_INTERVAL,
                 subscribe_timeout: float = 10.0) -> None:
        session = new_session() if session is None else session
        if not 0 <= session < 1 << 48:
            raise ValueError(f"session must fit in 48 bits, got {session}")
        if max_orders_per_action < 1:
            raise ValueError(f"max_orders_per_action must be >= 1, got {max_orders_per_action}")
        if max_inflight < 1:
            raise ValueError(f"max_inflight must be >= 1, got {max_inflight}")
        if foreign_fills not in ("report", "ignore"):
            raise ValueError(f"foreign_fills is 'report' or 'ignore', got {foreign_fills!r}")
        if websocket is not None and loop is None:
            raise ValueError("give the event loop the websocket client runs on (loop=...)")
        if post_via not in ("http", "websocket"):
            raise ValueError(f"post_via is 'http' or 'websocket', got {post_via!r}")
        if post_via == "websocket" and websocket is None:
            raise ValueError("post_via='websocket' needs the websocket client (websocket=...)")
        self.exchange = exchange
        self.info = exchange.info
        self.transport = exchange.info.transport
        self.instruments = instruments if isinstance(instruments, InstrumentTable) \
            else InstrumentTable(instruments)
        self._check_instruments()
        self.account = (account or exchange.account).lower()
        self.session = session
        self._cloid_head = _prefix(session)
        self.max_orders_per_action = max_orders_per_action
        self.max_inflight = max_inflight
        # what posts actions on the websocket (None: over HTTP)
        self.poster = WebsocketPoster(websocket, loop, self.transport) \
            if post_via == "websocket" and websocket is not None and loop is not None else None
        self._senders: ThreadPoolExecutor | None = None   # made when first needed
        self._stats_lock = threading.Lock()               # senders count too
        self.slippage = slippage
        self.foreign_fills = foreign_fills
        self.poll_interval = poll_interval
        self.websocket = websocket
        self.stats = VenueStats()
        self.last_errors: OrderedDict[int, str] = OrderedDict()
        self._prices: dict[tuple[int, int], str] = {}   # (row, ticks) -> wire price
        self._sizes: dict[tuple[int, int], str] = {}    # (row, lots) -> wire size
        self._row_of_asset = {int(a): row for row, a in enumerate(self.instruments.assets)}
        self._row_of_coin = {coin: row for row, coin in enumerate(self.instruments.coins)}
        self._lots_per_coin = [10 ** i.sz_decimals for i in self.instruments]
        self._inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        # The engine oids this venue sent lie within these bounds (an engine numbers its orders
        # upwards): a fill of this session's cloids outside them is a previous process's.
        self._first_sent, self._last_sent = 1 << 63, -1
        self._resting: dict[int, int] = {}           # rested order -> lots its fills must reach
        self._expected: dict[int, int] = {}          # lots reported filled, fills not yet in
        # Sent orders whose answer is not read yet: what the websocket says of them meanwhile
        # (fills in lots, closes) waits here for the answer (the venue reads the websocket
        # while it waits for the exchange)
        self._unsettled: set[int] = set()
        self._early_lots: dict[int, int] = {}
        self._early_closed: set[int] = set()
        self._cancelling: set[int] = set()           # cancels sent: their answers report them
        self._closed_meanwhile: set[int] = set()     # ... and orders closed while they were out
        self._by_exchange_oid: dict[int, int] = {}
        self._seen: set[int | str] = set()
        self._seen_order: deque[int | str] = deque()
        self._pending = _Activity()
        self._polled_at = -float("inf")
        self._poll_from = time.time_ns() // 1_000_000 - 3_600_000
        self._snapshot = threading.Event()
        self._loop = loop
        self._subscriptions: list[Subscription] = []
        if websocket is not None and loop is not None:
            self._subscribe(websocket, loop, subscribe_timeout)

    # ------------------------------------------------------------ setup

    def _check_instruments(self) -> None:
        """One source per fact: the table's asset ids and grids must be the exchange's."""
        for instrument in self.instruments:
            theirs = self.exchange.directory.instrument(instrument.name)
            if (theirs.asset, theirs.sz_decimals) != (instrument.asset, instrument.sz_decimals):
                raise ValueError(f"{instrument.name} is asset {theirs.asset} with szDecimals "
                                 f"{theirs.sz_decimals} on the exchange, not {instrument}")

    def _subscribe(self, websocket: WebsocketClient, loop: asyncio.AbstractEventLoop,
                   timeout: float) -> None:
        """userFills and orderUpdates into the inbox; wait for the fills snapshot, so no fill
        of a first order can come before the subscription."""
        def on_fills(data: Any) -> None:
            self.receive("userFills", data)
            if isinstance(data, Mapping) and data.get("isSnapshot"):
                self._snapshot.set()

        def on_updates(data: Any) -> None:
            self.receive("orderUpdates", data)

        for kind, callback in (("userFills", on_fills), ("orderUpdates", on_updates)):
            self._subscriptions.append(asyncio.run_coroutine_threadsafe(
                websocket.subscribe({"type": kind, "user": self.account}, callback),
                loop).result(timeout))
        if not self._snapshot.wait(timeout):
            log.warning("no userFills snapshot within %.1f s; fills of the first orders may "
                        "be missed until the next one", timeout)

    # ------------------------------------------------------------ ids

    def cloid(self, oid: int) -> str:
        """The cloid engine order `oid` is sent with (``cloid_of(oid, session)``)."""
        return f"{self._cloid_head}{oid:016x}"

    def engine_oid(self, cloid: str | None) -> int | None:
        """The engine oid this venue's cloid names; None for any other cloid."""
        return oid_of_cloid(cloid, self.session)

    def resync(self, open_orders: Iterable[VenueOrder], lost: Iterable[int] = (),
               filled: Callable[[int], bool] = lambda exchange_oid: False) -> None:
        """Bring the orders this venue tracks in line with the exchange's open orders, as a
        passing reconciliation fetched them (each at what is left of it). One it tracked
        that is gone (filled or closed while its frames went to recovery instead) is
        reported at the next report: done when `filled` says its exchange oid closed
        filled, else removed (a strategy told a filled order was removed may place it
        again). One it tracks keeps the smaller of the two sizes left (recovery may have
        applied fills it never saw); one of `lost` (engine oids whose answers were lost)
        that rests is tracked from now on, to report when it completes. Fills it waited
        for, recovery applied. Call from the engine's thread, with no batch in flight."""
        still: dict[int, int] = {}
        for order in open_orders:
            oid, row = self.engine_oid(order.cloid), self._row_of_coin.get(order.coin)
            if oid is not None and row is not None and order.trigger_px is None:
                still[oid] = round(order.size * self._lots_per_coin[row])
                self._remember_exchange_oid(order.oid, oid)     # also one whose answer was lost
        exchange_oids = {oid: exchange_oid for exchange_oid, oid in self._by_exchange_oid.items()}
        for oid in [oid for oid in self._resting if oid not in still]:
            del self._resting[oid]
            done = oid in exchange_oids and filled(exchange_oids[oid])
            (self._pending.done if done else self._pending.removed).append(oid)
        for oid, lots in still.items():
            if oid in self._resting:
                self._resting[oid] = min(self._resting[oid], lots)
        self._resting.update((oid, still[oid]) for oid in lost if oid in still)
        self._expected.clear()

    @property
    def awaiting_fills(self) -> int:
        """Orders whose immediately reported fills have not all arrived yet."""
        return len(self._expected)

    # ------------------------------------------------------------ BatchVenue

    def execute(self, events: np.ndarray,
                reduce_only: np.ndarray | None = None) -> BatchReport:
        """Send the events as signed bulk actions (grouped as `_actions` says); their
        outcomes, and every fill, completion and removal that arrived since the last report.

        `reduce_only` (bool per event) sends orders with Hyperliquid's reduce-only flag.
        The engine does not pass it (EVENT_DTYPE has no flags; it clips reduce-only
        orders to its own position before sending them as plain orders).
        """
        results = _Results(len(events))
        batch = _Batch(*(events[name].tolist() for name in _Batch._fields))
        flags = [False] * len(events) if reduce_only is None else reduce_only.tolist()
        inflight: deque[_Sent] = deque()
        # Actions go out in the order they are queued (one HTTP sender, or the websocket):
        # each is signed while the ones before it are on their way. With more HTTP senders
        # a cancel action waits for the orders before it, and those after it for it.
        alone = self.max_inflight if self.poster is not None or self.max_inflight == 1 else 0
        try:
            for indices, cancels in _actions(events["kind"], events["oid"],
                                             self.max_orders_per_action):
                if cancels:
                    requests = self._cancel_requests(batch, indices, results)
                    if requests:
                        self._settle_sent(batch, inflight, results, keep=alone)
                        self._send(self.exchange.sign_cancels_by_cloid, self._post_cancels,
                                   self._settle_cancel, requests, batch, inflight, results)
                        self._settle_sent(batch, inflight, results, keep=alone)
                    continue
                requests = self._order_requests(batch, indices, flags, results)
                if requests:
                    self._send(self.exchange.sign_order_wires, self._post_orders,
                               self._settle_order, requests, batch, inflight, results)
                    self._settle_sent(batch, inflight, results, keep=self.max_inflight)
            self._settle_sent(batch, inflight, results, keep=0)
        finally:
            for *_, future in inflight:        # after an answer lost twice: the rest end first
                if not future.cancel():
                    future.exception()
            self._unsettled.clear()            # (all settled, unless an answer was lost twice)
            self._early_lots.clear()
            self._early_closed.clear()
            self._cancelling.clear()
            self._closed_meanwhile.clear()
        self._drain()
        return self._pending.report(results.array())

    def receive(self, channel: str, data: Any) -> None:
        """Hand over one websocket frame's ``data`` (``userFills`` or ``orderUpdates``);
        safe from any thread. The venue's subscriptions call it; ``collect`` reads it."""
        self._inbox.put((channel, data))

    def collect(self) -> BatchReport | None:
        """What arrived since the last report, or None. Never waits on the websocket; without
        one it polls ``userFillsByTime`` when `poll_interval` has passed."""
        if self.websocket is None:
            self._poll_fills()
        self._drain()
        if not self._pending.any():
            return None
        return self._pending.report(_Results(0).array())

    def wait_for_fills(self, timeout: float) -> bool:
        """Wait until every immediately reported fill has arrived (then ``collect`` or the
        engine's ``poll`` reports them); whether they all did within `timeout` seconds.
        Call it from the engine's thread."""
        deadline = time.monotonic() + timeout
        while True:
            if self.websocket is None:
                self._poll_fills(force=True)
            self._drain()
            if not self._expected or time.monotonic() >= deadline:
                return not self._expected
            time.sleep(0.002)

    # ------------------------------------------------------------ orders

    def _order_requests(self, batch: _Batch, indices: list[int], reduce_only: list[bool],
                        results: _Results) -> dict[int, dict[str, Any]]:
        """The requests of one bulk order action for the orders at `indices`, by event
        index (local refusals left out)."""
        requests: dict[int, dict[str, Any]] = {}
        for i in indices:
            request = self._request(batch, i, results)
            if request is not None:
                request["r"] = bool(reduce_only[i])
                requests[i] = request
                oid = batch.oid[i]
                self._first_sent = min(self._first_sent, oid)
                self._last_sent = max(self._last_sent, oid)
                self._unsettled.add(oid)
        return requests

    def _send(self, sign: Callable[[list[dict[str, Any]]], SignedAction], post: _Post,
              settle: _Settle, requests: dict[int, dict[str, Any]], batch: _Batch,
              inflight: deque[_Sent], results: _Results) -> None:
        """Sign one action of `requests` (here, while the actions before it are on their way)
        and queue it on `inflight` for a sender thread, which posts it with `post` and
        whose outcomes `_settle_sent` settles with `settle` once they are in.

        Never before the actions queued ahead of it: over the websocket it is written
        behind them on the connection that carries them; when that connection is gone,
        they are answered first (a lost one resolved by cloid, and sent again if the
        exchange never had it). A sender resolving a lost answer waits for the action
        before it to be done for the same reason."""
        try:
            action = sign(list(requests.values()))
        except HyperliquidError as exc:
            unsent: Future[list[OrderOutcome]] = Future()
            unsent.set_result(self._not_sent(exc, len(requests)))
            inflight.append((requests, settle, unsent))
            return
        if self._senders is None:
            self._senders = ThreadPoolExecutor(self.max_inflight,
                                               thread_name_prefix="obelisk-venue-send")
        via = None
        if self.poster is not None:    # written now, in batch order; answered on a sender
            dispatched = self.poster.dispatch(action.body, follows=bool(inflight))
            if dispatched is None and inflight:
                self._settle_sent(batch, inflight, results, keep=0)
                dispatched = self.poster.dispatch(action.body)
            via = partial(self.poster.answer, dispatched)
        before = inflight[-1][2] if inflight else None
        inflight.append((requests, settle, self._senders.submit(
            post, list(requests), requests, action, recover=True, via=via, after=before)))

    def _settle_sent(self, batch: _Batch, inflight: deque[_Sent], results: _Results,
                     keep: int) -> None:
        """Wait for the oldest actions sent until at most `keep` are left; settle their
        orders and cancels in batch order. An answer lost twice raises here (see
        ``execute``)."""
        while len(inflight) > keep:
            requests, settle, future = inflight[0]
            while not future.done():           # the websocket's news, taken while waiting
                self._drain()
                wait((future,), timeout=DRAIN_INTERVAL)
            outcomes = future.result()
            inflight.popleft()
            for i, outcome in zip(requests, outcomes, strict=True):
                settle(batch, i, outcome, results)

    def _request(self, batch: _Batch, i: int, results: _Results) -> dict[str, Any] | None:
        """The order wire of event `i`, made from its ticks and lots without a float in
        between, or None after refusing it locally."""
        oid, kind, tif = batch.oid[i], batch.kind[i], batch.tif[i]
        row = self._row_of_asset.get(batch.asset[i])
        refusal = _refusal(kind, tif) if row is not None else (
            int(Reason.UNKNOWN_ASSET), f"asset {batch.asset[i]} is not in the InstrumentTable")
        if refusal is not None:
            self._refuse(results, i, oid, *refusal)
            return None
        assert row is not None
        is_buy = batch.side[i] == _BUY
        try:
            size = self._sizes.get((row, batch.qty[i])) or self._wire(
                self._sizes, row, batch.qty[i], Instrument.size_to_wire)
        except ObeliskError as exc:
            self._refuse(results, i, oid, Reason.INVALID_QTY, str(exc))
            return None
        try:
            price = self._limit_price(row, is_buy, batch.price[i], kind)
        except (ObeliskError, KeyError) as exc:
            self._refuse(results, i, oid, Reason.INVALID_PRICE, str(exc))
            return None
        return {"a": batch.asset[i], "b": is_buy, "p": price, "s": size, "r": False,
                "t": _ORDER_TYPES[_IOC if kind == _MARKET else tif], "c": self.cloid(oid)}

    def _limit_price(self, row: int, is_buy: bool, ticks: int, kind: int) -> str:
        """A limit's wire price; a market order's protection price, or without one the
        SDK's market price: the mid moved by `slippage` against the taker."""
        if kind == _MARKET and ticks == 0:
            instrument = self.instruments[row]
            mid = float(self.info.all_mids()[instrument.name])
            return float_to_wire(slippage_price(mid, is_buy, self.slippage,
                                                instrument.sz_decimals, instrument.is_spot))
        return self._prices.get((row, ticks)) or self._wire(self._prices, row, ticks,
                                                            Instrument.price_to_wire)

    def _wire(self, cache: dict[tuple[int, int], str], row: int, units: int,
              text_of: Callable[[Instrument, int], str]) -> str:
        """`text_of(instrument, units)` for the instrument at `row`, remembered (prices and
        sizes repeat); an invalid one raises and is not remembered."""
        text = text_of(self.instruments[row], units)
        if len(cache) >= _WIRE_TEXTS:
            cache.clear()
        cache[(row, units)] = text
        return text

    def _refuse(self, results: _Results, i: int, oid: int, reason: int, text: str) -> None:
        results.set(i, _REJECTED, reason)
        self._remember_error(oid, text)
        self.stats.refused_locally += 1

    def _post_orders(self, indices: list[int], requests: Mapping[int, dict[str, Any]],
                     action: SignedAction | None = None, *, recover: bool,
                     via: _Via | None = None,
                     after: Future[Any] | None = None) -> list[OrderOutcome]:
        """Post one bulk order action (`action`, signed from `requests`, or signed now; over
        HTTP or `via`); an outcome per order. A lost answer is resolved by cloid (when
        `recover`, once `after`, the action sent before, is done) or raised."""
        try:
            self._count(actions=1, orders=len(indices))
            if action is None:
                action = self.exchange.sign_order_wires([requests[i] for i in indices])
            result = self.exchange.send(action, via)
            return self._statuses(result.statuses, len(indices))
        except (ExchangeOutcomeUnknownError, MalformedResponseError):
            if not recover:
                raise
            self._count(lost_answers=1)
            if after is not None:      # its lookups and resends go after the action before
                wait((after,))
            return self._recover_orders(indices, requests)
        except (HyperliquidError, CircuitOpenError) as exc:
            return self._not_sent(exc, len(indices))

    def _recover_orders(self, indices: list[int],
                        requests: Mapping[int, dict[str, Any]]) -> list[OrderOutcome]:
        """Outcomes of an action whose answer was lost: the exchange's status of every
        order it knows by cloid; the others are sent again, once."""
        found = self._look_up([requests[i]["c"] for i in indices])
        outcomes = [_order_outcome(status) for status in found]
        unknown = [i for i, outcome in zip(indices, outcomes, strict=True) if outcome is None]
        if unknown:
            self._count(resent=len(unknown))
            again = iter(self._post_orders(unknown, requests, recover=False))
            outcomes = [outcome if outcome is not None else next(again) for outcome in outcomes]
        return [outcome for outcome in outcomes if outcome is not None]

    def _settle_order(self, batch: _Batch, i: int, outcome: OrderOutcome,
                      results: _Results) -> None:
        """The outcome of order `i` into its result row and the venue's fill accounting
        (with the fills and the close the websocket reported before the answer was read)."""
        oid = batch.oid[i]
        self._unsettled.discard(oid)
        early = self._early_lots.pop(oid, 0)
        closed = oid in self._early_closed
        self._early_closed.discard(oid)
        if outcome.oid is not None:
            self._remember_exchange_oid(outcome.oid, oid)
        if outcome.kind == "filled":
            row = self._row_of_asset[batch.asset[i]]
            lots = round((outcome.total_size or 0.0) * self._lots_per_coin[row])
            results.set(i, _FILLED, filled=lots)
            if lots > early:
                self._expected[oid] = self._expected.get(oid, 0) + lots - early
        elif outcome.kind == "error":
            text = outcome.error or "rejected"
            ioc = batch.kind[i] == _MARKET or batch.tif[i] == _IOC
            if ioc and _NO_MATCH in text:
                results.set(i, _CANCELLED, _IOC_REMAINDER)
            else:
                results.set(i, _REJECTED, _reason(text))
            self._remember_error(oid, text)
        elif outcome.kind == "canceled":
            results.set(i, _CANCELLED, _USER_CANCEL)
        else:                          # resting; anything new counts as still open
            results.set(i, _RESTED, resting=batch.qty[i])
            if closed:
                self._pending.removed.append(oid)
            elif early >= batch.qty[i]:
                self._pending.done.append(oid)
            else:
                self._resting[oid] = batch.qty[i] - early

    # ------------------------------------------------------------ cancels

    def _cancel_requests(self, batch: _Batch, indices: list[int], results: _Results
                         ) -> dict[int, dict[str, Any]]:
        """The requests of one bulk cancelByCloid action for the cancels at `indices`, by
        event index (local refusals left out)."""
        requests: dict[int, dict[str, Any]] = {}
        for i in indices:
            row = self._row_of_asset.get(batch.asset[i])
            if row is None:
                self._refuse(results, i, batch.oid[i], Reason.UNKNOWN_ASSET,
                             f"asset {batch.asset[i]} is not in the venue's InstrumentTable")
                continue
            requests[i] = {"coin": self.instruments.coins[row], "cloid": self.cloid(batch.oid[i])}
            self._cancelling.add(batch.oid[i])
        return requests

    def _settle_cancel(self, batch: _Batch, i: int, outcome: OrderOutcome,
                       results: _Results) -> None:
        """The outcome of cancel `i` into its result row."""
        oid = batch.oid[i]
        self._cancelling.discard(oid)
        closed_meanwhile = oid in self._closed_meanwhile
        self._closed_meanwhile.discard(oid)
        if outcome.kind == "success":
            results.set(i, _CANCELLED, _USER_CANCEL)
            self._resting.pop(oid, None)
        else:
            text = outcome.error or outcome.kind
            results.set(i, _REJECTED, _reason(text))
            self._remember_error(oid, text)
            # closed another way while the cancel was out (its close, read meanwhile, was
            # left to this answer); a refusal alone proves nothing (a cancel on another coin)
            if closed_meanwhile and self._resting.pop(oid, None) is not None:
                self._pending.removed.append(oid)

    def _post_cancels(self, indices: list[int], requests: Mapping[int, dict[str, Any]],
                      action: SignedAction | None = None, *, recover: bool,
                      via: _Via | None = None,
                      after: Future[Any] | None = None) -> list[OrderOutcome]:
        """Post one bulk cancelByCloid action (`action`, signed from `requests`, or signed
        now; over HTTP or `via`); an outcome per cancel. A lost answer is resolved by cloid
        (when `recover`, once `after`, the action sent before, is done) or raised."""
        try:
            self._count(actions=1, orders=len(indices))
            if action is None:
                action = self.exchange.sign_cancels_by_cloid([requests[i] for i in indices])
            result = self.exchange.send(action, via)
            return self._statuses(result.statuses, len(indices))
        except (ExchangeOutcomeUnknownError, MalformedResponseError):
            if not recover:
                raise
            self._count(lost_answers=1)
            if after is not None:      # its lookups and resends go after the action before
                wait((after,))
            return self._recover_cancels(indices, requests)
        except (HyperliquidError, CircuitOpenError) as exc:
            return self._not_sent(exc, len(indices))

    def _recover_cancels(self, indices: list[int],
                         requests: Mapping[int, dict[str, Any]]) -> list[OrderOutcome]:
        """Outcomes of a cancel action whose answer was lost: canceled orders succeeded,
        orders still open are cancelled again, any other status is the cancel's error."""
        found = self._look_up([requests[i]["cloid"] for i in indices])
        outcomes: list[OrderOutcome | None] = [_cancel_outcome(status) for status in found]
        again_for = [i for i, outcome in zip(indices, outcomes, strict=True) if outcome is None]
        if again_for:
            self._count(resent=len(again_for))
            again = iter(self._post_cancels(again_for, requests, recover=False))
            outcomes = [outcome if outcome is not None else next(again) for outcome in outcomes]
        return [outcome for outcome in outcomes if outcome is not None]

    # ------------------------------------------------------------ shared

    def _look_up(self, cloids: list[str]) -> list[OrderWithStatus | None]:
        """The exchange's latest status of each cloid, asked fresh (not from the cache)."""
        self.transport.invalidate_user(self.account)
        self._count(looked_up=len(cloids))
        return [self.info.order_status(self.account, cloid) for cloid in cloids]

    def _statuses(self, statuses: tuple[OrderOutcome, ...], expected: int) -> list[OrderOutcome]:
        if len(statuses) != expected:
            raise MalformedResponseError(f"the exchange answered {len(statuses)} statuses for "
                                         f"{expected} orders")
        return list(statuses)

    def _not_sent(self, exc: BaseException, count: int) -> list[OrderOutcome]:
        """Outcomes of an action the transport refused before sending it."""
        self._count(not_sent=count)
        text = f"not sent: {type(exc).__name__}: {exc}"
        log.warning("an action of %d orders was not sent: %s", count, text)
        return [OrderOutcome("error", error=text)] * count

    def _count(self, **counts: int) -> None:
        """Add to `stats` from any thread (order actions are sent from sender threads)."""
        with self._stats_lock:
            for name, count in counts.items():
                setattr(self.stats, name, getattr(self.stats, name) + count)

    def _remember_error(self, oid: int, text: str) -> None:
        self.last_errors[oid] = text
        if len(self.last_errors) > _ERRORS_KEPT:
            self.last_errors.popitem(last=False)

    def _remember_exchange_oid(self, exchange_oid: int, oid: int) -> None:
        self._by_exchange_oid[exchange_oid] = oid
        if len(self._by_exchange_oid) > _EXCHANGE_OIDS:
            del self._by_exchange_oid[next(iter(self._by_exchange_oid))]

    # ------------------------------------------------------------ fills in

    def _drain(self) -> None:
        """Everything the websocket queued, into the pending activity (engine thread)."""
        while True:
            try:
                channel, data = self._inbox.get_nowait()
            except queue.Empty:
                return
            if channel == "userFills" and isinstance(data, Mapping):
                self._take_fills(data.get("fills") or (), history=bool(data.get("isSnapshot")))
            elif channel == "orderUpdates" and isinstance(data, list):
                self._take_updates(data)

    def _poll_fills(self, force: bool = False) -> None:
        """Without a websocket: ``userFillsByTime`` from a minute before the newest fill. A
        poll that fails (budget, breaker, network) is logged and tried at the next interval:
        the fills stay on the exchange."""
        now = time.monotonic()
        if not force and now - self._polled_at < self.poll_interval:
            return
        self._polled_at = now
        try:
            self._poll_pages()
        except (HyperliquidError, CircuitOpenError) as exc:
            log.warning("polling userFillsByTime failed: %s: %s", type(exc).__name__, exc)

    def _poll_pages(self) -> None:
        start = self._poll_from
        while True:
            page = self.transport.post_info({"type": "userFillsByTime", "user": self.account,
                                             "startTime": start})
            self.receive("userFills", {"fills": page, "isSnapshot": True})
            newest = max((int(f["time"]) for f in page), default=start)
            self._poll_from = max(self._poll_from, newest - FILL_POLL_LOOKBACK_MS)
            if len(page) < FILL_PAGE or newest <= start:
                return
            start = newest

    def _take_fills(self, fills: Sequence[Mapping[str, Any]], *, history: bool) -> None:
        for fill in fills:
            key = fill.get("tid")
            if key is None:
                key = f"{fill.get('hash')}|{fill.get('oid')}|{fill.get('time')}|{fill.get('sz')}"
            if key in self._seen:
                self.stats.duplicate_fills += 1
                continue
            self._see(key)
            self._take_fill(fill, history)

    def _take_fill(self, fill: Mapping[str, Any], history: bool) -> None:
        oid = self.engine_oid(fill.get("cloid"))
        if oid is None:
            oid = self._by_exchange_oid.get(int(fill.get("oid", -1)))
        ours = oid is not None and self._first_sent <= oid <= self._last_sent
        row = self._row_of_coin.get(str(fill.get("coin")))
        if not ours and (history or self.foreign_fills == "ignore") or row is None:
            self.stats.skipped_fills += 1
            return
        size = float(fill["sz"])
        self._pending.add_fill(row, size if fill["side"] == "B" else -size, float(fill["px"]),
                               not fill.get("crossed", True), float(fill.get("fee", 0.0)),
                               oid or 0)
        self.stats.fills += 1
        if not ours:
            self.stats.foreign_fills += 1
        elif oid is not None:
            self._account_fill(oid, round(size * self._lots_per_coin[row]))

    def _account_fill(self, oid: int, lots: int) -> None:
        """A rested order whose fills reach its size is done; a filled one is settled."""
        if oid in self._resting:
            left = self._resting[oid] - lots
            if left <= 0:
                del self._resting[oid]
                self._pending.done.append(oid)
            else:
                self._resting[oid] = left
        elif oid in self._expected:
            left = self._expected[oid] - lots
            if left <= 0:
                del self._expected[oid]
            else:
                self._expected[oid] = left
        elif oid in self._unsettled:
            self._early_lots[oid] = self._early_lots.get(oid, 0) + lots

    def _take_updates(self, updates: Sequence[Mapping[str, Any]]) -> None:
        """A rested order the exchange closed without filling it (self-trade, margin,
        scheduled cancel, a cancel from elsewhere) is removed."""
        for update in updates:
            status = update.get("status")
            order = update.get("order") or {}
            if status in ("open", "filled", "triggered"):
                continue
            oid = self.engine_oid(order.get("cloid"))
            if oid is None:
                oid = self._by_exchange_oid.get(int(order.get("oid", -1)))
            if oid is None:
                continue
            if oid in self._cancelling:         # its cancel's answer settles it
                self._closed_meanwhile.add(oid)
                continue
            if self._resting.pop(oid, None) is not None:
                self._pending.removed.append(oid)
            elif oid in self._unsettled:
                self._early_closed.add(oid)

    def _see(self, key: int | str) -> None:
        self._seen.add(key)
        self._seen_order.append(key)
        if len(self._seen_order) > _SEEN_TIDS:
            self._seen.discard(self._seen_order.popleft())

    def close(self, timeout: float = 10.0) -> None:
        """End the venue's subscriptions (the websocket client and the exchange client belong
        to the caller and stay open); what they delivered can still be collected."""
        if self._senders is not None:
            self._senders.shutdown(wait=True)
            self._senders = None
        websocket, loop = self.websocket, self._loop
        subscriptions, self._subscriptions = self._subscriptions, []
        if websocket is None or loop is None or loop.is_closed():
            return
        for subscription in subscriptions:
            if subscription.active:
                asyncio.run_coroutine_threadsafe(websocket.unsubscribe(subscription),
                                                 loop).result(timeout)


def _refusal(kind: int, tif: int) -> tuple[int, str] | None:
    """Why an event cannot go to Hyperliquid as it is, or None."""
    if kind not in (_LIMIT, _MARKET):
        return int(Reason.INVALID_KIND), (f"event kind {kind} is not sent to Hyperliquid "
                                          "(limit, market and cancel are)")
    if kind == _LIMIT and tif not in _ORDER_TYPES:
        return int(Reason.INVALID_TIF), "FOK is not a Hyperliquid time in force (Gtc, Ioc, Alo)"
    return None


def _order_outcome(found: OrderWithStatus | None) -> OrderOutcome | None:
    """What a looked-up order did, as its lost answer would have said; None when the
    exchange does not know it (it was never placed, or refused)."""
    if found is None:
        return None
    order, status = found.order, found.status
    filled = (order.orig_sz or order.sz) - order.sz if status != "filled" \
        else (order.orig_sz or order.sz)
    if status == "open":
        return OrderOutcome("resting", oid=order.oid, cloid=order.cloid)
    if filled > 0:
        return OrderOutcome("filled", oid=order.oid, cloid=order.cloid, total_size=filled)
    if status == "iocCancelRejected":
        return OrderOutcome("error", oid=order.oid, error=f"Order {_NO_MATCH} against any "
                            "resting orders (status iocCancelRejected, found by cloid)")
    if status.lower().endswith("rejected"):
        return OrderOutcome("error", oid=order.oid, error=f"order status {status} (found by "
                            "cloid after its answer was lost)")
    return OrderOutcome("canceled", oid=order.oid, cloid=order.cloid)


def _cancel_outcome(found: OrderWithStatus | None) -> OrderOutcome | None:
    """What a lost cancel did; None when its order is still open (cancel it again)."""
    if found is None:
        return OrderOutcome("error", error="Order was never placed, already canceled, or "
                            "filled. (no order with this cloid)")
    if found.status == "open":
        return None
    if found.status == "canceled":
        return OrderOutcome("success")
    return OrderOutcome("error", error=f"Order was never placed, already canceled, or filled. "
                        f"(status {found.status})")


class _Results:
    """A batch's RESULT_DTYPE rows as Python columns while the venue fills them in (a numpy
    element write costs about a microsecond); one array at the end."""

    def __init__(self, count: int) -> None:
        self.status = [0] * count
        self.reason = [0] * count
        self.filled = [0] * count
        self.resting = [0] * count

    def set(self, i: int, status: int, reason: int = 0, *, filled: int = 0,
            resting: int = 0) -> None:
        self.status[i], self.reason[i] = status, reason
        self.filled[i], self.resting[i] = filled, resting

    def array(self) -> np.ndarray:
        results = np.zeros(len(self.status), RESULT_DTYPE)
        results["status"], results["reason"] = self.status, self.reason
        results["filled_qty"], results["resting_qty"] = self.filled, self.resting
        return results


class _Activity:
    """Fills, completions and removals waiting for the next report."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.rows: list[int] = []
        self.sizes: list[float] = []
        self.prices: list[float] = []
        self.makers: list[bool] = []
        self.fees: list[float] = []
        self.oids: list[int] = []
        self.done: list[int] = []
        self.removed: list[int] = []

    def add_fill(self, row: int, size: float, price: float, maker: bool, fee: float,
                 oid: int) -> None:
        self.rows.append(row)
        self.sizes.append(size)
        self.prices.append(price)
        self.makers.append(maker)
        self.fees.append(fee)
        self.oids.append(oid)

    def any(self) -> bool:
        return bool(self.rows or self.done or self.removed)

    def report(self, results: np.ndarray) -> BatchReport:
        """A report of everything pending (with `results`), which is then forgotten."""
        fills = np.zeros(len(self.rows), POSITION_FILL_DTYPE)
        fills["asset"], fills["size"], fills["price"] = self.rows, self.sizes, self.prices
        fills["maker"] = self.makers
        report = BatchReport(results, fills, np.asarray(self.fees, np.float64),
                             np.asarray(self.oids, np.int64),
                             np.asarray(self.removed, np.int64), np.asarray(self.done, np.int64))
        self.clear()
        return report
