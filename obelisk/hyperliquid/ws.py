"""Hyperliquid websocket client: subscriptions, frame routing, heartbeat and reconnection.

One connection carries every subscription. Each frame is decoded once with
orjson and routed by channel and identifying key (coin, coin and interval,
user); an ``l2Book`` frame for a book given to :meth:`WebsocketClient.track_book`
goes from its bytes straight into the :class:`~obelisk.L2Book`. The client pings
every ``ping_interval`` seconds (the server drops a connection that has sent it
nothing for 60 s), treats a ping answered by no frame at all as a dead
connection, and reconnects with capped, jittered exponential backoff, sending
every active subscription again. Any failure short of cancellation (a refused
connection, a malformed redirect, a bug in a consumer) is logged and followed by
a reconnection; only :meth:`WebsocketClient.close` stops the client.

The same connection carries ``post`` requests (:meth:`WebsocketClient.post`): info
queries and signed actions, answered by id. They are written in the order they are
made, so several actions can be on their way at once and still reach the exchange
in order, which separate HTTP requests do not promise.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import random as _random
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from obelisk._core.l2 import L2Book
from obelisk.breaker.backoff import backoff_delay
from obelisk.errors import ObeliskError
from obelisk.hyperliquid.errors import HyperliquidError, excerpt
from obelisk.hyperliquid.l2frames import apply_l2_message
from obelisk.hyperliquid.transport import RateBudget

__all__ = ["CANDLE_INTERVALS", "MAINNET_WS_URL", "MAX_INFLIGHT_POSTS", "MAX_SUBSCRIPTIONS",
           "MAX_USERS", "MESSAGES_PER_MINUTE", "RESERVED_MESSAGES", "TESTNET_WS_URL", "Backoff",
           "PostLostError", "PostNotSentError", "PostRefusedError", "Subscription",
           "SubscriptionError", "WebsocketClient", "WebsocketError", "validate_subscription"]

log = logging.getLogger(__name__)

MAINNET_WS_URL = "wss://api.hyperliquid.xyz/ws"
TESTNET_WS_URL = "wss://api.hyperliquid-testnet.xyz/ws"
MAX_SUBSCRIPTIONS = 1000    # per connection (documented server limit)
MAX_USERS = 10              # distinct users in user-specific subscriptions
MAX_INFLIGHT_POSTS = 100    # posts awaiting answers (Hyperliquid's limit, over all connections)
MESSAGES_PER_MINUTE = 2000  # messages a client may send a minute (over all connections)
RESERVED_MESSAGES = 100     # of those, left to pings and (re)subscriptions: posts stop short
CANDLE_INTERVALS = frozenset(
    ["1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "8h", "12h", "1d", "3d", "1w", "1M"])

Callback = Callable[[Any], object]      # a coroutine function is fine too

# type -> (required fields, optional fields)
_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "allMids": ((), ("dex",)),
    "l2Book": (("coin",), ("nSigFigs", "mantissa")),
    "trades": (("coin",), ()),
    "bbo": (("coin",), ()),
    "candle": (("coin", "interval"), ()),
    "orderUpdates": (("user",), ()),
    "userEvents": (("user",), ()),
    "userFills": (("user",), ("aggregateByTime",)),
}
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}\Z")
_L2_HEAD = re.compile(rb'\s*\{\s*"channel"\s*:\s*"l2Book"\s*,\s*"data"\s*:\s*\{\s*"coin"\s*:\s*"'
                      rb'([^"\\]+)"')
_PING = b'{"method":"ping"}'
_GREETING = b"Websocket connection established."


class WebsocketError(HyperliquidError):
    """The websocket client cannot do what was asked: it is closed."""


class PostNotSentError(WebsocketError):
    """A post request was not sent (no open connection, or too many awaiting answers)."""


class PostLostError(WebsocketError):
    """A post request was sent, and its answer did not come (the connection ended, or the
    time ran out): an action may have been executed."""


class PostRefusedError(WebsocketError):
    """The server answered a post request with an ``error``; `text` is its message."""

    def __init__(self, text: str) -> None:
        super().__init__(f"post request refused: {text}")
        self.text = text


class SubscriptionError(WebsocketError, ValueError):
    """A subscription is malformed, over a server limit, or indistinguishable from another."""


def validate_subscription(subscription: Mapping[str, Any]) -> dict[str, Any]:
    """The subscription as it goes on the wire, or SubscriptionError saying what is wrong.

    Addresses are lower-cased; ``nSigFigs: None`` and ``dex: ""`` (the defaults)
    are left out, so equal subscriptions have one wire form.
    """
    if not isinstance(subscription, Mapping):
        raise SubscriptionError(f"a subscription is a dict, got {type(subscription).__name__}")
    kind = subscription.get("type")
    if kind not in _FIELDS:
        raise SubscriptionError(f"unknown subscription type {kind!r}; supported: "
                                f"{', '.join(_FIELDS)}")
    required, optional = _FIELDS[kind]
    missing = [name for name in required if name not in subscription]
    if missing:
        raise SubscriptionError(f"{kind} subscription needs {', '.join(missing)}")
    unknown = sorted(set(subscription) - {"type", *required, *optional})
    if unknown:
        raise SubscriptionError(f"{kind} subscription does not take {', '.join(unknown)}")
    wire = dict(subscription)
    for name in ("coin", "interval", "dex"):
        value = wire.get(name, "x")
        if not isinstance(value, str) or (not value and name != "dex"):
            raise SubscriptionError(f"{kind} {name} must be a non-empty str, got {value!r}")
    if wire.get("dex") == "":
        del wire["dex"]
    if "user" in wire:
        user = wire["user"]
        if not isinstance(user, str) or not _ADDRESS.match(user):
            raise SubscriptionError(f"{kind} user must be a 0x-prefixed 40-hex-digit address")
        wire["user"] = user.lower()
    if kind == "candle" and wire["interval"] not in CANDLE_INTERVALS:
        raise SubscriptionError(f"candle interval {wire['interval']!r} is not one of "
                                f"{' '.join(sorted(CANDLE_INTERVALS))}")
    if kind == "l2Book":
        _check_aggregation(wire)
    if "aggregateByTime" in wire and not isinstance(wire["aggregateByTime"], bool):
        raise SubscriptionError(f"userFills aggregateByTime must be a bool, "
                                f"got {wire['aggregateByTime']!r}")
    return wire


def _check_aggregation(wire: dict[str, Any]) -> None:
    """``nSigFigs`` is 2..5 or None (full precision); ``mantissa`` 1, 2 or 5 with nSigFigs 5."""
    if wire.get("nSigFigs", 0) is None:
        del wire["nSigFigs"]
    sig_figs = wire.get("nSigFigs")
    if sig_figs is not None and (type(sig_figs) is not int or not 2 <= sig_figs <= 5):
        raise SubscriptionError(f"l2Book nSigFigs must be 2, 3, 4, 5 or None, got {sig_figs!r}")
    if "mantissa" in wire:
        mantissa = wire["mantissa"]
        if type(mantissa) is not int or mantissa not in (1, 2, 5):
            raise SubscriptionError(f"l2Book mantissa must be 1, 2 or 5, got {mantissa!r}")
        if sig_figs != 5:
            raise SubscriptionError("l2Book mantissa is only allowed with nSigFigs 5")


def _route(wire: Mapping[str, Any]) -> tuple[str, ...]:
    """What a subscription's frames are recognised by. allMids, orderUpdates and
    userEvents frames name neither dex nor user: their channel alone routes them."""
    kind = wire["type"]
    if kind == "candle":
        return kind, wire["coin"], wire["interval"]
    if kind in ("l2Book", "trades", "bbo"):
        return kind, wire["coin"]
    if kind == "userFills":
        return kind, wire["user"]
    return (kind,)


def _frame_route(channel: object, data: object) -> tuple[str, ...] | None:
    """The route of a data frame, None when its shape does not say."""
    if isinstance(data, dict):
        if channel in ("l2Book", "bbo") and isinstance(data.get("coin"), str):
            return channel, data["coin"]
        if channel == "candle" and isinstance(data.get("s"), str):
            return channel, data["s"], str(data.get("i"))
        if channel == "userFills" and isinstance(data.get("user"), str):
            return channel, data["user"].lower()
        if channel in ("allMids", "orderUpdates"):
            return (channel,)
        if channel == "user":
            return ("userEvents",)
    elif isinstance(data, list):
        if channel == "orderUpdates":
            return (channel,)
        if channel == "trades" and data and isinstance(data[0], dict) \
                and isinstance(data[0].get("coin"), str):
            return channel, data[0]["coin"]
    return None


def _message(method: str, wire: Mapping[str, Any]) -> bytes:
    return orjson.dumps({"method": method, "subscription": wire})


def _redact(url: str) -> str:
    """`url` without credentials, query or fragment: safe to log."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


