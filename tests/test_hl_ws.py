"""The websocket client against a local server that speaks Hyperliquid's websocket protocol."""

import asyncio
import itertools
import json
import logging
import socket
import time
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from obelisk import Instrument, L2Book
from obelisk.hyperliquid import ws
from obelisk.hyperliquid.l2frames import apply_l2_message
from obelisk.hyperliquid.ws import (
    MAX_USERS,
    Backoff,
    SubscriptionError,
    WebsocketClient,
    WebsocketError,
    validate_subscription,
)

BUY, SELL = 0, 1
USER = "0x" + "ab" * 20
OTHER_USER = "0x" + "cd" * 20
UPPER_USER = "0x" + "AB" * 20             # USER as a checksummed address may spell it
DYDX = Instrument("DYDX", 4, 1, 50)
RECORDED = (Path(__file__).parent / "fixtures" / "l2book_dydx.json").read_bytes()
L2_FRAME = b'{"channel":"l2Book","data":' + RECORDED + b"}"
TRADES_BTC = {"type": "trades", "coin": "BTC"}
BBO_ETH = {"type": "bbo", "coin": "ETH"}
QUICK = {"ping_interval": 30.0, "pong_timeout": 1.0, "backoff": Backoff(0.01, 0.05),
         "close_timeout": 1.0}


def run(scenario):
    """Run a test scenario; the timeout only stops a hung test."""
    asyncio.run(asyncio.wait_for(scenario, 10))


async def until(predicate, what="condition"):
    """Wait until `predicate()` holds; fail the test if it never does."""
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def trade(coin, tid):
    return {"coin": coin, "side": "B", "px": "100.0", "sz": "1", "time": 1, "tid": tid}


