"""``post`` requests on the websocket client: written in call order, answered by id, and
every way an answer can fail to come told apart (not sent, lost, refused); the blocking
poster the venue uses on top of them."""

import asyncio
import json
import threading

import pytest
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from obelisk.hyperliquid.errors import ExchangeOutcomeUnknownError
from obelisk.hyperliquid.ws import (
    MAX_INFLIGHT_POSTS,
    RESERVED_MESSAGES,
    Backoff,
    PostLostError,
    PostNotSentError,
    PostRefusedError,
    WebsocketClient,
)
from obelisk.hyperliquid.ws_post import WebsocketPoster

QUICK = {"ping_interval": 30.0, "pong_timeout": 1.0, "backoff": Backoff(0.01, 0.05),
         "close_timeout": 1.0}


def run(scenario):
    asyncio.run(asyncio.wait_for(scenario, 10))


class PostServer:
    """A websocket that collects post requests and answers them when told to: in any order,
    with an error, or not at all (dropping the connection)."""

    def __init__(self):
        self.requests = []          # (id, request) in the order they arrived
        self.conns = []
        self.arrived = asyncio.Event()

    async def __aenter__(self):
        self.server = await serve(self.handler, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/ws"
        return self

    async def __aexit__(self, *exc_info):
        self.server.close()
        await self.server.wait_closed()

    async def handler(self, conn):
        self.conns.append(conn)
        try:
            async for raw in conn:
                message = json.loads(raw)
                if message.get("method") == "post":
                    self.requests.append((message["id"], message["request"]))
                    self.arrived.set()
        except ConnectionClosed:
            pass

    async def until_requests(self, count):
        while len(self.requests) < count:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), 5)

    async def answer(self, ident, response):
        await self.conns[-1].send(json.dumps({"channel": "post",
                                              "data": {"id": ident, "response": response}}))


async def connected_client(url, **options):
    client = WebsocketClient(url, **QUICK, **options)
    client.start()
    await client.wait_connected()
    return client


def test_posts_go_out_in_call_order_and_each_gets_its_own_answer():
    async def scenario():
        async with PostServer() as server:
            client = await connected_client(server.url)
            bodies = [{"action": {"type": "order", "n": n}, "nonce": n} for n in range(5)]
            written = []
            posts = [asyncio.create_task(client.post("action", body,
                                                     on_written=lambda n=n: written.append(n)))
                     for n, body in enumerate(bodies)]
            posts.append(asyncio.create_task(client.post("info", {"type": "allMids"})))
            await server.until_requests(6)
            assert written == list(range(5))
            assert [request for _, request in server.requests] == [
                {"type": "action", "payload": body} for body in bodies
            ] + [{"type": "info", "payload": {"type": "allMids"}}]
            for ident, request in reversed(server.requests):      # answered last first
                await server.answer(ident, {"type": request["type"],
                                            "payload": {"echo": request["payload"]}})
            answers = await asyncio.gather(*posts)
            assert answers == [{"echo": body} for body in bodies] + [
                {"echo": {"type": "allMids"}}]
            assert len({ident for ident, _ in server.requests}) == 6
            await client.close()

    run(scenario())


def test_an_error_answer_is_a_refusal_with_the_servers_text():
    async def scenario():
        async with PostServer() as server:
            client = await connected_client(server.url)
            post = asyncio.create_task(client.post("action", b'{"action":{"type":"noop"}}'))
            await server.until_requests(1)
            assert server.requests[0][1] == {"type": "action",
                                             "payload": {"action": {"type": "noop"}}}
            await server.answer(server.requests[0][0], {"type": "error",
                                                        "payload": "too many requests"})
            with pytest.raises(PostRefusedError, match="too many requests") as refused:
                await post
            assert refused.value.text == "too many requests"
            await client.close()

    run(scenario())