def _describe(exc: BaseException, url: str) -> str:
    """``TypeName: message`` for a log line, with `url`'s credentials and query masked and
    the message cut to 200 characters."""
    text = str(exc).replace(url, _redact(url))
    parts = urlsplit(url)
    for secret in (parts.password, parts.username, parts.query, parts.fragment):
        if secret:
            text = text.replace(secret, "***")
    if len(text) > 200:
        text = text[:200] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(frozen=True)
class Backoff:
    """Reconnection delays: ``initial * factor**attempt`` capped at ``maximum``, then
    shortened by a random fraction of up to ``jitter`` so clients do not reconnect in step."""

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise ValueError(f"need 0 < initial <= maximum, got {self.initial}, {self.maximum}")
        if self.factor < 1 or not 0 <= self.jitter <= 1:
            raise ValueError(f"need factor >= 1 and 0 <= jitter <= 1, got {self.factor}, "
                             f"{self.jitter}")

    def delay(self, attempt: int, uniform: float) -> float:
        """Seconds to wait before reconnection `attempt` (0 first); `uniform` is in [0, 1)."""
        return backoff_delay(attempt, self.initial, self.maximum, self.factor, self.jitter,
                             uniform)


class Subscription:
    """One active subscription: its wire form, consumers and counters.

    Frames are queued only while a :meth:`WebsocketClient.stream` reads the
    subscription (one reading task). When the queue holds ``queue_size`` frames
    the oldest is dropped and counted in ``dropped``: the reader never waits for
    a slow consumer. ``errors`` counts failed callbacks and book updates.
    """

    def __init__(self, wire: dict[str, Any], key: bytes, route: tuple[str, ...],
                 queue_size: int) -> None:
        self.subscription = wire
        self.callbacks: list[Callback] = []
        self.book: L2Book | None = None
        self.on_book_update: Callable[[L2Book], object] | None = None
        self.received = 0
        self.dropped = 0
        self.errors = 0
        self.active = True
        self._key = key
        self._route = route
        self._queue: deque[Any] = deque(maxlen=queue_size)
        self._readers = 0
        self._wakeup = asyncio.Event()
        self._sent_on: ClientConnection | None = None

    def __repr__(self) -> str:
        state = "active" if self.active else "ended"
        return f"<Subscription {'/'.join(self._route)} {state} received={self.received}>"

    def _push(self, data: Any) -> None:
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(data)
        self._wakeup.set()

    def _end(self) -> None:
        self.active = False
        self._wakeup.set()


