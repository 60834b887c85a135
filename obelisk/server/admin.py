"""The operator's door: deposits, the simulated clock and a health check, on loopback only.

It is a separate application on its own listener, so no request to the public
port, signed or not, can reach these routes; it also refuses any peer that is
not a loopback address, in case it is ever bound elsewhere by mistake.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

if TYPE_CHECKING:
    from obelisk.server.exchange import LocalExchange

log = logging.getLogger(__name__)

MAX_ADMIN_BODY = 64 * 1024
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


class _BadRequest(Exception):
    """The admin request is malformed; answered 400 with this text."""


def _json(status: int, data: Any) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


def _is_loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


@web.middleware
async def _guard(request: web.Request,
                 handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                 ) -> web.StreamResponse:
    """Loopback peers only; malformed requests get 400 and anything unexpected 500."""
    if not _is_loopback(request.remote):
        return _json(403, {"status": "err", "response": "admin is loopback only"})
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except _BadRequest as error:
        return _json(400, {"status": "err", "response": str(error)})
    except Exception:
        log.exception("admin %s failed", request.path)
        return _json(500, {"status": "err", "response": "internal error"})


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.read())
    except (orjson.JSONDecodeError, web.HTTPRequestEntityTooLarge) as error:
        raise _BadRequest("body must be a JSON object") from error
    if not isinstance(body, dict):
        raise _BadRequest("body must be a JSON object")
    return body


def create_admin_app(exchange: LocalExchange) -> web.Application:
    """``POST /deposit {"user", "usdc"}``, ``POST /advance {"ms"}``, ``POST /oracle
    {"coin", "px"}``, ``GET /health``."""

    async def deposit(request: web.Request) -> web.Response:
        body = await _body(request)
        user, usdc = body.get("user"), body.get("usdc")
        if not (isinstance(user, str) and _ADDRESS.fullmatch(user)):
            raise _BadRequest("user must be a 0x-prefixed 40-hex-digit address")
        if isinstance(usdc, bool) or not isinstance(usdc, (int, float)) \
                or not math.isfinite(usdc) or usdc <= 0:
            raise _BadRequest("usdc must be a positive number")
        try:
            exchange.deposit(user, float(usdc))
        except ValueError as error:
            raise _BadRequest(str(error)) from error
        return _json(200, {"status": "ok"})

    async def advance(request: web.Request) -> web.Response:
        body = await _body(request)
        ms = body.get("ms")
        if type(ms) is not int or ms < 0:
            raise _BadRequest("ms must be a non-negative integer")
        clock = exchange.clock
        if not getattr(clock, "simulated", False):
            return _json(409, {"status": "err", "response": "the clock is real; start with "
                                                            "--clock sim to advance it"})
        clock.advance(ms)            # type: ignore[attr-defined]  # SimClock only
        exchange.step()
        return _json(200, {"status": "ok", "time": clock.now_ms()})

    async def oracle(request: web.Request) -> web.Response:
        """Move a coin's oracle (stops, take profits and liquidations to test)."""
        body = await _body(request)
        coin, px = body.get("coin"), body.get("px")
        if not isinstance(coin, str):
            raise _BadRequest("coin must be a listed coin's name")
        if isinstance(px, bool) or not isinstance(px, (int, float)) or not math.isfinite(px):
            raise _BadRequest("px must be a positive number")
        try:
            exchange.set_oracle(coin, float(px))
        except ValueError as error:
            raise _BadRequest(str(error)) from error
        exchange.step()
        return _json(200, {"status": "ok", "px": exchange.oracle.prices[coin]})

    async def health(request: web.Request) -> web.Response:
        clock = exchange.clock
        return _json(200, {"status": "ok", "time": clock.now_ms(),
                           "clock": "sim" if getattr(clock, "simulated", False) else "real",
                           "coins": list(exchange.coins)})

    app = web.Application(client_max_size=MAX_ADMIN_BODY, middlewares=[_guard])
    app.router.add_post("/deposit", deposit)
    app.router.add_post("/advance", advance)
    app.router.add_post("/oracle", oracle)
    app.router.add_get("/health", health)
    return app
