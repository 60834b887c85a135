"""The HTTP transport under faults (obelisk/hyperliquid/transport.py): the timeout bounds a
whole request however slowly the server answers, every exchange failure after the body
may have reached the server is an ExchangeOutcomeUnknownError, and Retry-After values
that are not finite are read explicitly."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from hl_server import HLServer, Reply
from test_hl_transport import SIGNED, FakeTime

from obelisk.hyperliquid.errors import (
    ExchangeOutcomeUnknownError,
    HyperliquidHTTPError,
    HyperliquidTimeoutError,
    MalformedResponseError,
)
from obelisk.hyperliquid.transport import (
    RETRY_AFTER_CAP,
    AsyncTransport,
    Transport,
    TransportConfig,
)

TIMEOUT = 1.0
STEP = 0.2                                  # seconds between two dribbled bytes
ANSWER = b'{"status":"ok","response":{"type":"default"}}'


class Dribbler:
    """A local HTTP server that answers every POST one byte per `step` seconds: only the
    body (`headers_too=False`) or the status line and headers as well."""

    def __init__(self, body: bytes = ANSWER, step: float = STEP, headers_too: bool = False):
        self.body, self.step, self.headers_too = body, step, headers_too
        self.hits = 0
        dribbler = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                dribbler.hits += 1
                head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(dribbler.body)}\r\n\r\n").encode()
                self.close_connection = True
                try:
                    if not dribbler.headers_too:
                        self.wfile.write(head)
                        head = b""
                    for byte in head + dribbler.body:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(dribbler.step)
                except OSError:
                    pass                        # the client gave up: stop dribbling

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                """Keep test output quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,),
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Dribbler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def config(**overrides: object) -> TransportConfig:
    return TransportConfig(**{"timeout": TIMEOUT, "max_retries": 0,  # type: ignore[arg-type]
                              **overrides})


def timed(call):
    """Seconds until `call()` raised, and what it raised."""
    started = time.monotonic()
    try:
        call()
    except Exception as error:
        return time.monotonic() - started, error
    raise AssertionError("the request did not fail")


def assert_deadline(elapsed: float) -> None:
    """Failed at the deadline, not at the end of the dribble (10 s and more)."""
    assert TIMEOUT * 0.9 <= elapsed < 3 * TIMEOUT


# --- total deadline -------------------------------------------------------------------


@pytest.mark.parametrize("headers_too", [False, True], ids=["body", "headers"])
def test_a_dribbled_info_answer_fails_at_the_timeout(headers_too):
    with Dribbler(b'{"universe": []}' * 4, headers_too=headers_too) as server, \
            Transport(server.url, config()) as transport:
        elapsed, error = timed(lambda: transport.post_info({"type": "meta"}))
    assert isinstance(error, HyperliquidTimeoutError), error
    assert_deadline(elapsed)


@pytest.mark.parametrize("headers_too", [False, True], ids=["body", "headers"])
def test_a_dribbled_exchange_answer_fails_at_the_timeout_with_an_unknown_outcome(headers_too):
    with Dribbler(headers_too=headers_too) as server, \
            Transport(server.url, config()) as transport:
        elapsed, error = timed(lambda: transport.post_exchange(SIGNED))
        assert server.hits == 1                 # sent once, never resent
    assert isinstance(error, ExchangeOutcomeUnknownError), error
    assert isinstance(error.__cause__, httpx.ReadTimeout)
    assert_deadline(elapsed)


@pytest.mark.parametrize("path", ["info", "exchange"])
def test_async_dribbled_answers_fail_at_the_timeout(path):
    async def scenario(url: str) -> None:
        async with AsyncTransport(url, config()) as transport:
            if path == "info":
                await transport.post_info({"type": "meta"})
            else:
                await transport.post_exchange(SIGNED)

    with Dribbler() as server:
        elapsed, error = timed(lambda: asyncio.run(scenario(server.url)))
    expected = HyperliquidTimeoutError if path == "info" else ExchangeOutcomeUnknownError
    assert isinstance(error, expected), error
    assert_deadline(elapsed)


def test_a_slow_answer_within_the_timeout_still_arrives():
    with Dribbler(step=0.01) as server, \
            Transport(server.url, config(timeout=5.0)) as transport:
        assert transport.post_exchange(SIGNED) == {"status": "ok",
                                                   "response": {"type": "default"}}

    async def scenario(url: str) -> object:
        async with AsyncTransport(url, config(timeout=5.0)) as transport:
            return await transport.post_exchange(SIGNED)

    with Dribbler(step=0.01) as server:
        assert asyncio.run(scenario(server.url))["status"] == "ok"


def test_a_refused_connection_is_still_resent_and_not_an_unknown_outcome():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]            # nothing listens there any more
    fake = FakeTime()
    with Transport(f"http://127.0.0.1:{port}", config(), clock=fake.clock,
                   sleep=fake.sleep) as transport:
        _, error = timed(lambda: transport.post_exchange(SIGNED))
    assert not isinstance(error, ExchangeOutcomeUnknownError), error
    assert len(fake.sleeps) == 1                # resent once: nothing had been sent


# --- exchange failures after sending ---------------------------------------------------


@pytest.fixture
def server():
    with HLServer() as running:
        yield running


def make(url: str, **overrides: object) -> Transport:
    fake = FakeTime()
    return Transport(url, TransportConfig(**overrides),  # type: ignore[arg-type]
                     clock=fake.clock, sleep=fake.sleep, random=lambda: 1.0)


