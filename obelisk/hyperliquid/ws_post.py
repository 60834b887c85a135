"""Signed exchange actions posted over a websocket that runs on another thread's loop.

HTTP requests sent without waiting for each other's answers may reach the exchange
in any order; ``post`` requests on one websocket arrive in the order they were
written. So a sender can keep several actions on their way and still have them run
in its order, without the idle round trip between two actions that one HTTP request
at a time costs. :class:`HyperliquidBatchVenue` does this with
``post_via="websocket"``.

Hyperliquid limits websocket traffic apart from the HTTP weight budget: at most 100 posts
awaiting answers and 2,000 messages a minute, over all of an IP's connections. The
client meters both (``MAX_INFLIGHT_POSTS``, ``messages_per_minute``): a post beyond
them is not written, and goes over HTTP, which the transport's weight budget meters.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from typing import Any

import orjson

from obelisk.hyperliquid.errors import ExchangeOutcomeUnknownError
from obelisk.hyperliquid.transport import Transport
from obelisk.hyperliquid.ws import (
    PostLostError,
    PostNotSentError,
    PostRefusedError,
    WebsocketClient,
)

__all__ = ["WebsocketPoster"]


class WebsocketPoster:
    """Posts exchange bodies on `websocket` (running on `loop`, in another thread), and
    over `transport` when the socket is down.

    `dispatch` writes a body now, in call order, from any one thread; `answer` waits for
    its answer from any thread. A post whose answer is lost (the connection ended, no
    answer within `timeout` seconds, an ``error`` answer) raises
    :class:`ExchangeOutcomeUnknownError`, as an HTTP post would: the action may have run.
    """

    def __init__(self, websocket: WebsocketClient, loop: asyncio.AbstractEventLoop,
                 transport: Transport, *, timeout: float = 10.0) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.websocket = websocket
        self.loop = loop
        self.transport = transport
        self.timeout = timeout
        self._written_on: int | None = None     # the connection of the last body written

    def dispatch(self, body: dict[str, Any], *, follows: bool = False) -> Future[Any] | None:
        """Write `body` as an action post (after every body dispatched before it) and return
        once it is written: the future of its answer. None when it was not written (then
        ``answer`` posts it over HTTP).

        `follows`: bodies dispatched before still await their answers, and this one must
        run after them. It is then written only on the connection that carried the last
        of them, which delivers in order; if that connection ended (their answers may be
        lost and those bodies sent again) or the last went over HTTP, nothing is written
        and the caller waits for their answers before it dispatches this one again.

        Waiting for the write hands the interpreter to the socket's thread now: otherwise
        the write waits until this thread lets go of it (up to the 5 ms switch interval
        while it signs the next action), and the exchange idles meanwhile.
        """
        connection = self._written_on if follows else None
        self._written_on = None
        if follows and connection is None or not self.websocket.connected:
            return None
        written = threading.Event()

        def on_written() -> None:           # on the loop: the connection is the one written
            self._written_on = self.websocket.connects
            written.set()

        dispatched = asyncio.run_coroutine_threadsafe(
            self.websocket.post("action", orjson.dumps(body), timeout=self.timeout,
                                on_written=on_written, connection=connection), self.loop)
        dispatched.add_done_callback(lambda _: written.set())
        written.wait(self.timeout)
        if dispatched.done() and isinstance(dispatched.exception(), PostNotSentError):
            return None
        return dispatched

    def answer(self, dispatched: Future[Any] | None, body: dict[str, Any]) -> Any:
        """The JSON answer to `body`, dispatched as `dispatched`: from the socket, or from
        an HTTP post of the same bytes when the socket did not write it."""
        if dispatched is None:
            return self.transport.post_exchange(body)
        try:
            return dispatched.result()
        except (PostNotSentError, PostLostError, PostRefusedError) as error:
            raise ExchangeOutcomeUnknownError(
                f"exchange request over the websocket failed and may have reached the server "
                f"({error}); check orderStatus by cloid before sending again") from error