class FakeHyperliquid:
    """A local Hyperliquid websocket: greets, acknowledges subscriptions, answers pings
    (unless told not to), publishes frames and drops connections on demand."""

    def __init__(self, answer_pings=True):
        self.answer_pings = answer_pings
        self.connections = []       # the messages received, one list per connection
        self.close_codes = []
        self.live = []

    async def __aenter__(self):
        self.server = await serve(self.handler, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/ws"
        return self

    async def __aexit__(self, *exc_info):
        self.server.close()
        await self.server.wait_closed()

    async def handler(self, conn):
        received = []
        self.connections.append(received)
        self.live.append(conn)
        try:
            await conn.send("Websocket connection established.")
            async for raw in conn:
                message = json.loads(raw)
                received.append(message)
                if message["method"] == "ping":
                    if self.answer_pings:
                        await conn.send('{"channel":"pong"}')
                else:
                    await conn.send(json.dumps({"channel": "subscriptionResponse",
                                                "data": message}))
        except ConnectionClosed:
            pass
        finally:
            self.live.remove(conn)
            self.close_codes.append(conn.close_code)

    def subscribed(self, connection):
        """The subscriptions active on connection number `connection`, as sorted JSON."""
        active = set()
        for message in self.connections[connection] if connection < len(self.connections) else ():
            key = json.dumps(message.get("subscription"), sort_keys=True)
            if message["method"] == "subscribe":
                active.add(key)
            elif message["method"] == "unsubscribe":
                active.discard(key)
        return active

    def pings(self, connection):
        return sum(message["method"] == "ping" for message in self.connections[connection])

    async def publish(self, frame):
        raw = frame if isinstance(frame, bytes) else orjson.dumps(frame)
        for conn in list(self.live):
            await conn.send(raw, text=True)

    def drop(self):
        """Cut every connection without a close handshake."""
        for conn in list(self.live):
            conn.transport.abort()


def book_state(book):
    return [array.tolist() for side in (BUY, SELL) for array in book.depth(side, 100)]


def keys(*subscriptions):
    return {json.dumps(validate_subscription(s), sort_keys=True) for s in subscriptions}


# ---------------------------------------------------------------- routing

def test_frames_are_routed_by_channel_coin_and_interval_to_callbacks_and_streams():
    async def scenario():
        async with FakeHyperliquid() as server, WebsocketClient(server.url, **QUICK) as client:
            trades, candles = [], []

            async def on_candle(data):
                candles.append(data)

            candle = {"type": "candle", "coin": "BTC", "interval": "1m"}
            await client.subscribe(TRADES_BTC, trades.append)
            await client.subscribe(candle, on_candle)
            first_bbo = asyncio.ensure_future(anext(client.stream(BBO_ETH)))
            await until(lambda: server.subscribed(0) == keys(TRADES_BTC, candle, BBO_ETH))
            await client.wait_connected()
            await server.publish({"channel": "trades", "data": [trade("ETH", 1)]})
            await server.publish({"channel": "trades", "data": [trade("BTC", 2)]})
            await server.publish({"channel": "candle", "data": {"s": "BTC", "i": "5m", "c": "1"}})
            await server.publish({"channel": "candle", "data": {"s": "BTC", "i": "1m", "c": "2"}})
            await server.publish({"channel": "bbo", "data": {"coin": "BTC", "bbo": [None, None]}})
            await server.publish({"channel": "bbo", "data": {"coin": "ETH", "bbo": [None, None]}})
            assert await first_bbo == {"coin": "ETH", "bbo": [None, None]}
            await until(lambda: trades and candles, "trades and candle frames")
            assert trades == [[trade("BTC", 2)]]
            assert candles == [{"s": "BTC", "i": "1m", "c": "2"}]
            assert client.connected and client.connects == 1

    run(scenario())


def test_user_frames_route_by_channel_and_user_fills_by_user():
    async def scenario():
        async with FakeHyperliquid() as server, WebsocketClient(server.url, **QUICK) as client:
            events, orders, fills, mids = [], [], [], []
            await client.subscribe({"type": "userEvents", "user": USER}, events.append)
            await client.subscribe({"type": "orderUpdates", "user": USER}, orders.append)
            await client.subscribe({"type": "userFills", "user": UPPER_USER},
                                   fills.append)
            await client.subscribe({"type": "allMids"}, mids.append)
            await until(lambda: len(server.subscribed(0)) == 4)
            assert {"type": "userFills", "user": USER} in [
                json.loads(key) for key in server.subscribed(0)]
            await server.publish({"channel": "user", "data": {"nonUserCancel": []}})
            await server.publish({"channel": "orderUpdates", "data": [{"status": "open"}]})
            await server.publish({"channel": "userFills", "data": {"user": OTHER_USER,
                                                                   "fills": [1]}})
            await server.publish({"channel": "userFills", "data": {"user": UPPER_USER,
                                                                   "fills": [2]}})
            await server.publish({"channel": "allMids", "data": {"mids": {"BTC": "1"}}})
            await until(lambda: mids, "allMids frame")
            assert events == [{"nonUserCancel": []}]
            assert orders == [[{"status": "open"}]]
            assert fills == [{"user": UPPER_USER, "fills": [2]}]
            assert mids == [{"mids": {"BTC": "1"}}]

    run(scenario())


def test_unsubscribe_sends_the_same_subscription_and_stops_delivery():
    async def scenario():
        async with FakeHyperliquid() as server, WebsocketClient(server.url, **QUICK) as client:
            got, marker = [], []
            sub = await client.subscribe(TRADES_BTC, got.append)
            await client.subscribe(BBO_ETH, marker.append)

            async def collect():
                return [data async for data in client.stream(sub)]

            streamed = asyncio.ensure_future(collect())
            await until(lambda: server.subscribed(0) == keys(TRADES_BTC, BBO_ETH))
            await server.publish({"channel": "trades", "data": [trade("BTC", 1)]})
            await until(lambda: got, "first trade")
            await client.unsubscribe({"type": "trades", "coin": "BTC"})
            await until(lambda: server.subscribed(0) == keys(BBO_ETH), "unsubscribe on server")
            assert server.connections[0][-1] == {"method": "unsubscribe",
                                                 "subscription": TRADES_BTC}
            await server.publish({"channel": "trades", "data": [trade("BTC", 2)]})
            await server.publish({"channel": "bbo", "data": {"coin": "ETH"}})
            await until(lambda: marker, "marker frame")
            assert got == [[trade("BTC", 1)]]
            assert await streamed == [[trade("BTC", 1)]]
            assert not sub.active and sub not in client.subscriptions
            with pytest.raises(SubscriptionError, match="not subscribed"):
                await client.unsubscribe(sub)

    run(scenario())


# ---------------------------------------------------- connection upkeep

@pytest.mark.parametrize(("clock", "delays"), [
    (time.monotonic, [0.0075, 0.015]),              # short-lived connections: backoff grows
    (itertools.count(0, 100).__next__, [0.0075, 0.0075]),  # each lasted 100 s: it restarts
])
def test_dropped_connections_are_replaced_with_every_subscription(clock, delays):
    async def scenario():
        sleeps = []

        async def sleep(seconds):
            sleeps.append(seconds)
            await asyncio.sleep(seconds)

        async with FakeHyperliquid() as server:
            client = WebsocketClient(server.url, ping_interval=30.0, pong_timeout=1.0,
                                     backoff=Backoff(0.01, 1.0, jitter=0.5), stable_after=60.0,
                                     clock=clock, sleep=sleep, random=lambda: 0.5)
            async with client:
                trades, events = [], []
                l2 = {"type": "l2Book", "coin": "ETH", "nSigFigs": 5, "mantissa": 2}
                user_events = {"type": "userEvents", "user": USER}
                await client.subscribe(TRADES_BTC, trades.append)
                await client.subscribe(l2)
                await client.subscribe(user_events, events.append)
                await until(lambda: len(server.subscribed(0)) == 3)
                server.drop()
                await client.subscribe(BBO_ETH)         # while the connection is going away
                everything = keys(TRADES_BTC, l2, user_events, BBO_ETH)
                await until(lambda: server.subscribed(1) == everything, "resubscribed")
                server.drop()
                await until(lambda: server.subscribed(2) == everything, "resubscribed again")
                await server.publish({"channel": "trades", "data": [trade("BTC", 7)]})
                await server.publish({"channel": "user", "data": {"fills": []}})
                await until(lambda: trades and events, "frames after reconnecting")
                assert client.connects == 3
                assert [s for s in sleeps if s < 1] == pytest.approx(delays)

    run(scenario())


def test_pongs_keep_the_connection():
    async def scenario():
        async with FakeHyperliquid() as server, \
                WebsocketClient(server.url, ping_interval=0.2, pong_timeout=0.15) as client:
            await until(lambda: server.connections and server.pings(0) >= 3, "three pings")
            assert len(server.connections) == 1 and client.connects == 1
            assert server.connections[0][0] == {"method": "ping"}

    run(scenario())


def test_a_silent_server_is_detected_and_replaced():
    async def scenario():
        async with FakeHyperliquid(answer_pings=False) as server, \
                WebsocketClient(server.url, ping_interval=0.2, pong_timeout=0.1,
                                backoff=Backoff(0.01, 0.05)) as client:
            await client.subscribe(TRADES_BTC)
            await until(lambda: server.subscribed(1) == keys(TRADES_BTC), "a second connection")
            assert server.pings(0) == 1
            assert server.close_codes[0] == 1006          # aborted, no close handshake
            assert client.connects >= 2

    run(scenario())


def test_connection_failures_back_off_exponentially_with_jitter_up_to_the_cap(caplog):
    caplog.set_level(logging.INFO, logger="obelisk.hyperliquid.ws")

    async def scenario():
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]                # nothing listens there any more
        sleeps = []
        six = asyncio.Event()

        async def sleep(seconds):
            sleeps.append(seconds)
            if len(sleeps) == 6:
                six.set()
            await asyncio.sleep(0)

        url = f"ws://trader:secret@127.0.0.1:{port}/ws?token=secret"
        client = WebsocketClient(url, sleep=sleep, random=lambda: 0.5,
                                 backoff=Backoff(0.01, 0.04, factor=2.0, jitter=0.5))
        client.start()
        await six.wait()
        await client.close()
        assert sleeps[:6] == pytest.approx([0.0075, 0.015, 0.03, 0.03, 0.03, 0.03])
        assert client.connects == 0

    run(scenario())
    assert "connection failed" in caplog.text and "secret" not in caplog.text
    assert Backoff(1.0, 8.0, jitter=0.25).delay(10, 0.0) == 8.0
    assert Backoff(1.0, 8.0, jitter=0.25).delay(0, 1.0) == 0.75


