"""`obelisk serve`'s ``/ws``: subscriptions, pushes, ping, ``post``, limits and slow clients.

Real servers on 127.0.0.1 and real websocket clients (the official SDK's and the
``websockets`` library's); nothing is mocked.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

pytest.importorskip("aiohttp")
requests = pytest.importorskip("requests")
eth_account = pytest.importorskip("eth_account")
hl_exchange = pytest.importorskip("hyperliquid.exchange")
from aiohttp import web  # noqa: E402
from hyperliquid.info import Info  # noqa: E402
from hyperliquid.utils.signing import get_timestamp_ms, sign_l1_action  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from obelisk.server import app, feeds  # noqa: E402
from obelisk.server.feeds import GREETING, parse_subscription  # noqa: E402
from obelisk.server.runner import ServerURL, serve  # noqa: E402

TRADER = eth_account.Account.from_key("0x" + "33" * 32)
ROOMY = 1_000_000
COINS = frozenset({"BTC", "ETH"})


def ws_url(url: str) -> str:
    return "ws" + url[len("http"):] + "/ws"


def deposit(url: ServerURL, user: str, usdc: float) -> None:
    answer = requests.post(url.admin_url + "/deposit", json={"user": user, "usdc": usdc},
                           timeout=5)
    assert answer.status_code == 200, answer.text


def frame(socket, timeout: float = 5.0) -> dict:
    return json.loads(socket.recv(timeout=timeout))


def request(socket, message: dict) -> dict:
    socket.send(json.dumps(message))
    return frame(socket)


def subscribe(socket, subscription: dict, method: str = "subscribe") -> dict:
    return request(socket, {"method": method, "subscription": subscription})


def until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def market():
    with serve(port=0, clock="sim", makers=2, seed=11, ip_weight_per_minute=ROOMY) as url:
        deposit(url, TRADER.address, 100_000.0)
        yield url


@pytest.fixture
def socket(market):
    with connect(ws_url(market)) as client:
        assert client.recv(timeout=5) == GREETING
        yield client


# -- subscription requests -------------------------------------------------------------------

@pytest.mark.parametrize(("subscription", "key"), [
    ({"type": "allMids"}, ("allMids",)),
    ({"type": "allMids", "dex": ""}, ("allMids",)),
    ({"type": "l2Book", "coin": "ETH"}, ("l2Book", "ETH", None, None)),
    ({"type": "l2Book", "coin": "ETH", "nSigFigs": 5, "mantissa": 2}, ("l2Book", "ETH", 5, 2)),
    ({"type": "bbo", "coin": "BTC"}, ("bbo", "BTC")),
    ({"type": "candle", "coin": "BTC", "interval": "15m"}, ("candle", "BTC", "15m")),
    ({"type": "userFills", "user": "0x" + "AB" * 20}, ("userFills", "0x" + "ab" * 20)),
    ({"type": "userEvents", "user": "0x" + "ab" * 20}, ("userEvents", "0x" + "ab" * 20)),
])
def test_valid_subscriptions_get_their_routing_key(subscription, key):
    assert parse_subscription(subscription, COINS).key == key


@pytest.mark.parametrize("subscription", [
    None, [], {"type": "l2Book", "coin": "DOGE"}, {"type": "l2Book", "coin": "ETH", "nSigFigs": 6},
    {"type": "l2Book", "coin": "ETH", "nSigFigs": 4, "mantissa": 2},
    {"type": "l2Book", "coin": "ETH", "nSigFigs": True}, {"type": "candle", "coin": "ETH"},
    {"type": "candle", "coin": "ETH", "interval": "7m"}, {"type": "userFills", "user": "bob"},
    {"type": "userFills", "user": "0x" + "ab" * 20, "aggregateByTime": "yes"},
    {"type": "allMids", "dex": "test"}, {"type": "webData2", "user": "0x" + "ab" * 20},
])
def test_invalid_subscriptions_are_refused(subscription):
    assert parse_subscription(subscription, COINS) is None


def test_ping_pong_and_subscription_acks_and_errors(socket):
    assert request(socket, {"method": "ping"}) == {"channel": "pong"}
    book = {"type": "l2Book", "coin": "ETH"}
    assert subscribe(socket, book) == {"channel": "subscriptionResponse",
                                       "data": {"method": "subscribe", "subscription": book}}
    snapshot = frame(socket)
    assert snapshot["channel"] == "l2Book" and snapshot["data"]["coin"] == "ETH"
    assert subscribe(socket, book) == {
        "channel": "error", "data": 'Already subscribed: {"type":"l2Book","coin":"ETH"}'}
    assert subscribe(socket, {"type": "l2Book", "coin": "NOPE"}) == {
        "channel": "error", "data": 'Invalid subscription {"type":"l2Book","coin":"NOPE"}'}
    assert subscribe(socket, book, "unsubscribe")["data"] == {"method": "unsubscribe",
                                                              "subscription": book}
    assert subscribe(socket, book, "unsubscribe") == {
        "channel": "error", "data": 'Already unsubscribed: {"type":"l2Book","coin":"ETH"}'}
    assert request(socket, {"method": "dance"})["channel"] == "error"
    assert request(socket, {"method": "ping"}) == {"channel": "pong"}


def test_user_feeds_start_with_a_snapshot(socket):
    user = TRADER.address
    subscribe(socket, {"type": "userFills", "user": user})
    fills = frame(socket)
    assert fills["channel"] == "userFills"
    assert fills["data"]["isSnapshot"] is True and fills["data"]["user"] == user.lower()
    subscribe(socket, {"type": "userFundings", "user": user})
    fundings = frame(socket)
    assert fundings["data"]["isSnapshot"] is True and fundings["data"]["fundings"] == []


def test_at_most_ten_users_per_socket(socket):
    users = ["0x" + f"{i:040x}" for i in range(1, 12)]
    for user in users[:10]:
        assert subscribe(socket, {"type": "orderUpdates", "user": user})["channel"] \
            == "subscriptionResponse"
    assert subscribe(socket, {"type": "userEvents", "user": users[0]})["channel"] \
        == "subscriptionResponse"                 # an eleventh subscription, a known user
    assert subscribe(socket, {"type": "orderUpdates", "user": users[10]}) == {
        "channel": "error", "data": "Cannot track more than 10 total users."}


def test_subscriptions_per_socket_are_capped(socket, monkeypatch):
    monkeypatch.setattr(feeds, "MAX_SUBSCRIPTIONS", 2)
    subscribe(socket, {"type": "trades", "coin": "ETH"})
    subscribe(socket, {"type": "trades", "coin": "BTC"})
    assert subscribe(socket, {"type": "orderUpdates", "user": TRADER.address}) == {
        "channel": "error", "data": "Cannot track more than 2 total subscriptions."}


# -- post requests -------------------------------------------------------------------------

def _signed_order(price: float, size: str = "0.1") -> dict:
    nonce = get_timestamp_ms()
    action = {"type": "order", "orders": [{"a": 1, "b": True, "p": str(price), "s": size,
                                           "r": False, "t": {"limit": {"tif": "Gtc"}}}],
              "grouping": "na"}
    return {"action": action, "nonce": nonce, "vaultAddress": None, "expiresAfter": None,
            "signature": sign_l1_action(TRADER, action, None, nonce, None, False)}


def test_post_answers_info_and_signed_actions_like_http(socket, market):
    answer = request(socket, {"method": "post", "id": 7,
                              "request": {"type": "info", "payload": {"type": "allMids"}}})
    assert answer["channel"] == "post" and answer["data"]["id"] == 7
    payload = answer["data"]["response"]
    assert payload["type"] == "info" and payload["payload"]["type"] == "allMids"
    assert payload["payload"]["data"] == requests.post(market + "/info", json={
        "type": "allMids"}, timeout=5).json()

    mid = float(payload["payload"]["data"]["ETH"])
    placed = request(socket, {"method": "post", "id": 8, "request": {
        "type": "action", "payload": _signed_order(round(mid * 0.8, 1))}})
    response = placed["data"]["response"]
    assert placed["data"]["id"] == 8 and response["type"] == "action"
    oid = response["payload"]["response"]["data"]["statuses"][0]["resting"]["oid"]
    assert oid in [order["oid"] for order in Info(market, skip_ws=True).open_orders(
        TRADER.address)]

    refused = request(socket, {"method": "post", "id": 9, "request": {
        "type": "info", "payload": {"type": "noSuchThing"}}})
    assert refused["data"] == {"id": 9, "response": {
        "type": "error", "payload": "Failed to deserialize the JSON body into the target type"}}



def test_each_post_is_answered_before_the_next_buffered_one_runs(socket, monkeypatch):
    """Posts that arrive together are answered one by one, not all after the last one ran
    (a client keeping several actions on their way would wait for the slowest)."""
    order: list[str] = []
    info = app.Gateway.info

    def slow_info(self, request, ip):
        order.append("ran")
        if len(order) == 1:
            time.sleep(0.05)           # the next posts arrive meanwhile and wait in the buffer
        return info(self, request, ip)

    send_str = web.WebSocketResponse.send_str

    async def sent(self, data, *args, **kwargs):
        if '"channel":"post"' in data:
            order.append("answered")
        return await send_str(self, data, *args, **kwargs)

    monkeypatch.setattr(app.Gateway, "info", slow_info)
    monkeypatch.setattr(web.WebSocketResponse, "send_str", sent)
    for ident in range(3):
        socket.send(json.dumps({"method": "post", "id": ident,
                                "request": {"type": "info", "payload": {"type": "allMids"}}}))
    assert [frame(socket)["data"]["id"] for _ in range(3)] == [0, 1, 2]
    assert order == ["ran", "answered"] * 3


# -- pushes --------------------------------------------------------------------------------

def test_sdk_websocket_receives_book_updates_and_the_accounts_fills(market):
    info = Info(market, skip_ws=False)
    books: list[dict] = []
    fills: list[dict] = []
    events: list[dict] = []
    got_fill = threading.Event()

    def on_fills(message: dict) -> None:
        fills.append(message)
        if not message["data"].get("isSnapshot"):
            got_fill.set()

    try:
        info.subscribe({"type": "l2Book", "coin": "ETH"}, books.append)
        info.subscribe({"type": "userFills", "user": TRADER.address}, on_fills)
        info.subscribe({"type": "userEvents", "user": TRADER.address}, events.append)
        until(lambda: books and fills)
        assert fills[0]["data"]["isSnapshot"] is True
        seen = len(books)
        exchange = hl_exchange.Exchange(TRADER, market)
        opened = exchange.market_open("ETH", True, 0.2)
        assert "filled" in opened["response"]["data"]["statuses"][0], opened
        assert got_fill.wait(10)
        pushed = [fill for message in fills[1:] for fill in message["data"]["fills"]]
        assert {fill["coin"] for fill in pushed} == {"ETH"}
        assert sum(float(fill["sz"]) for fill in pushed) == pytest.approx(0.2)
        until(lambda: len(books) > seen and any("fills" in e["data"] for e in events))
        assert books[-1]["data"]["coin"] == "ETH"
        exchange.market_close("ETH")
    finally:
        info.disconnect_websocket()


def test_bbo_and_trades_are_pushed_on_a_cross(socket, market):
    subscribe(socket, {"type": "bbo", "coin": "BTC"})
    first = frame(socket)
    assert first["channel"] == "bbo" and first["data"]["bbo"][1] is not None
    subscribe(socket, {"type": "trades", "coin": "BTC"})
    exchange = hl_exchange.Exchange(TRADER, market)
    exchange.market_open("BTC", True, 0.001)
    channels: dict[str, dict] = {}
    while {"trades", "bbo"} - channels.keys():
        message = frame(socket)
        channels[message["channel"]] = message
    trades = channels["trades"]["data"]
    assert trades and all(trade["coin"] == "BTC" for trade in trades)
    assert TRADER.address.lower() in trades[0]["users"]
    exchange.market_close("BTC")


def test_a_subscriber_gets_every_bbo_change_while_others_come_and_go(market):
    # One hub-wide "last bbo pushed" that a new subscriber's snapshot also overwrote: a
    # subscription between a book change and its push hid the change from everyone else.
    info = Info(market, skip_ws=True)
    exchange = hl_exchange.Exchange(TRADER, market)
    subscription = {"type": "bbo", "coin": "ETH"}
    last: dict[str, list] = {}
    placed: list[int] = []
    stop = threading.Event()
    with connect(ws_url(market)) as watcher, connect(ws_url(market)) as churner:
        assert watcher.recv(timeout=5) == GREETING and churner.recv(timeout=5) == GREETING
        subscribe(watcher, subscription)

        def watch():
            with pytest.raises(ConnectionClosed):
                while True:
                    message = json.loads(watcher.recv())
                    if message["channel"] == "bbo":
                        last["bbo"] = message["data"]["bbo"]

        def churn():
            while not stop.is_set():
                for method in ("subscribe", "unsubscribe"):
                    churner.send(json.dumps({"method": method, "subscription": subscription}))
                time.sleep(0.0005)

        def drain():
            with pytest.raises(ConnectionClosed):
                while True:
                    churner.recv()

        threads = [threading.Thread(target=target, daemon=True) for target in (watch, churn, drain)]
        for thread in threads:
            thread.start()
        try:
            for _ in range(12):
                levels = info.l2_snapshot("ETH")["levels"]
                bid, ask = float(levels[0][0]["px"]), float(levels[1][0]["px"])
                price = round(bid + 0.1, 1)
                if price >= ask:
                    break                           # no room left inside the spread
                answer = exchange.order("ETH", True, round(11 / price, 4), price,
                                        {"limit": {"tif": "Gtc"}})
                placed.append(answer["response"]["data"]["statuses"][0]["resting"]["oid"])
                levels = info.l2_snapshot("ETH")["levels"]
                truth = [levels[0][0]["px"], levels[1][0]["px"]]
                until(lambda truth=truth: [entry["px"] for entry in last.get("bbo") or []]
                      == truth, timeout=5)
        finally:
            stop.set()
            for oid in placed:                      # the market is shared by the module
                exchange.cancel("ETH", oid)
    for thread in threads:
        thread.join(timeout=5)


# -- liveness ------------------------------------------------------------------------------

def test_a_silent_socket_is_closed():
    with serve(port=0, clock="sim", ws_idle_timeout=0.5) as url, connect(ws_url(url)) as client:
        assert client.recv(timeout=5) == GREETING
        with pytest.raises(ConnectionClosed):
            client.recv(timeout=5)


def test_a_client_that_cannot_keep_up_is_dropped_and_others_are_not(market, monkeypatch):
    monkeypatch.setattr(feeds, "SEND_QUEUE_FRAMES", 3)
    variants = [{"type": "l2Book", "coin": "ETH"}] + [
        {"type": "l2Book", "coin": "ETH", "nSigFigs": n} for n in (2, 3, 4, 5)]
    mid = float(Info(market, skip_ws=True).all_mids()["ETH"])
    with connect(ws_url(market)) as slow:
        with pytest.raises(ConnectionClosed) as closed:
            for subscription in variants:
                slow.send(json.dumps({"method": "subscribe", "subscription": subscription}))
            slow.send(json.dumps({"method": "post", "id": 1, "request": {   # one book change:
                "type": "action", "payload": _signed_order(round(mid * 0.8, 1))}}))  # 5 pushes
            while True:
                slow.recv(timeout=5)
        assert closed.value.rcvd is None or closed.value.rcvd.code == 1013
    monkeypatch.setattr(feeds, "SEND_QUEUE_FRAMES", 1024)
    with connect(ws_url(market)) as healthy:
        assert healthy.recv(timeout=5) == GREETING
        assert request(healthy, {"method": "ping"}) == {"channel": "pong"}
