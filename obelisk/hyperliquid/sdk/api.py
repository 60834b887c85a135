"""The SDK's ``API``: ``post(url_path, payload)`` over obelisk's transport.

``/info`` requests go through :meth:`Transport.post_info` (coalesced, cached, retried on
5xx, 429 and timeouts, rate-budgeted, behind the circuit breaker) and ``/exchange``
requests through :meth:`Transport.post_exchange`, as the very bytes ``requests`` would
send for the SDK (``json.dumps`` of the payload). Failures become the SDK's errors:

* a 4xx with a JSON body ``{"code", "msg", "data"}`` ->
  ``ClientError(status, code, msg, headers, data)``;
* any other 4xx -> ``ClientError(status, None, text, None, headers)``;
* a 5xx -> ``ServerError(status, text)`` (on ``/exchange`` the action may have run:
  obelisk's native client says so with ``ExchangeOutcomeUnknownError``);
* a 200 that is not JSON -> the SDK's ``{"error": "Could not parse JSON: <text>"}``
  (when its content type is not JSON; a cut JSON answer gives the first 200 characters);
* no connection or no answer in time -> ``requests.exceptions.ConnectionError`` or
  ``Timeout`` when ``requests`` is installed (what the SDK raises), obelisk's
  ``HyperliquidConnectionError`` / ``HyperliquidTimeoutError`` otherwise;
* the circuit breaker refusing a call -> ``ServerError(503, ...)`` caused by the
  :class:`~obelisk.breaker.CircuitOpenError`.

Answers are fresh objects: mutating one never changes what the cache hands out next.
After every exchange action each live ``API`` on the same server forgets its cached
answers, so an ``Info`` reads the state the action left.
"""

from __future__ import annotations

import functools
import json
import logging
import ssl
import weakref
from collections.abc import Mapping
from typing import Any

import httpcore
import httpx
import orjson

from obelisk.breaker import CircuitOpenError
from obelisk.hyperliquid.errors import (
    ExchangeOutcomeUnknownError,
    HyperliquidConnectionError,
    HyperliquidHTTPError,
    HyperliquidTimeoutError,
    MalformedResponseError,
)
from obelisk.hyperliquid.sdk.utils.constants import MAINNET_API_URL
from obelisk.hyperliquid.sdk.utils.error import ClientError, ServerError
from obelisk.hyperliquid.transport import (
    Transport,
    TransportConfig,
    _DeadlineBackend,
)

__all__ = ["API"]

# Every live API, so that an exchange action can drop what any of them cached.
_LIVE: weakref.WeakSet[API] = weakref.WeakSet()


class _HTTPError(HyperliquidHTTPError):
    """A status >= 400 with the whole body and the headers (obelisk keeps an excerpt)."""

    def __init__(self, status: int, text: str, headers: httpx.Headers,
                 retry_after: float | None) -> None:
        super().__init__(status, text, retry_after=retry_after)
        self.text = text
        self.headers = headers