# ------------------------------------------------------ consumers

def test_a_full_stream_queue_drops_the_oldest_frames_and_counts_them():
    async def scenario():
        async with FakeHyperliquid() as server, \
                WebsocketClient(server.url, queue_size=3, **QUICK) as client:
            seen = []
            sub = await client.subscribe(TRADES_BTC, seen.append)
            stream = client.stream(sub)
            first = asyncio.ensure_future(anext(stream))
            await until(lambda: server.subscribed(0) == keys(TRADES_BTC))
            await server.publish({"channel": "trades", "data": [trade("BTC", 0)]})
            assert await first == [trade("BTC", 0)]
            for tid in range(1, 6):
                await server.publish({"channel": "trades", "data": [trade("BTC", tid)]})
            await until(lambda: len(seen) == 6, "six trades")
            assert sub.dropped == 2 and sub.received == 6
            assert [await anext(stream) for _ in range(3)] == [[trade("BTC", t)] for t in (3, 4, 5)]

    run(scenario())


def test_failing_callbacks_are_counted_and_delivery_goes_on():
    async def scenario():
        async with FakeHyperliquid() as server, WebsocketClient(server.url, **QUICK) as client:
            good = []

            def broken(data):
                raise RuntimeError("sync callback bug")

            async def broken_async(data):
                raise RuntimeError("async callback bug")

            sub = await client.subscribe(TRADES_BTC, broken)
            await client.subscribe(TRADES_BTC, broken_async)
            assert await client.subscribe(TRADES_BTC, good.append) is sub
            await until(lambda: server.subscribed(0) == keys(TRADES_BTC))
            assert sum(m["method"] == "subscribe" for m in server.connections[0]) == 1
            for tid in range(2):
                await server.publish({"channel": "trades", "data": [trade("BTC", tid)]})
            await until(lambda: len(good) == 2 and sub.errors == 4, "four failures")

    run(scenario())


