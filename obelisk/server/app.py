"""The public HTTP face of the local exchange: ``POST /info``, ``POST /exchange`` and ``GET /ws``.

Everything runs on one event loop thread, and the exchange is only ever called
from it, so the exchange needs no locks. Each request is charged against a per-IP
weight budget (Hyperliquid's 1200 per minute), bodies are bounded, and every
failure is turned into an answer: no request can take the server down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from obelisk.server.exchange import LocalExchange, Undecodable
from obelisk.server.feeds import Hub

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20
IP_WEIGHT_PER_MINUTE = 1200
STEP_INTERVAL_S = 0.1
WS_IDLE_TIMEOUT_S = 60.0

UNDECODABLE_TEXT = Undecodable.TEXT
# The text axum (Hyperliquid's HTTP framework) answers for a body over its limit.
TOO_LARGE_TEXT = "Failed to buffer the request body: length limit exceeded"
# No public record of the exchange's 429 body exists; plain text keeps the official
# SDK raising ClientError(429, None, text) instead of failing on a missing "code".
RATE_LIMITED_TEXT = "Too Many Requests"

_INFO_WEIGHT_DEFAULT = 20          # hl.md §8: "everything else 20"; charged when no answer exists
_ACTION_WEIGHT_DEFAULT = 1

_HUB_KEY = web.AppKey("hub", Hub)
_STEPPER_KEY = web.AppKey("stepper", asyncio.Task)


@dataclass(frozen=True)
class Reply:
    """One answer to an info or action request, whatever carries it (HTTP or a ws ``post``).

    `payload` is the JSON value for 200 and 500, the plain-text message otherwise.
    """

    status: int
    payload: Any


class WeightBudget:
    """Per-IP token buckets of request weight that refill continuously.

    A request is admitted while its IP has budget left and is charged once
    answered, because an info request's weight can depend on the size of its
    answer; a client can so overdraw by one request and then waits longer.
    """

    _PRUNE_AT = 10_000

    def __init__(self, per_minute: int = IP_WEIGHT_PER_MINUTE,
                 now: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 1:
            raise ValueError(f"per_minute must be at least 1, got {per_minute}")
        self._capacity = float(per_minute)
        self._refill_per_s = per_minute / 60.0
        self._now = now
        self._buckets: dict[str, tuple[float, float]] = {}   # ip -> (tokens, at)

    def remaining(self, ip: str) -> float:
        tokens, at = self._buckets.get(ip, (self._capacity, 0.0))
        return min(self._capacity, tokens + (self._now() - at) * self._refill_per_s)

    def admits(self, ip: str) -> bool:
        return self.remaining(ip) >= 1.0

    def charge(self, ip: str, weight: int) -> None:
        if len(self._buckets) >= self._PRUNE_AT:
            self._forget_full_buckets()
        self._buckets[ip] = (self.remaining(ip) - weight, self._now())

    def seconds_until_admitted(self, ip: str) -> int:
        return max(1, math.ceil((1.0 - self.remaining(ip)) / self._refill_per_s))

    def _forget_full_buckets(self) -> None:
        full = [ip for ip in self._buckets if self.remaining(ip) >= self._capacity]
        for ip in full:
            del self._buckets[ip]


class Gateway:
    """Answers info and action bodies under the weight budget, for HTTP and ws ``post`` alike."""

    def __init__(self, exchange: LocalExchange, budget: WeightBudget) -> None:
        self._exchange = exchange
        self.budget = budget

    def info(self, request: Any, ip: str) -> Reply:
        return self._answer(request, ip, self._exchange.info, self._exchange.info_weight,
                            _INFO_WEIGHT_DEFAULT)

    def act(self, body: Any, ip: str) -> Reply:
        return self._answer(body, ip, self._exchange.act,
                            lambda body, _answer: self._exchange.action_weight(body),
                            _ACTION_WEIGHT_DEFAULT)

    def refuse(self, ip: str) -> Reply:
        """The answer to a request of no known kind (a ws ``post`` of neither info nor action)."""
        self.budget.charge(ip, _INFO_WEIGHT_DEFAULT)
        return Reply(422, UNDECODABLE_TEXT)

    def _answer(self, body: Any, ip: str, call: Callable[[dict], Any],
                weigh: Callable[[dict, Any], int], default_weight: int) -> Reply:
        if not self.budget.admits(ip):
            return Reply(429, RATE_LIMITED_TEXT)
        if not isinstance(body, dict):
            self.budget.charge(ip, default_weight)
            return Reply(422, UNDECODABLE_TEXT)
        try:
            answer = call(body)
        except Undecodable:
            self.budget.charge(ip, default_weight)
            return Reply(422, UNDECODABLE_TEXT)
        except Exception:
            log.exception("request failed inside the exchange: %.200r", body)
            self.budget.charge(ip, default_weight)
            return Reply(500, None)
        try:
            weight = weigh(body, answer)
        except Exception:
            log.exception("could not weigh request: %.200r", body)
            weight = default_weight
        self.budget.charge(ip, weight)
        return Reply(200, answer)


def to_response(reply: Reply) -> web.Response:
    """An HTTP response as the exchange sends it: JSON for 200/500, plain text otherwise."""
    if reply.status in (200, 500):
        return web.Response(status=reply.status, body=orjson.dumps(reply.payload),
                            content_type="application/json")
    return web.Response(status=reply.status, text=reply.payload, content_type="text/plain")


class _Endpoints:
    """The HTTP handlers; they parse and bound the body, then hand it to the gateway."""

    def __init__(self, gateway: Gateway, max_body: int) -> None:
        self._gateway = gateway
        self._max_body = max_body

    async def info(self, request: web.Request) -> web.Response:
        return await self._serve(request, self._gateway.info, _INFO_WEIGHT_DEFAULT)

    async def exchange(self, request: web.Request) -> web.Response:
        return await self._serve(request, self._gateway.act, _ACTION_WEIGHT_DEFAULT)

    async def _serve(self, request: web.Request, answer: Callable[[Any, str], Reply],
                     default_weight: int) -> web.Response:
        ip = request.remote or "unknown"
        budget = self._gateway.budget
        if not budget.admits(ip):                 # before reading a body we would refuse
            response = to_response(Reply(429, RATE_LIMITED_TEXT))
            response.headers["Retry-After"] = str(budget.seconds_until_admitted(ip))
            return response
        length = request.content_length
        if length is not None and length > self._max_body:
            budget.charge(ip, default_weight)
            return to_response(Reply(413, TOO_LARGE_TEXT))
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            budget.charge(ip, default_weight)
            return to_response(Reply(413, TOO_LARGE_TEXT))
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None                     # the gateway answers 422 for anything not an object
        return to_response(answer(body, ip))


@web.middleware
async def _never_crash(request: web.Request,
                       handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                       ) -> web.StreamResponse:
    """Turn any unexpected exception into a 500, as the exchange answers one (JSON ``null``)."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error answering %s %s", request.method, request.path)
        return to_response(Reply(500, None))