class _Answered(MalformedResponseError):
    """A success obelisk would not decode: a status below 400 other than 200, or a 200
    that is not JSON. The SDK returns its JSON, or ``{"error": ...}``."""

    def __init__(self, text: str) -> None:
        super().__init__("the answer is not a 200 with a JSON body")
        self.text = text

    def sdk_answer(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError:
            return {"error": f"Could not parse JSON: {self.text}"}


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return min(max(float(value), 0.0), 3600.0)
    except ValueError:
        return None


def _check(response: httpx.Response) -> None:
    """httpx response hook: keep the whole body of what the SDK would not parse as JSON."""
    status = response.status_code
    if status >= 400:
        response.read()
        raise _HTTPError(status, response.text, response.headers,
                         _retry_after(response.headers))
    if status != 200 or "json" not in response.headers.get("content-type", "json"):
        response.read()
        if status != 200:
            raise _Answered(response.text)
        try:
            orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise _Answered(response.text) from None


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One TLS context (CA bundle loaded once) for every API's connection pool."""
    return httpx.create_ssl_context()


class _ReplayableTransport(httpx.HTTPTransport):
    """httpx's own transport class over obelisk's deadline-honouring connection pool.

    Being an ``httpx.HTTPTransport``, it is what recorders such as vcrpy patch, so
    cassettes recorded from the SDK replay through obelisk's transport unchanged.
    ``HTTPTransport.__init__`` is not run: all it would add is a second pool.
    """

    def __init__(self, limits: httpx.Limits) -> None:
        self._pool = httpcore.ConnectionPool(
            network_backend=_DeadlineBackend(), ssl_context=_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry)


def _fresh(answer: Any) -> Any:
    """A private copy of a JSON answer (the transport shares the cached one)."""
    if isinstance(answer, dict | list):
        return orjson.loads(orjson.dumps(answer))
    return answer


def _sdk_error(error: Exception) -> BaseException:
    """The SDK's exception for an obelisk transport failure (`error` if it has none)."""
    cause = error.__cause__ if isinstance(error, ExchangeOutcomeUnknownError) else None
    if isinstance(cause, HyperliquidHTTPError | MalformedResponseError):
        error = cause
    if isinstance(error, _HTTPError):
        if error.status >= 500:
            return ServerError(error.status, error.text)
        try:
            body = json.loads(error.text)
        except json.JSONDecodeError:
            return ClientError(error.status, None, error.text, None, error.headers)
        if body is None:
            return ClientError(error.status, None, error.text, None, error.headers)
        return ClientError(error.status, body["code"], body["msg"], error.headers,
                           body.get("data"))
    if isinstance(error, CircuitOpenError):
        return ServerError(503, str(error))
    if isinstance(error, HyperliquidTimeoutError | HyperliquidConnectionError):
        try:
            from requests import exceptions
        except ImportError:
            return error
        if isinstance(error, HyperliquidTimeoutError) or isinstance(cause, httpx.TimeoutException):
            return exceptions.Timeout(str(error))
        return exceptions.ConnectionError(str(error))
    return error


class API:
    """POST JSON to a Hyperliquid server, with the SDK's errors.

    Parameters
    ----------
    base_url : str, optional
        The server; the SDK's ``MAINNET_API_URL`` by default.
    timeout : float, optional
        Seconds one attempt may take in all (connect, send, the whole answer); the
        SDK's None means obelisk's default of 10 s rather than waiting forever.

    Attributes
    ----------
    transport : obelisk.hyperliquid.transport.Transport
        The obelisk transport underneath, for its stats, cache and budget.
    """

    def __init__(self, base_url: str | None = None, timeout: float | None = None) -> None:
        self.base_url = base_url or MAINNET_API_URL
        self.timeout = timeout
        self._logger = logging.getLogger(__name__)
        config = TransportConfig() if timeout is None else TransportConfig(timeout=timeout)
        limits = httpx.Limits(max_connections=config.max_connections,
                              max_keepalive_connections=config.max_connections)
        self._client = httpx.Client(timeout=httpx.Timeout(config.timeout), limits=limits,
                                    headers={"Content-Type": "application/json"},
                                    transport=_ReplayableTransport(limits),
                                    event_hooks={"response": [_check]})
        self.transport = Transport(self.base_url, config, client=self._client)
        _LIVE.add(self)

    def post(self, url_path: str, payload: Any = None) -> Any:
        """The JSON answer to `payload` posted to ``base_url + url_path``."""
        payload = payload or {}
        try:
            if url_path == "/info" and isinstance(payload, Mapping) \
                    and isinstance(payload.get("type"), str):
                return _fresh(self.transport.post_info(payload))
            body = json.dumps(payload, allow_nan=False).encode()
            if url_path == "/exchange":
                try:
                    return self.transport.post_exchange(body)
                finally:
                    self._forget_after_action()
            return self._post_other(url_path, body)
        except _Answered as answered:
            return answered.sdk_answer()
        except MalformedResponseError as error:     # a JSON content type, a body that is not
            return {"error": f"Could not parse JSON: {error}"}
        except ExchangeOutcomeUnknownError as error:
            cause = error.__cause__
            if isinstance(cause, _Answered):
                return cause.sdk_answer()
            if isinstance(cause, MalformedResponseError):
                return {"error": f"Could not parse JSON: {cause}"}
            raise _sdk_error(error) from error
        except (HyperliquidHTTPError, HyperliquidConnectionError, CircuitOpenError) as error:
            raise _sdk_error(error) from error

    def _post_other(self, url_path: str, body: bytes) -> Any:
        """A path obelisk's transport does not know: one plain POST, no retries."""
        try:
            response = self._client.post(self.base_url + url_path, content=body)
        except httpx.TimeoutException as error:
            raise HyperliquidTimeoutError(f"{url_path} timed out") from error
        except httpx.HTTPError as error:
            raise HyperliquidConnectionError(f"{url_path} failed") from error
        try:
            return response.json()
        except ValueError:
            return {"error": f"Could not parse JSON: {response.text}"}

    def _acting_users(self) -> tuple[str, ...]:
        """The accounts an exchange action posted by this API may change."""
        return ()

    def _forget_after_action(self) -> None:
        """Drop cached answers on every API for this server: the action changed state.

        Requests about the acting accounts still in flight are not cached either.
        """
        users = self._acting_users()
        for api in list(_LIVE):
            if api.base_url == self.base_url:
                for user in users:
                    api.transport.invalidate_user(user)
                api.transport.clear_cache()