def test_close_ends_streams_and_closes_with_a_handshake():
    async def scenario():
        async with FakeHyperliquid() as server:
            client = WebsocketClient(server.url, **QUICK)
            client.start()

            async def collect():
                return [data async for data in client.stream(TRADES_BTC)]

            streamed = asyncio.ensure_future(collect())
            await until(lambda: server.subscribed(0) == keys(TRADES_BTC))
            await server.publish({"channel": "trades", "data": [trade("BTC", 1)]})
            await until(lambda: client.subscriptions[0].received == 1)
            await client.close()
            assert await streamed == [[trade("BTC", 1)]]
            await until(lambda: server.close_codes, "server saw the close")
            assert server.close_codes == [1000]
            assert not client.connected and client.subscriptions == []
            with pytest.raises(WebsocketError, match="closed"):
                await client.subscribe(TRADES_BTC)
            await client.close()                        # idempotent

    run(scenario())


# ------------------------------------------------------- l2Book feed

def test_l2book_frames_go_into_the_book_without_being_decoded(monkeypatch):
    decoded = []

    def loads(raw):
        decoded.append(bytes(raw))
        return orjson.loads(raw)

    monkeypatch.setattr(ws, "orjson", SimpleNamespace(
        loads=loads, dumps=orjson.dumps, OPT_SORT_KEYS=orjson.OPT_SORT_KEYS,
        JSONDecodeError=orjson.JSONDecodeError))
    reference = L2Book(DYDX)
    apply_l2_message(reference, RECORDED)

    async def scenario():
        async with FakeHyperliquid() as server, WebsocketClient(server.url, **QUICK) as client:
            book = L2Book(DYDX)
            updates = []
            sub = await client.track_book(book, updates.append)
            await until(lambda: server.subscribed(0) == keys({"type": "l2Book", "coin": "DYDX"}))
            await server.publish(L2_FRAME)
            await until(lambda: updates, "book update")
            assert updates == [book]
            assert book_state(book) == book_state(reference)
            assert not [raw for raw in decoded if b"l2Book" in raw[:30]]
            assert sub.received == 1

            first = asyncio.ensure_future(anext(client.stream(sub)))    # a consumer of data
            await asyncio.sleep(0)
            await server.publish({"channel": "l2Book", "data": {"coin": "DYDX", "time": 1}})
            await server.publish(L2_FRAME)
            assert (await first) == {"coin": "DYDX", "time": 1}
            await until(lambda: len(updates) == 2, "second book update")
            assert sub.errors == 1                      # the frame without levels
            assert book.best_bid() == reference.best_bid()
            with pytest.raises(SubscriptionError, match="another book"):
                await client.track_book(L2Book(DYDX))

    run(scenario())