def test_answers_lost_with_the_connection_or_the_time_are_told_from_requests_never_sent():
    async def scenario():
        async with PostServer() as server:
            idle = WebsocketClient(server.url, **QUICK)           # never started
            with pytest.raises(PostNotSentError):
                await idle.post("action", {"nonce": 1})
            client = await connected_client(server.url)
            with pytest.raises(PostLostError, match="no answer within 0.05 s"):
                await client.post("action", {"nonce": 2}, timeout=0.05)
            waiting = [asyncio.create_task(client.post("action", {"nonce": n}))
                       for n in (3, 4)]
            await server.until_requests(3)
            server.conns[-1].transport.abort()                    # no close handshake
            for post in waiting:
                with pytest.raises(PostLostError, match="connection ended"):
                    await post
            await client.wait_connected()                         # reconnected, posts again
            post = asyncio.create_task(client.post("action", {"nonce": 5}))
            await server.until_requests(4)
            await server.answer(server.requests[-1][0], {"type": "action",
                                                         "payload": {"status": "ok"}})
            assert await post == {"status": "ok"}
            await client.close()

    run(scenario())


def test_a_post_bound_to_a_connection_is_not_sent_on_the_next_one():
    async def scenario():
        async with PostServer() as server:
            client = await connected_client(server.url)
            first = client.connects
            post = asyncio.create_task(client.post("action", {"nonce": 1}, connection=first))
            await server.until_requests(1)
            server.conns[-1].transport.abort()
            with pytest.raises(PostLostError):
                await post
            await client.wait_connected()
            assert client.connects == first + 1
            with pytest.raises(PostNotSentError, match=f"connection {first} ended"):
                await client.post("action", {"nonce": 2}, connection=first)
            assert len(server.requests) == 1
            await client.close()

    run(scenario())


def test_posts_stop_at_the_message_budget_and_leave_the_reserve_to_other_messages():
    async def scenario():
        now = [0.0]
        async with PostServer() as server:
            client = WebsocketClient(server.url, **QUICK, clock=lambda: now[0],
                                     messages_per_minute=RESERVED_MESSAGES + 3)
            client.start()
            await client.wait_connected()
            for nonce in (1, 2):
                with pytest.raises(PostLostError):
                    await client.post("action", {"nonce": nonce}, timeout=0.01)
            await client.subscribe({"type": "allMids"})          # counts, and always goes
            with pytest.raises(PostNotSentError, match="3 posts were sent in the last minute"):
                await client.post("action", {"nonce": 3})
            now[0] += 60.0                                       # the window moved on
            with pytest.raises(PostLostError):
                await client.post("action", {"nonce": 4}, timeout=0.01)
            assert [request["payload"]["nonce"] for _, request in server.requests] == [1, 2, 4]
            await client.close()
            with pytest.raises(ValueError, match="must exceed the 100 reserved"):
                WebsocketClient(server.url, messages_per_minute=RESERVED_MESSAGES)
            assert WebsocketClient(server.url, messages_per_minute=None).messages is None

    run(scenario())


def test_posts_beyond_the_servers_inflight_limit_are_not_sent():
    async def scenario():
        async with PostServer() as server:
            client = await connected_client(server.url)
            posts = [asyncio.create_task(client.post("info", {"type": "meta"}))
                     for _ in range(MAX_INFLIGHT_POSTS)]
            await server.until_requests(MAX_INFLIGHT_POSTS)
            with pytest.raises(PostNotSentError, match="already await"):
                await client.post("info", {"type": "meta"})
            assert len(server.requests) == MAX_INFLIGHT_POSTS
            for post in posts:
                post.cancel()
            await client.close()

    run(scenario())


def test_a_post_is_info_or_action():
    async def scenario():
        client = WebsocketClient("ws://127.0.0.1:9/ws", **QUICK)
        with pytest.raises(ValueError, match="'info' or 'action'"):
            await client.post("subscribe", {})

    run(scenario())


# ------------------------------------------------------------------ the blocking poster

class RecordingTransport:
    """Stands in for the HTTP transport: records what would have been posted over HTTP."""

    def __init__(self):
        self.posted = []

    def post_exchange(self, body):
        self.posted.append(body)
        return {"status": "ok", "via": "http"}


class LoopThread:
    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def loop_thread():
    made = LoopThread()
    yield made
    made.stop()


