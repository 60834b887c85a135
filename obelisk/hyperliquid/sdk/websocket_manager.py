"""The SDK's ``WebsocketManager``: a thread that owns the websocket and calls back.

It keeps the SDK's interface (``subscribe`` returns an id, ``unsubscribe`` takes it back,
callbacks get each whole message ``{"channel", "data"}`` on this thread) and every
subscription type the SDK knows. Unlike the SDK's, a dropped connection is reopened
with capped, jittered backoff and every active subscription is sent again; pings
(``{"method": "ping"}``) go out every 50 s as the server requires.

``websockets`` (an obelisk dependency) is imported when the thread starts, so
``Info(skip_ws=True)`` never loads it.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any, NamedTuple

from obelisk.hyperliquid.sdk.utils.types import Subscription, WsMsg

__all__ = ["ActiveSubscription", "WebsocketManager", "subscription_to_identifier",
           "ws_msg_to_identifier"]

log = logging.getLogger(__name__)

PING_INTERVAL = 50.0        # seconds; the server drops a connection silent for 60 s
RECONNECT_DELAY_MAX = 30.0  # seconds between reconnection attempts, at most


class ActiveSubscription(NamedTuple):
    callback: Callable[[Any], None]
    subscription_id: int


# subscription type -> the fields naming its stream, in identifier order
_KEYED_BY = {
    "allMids": (), "userEvents": (), "orderUpdates": (),
    "l2Book": ("coin",), "trades": ("coin",), "bbo": ("coin",), "activeAssetCtx": ("coin",),
    "candle": ("coin", "interval"), "activeAssetData": ("coin", "user"),
    "userFills": ("user",), "userFundings": ("user",), "userNonFundingLedgerUpdates": ("user",),
    "webData2": ("user",),
}
_CHANNEL_TO_TYPE = {"user": "userEvents", "activeSpotAssetCtx": "activeAssetCtx"}
_UNKEYED = frozenset({"userEvents", "orderUpdates"})


def _identifier(kind: str, fields: dict[str, Any]) -> str | None:
    keys = _KEYED_BY.get(kind)
    if keys is None:
        return None
    if not keys:
        return kind
    # coins and users compare case-insensitively; a candle interval does not ("1m", "1M")
    return kind + ":" + ",".join(str(fields[key]) if key == "interval" else
                                 str(fields[key]).lower() for key in keys)


def subscription_to_identifier(subscription: Subscription) -> str | None:
    """The key under which a subscription's callbacks are kept (None: unknown type)."""
    fields: dict[str, Any] = dict(subscription)
    return _identifier(fields["type"], fields)


def ws_msg_to_identifier(ws_msg: WsMsg) -> str | None:
    """The subscription key a message belongs to; ``"pong"``; None for an empty trades list."""
    channel = ws_msg["channel"]
    if channel == "pong":
        return "pong"
    data: Any = ws_msg.get("data")
    kind = _CHANNEL_TO_TYPE.get(channel, channel)
    if kind == "trades":
        return f"trades:{data[0]['coin'].lower()}" if data else None
    if kind == "candle":
        return _identifier(kind, {"coin": data["s"], "interval": data["i"]})
    return _identifier(kind, data if isinstance(data, dict) else {})