# --------------------------------------------------------- validation

@pytest.mark.parametrize(("subscription", "message"), [
    ({"type": "l2Bok", "coin": "BTC"}, "unknown subscription type 'l2Bok'"),
    ({"coin": "BTC"}, "unknown subscription type None"),
    (["trades", "BTC"], "is a dict"),
    ({"type": "trades"}, "needs coin"),
    ({"type": "candle", "coin": "BTC"}, "needs interval"),
    ({"type": "candle", "coin": "BTC", "interval": "7m"}, "interval '7m'"),
    ({"type": "trades", "coin": "BTC", "user": USER}, "does not take user"),
    ({"type": "bbo", "coin": ""}, "non-empty str"),
    ({"type": "l2Book", "coin": 3}, "non-empty str"),
    ({"type": "userFills", "user": "0x1234"}, "address"),
    ({"type": "orderUpdates", "user": "ab" * 21}, "address"),
    ({"type": "userFills", "user": USER, "aggregateByTime": 1}, "bool"),
    ({"type": "l2Book", "coin": "BTC", "nSigFigs": True}, "nSigFigs"),
    ({"type": "l2Book", "coin": "BTC", "nSigFigs": 6}, "nSigFigs"),
    ({"type": "l2Book", "coin": "BTC", "nSigFigs": 5, "mantissa": 3}, "mantissa must be"),
    ({"type": "l2Book", "coin": "BTC", "nSigFigs": 4, "mantissa": 2}, "only allowed"),
])
def test_invalid_subscriptions_are_rejected(subscription, message):
    async def scenario():
        client = WebsocketClient()
        with pytest.raises(SubscriptionError, match=message):
            await client.subscribe(subscription)
        assert client.subscriptions == []

    run(scenario())


def test_subscriptions_that_cannot_be_told_apart_or_exceed_limits_are_refused():
    async def scenario():
        client = WebsocketClient()                      # never started: nothing is sent
        plain = await client.subscribe({"type": "l2Book", "coin": "BTC"})
        assert await client.subscribe({"type": "l2Book", "coin": "BTC", "nSigFigs": None}) \
            is plain
        with pytest.raises(SubscriptionError, match="cannot be told apart"):
            await client.subscribe({"type": "l2Book", "coin": "BTC", "nSigFigs": 3})
        await client.subscribe({"type": "orderUpdates", "user": USER})
        with pytest.raises(SubscriptionError, match="cannot be told apart"):
            await client.subscribe({"type": "orderUpdates", "user": OTHER_USER})
        await client.subscribe({"type": "allMids"})
        with pytest.raises(SubscriptionError, match="cannot be told apart"):
            await client.subscribe({"type": "allMids", "dex": "xyz"})
        for n in range(1, MAX_USERS):
            await client.subscribe({"type": "userFills", "user": f"0x{n:040x}"})
        with pytest.raises(SubscriptionError, match="distinct users"):
            await client.subscribe({"type": "userEvents", "user": OTHER_USER})
        await client.subscribe({"type": "userEvents", "user": USER})    # a known user is fine
        await client.close()

    run(scenario())
    assert validate_subscription({"type": "allMids", "dex": ""}) == {"type": "allMids"}
    with pytest.raises(ValueError, match="ws://") as bad_url:
        WebsocketClient("https://trader:secret@api.hyperliquid.xyz/ws?token=secret")
    assert "secret" not in str(bad_url.value)
    with pytest.raises(ValueError, match="pong_timeout"):
        WebsocketClient(ping_interval=5.0, pong_timeout=5.0)
    with pytest.raises(ValueError, match="initial"):
        Backoff(initial=2.0, maximum=1.0)