class WebsocketClient:
    """An asyncio Hyperliquid websocket connection that stays up and keeps its subscriptions.

    Parameters
    ----------
    url : str
        ``MAINNET_WS_URL`` (default), ``TESTNET_WS_URL`` or any ``ws://``/``wss://`` server.
    ping_interval : float
        Seconds between ``{"method":"ping"}`` messages (the server closes idle
        connections after 60 s).
    pong_timeout : float
        Seconds a ping may go without any frame arriving before the connection is
        declared dead and replaced; less than `ping_interval`.
    queue_size : int
        Frames each streamed subscription holds before dropping the oldest.
    messages_per_minute : int or None
        Messages this client may send in any minute (Hyperliquid allows 2,000 over all of
        an IP's connections). Every message counts; a ``post`` that would leave fewer than
        ``RESERVED_MESSAGES`` of them for pings and subscriptions is not sent
        (:class:`PostNotSentError`, and the exchange poster goes over HTTP). None: not
        metered, for a server that does not meter (``obelisk serve``).
    max_callback_tasks : int
        Coroutine callbacks (and ``on_update`` coroutines) that may run at once.
        When that many are running the reader stops reading until one finishes:
        frames wait in the socket and the server's send buffer instead of
        piling up as tasks, and none is dropped. A ping meanwhile is not
        mistaken for a dead connection.
    backoff : Backoff
        Reconnection delays. The attempt count restarts after a connection that
        stayed up `stable_after` seconds.
    open_timeout, close_timeout : float
        Seconds for the opening and the closing handshakes.
    clock, sleep, random
        Monotonic seconds, ``asyncio.sleep`` and a [0, 1) source for the jitter;
        tests inject their own.
    """

    def __init__(self, url: str = MAINNET_WS_URL, *, ping_interval: float = 50.0,
                 pong_timeout: float = 10.0, queue_size: int = 1000,
                 messages_per_minute: int | None = MESSAGES_PER_MINUTE,
                 max_callback_tasks: int = 1000, backoff: Backoff | None = None,
                 stable_after: float = 60.0,
                 open_timeout: float = 10.0, close_timeout: float = 2.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Any] = asyncio.sleep,
                 random: Callable[[], float] = _random.random) -> None:
        if urlsplit(url).scheme not in ("ws", "wss"):
            raise ValueError(f"websocket url must start with ws:// or wss://: {_redact(url)}")
        if not 0 < pong_timeout < ping_interval:
            raise ValueError(f"need 0 < pong_timeout < ping_interval, got {pong_timeout}, "
                             f"{ping_interval}")
        if queue_size < 1:
            raise ValueError(f"queue_size must be positive, got {queue_size}")
        if messages_per_minute is not None and messages_per_minute <= RESERVED_MESSAGES:
            raise ValueError(f"messages_per_minute must exceed the {RESERVED_MESSAGES} "
                             f"reserved for pings and subscriptions, got {messages_per_minute}")
        if not (isinstance(max_callback_tasks, int) and max_callback_tasks >= 1):
            raise ValueError(f"max_callback_tasks must be an int >= 1, got {max_callback_tasks!r}")
        self.url = url
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout
        self.queue_size = queue_size
        self.max_callback_tasks = max_callback_tasks
        self.backoff = backoff or Backoff()
        self.stable_after = stable_after
        self.open_timeout = open_timeout
        self.close_timeout = close_timeout
        self.connects = 0               # connections opened so far
        # messages sent in the last minute; posts may use all but the reserve
        self.messages = None if messages_per_minute is None else RateBudget(
            messages_per_minute - RESERVED_MESSAGES, 60.0, clock)
        self._clock = clock
        self._sleep = sleep
        self._random = random
        self._safe_url = _redact(url)
        self._subs: dict[bytes, Subscription] = {}
        self._routes: dict[tuple[str, ...], Subscription] = {}
        self._books: dict[str, Subscription] = {}
        self._conn: ClientConnection | None = None
        self._live = asyncio.Event()    # connected and every subscription sent
        self._frames = 0
        self._task: asyncio.Task[None] | None = None
        self._callback_tasks: set[asyncio.Future[Any]] = set()
        # awaitables that found every callback slot taken; the reader starts them in order
        # before it reads the next frame
        self._waiting_callbacks: deque[tuple[Subscription, Awaitable[Any]]] = deque()
        self._callback_room = asyncio.Event()
        self._stalled = False           # the reader is waiting for a callback slot
        self._closed = False
        self._post_ids = itertools.count(1)
        self._posts: dict[int, asyncio.Future[Any]] = {}    # id -> its answer, while awaited

    # ---------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Connect in the background; subscriptions made before or after are all sent."""
        self._check_open()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def __aenter__(self) -> WebsocketClient:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def wait_connected(self) -> None:
        """Return once a connection is up and every subscription has been sent on it.

        Raises WebsocketError if the client is closed (or its background task ends)
        before that.
        """
        self._check_open()
        if self._live.is_set():
            return
        live = asyncio.ensure_future(self._live.wait())
        try:
            waiting: set[asyncio.Future[Any]] = {live}
            if self._task is not None:
                waiting.add(self._task)
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            live.cancel()
        if not self._live.is_set():
            raise WebsocketError("the websocket client stopped before it connected")

    @property
    def pending_callbacks(self) -> int:
        """Coroutine callbacks running now; never more than ``max_callback_tasks``."""
        return len(self._callback_tasks)

    @property
    def connected(self) -> bool:
        return self._live.is_set()

    @property
    def subscriptions(self) -> list[Subscription]:
        return list(self._subs.values())

    async def close(self) -> None:
        """End every stream, close the connection with a close handshake, stop reconnecting."""
        if self._closed:
            return
        self._closed = True
        for sub in self._subs.values():
            sub._end()
        self._subs.clear()
        self._routes.clear()
        self._books.clear()
        conn = self._conn
        if conn is not None:
            await conn.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task})
        self._discard_waiting_callbacks()
        for task in self._callback_tasks:
            task.cancel()
        if self._callback_tasks:
            await asyncio.wait(self._callback_tasks)

    def _check_open(self) -> None:
        if self._closed:
            raise WebsocketError("the websocket client is closed")

    # ------------------------------------------------------------- posts

    async def post(self, kind: str, payload: Mapping[str, Any] | bytes, *,
                   timeout: float = 10.0, on_written: Callable[[], None] | None = None,
                   connection: int | None = None) -> Any:
        """Send one ``post`` request (`kind` ``"info"`` or ``"action"``; an action's payload
        is the body HTTP would post, as a mapping or its JSON bytes); the answer's payload.

        Requests are written to the socket in the order of the calls (nothing is awaited
        before the write), and one connection delivers them in that order. `connection`
        (a value of :attr:`connects`) sends only on that connection, so that a request
        never overtakes earlier ones lost with the connection before. Raises
        :class:`PostNotSentError` when nothing was sent (no open connection, another one
        than `connection`, or ``MAX_INFLIGHT_POSTS`` already awaiting answers),
        :class:`PostLostError` when the connection ends or `timeout` seconds pass before
        the answer (an action may have run), and :class:`PostRefusedError` for an
        ``error`` answer. `on_written` is called once the request is written.
        """
        if kind not in ("info", "action"):
            raise ValueError(f"a post request is 'info' or 'action', got {kind!r}")
        raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        conn = self._conn
        if conn is None or not self._live.is_set():
            raise PostNotSentError("no open websocket connection; the request was not sent")
        if connection is not None and connection != self.connects:
            raise PostNotSentError(f"connection {connection} ended (this is connection "
                                   f"{self.connects}); the request was not sent")
        if len(self._posts) >= MAX_INFLIGHT_POSTS:
            raise PostNotSentError(f"{MAX_INFLIGHT_POSTS} post requests already await their "
                                   "answers; the request was not sent")
        if self.messages is not None and self.messages.try_take(1):
            raise PostNotSentError(f"{self.messages.capacity} posts were sent in the last "
                                   "minute (the websocket message budget); the request was "
                                   "not sent")
        ident = next(self._post_ids)
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._posts[ident] = answer
        try:
            try:
                await conn.send(b'{"method":"post","id":%d,"request":{"type":"%s","payload":'
                                b'%s}}' % (ident, kind.encode(), raw), text=True)
            except ConnectionClosed as exc:
                raise PostLostError(f"the connection ended while the request was written: "
                                    f"{exc}") from None
            if on_written is not None:
                on_written()
            try:
                return await asyncio.wait_for(answer, timeout)
            except asyncio.TimeoutError:
                raise PostLostError(f"no answer within {timeout:g} s") from None
        finally:
            self._posts.pop(ident, None)

    def _answer_post(self, data: Any) -> None:
        """Hand a ``post`` answer to the request that awaits it."""
        ident = data.get("id") if isinstance(data, dict) else None
        answer = self._posts.get(ident) if isinstance(ident, int) else None
        if answer is None or answer.done():
            log.warning("websocket %s: an answer to no awaited post request (id %r)",
                        self._safe_url, ident)
            return
        response = data.get("response")
        if not isinstance(response, dict) or "payload" not in response:
            answer.set_exception(PostLostError(
                f"a malformed post answer: {excerpt(str(response))}"))
        elif response.get("type") == "error":
            answer.set_exception(PostRefusedError(str(response["payload"])))
        else:
            answer.set_result(response["payload"])

    async def _send(self, conn: ClientConnection, message: bytes) -> None:
        """Send a message other than a post: it always goes, and counts in the budget."""
        if self.messages is not None:
            self.messages.charge(1)
        await conn.send(message, text=True)

    def _lose_posts(self, why: str) -> None:
        for answer in self._posts.values():
            if not answer.done():
                answer.set_exception(PostLostError(f"{why} before the answer came"))

    # ------------------------------------------------------ subscriptions

    async def subscribe(self, subscription: Mapping[str, Any],
                        callback: Callback | None = None) -> Subscription:
        """Subscribe (once per distinct subscription) and call `callback` with each frame's
        ``data``; a coroutine callback runs as its own task. Raises SubscriptionError."""
        sub = self._register(subscription)
        if callback is not None:
            sub.callbacks.append(callback)
        await self._send_if_live(sub)
        return sub

    async def stream(self, subscription: Mapping[str, Any] | Subscription) -> AsyncIterator[Any]:
        """Subscribe and yield each frame's ``data``; ends after ``unsubscribe`` or ``close``.

        Frames arriving while the consumer is busy wait in the subscription's
        bounded queue (see :class:`Subscription`). Leaving the loop early keeps the
        subscription: ``unsubscribe`` ends it."""
        sub = subscription if isinstance(subscription, Subscription) \
            else self._register(subscription)
        sub._readers += 1
        try:
            await self._send_if_live(sub)
            while True:
                if sub._queue:
                    yield sub._queue.popleft()
                elif not sub.active:
                    return
                else:
                    sub._wakeup.clear()
                    await sub._wakeup.wait()
        finally:
            sub._readers -= 1
            if not sub._readers:
                sub._queue.clear()

    async def track_book(self, book: L2Book,
                         on_update: Callable[[L2Book], object] | None = None) -> Subscription:
        """Keep `book` current from its coin's l2Book frames, read straight from their bytes.

        The coin is ``book.instrument.name``. `on_update(book)` follows each applied
        frame. Frames are decoded into Python objects only if the subscription also
        has callbacks or a stream.
        """
        coin = getattr(book.instrument, "name", None)
        if not isinstance(coin, str):
            raise SubscriptionError(f"the book's instrument has no coin name: {book.instrument!r}")
        sub = self._register({"type": "l2Book", "coin": coin})
        if sub.book is not None and sub.book is not book:
            raise SubscriptionError(f"l2Book {coin} already feeds another book")
        sub.book = book
        sub.on_book_update = on_update
        self._books[coin] = sub
        await self._send_if_live(sub)
        return sub

    async def unsubscribe(self, subscription: Mapping[str, Any] | Subscription) -> None:
        """Stop a subscription: its callbacks, book feed and streams end. Raises
        SubscriptionError if it is not active."""
        if isinstance(subscription, Subscription):
            sub: Subscription | None = subscription
        else:
            key = orjson.dumps(validate_subscription(subscription), option=orjson.OPT_SORT_KEYS)
            sub = self._subs.get(key)
        if sub is None or self._subs.get(sub._key) is not sub:
            raise SubscriptionError(f"not subscribed: {subscription!r}")
        del self._subs[sub._key]
        del self._routes[sub._route]
        if sub.book is not None:
            del self._books[sub.subscription["coin"]]
        sub._end()
        conn = sub._sent_on
        if conn is not None and conn is self._conn:
            with suppress(ConnectionClosed):    # if closed, it went with the connection
                await self._send(conn, _message("unsubscribe", sub.subscription))

    def _register(self, subscription: Mapping[str, Any]) -> Subscription:
        """The active Subscription for `subscription`, created if new."""
        self._check_open()
        wire = validate_subscription(subscription)
        key = orjson.dumps(wire, option=orjson.OPT_SORT_KEYS)
        sub = self._subs.get(key)
        if sub is not None:
            return sub
        route = _route(wire)
        clash = self._routes.get(route)
        if clash is not None:
            raise SubscriptionError(
                f"{wire['type']} frames for {wire} cannot be told apart from those of the "
                f"active {clash.subscription}; unsubscribe that first")
        if len(self._subs) >= MAX_SUBSCRIPTIONS:
            raise SubscriptionError(f"at most {MAX_SUBSCRIPTIONS} subscriptions per connection")
        users = {s.subscription["user"] for s in self._subs.values() if "user" in s.subscription}
        if "user" in wire and wire["user"] not in users and len(users) >= MAX_USERS:
            raise SubscriptionError(f"at most {MAX_USERS} distinct users per connection")
        sub = Subscription(wire, key, route, self.queue_size)
        self._subs[key] = sub
        self._routes[route] = sub
        return sub

    async def _send_if_live(self, sub: Subscription) -> None:
        """Send `sub` now if a connection is live; otherwise the next one sends it."""
        conn = self._conn
        if conn is None or not self._live.is_set() or sub._sent_on is conn or not sub.active:
            return
        sub._sent_on = conn
        with suppress(ConnectionClosed):        # if closed, the next connection sends it
            await self._send(conn, _message("subscribe", sub.subscription))

    # --------------------------------------------------------- connection

    async def _run(self) -> None:
        """Connect, serve, back off, again, until closed. Every exception but cancellation
        is logged and ends in a reconnection: a task that died here would leave
        subscribers and ``wait_connected`` waiting forever with nothing in the log."""
        attempt = 0
        while not self._closed:
            try:
                if await self._connect_and_serve():
                    attempt = 0
            except Exception as exc:    # a malformed redirect is a ValueError, for one
                if self._closed:
                    return
                log.warning("websocket %s: connection failed: %s", self._safe_url,
                            _describe(exc, self.url))
            if self._closed:
                return
            delay = self.backoff.delay(attempt, self._random())
            attempt += 1
            log.info("websocket %s: reconnecting in %.2f s", self._safe_url, delay)
            await self._sleep(delay)

    async def _connect_and_serve(self) -> bool:
        """Open one connection and serve it until it ends; whether it stayed up
        `stable_after` seconds (so the backoff starts over)."""
        conn = await connect(self.url, ping_interval=None, open_timeout=self.open_timeout,
                             close_timeout=self.close_timeout)
        if self._closed:
            await conn.close()
            return False
        self.connects += 1
        opened = self._clock()
        log.info("websocket %s connected", self._safe_url)
        await self._serve(conn)
        return self._clock() - opened >= self.stable_after

    async def _serve(self, conn: ClientConnection) -> None:
        """Resubscribe on `conn`, then read it until it closes or the keepalive kills it."""
        self._conn = conn
        keepalive: asyncio.Task[None] | None = None
        try:
            await self._resubscribe(conn)
            self._live.set()
            keepalive = asyncio.get_running_loop().create_task(self._keepalive(conn))
            while True:
                raw = await conn.recv(decode=False)
                self._frames += 1
                try:
                    self._handle(raw)
                except Exception:
                    log.exception("websocket %s: a frame could not be handled", self._safe_url)
                if self._waiting_callbacks:
                    await self._start_waiting_callbacks()
        except ConnectionClosed as exc:
            if not self._closed:
                log.warning("websocket %s closed: %s", self._safe_url, exc)
        except Exception as exc:        # any other failure: reconnect too
            if not self._closed:
                log.warning("websocket %s failed: %s", self._safe_url, _describe(exc, self.url))
            with suppress(Exception):
                await conn.close()
        finally:
            self._live.clear()
            self._conn = None
            self._lose_posts("the connection ended")
            if keepalive is not None:
                keepalive.cancel()
                await asyncio.wait({keepalive})

    async def _resubscribe(self, conn: ClientConnection) -> None:
        """Send every subscription on `conn`, including those added while sending."""
        while pending := [sub for sub in self._subs.values() if sub._sent_on is not conn]:
            for sub in pending:
                if sub.active:
                    sub._sent_on = conn
                    await self._send(conn, _message("subscribe", sub.subscription))

    async def _keepalive(self, conn: ClientConnection) -> None:
        """Ping every ping_interval; abort `conn` if no frame arrives within pong_timeout.

        A reader held up by busy callbacks is not reading, so it cannot have seen the
        answer: the connection is not judged then."""
        await self._sleep(self.ping_interval)
        while True:
            frames = self._frames
            try:
                await self._send(conn, _PING)
            except ConnectionClosed:
                return
            except Exception as exc:    # never die silently: replace `conn`
                log.warning("websocket %s: ping failed: %s; reconnecting", self._safe_url,
                            _describe(exc, self.url))
                conn.transport.abort()
                return
            await self._sleep(self.pong_timeout)
            if self._frames == frames and not self._stalled:
                log.warning("websocket %s: nothing received %.1f s after a ping; reconnecting",
                            self._safe_url, self.pong_timeout)
                conn.transport.abort()
                return
            await self._sleep(self.ping_interval - self.pong_timeout)

    # ------------------------------------------------------------ routing

    def _handle(self, raw: bytes) -> None:
        fed = self._feed_book(raw) if self._books else None
        if fed is not None and not fed.callbacks and not fed._readers:
            fed.received += 1
            return
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            if raw != _GREETING:
                log.warning("websocket %s: a frame is not JSON (%d bytes)", self._safe_url,
                            len(raw))
            return
        if not isinstance(message, dict):
            log.warning("websocket %s: a frame is not an object", self._safe_url)
            return
        channel = message.get("channel")
        data = message.get("data")
        if channel in ("pong", "subscriptionResponse"):
            return
        if channel == "post":
            self._answer_post(data)
            return
        if channel == "error":
            log.warning("websocket %s: server error: %s", self._safe_url, data)
            return
        route = _frame_route(channel, data)
        sub = self._routes.get(route) if route is not None else None
        if sub is None:
            log.debug("websocket %s: no subscription for a %r frame", self._safe_url, channel)
            return
        if sub.book is not None and sub is not fed:
            self._apply_book(sub, sub.book, raw)
        sub.received += 1
        if sub._readers:
            sub._push(data)
        for callback in sub.callbacks:
            self._call(sub, callback, data)

    def _feed_book(self, raw: bytes) -> Subscription | None:
        """Apply an l2Book frame in the usual shape to its tracked book, undecoded; the
        Subscription it fed, None when `raw` is not recognisably one."""
        head = _L2_HEAD.match(raw)
        if head is None:
            return None
        sub = self._books.get(head[1].decode("utf-8", "replace"))
        if sub is not None and sub.book is not None:
            self._apply_book(sub, sub.book, raw)
        return sub

    def _apply_book(self, sub: Subscription, book: L2Book, raw: bytes) -> None:
        try:
            applied = apply_l2_message(book, raw)
        except ObeliskError as exc:
            sub.errors += 1
            log.warning("websocket %s: l2Book %s frame not applied: %s", self._safe_url,
                        sub.subscription["coin"], exc)
            return
        if applied and sub.on_book_update is not None:
            self._call(sub, sub.on_book_update, book)

    def _call(self, sub: Subscription, callback: Callable[[Any], object], arg: Any) -> None:
        """Run a consumer; an exception is logged and counted, never raised into the reader."""
        try:
            result = callback(arg)
        except Exception:
            sub.errors += 1
            log.exception("websocket %s: a %s callback failed", self._safe_url,
                          sub.subscription["type"])
            return
        if inspect.isawaitable(result):
            if self._waiting_callbacks or len(self._callback_tasks) >= self.max_callback_tasks:
                self._waiting_callbacks.append((sub, result))   # the reader waits for room
            else:
                self._start_callback(sub, result)

    def _start_callback(self, sub: Subscription, awaitable: Awaitable[Any]) -> None:
        try:
            task = asyncio.ensure_future(awaitable)
        except Exception:
            sub.errors += 1
            log.exception("websocket %s: a %s callback failed", self._safe_url,
                          sub.subscription["type"])
            return
        self._callback_tasks.add(task)
        task.add_done_callback(partial(self._callback_done, sub))

    async def _start_waiting_callbacks(self) -> None:
        """Start the callbacks that found no free slot, in order, each as soon as one of
        ``max_callback_tasks`` running callbacks ends; the reader reads nothing meanwhile."""
        self._stalled = True
        try:
            while self._waiting_callbacks:
                while len(self._callback_tasks) >= self.max_callback_tasks:
                    self._callback_room.clear()
                    await self._callback_room.wait()
                self._start_callback(*self._waiting_callbacks.popleft())
        finally:
            self._stalled = False

    def _discard_waiting_callbacks(self) -> None:
        while self._waiting_callbacks:
            _, awaitable = self._waiting_callbacks.popleft()
            if inspect.iscoroutine(awaitable):
                awaitable.close()       # never started: no "was never awaited" warning

    def _callback_done(self, sub: Subscription, task: asyncio.Future[Any]) -> None:
        self._callback_tasks.discard(task)
        self._callback_room.set()
        if not task.cancelled() and task.exception() is not None:
            sub.errors += 1
            log.error("websocket %s: a %s callback failed", self._safe_url,
                      sub.subscription["type"], exc_info=task.exception())