def test_the_poster_answers_from_the_socket_or_over_http_when_nothing_was_sent(loop_thread):
    server = loop_thread.call(PostServer().__aenter__())
    client = loop_thread.call(connected_client(server.url))
    http = RecordingTransport()
    poster = WebsocketPoster(client, loop_thread.loop, http, timeout=2.0)
    body = {"action": {"type": "order"}, "nonce": 7}
    steps = []
    post = client.post

    async def recording_post(kind, payload, *, on_written, **options):
        def written():
            steps.append("written")
            on_written()
        return await post(kind, payload, on_written=written, **options)

    client.post = recording_post
    dispatched = poster.dispatch(body)
    steps.append("dispatched")
    assert steps == ["written", "dispatched"]        # on the wire when dispatch returns
    loop_thread.call(server.until_requests(1))
    loop_thread.call(server.answer(server.requests[0][0],
                                   {"type": "action", "payload": {"status": "ok"}}))
    assert poster.answer(dispatched, body) == {"status": "ok"} and http.posted == []

    loop_thread.call(client.close())
    assert poster.dispatch(body) is None                          # down: HTTP instead
    assert poster.answer(None, body) == {"status": "ok", "via": "http"}
    assert http.posted == [body]
    loop_thread.call(server.__aexit__(None, None, None))


def test_a_body_that_follows_others_is_written_only_behind_them(loop_thread):
    """`follows`: on the connection that carried the body before, or not at all, so that a
    body never overtakes one lost with its connection (or sent over HTTP)."""
    server = loop_thread.call(PostServer().__aenter__())
    client = loop_thread.call(connected_client(server.url))
    http = RecordingTransport()
    poster = WebsocketPoster(client, loop_thread.loop, http, timeout=2.0)
    assert poster.dispatch({"nonce": 1}, follows=True) is None    # nothing written before it
    first = poster.dispatch({"nonce": 1})
    second = poster.dispatch({"nonce": 2}, follows=True)          # same connection: written
    loop_thread.call(server.until_requests(2))
    loop_thread.call(server.answer(server.requests[0][0],
                                   {"type": "action", "payload": {"status": "ok"}}))
    assert poster.answer(first, {}) == {"status": "ok"}
    loop_thread.loop.call_soon_threadsafe(server.conns[-1].transport.abort)
    with pytest.raises(ExchangeOutcomeUnknownError):
        poster.answer(second, {})
    loop_thread.call(client.wait_connected())
    assert poster.dispatch({"nonce": 3}, follows=True) is None    # the connection changed
    assert len(server.requests) == 2
    third = poster.dispatch({"nonce": 3})                         # on its own: written
    assert third is not None
    loop_thread.call(server.until_requests(3))
    assert poster.dispatch({"nonce": 4}, follows=True) is not None
    loop_thread.call(server.until_requests(4))
    assert [request["payload"]["nonce"] for _, request in server.requests] == [1, 2, 3, 4]
    loop_thread.call(client.close())
    assert poster.dispatch({"nonce": 5}) is None                  # down: HTTP instead
    assert poster.dispatch({"nonce": 6}, follows=True) is None    # behind HTTP: wait for it
    loop_thread.call(server.__aexit__(None, None, None))


def test_a_post_lost_on_the_socket_is_an_unknown_outcome_never_resent(loop_thread):
    server = loop_thread.call(PostServer().__aenter__())
    client = loop_thread.call(connected_client(server.url))
    http = RecordingTransport()
    poster = WebsocketPoster(client, loop_thread.loop, http, timeout=0.1)
    lost = poster.dispatch({"nonce": 1})
    with pytest.raises(ExchangeOutcomeUnknownError, match="orderStatus by cloid") as unknown:
        poster.answer(lost, {"nonce": 1})
    assert isinstance(unknown.value.__cause__, PostLostError)
    refused = poster.dispatch({"nonce": 2})
    loop_thread.call(server.until_requests(2))
    loop_thread.call(server.answer(server.requests[1][0], {"type": "error",
                                                           "payload": "Internal Server Error"}))
    with pytest.raises(ExchangeOutcomeUnknownError, match="Internal Server Error"):
        poster.answer(refused, {"nonce": 2})
    assert http.posted == []                                      # never sent twice
    loop_thread.call(client.close())
    loop_thread.call(server.__aexit__(None, None, None))
    with pytest.raises(ValueError, match="timeout must be positive"):
        WebsocketPoster(client, loop_thread.loop, http, timeout=0)