class WebsocketManager(threading.Thread):
    """The websocket thread behind ``Info.subscribe``.

    Parameters
    ----------
    base_url : str
        The HTTP base URL; the websocket is at ``ws[s]://<host>/ws``.
    """

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.subscription_id_counter = 0
        self.ws_ready = False
        self.queued_subscriptions: list[tuple[Subscription, ActiveSubscription]] = []
        self.active_subscriptions: dict[str | None, list[ActiveSubscription]] = \
            defaultdict(list)
        self.ws_url = "ws" + base_url[len("http"):] + "/ws"
        self.stop_event = threading.Event()
        self._lock = threading.RLock()
        self._sent: dict[str | None, Subscription] = {}     # identifier -> subscription on the wire
        self._conn: Any = None

    # ------------------------------------------------------------ thread

    def run(self) -> None:
        from websockets.exceptions import ConnectionClosed, InvalidURI
        from websockets.sync.client import connect

        failures = 0
        while not self.stop_event.is_set():
            try:
                with connect(self.ws_url, open_timeout=10, close_timeout=2,
                             ping_interval=None) as conn:
                    self._conn = conn
                    failures = 0
                    self.on_open(conn)
                    self._read(conn)
            except InvalidURI:
                log.error("websocket url %s is not valid; stopping", self.ws_url)
                return
            except (OSError, ConnectionClosed, TimeoutError) as exc:
                if not self.stop_event.is_set():
                    log.warning("websocket %s: %s; reconnecting", self.ws_url,
                                type(exc).__name__)
            finally:
                self._conn = None
                with self._lock:
                    self.ws_ready = False
            if self.stop_event.is_set():
                return
            failures += 1
            delay = min(RECONNECT_DELAY_MAX, 0.5 * 2 ** min(failures, 10))
            self.stop_event.wait(delay * (0.5 + random.random() / 2))

    def _read(self, conn: Any) -> None:
        next_ping = time.monotonic() + PING_INTERVAL
        while not self.stop_event.is_set():
            try:
                message = conn.recv(timeout=max(next_ping - time.monotonic(), 0.0))
            except TimeoutError:
                log.debug("Websocket sending ping")
                conn.send(json.dumps({"method": "ping"}))
                next_ping = time.monotonic() + PING_INTERVAL
                continue
            self.on_message(conn, message)

    def send_ping(self) -> None:
        """Pings are sent by the reading thread; this waits, as the SDK's does, for stop."""
        self.stop_event.wait()

    def stop(self) -> None:
        """Close the websocket and end the thread; no reconnection follows."""
        self.stop_event.set()
        conn = self._conn
        if conn is not None:
            conn.close()

    # ------------------------------------------------------------ frames

    def on_message(self, _ws: Any, message: Any) -> None:
        if message == "Websocket connection established.":
            log.debug(message)
            return
        ws_msg: WsMsg = json.loads(message)
        identifier = ws_msg_to_identifier(ws_msg)
        if identifier == "pong":
            log.debug("Websocket received pong")
            return
        if identifier is None:
            log.debug("Websocket not handling empty message")
            return
        with self._lock:
            active = list(self.active_subscriptions[identifier])
        if not active:
            print("Websocket message from an unexpected subscription:", message, identifier)
        for active_subscription in active:
            active_subscription.callback(ws_msg)

    def on_open(self, _ws: Any) -> None:
        """Send every subscription again (after a reconnection), then the queued ones."""
        log.debug("on_open")
        with self._lock:
            self.ws_ready = True
            for subscription in self._sent.values():
                self._send("subscribe", subscription)
            queued, self.queued_subscriptions = self.queued_subscriptions, []
            for subscription, active in queued:
                self.subscribe(subscription, active.callback, active.subscription_id)

    def _send(self, method: str, subscription: Subscription) -> None:
        conn = self._conn
        if conn is not None:
            conn.send(json.dumps({"method": method, "subscription": subscription}))

    # ------------------------------------------------------------ subscriptions

    def subscribe(self, subscription: Subscription, callback: Callable[[Any], None],
                  subscription_id: int | None = None) -> int:
        with self._lock:
            if subscription_id is None:
                self.subscription_id_counter += 1
                subscription_id = self.subscription_id_counter
            active = ActiveSubscription(callback, subscription_id)
            if not self.ws_ready:
                log.debug("enqueueing subscription")
                self.queued_subscriptions.append((subscription, active))
                return subscription_id
            identifier = subscription_to_identifier(subscription)
            if identifier in _UNKEYED and self.active_subscriptions[identifier]:
                raise NotImplementedError(f"Cannot subscribe to {identifier} multiple times")
            self.active_subscriptions[identifier].append(active)
            self._sent[identifier] = subscription
            self._send("subscribe", subscription)
        return subscription_id

    def unsubscribe(self, subscription: Subscription, subscription_id: int) -> bool:
        with self._lock:
            if not self.ws_ready:
                raise NotImplementedError("Can't unsubscribe before websocket connected")
            identifier = subscription_to_identifier(subscription)
            active = self.active_subscriptions[identifier]
            remaining = [a for a in active if a.subscription_id != subscription_id]
            if not remaining:
                self._sent.pop(identifier, None)
                self._send("unsubscribe", subscription)
            self.active_subscriptions[identifier] = remaining
            return len(active) != len(remaining)
