"""The websocket client under faults: it never stops reconnecting, and slow coroutine
callbacks cannot pile up without bound (obelisk/hyperliquid/ws.py)."""

import asyncio
import logging

import pytest
from test_hl_ws import QUICK, TRADES_BTC, FakeHyperliquid, keys, run, trade, until
from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.http11 import Response

from obelisk.hyperliquid import ws
from obelisk.hyperliquid.ws import WebsocketClient, WebsocketError

BAD_REDIRECT = "ws://[::1/x"         # urljoin raises ValueError("Invalid IPv6 URL")


class RedirectingFirst(FakeHyperliquid):
    """A FakeHyperliquid whose first `redirects` handshakes get a 302 to a malformed URL."""

    def __init__(self, redirects):
        super().__init__()
        self.redirects = redirects
        self.handshakes = 0

    def process_request(self, connection, request):
        self.handshakes += 1
        if self.handshakes > self.redirects:
            return None
        return Response(302, "Found", Headers({"Location": BAD_REDIRECT,
                                                "Content-Length": "0"}))

    async def __aenter__(self):
        self.server = await serve(self.handler, "127.0.0.1", 0,
                                  process_request=self.process_request)
        self.url = f"ws://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/ws"
        return self


def test_a_malformed_redirect_is_logged_and_the_client_reconnects(caplog):
    caplog.set_level(logging.INFO, logger="obelisk.hyperliquid.ws")

    async def scenario():
        async with RedirectingFirst(redirects=2) as server:
            secret_url = server.url.replace("ws://", "ws://trader:hunter2@") + "?token=hunter2"
            async with WebsocketClient(secret_url, **QUICK) as client:
                await client.subscribe(TRADES_BTC)
                await asyncio.wait_for(client.wait_connected(), 5)
                assert server.handshakes == 3 and client.connects == 1
                await until(lambda: server.subscribed(0) == keys(TRADES_BTC), "resubscribed")

    run(scenario())
    failures = [r for r in caplog.records if "connection failed" in r.getMessage()]
    assert len(failures) == 2 and "ValueError" in failures[0].getMessage()
    assert "hunter2" not in caplog.text


def test_any_exception_while_connecting_or_serving_is_survived(monkeypatch, caplog):
    real_connect = ws.connect
    calls = []

    async def flaky_connect(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError("unexpected")
        return await real_connect(*args, **kwargs)

    monkeypatch.setattr(ws, "connect", flaky_connect)

    async def scenario():
        async with FakeHyperliquid() as server, WebsocketClient(server.url, **QUICK) as client:
            real_resubscribe = client._resubscribe
            broken = []

            async def resubscribe_once_broken(conn):
                if not broken:
                    broken.append(conn)
                    raise KeyError("a bug while resubscribing")
                await real_resubscribe(conn)

            client._resubscribe = resubscribe_once_broken
            await client.subscribe(TRADES_BTC)
            await asyncio.wait_for(client.wait_connected(), 5)
            assert len(calls) == 3 and client.connects == 2
            await until(lambda: server.subscribed(1) == keys(TRADES_BTC), "subscribed")

    run(scenario())
    assert "RuntimeError: unexpected" in caplog.text and "KeyError" in caplog.text


def test_wait_connected_raises_once_the_client_is_closed():
    async def scenario():
        client = WebsocketClient("ws://127.0.0.1:9/ws", **QUICK)
        client.start()
        waiter = asyncio.ensure_future(client.wait_connected())
        await asyncio.sleep(0.05)
        await client.close()
        with pytest.raises(WebsocketError):
            await asyncio.wait_for(waiter, 2)
        with pytest.raises(WebsocketError):
            await client.wait_connected()

    run(scenario())


def test_slow_coroutine_callbacks_are_bounded_and_the_reader_waits_for_room():
    bound, frames = 4, 200

    async def scenario():
        release = asyncio.Event()
        running = peak = 0
        seen = []

        async def slow(data):
            nonlocal running, peak
            running += 1
            peak = max(peak, running, client.pending_callbacks)
            try:
                await release.wait()
                seen.append(data[0]["tid"])
            finally:
                running -= 1

        async with FakeHyperliquid() as server, \
                WebsocketClient(server.url, max_callback_tasks=bound, **QUICK) as client:
            sub = await client.subscribe(TRADES_BTC, slow)
            await until(lambda: server.subscribed(0) == keys(TRADES_BTC))
            for tid in range(frames):
                await server.publish({"channel": "trades", "data": [trade("BTC", tid)]})
            await until(lambda: running == bound, "the bound reached")
            for _ in range(20):                 # the reader holds: no new task is made
                await asyncio.sleep(0.01)
                peak = max(peak, client.pending_callbacks)
            assert client.pending_callbacks == bound and sub.received < frames
            release.set()
            await until(lambda: len(seen) == frames, "every frame delivered")
            assert seen == sorted(seen) and sub.errors == 0 and client.connects == 1
        assert peak == bound

    run(scenario())


def test_a_failing_coroutine_callback_is_logged_and_the_bounded_reader_goes_on(caplog):
    async def scenario():
        calls = []

        async def flaky(data):
            calls.append(data)
            await asyncio.sleep(0.01)
            if len(calls) % 2:
                raise RuntimeError("callback bug")

        async with FakeHyperliquid() as server, \
                WebsocketClient(server.url, max_callback_tasks=1, **QUICK) as client:
            sub = await client.subscribe(TRADES_BTC, flaky)
            await until(lambda: server.subscribed(0) == keys(TRADES_BTC))
            for tid in range(6):
                await server.publish({"channel": "trades", "data": [trade("BTC", tid)]})
            await until(lambda: len(calls) == 6 and client.pending_callbacks == 0, "six calls")
            assert sub.errors == 3 and client.connected and client.connects == 1

    run(scenario())
    assert caplog.text.count("callback failed") == 3


def test_max_callback_tasks_is_validated():
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="max_callback_tasks"):
            WebsocketClient("ws://127.0.0.1:9/ws", max_callback_tasks=bad)