UNKNOWN_OUTCOMES = {
    "502": (Reply(b"<html>Bad Gateway</html>", status=502), HyperliquidHTTPError),
    "503": (Reply(b"", status=503), HyperliquidHTTPError),
    "html-200": (Reply(b"<html><body>maintenance</body></html>"), MalformedResponseError),
    "truncated-json": (Reply(ANSWER[:20]), MalformedResponseError),
    "empty-200": (Reply(b""), MalformedResponseError),
}


@pytest.mark.parametrize("case", list(UNKNOWN_OUTCOMES))
def test_exchange_failures_after_sending_are_unknown_outcomes(server, case):
    reply, cause = UNKNOWN_OUTCOMES[case]
    server.queue("exchange", reply)
    with make(server.url) as transport, \
            pytest.raises(ExchangeOutcomeUnknownError, match="orderStatus") as caught:
        transport.post_exchange(SIGNED)
    assert isinstance(caught.value.__cause__, cause)
    assert "signature" not in str(caught.value) and "0x1" not in str(caught.value)
    assert [hit.raw for hit in server.hits] == [SIGNED]         # never resent


@pytest.mark.parametrize("case", list(UNKNOWN_OUTCOMES))
def test_async_exchange_failures_after_sending_are_unknown_outcomes(server, case):
    reply, cause = UNKNOWN_OUTCOMES[case]
    server.queue("exchange", reply)

    async def scenario() -> None:
        fake = FakeTime()
        async with AsyncTransport(server.url, TransportConfig(), clock=fake.clock,
                                  sleep=fake.sleep_async) as transport:
            await transport.post_exchange(SIGNED)

    with pytest.raises(ExchangeOutcomeUnknownError) as caught:
        asyncio.run(scenario())
    assert isinstance(caught.value.__cause__, cause)
    assert len(server.hits) == 1


def test_a_body_cut_short_is_an_unknown_outcome():
    class Cut(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + ANSWER[:10])
            self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            """Quiet."""

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Cut)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        with make(f"http://127.0.0.1:{httpd.server_address[1]}") as transport, \
                pytest.raises(ExchangeOutcomeUnknownError) as caught:
            transport.post_exchange(SIGNED)
        assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_exchange_4xx_is_a_refusal_not_an_unknown_outcome(server):
    server.queue("exchange", Reply({"error": "bad"}, status=422))
    with make(server.url) as transport, pytest.raises(HyperliquidHTTPError) as caught:
        transport.post_exchange(SIGNED)
    assert not isinstance(caught.value, ExchangeOutcomeUnknownError)
    assert caught.value.status == 422


def test_info_errors_keep_their_types(server):
    server.queue("meta", Reply(b"<html>oops</html>"))
    server.queue("allMids", Reply(b"x", status=502))
    with make(server.url, max_retries=0) as transport:
        with pytest.raises(MalformedResponseError) as malformed:
            transport.post_info({"type": "meta"})
        with pytest.raises(HyperliquidHTTPError) as http_error:
            transport.post_info({"type": "allMids"})
    assert not isinstance(malformed.value, ExchangeOutcomeUnknownError)
    assert not isinstance(http_error.value, ExchangeOutcomeUnknownError)
    assert http_error.value.status == 502


# --- Retry-After ----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["inf", "Infinity", "nan", "NaN", "1e400"])
def test_a_retry_after_that_names_no_finite_wait_is_the_cap_and_not_retried(server, value):
    server.queue("allMids", Reply(b"slow down", status=429, headers={"Retry-After": value}))
    fake = FakeTime()
    with Transport(server.url, TransportConfig(), clock=fake.clock, sleep=fake.sleep,
                   random=lambda: 1.0) as transport, \
            pytest.raises(HyperliquidHTTPError) as caught:
        transport.post_info({"type": "allMids"})
    assert caught.value.status == 429 and caught.value.retry_after == RETRY_AFTER_CAP
    assert len(server.hits) == 1 and fake.sleeps == []


def test_a_retry_after_cap_above_max_retry_after_is_waited_for(server):
    server.queue("allMids", Reply(b"slow down", status=429, headers={"Retry-After": "inf"}))
    fake = FakeTime()
    with Transport(server.url, TransportConfig(max_retry_after=RETRY_AFTER_CAP),
                   clock=fake.clock, sleep=fake.sleep, random=lambda: 1.0) as transport:
        transport.post_info({"type": "allMids"})
    assert fake.sleeps == [RETRY_AFTER_CAP]     # a finite wait, never an endless one


@pytest.mark.parametrize("value", ["-5", "-inf", "Thu, 01 Jan 1970 00:00:00 GMT"])
def test_a_negative_or_past_retry_after_means_now(server, value):
    server.queue("allMids", Reply(b"slow down", status=429, headers={"Retry-After": value}))
    fake = FakeTime()
    with Transport(server.url, TransportConfig(), clock=fake.clock, sleep=fake.sleep,
                   random=lambda: 1.0) as transport:
        transport.post_info({"type": "allMids"})
    assert fake.sleeps == [0.25]                # the ordinary backoff, not a Retry-After wait


def test_retry_after_on_an_error_is_kept_in_bounds(server):
    server.queue("allMids", Reply(b"slow down", status=429, headers={"Retry-After": "99999"}),
                 Reply(b"slow down", status=429, headers={"Retry-After": "soon"}))
    with make(server.url, max_retries=0) as transport:
        with pytest.raises(HyperliquidHTTPError) as long_wait:
            transport.post_info({"type": "allMids"})
        with pytest.raises(HyperliquidHTTPError) as garbled:
            transport.post_info({"type": "allMids"})
    assert long_wait.value.retry_after == RETRY_AFTER_CAP
    assert garbled.value.retry_after is None    # not a number nor a date: not sent
