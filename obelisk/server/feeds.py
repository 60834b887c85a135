"""The websocket hub: Hyperliquid's ``/ws`` subscriptions, pushes, pings and ``post`` requests.

The exchange reports each change as an event (`obelisk.server.events`); the hub
turns events into frames for the sockets subscribed to them. Each frame is
serialised once, however many sockets receive it. Book pushes (``l2Book``,
``bbo``, ``allMids``, ``candle``) are coalesced to one per coin per loop turn, so a
bulk action that touches a book a hundred times sends one snapshot. Every
socket has a bounded send queue: a client that cannot keep up is dropped rather
than allowed to grow the server's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from obelisk.server.events import (
    BookChanged,
    Event,
    Liquidation,
    NonUserCancel,
    OrderUpdates,
    Trades,
    UserFills,
    UserFunding,
)

if TYPE_CHECKING:
    from obelisk.server.app import Gateway
    from obelisk.server.exchange import LocalExchange

log = logging.getLogger(__name__)

GREETING = "Websocket connection established."
MAX_SUBSCRIPTIONS = 1000            # hl.md §8, per socket here
MAX_USERS = 10                      # distinct users in user-specific subscriptions, per socket
SEND_QUEUE_FRAMES = 1024            # frames waiting for a slow socket before it is dropped

CANDLE_INTERVAL_MS = {
    "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "8h": 28_800_000, "12h": 43_200_000,
    "1d": 86_400_000, "3d": 259_200_000, "1w": 604_800_000, "1M": 2_678_400_000,
}
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_COIN_CHANNELS = ("trades", "bbo")
_USER_CHANNELS = ("orderUpdates", "userEvents", "userFills", "userFundings")

Key = tuple[Hashable, ...]


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


@dataclass(frozen=True)
class Subscription:
    """A validated subscription: its routing `key` and the request as the client sent it."""

    key: Key
    request: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.key[0])

    @property
    def user(self) -> str | None:
        return str(self.key[1]) if self.kind in _USER_CHANNELS else None


def _is_int(value: Any) -> bool:
    return type(value) is int


def parse_subscription(request: Any, coins: frozenset[str]) -> Subscription | None:
    """The subscription a ``subscribe``/``unsubscribe`` asks for, or None if it is invalid."""
    if not isinstance(request, dict):
        return None
    kind = request.get("type")
    coin = request.get("coin")
    if kind == "allMids":
        return Subscription(("allMids",), request) if request.get("dex", "") == "" else None
    if kind == "l2Book" and coin in coins:
        figures, mantissa = request.get("nSigFigs"), request.get("mantissa")
        if figures is not None and not (_is_int(figures) and 2 <= figures <= 5):
            return None
        if mantissa is not None and not (figures == 5 and mantissa in (1, 2, 5)
                                         and _is_int(mantissa)):
            return None
        return Subscription(("l2Book", coin, figures, mantissa), request)
    if kind in _COIN_CHANNELS and coin in coins:
        return Subscription((kind, coin), request)
    if kind == "candle" and coin in coins and request.get("interval") in CANDLE_INTERVAL_MS:
        return Subscription(("candle", coin, request["interval"]), request)
    user = request.get("user")
    if kind in _USER_CHANNELS and isinstance(user, str) and _ADDRESS.fullmatch(user):
        if kind == "userFills" and not isinstance(request.get("aggregateByTime", False), bool):
            return None
        return Subscription((kind, user.lower()), request)
    return None


@dataclass(eq=False)
class Client:
    """One socket: its subscriptions and the queue its writer task drains."""

    ws: web.WebSocketResponse
    ip: str
    transport: asyncio.Transport | None
    queue: asyncio.Queue[str] = field(
        default_factory=lambda: asyncio.Queue(maxsize=SEND_QUEUE_FRAMES))
    subscriptions: dict[Key, Subscription] = field(default_factory=dict)
    dropped: bool = False

    def users(self) -> set[str]:
        return {sub.user for sub in self.subscriptions.values() if sub.user is not None}

    def send(self, text: str) -> None:
        """Queue a frame; a client whose queue is full is dropped (its socket closed)."""
        if self.dropped:
            return
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            log.warning("dropping slow websocket client %s: %d frames unsent",
                        self.ip, self.queue.qsize())
            self.dropped = True
            asyncio.get_running_loop().create_task(self._hang_up())

    async def _hang_up(self) -> None:
        """Close politely if the socket still drains, else cut the connection."""
        try:
            await asyncio.wait_for(
                self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow"), 1.0)
        except (asyncio.TimeoutError, ConnectionError, RuntimeError):
            if self.transport is not None:
                self.transport.abort()

    def send_json(self, channel: str, data: Any) -> None:
        self.send(_dumps({"channel": channel, "data": data}))

    async def write(self) -> None:
        """Drain the queue into the socket until it closes."""
        while not self.ws.closed:
            text = await self.queue.get()
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return


class Hub:
    """All sockets, their subscriptions, and the fan-out of exchange events to them."""

    def __init__(self, exchange: LocalExchange, gateway: Gateway, *,
                 idle_timeout: float = 60.0, max_frame: int = 1 << 20) -> None:
        self._exchange = exchange
        self._gateway = gateway
        self._idle_timeout = idle_timeout
        self._max_frame = max_frame
        self._coins = frozenset(exchange.coins)
        self._clients: set[Client] = set()
        self._subscribers: dict[Key, set[Client]] = {}
        self._dirty_books: set[str] = set()
        self._dirty_candles: set[str] = set()
        self._flush_scheduled = False
        self._last_bbo: dict[str, Any] = {}         # coin -> [best bid, best ask] last pushed
        self._last_mids: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        exchange.listen(self.on_event)

    # -- sockets ---------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """``GET /ws``: greet, then read requests until the client leaves or falls silent."""
        self._loop = asyncio.get_running_loop()
        # no permessage-deflate: on loopback compressing every frame only costs both ends CPU
        ws = web.WebSocketResponse(max_msg_size=self._max_frame, compress=False)
        await ws.prepare(request)
        client = Client(ws, request.remote or "unknown", request.transport)
        self._clients.add(client)
        writer = self._loop.create_task(client.write())
        client.send(GREETING)
        try:
            while True:
                message = await ws.receive(timeout=self._idle_timeout)
                if message.type is WSMsgType.TEXT:
                    self._on_text(client, message.data)
                    # Let the writers send what this frame produced before the next frame
                    # is read: posts already buffered would otherwise hold every answer
                    # (and every other socket's frames) until the reads run dry.
                    await asyncio.sleep(0)
                elif message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED,
                                      WSMsgType.ERROR):
                    break
        except asyncio.TimeoutError:
            log.info("closing websocket %s: silent for %.0f s", client.ip, self._idle_timeout)
        except Exception:
            log.exception("websocket %s failed", client.ip)
        finally:
            self._forget(client)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            await ws.close()
        return ws

    async def close_all(self) -> None:
        """Close every socket (server shutdown)."""
        for client in list(self._clients):
            await client.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    def _forget(self, client: Client) -> None:
        self._clients.discard(client)
        for key in client.subscriptions:
            self._unroute(key, client)
        client.subscriptions.clear()

    def _unroute(self, key: Key, client: Client) -> None:
        subscribers = self._subscribers.get(key)
        if subscribers is not None:
            subscribers.discard(client)
            if not subscribers:
                del self._subscribers[key]

    # -- client requests -------------------------------------------------------------------

    def _on_text(self, client: Client, text: str) -> None:
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            message = None
        method = message.get("method") if isinstance(message, dict) else None
        if method == "ping":
            client.send('{"channel":"pong"}')
        elif method in ("subscribe", "unsubscribe"):
            self._on_subscription(client, method, message.get("subscription"))
        elif method == "post" and _is_int(message.get("id")):
            self._on_post(client, message["id"], message.get("request"))
        else:
            client.send_json("error", "Error parsing JSON into valid websocket request: "
                             f"{text[:200]}")

    def _on_subscription(self, client: Client, method: str, request: Any) -> None:
        subscription = parse_subscription(request, self._coins)
        if subscription is None:
            client.send_json("error", f"Invalid subscription {_dumps(request)}")
            return
        key = subscription.key
        if method == "unsubscribe":
            if key not in client.subscriptions:
                client.send_json("error", f"Already unsubscribed: {_dumps(request)}")
                return
            del client.subscriptions[key]
            self._unroute(key, client)
            client.send_json("subscriptionResponse", {"method": method, "subscription": request})
            return
        error = self._refusal(client, subscription)
        if error is not None:
            client.send_json("error", error)
            return
        client.subscriptions[key] = subscription
        self._subscribers.setdefault(key, set()).add(client)
        client.send_json("subscriptionResponse", {"method": method, "subscription": request})
        try:
            self._send_snapshot(client, subscription)
        except Exception:
            log.exception("snapshot for %s failed", key)

    @staticmethod
    def _refusal(client: Client, subscription: Subscription) -> str | None:
        if subscription.key in client.subscriptions:
            return f"Already subscribed: {_dumps(subscription.request)}"
        if len(client.subscriptions) >= MAX_SUBSCRIPTIONS:
            return f"Cannot track more than {MAX_SUBSCRIPTIONS} total subscriptions."
        user = subscription.user
        if user is not None and user not in client.users() and len(client.users()) >= MAX_USERS:
            return f"Cannot track more than {MAX_USERS} total users."
        return None

    def _on_post(self, client: Client, request_id: int, request: Any) -> None:
        """Answer an info or action request as HTTP would, inside a ``post`` frame."""
        kind = request.get("type") if isinstance(request, dict) else None
        payload = request.get("payload") if isinstance(request, dict) else None
        if kind == "info":
            reply = self._gateway.info(payload, client.ip)
            response = {"type": "info", "payload": {"type": payload.get("type") if isinstance(
                payload, dict) else None, "data": reply.payload}}
        elif kind == "action":
            reply = self._gateway.act(payload, client.ip)
            response = {"type": "action", "payload": reply.payload}
        else:
            reply = self._gateway.refuse(client.ip)
        if reply.status != 200:
            text = reply.payload if isinstance(reply.payload, str) else "Internal Server Error"
            response = {"type": "error", "payload": text}
        client.send_json("post", {"id": request_id, "response": response})

    # -- snapshots -------------------------------------------------------------------------

    def _send_snapshot(self, client: Client, subscription: Subscription) -> None:
        """What a new subscriber gets at once: the current state of what it follows."""
        key, kind = subscription.key, subscription.kind
        if kind == "l2Book":
            book = self._book(key)
            if book is not None:
                client.send_json("l2Book", book)
        elif kind == "bbo":
            bbo = self._bbo(str(key[1]))
            if bbo is not None:     # to this client only: _last_bbo is what all were sent
                client.send_json("bbo", bbo)
        elif kind == "allMids":
            client.send_json("allMids", {"mids": self._exchange.info({"type": "allMids"})})
        elif kind == "candle":
            candle = self._latest_candle(str(key[1]), str(key[2]))
            if candle is not None:
                client.send_json("candle", candle)
        elif kind == "userFills":
            request = {"type": "userFills", "user": key[1]}
            if subscription.request.get("aggregateByTime"):
                request["aggregateByTime"] = True
            client.send_json("userFills", {"isSnapshot": True, "user": key[1],
                                           "fills": self._exchange.info(request)})
        elif kind == "userFundings":
            history = self._exchange.info({"type": "userFunding", "user": key[1],
                                           "startTime": 0})
            client.send_json("userFundings", {
                "isSnapshot": True, "user": key[1],
                "fundings": [_funding_of(row) for row in history]})

    def _book(self, key: Key) -> Any:
        request: dict[str, Any] = {"type": "l2Book", "coin": key[1]}
        if key[2] is not None:
            request["nSigFigs"] = key[2]
        if key[3] is not None:
            request["mantissa"] = key[3]
        return self._exchange.info(request)

    def _bbo(self, coin: str) -> dict[str, Any] | None:
        book = self._exchange.info({"type": "l2Book", "coin": coin})
        if book is None:
            return None
        bids, asks = book["levels"]
        return {"coin": coin, "time": book["time"],
                "bbo": [bids[0] if bids else None, asks[0] if asks else None]}

    def _latest_candle(self, coin: str, interval: str) -> Any:
        now = self._exchange.clock.now_ms()
        candles = self._exchange.info({"type": "candleSnapshot", "req": {
            "coin": coin, "interval": interval,
            "startTime": now - 2 * CANDLE_INTERVAL_MS[interval], "endTime": now}})
        return candles[-1] if candles else None

    # -- events ----------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """The exchange's listener: route one event to its subscribers (never raises)."""
        try:
            self._route(event)
        except Exception:
            log.exception("could not publish %r", event)

    def _route(self, event: Event) -> None:
        if isinstance(event, BookChanged):
            self._dirty_books.add(event.coin)
            self._schedule_flush()
        elif isinstance(event, Trades):
            if event.trades:
                self._publish(("trades", event.coin), "trades", event.trades)
                self._dirty_candles.add(event.coin)
                self._schedule_flush()
        elif isinstance(event, UserFills):
            user = event.user.lower()
            self._publish(("userFills", user), "userFills", {"user": user, "fills": event.fills})
            self._publish(("userEvents", user), "user", {"fills": event.fills})
        elif isinstance(event, OrderUpdates):
            key = ("orderUpdates", event.user.lower())
            if self._subscribers.get(key):
                self._publish(key, "orderUpdates", event.updates)
        elif isinstance(event, UserFunding):
            user = event.user.lower()
            self._publish(("userFundings", user), "userFundings",
                          {"user": user, "fundings": [event.funding]})
            self._publish(("userEvents", user), "user", {"funding": event.funding})
        elif isinstance(event, Liquidation):
            self._publish(("userEvents", event.user.lower()), "user", {"liquidation": event.data})
        elif isinstance(event, NonUserCancel):
            self._publish(("userEvents", event.user.lower()), "user",
                          {"nonUserCancel": event.cancels})

    def _publish(self, key: Key, channel: str, data: Any) -> None:
        subscribers = self._subscribers.get(key)
        if subscribers:
            self._fan_out(subscribers, _dumps({"channel": channel, "data": data}))

    @staticmethod
    def _fan_out(subscribers: set[Client], text: str) -> None:
        for client in list(subscribers):
            client.send(text)

    def _schedule_flush(self) -> None:
        if self._flush_scheduled or self._loop is None:
            return                      # no socket ever connected: nobody to push to
        self._flush_scheduled = True
        self._loop.call_soon_threadsafe(self._flush)

    def _flush(self) -> None:
        """Push one snapshot per changed book (and candle) to its subscribers."""
        self._flush_scheduled = False
        books, self._dirty_books = self._dirty_books, set()
        candles, self._dirty_candles = self._dirty_candles, set()
        try:
            self._push_books(books)
            self._push_candles(candles)
        except Exception:
            log.exception("book push failed")

    def _push_books(self, coins: set[str]) -> None:
        if not coins:
            return
        for key, subscribers in list(self._subscribers.items()):
            kind = key[0]
            if kind == "l2Book" and key[1] in coins:
                book = self._book(key)
                if book is not None:
                    self._fan_out(subscribers, _dumps({"channel": "l2Book", "data": book}))
            elif kind == "bbo" and key[1] in coins:
                bbo = self._bbo(str(key[1]))
                if bbo is not None and bbo["bbo"] != self._last_bbo.get(str(key[1])):
                    self._last_bbo[str(key[1])] = bbo["bbo"]
                    self._fan_out(subscribers, _dumps({"channel": "bbo", "data": bbo}))
        mids_subscribers = self._subscribers.get(("allMids",))
        if mids_subscribers:
            frame = _dumps({"channel": "allMids",
                            "data": {"mids": self._exchange.info({"type": "allMids"})}})
            if frame != self._last_mids:
                self._last_mids = frame
                self._fan_out(mids_subscribers, frame)

    def _push_candles(self, coins: set[str]) -> None:
        for key, subscribers in list(self._subscribers.items()):
            if key[0] == "candle" and key[1] in coins:
                candle = self._latest_candle(str(key[1]), str(key[2]))
                if candle is not None:
                    self._fan_out(subscribers, _dumps({"channel": "candle", "data": candle}))


def _funding_of(row: dict[str, Any]) -> dict[str, Any]:
    """A ``userFunding`` info row as the ``userFundings`` feed carries it (the delta, timed)."""
    delta = {key: value for key, value in row["delta"].items() if key != "type"}
    return {"time": row["time"], **delta}