async def _step_periodically(exchange: LocalExchange) -> None:
    """Run the market (oracle, makers, triggers, funding, liquidations) on the wall clock."""
    while True:
        await asyncio.sleep(STEP_INTERVAL_S)
        try:
            exchange.step()
        except Exception:
            log.exception("exchange step failed")


def create_app(exchange: LocalExchange, *, max_body: int = MAX_BODY_BYTES,
               ip_weight_per_minute: int = IP_WEIGHT_PER_MINUTE,
               ws_idle_timeout: float = WS_IDLE_TIMEOUT_S) -> web.Application:
    """The public application; a simulated clock is stepped by the admin app instead.

    Parameters
    ----------
    exchange
        The state machine every request is answered from.
    max_body
        Largest accepted request body in bytes (larger ones get 413).
    ip_weight_per_minute
        Request weight each client IP may spend per minute (hl.md §8), shared by
        HTTP requests and websocket ``post`` requests.
    ws_idle_timeout
        Seconds a websocket may stay silent before it is closed.
    """
    gateway = Gateway(exchange, WeightBudget(ip_weight_per_minute))
    hub = Hub(exchange, gateway, idle_timeout=ws_idle_timeout, max_frame=max_body)
    endpoints = _Endpoints(gateway, max_body)
    app = web.Application(client_max_size=max_body, middlewares=[_never_crash])
    app[_HUB_KEY] = hub
    for prefix in ("", "/"):       # the SDK posts to "//info" when its base URL ends in "/"
        app.router.add_post(prefix + "/info", endpoints.info)
        app.router.add_post(prefix + "/exchange", endpoints.exchange)
        app.router.add_get(prefix + "/ws", hub.handle)

    async def start_stepping(app: web.Application) -> None:
        if not getattr(exchange.clock, "simulated", False):
            app[_STEPPER_KEY] = asyncio.get_running_loop().create_task(
                _step_periodically(exchange))

    async def close_sockets(app: web.Application) -> None:
        await hub.close_all()

    async def stop_stepping(app: web.Application) -> None:
        stepper = app.get(_STEPPER_KEY)
        if stepper is not None:
            stepper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stepper

    app.on_startup.append(start_stepping)
    app.on_shutdown.append(close_sockets)
    app.on_cleanup.append(stop_stepping)
    return app
