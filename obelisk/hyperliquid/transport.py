"""HTTP transport to Hyperliquid's ``/info`` and ``/exchange`` endpoints, sync and asyncio.

Both transports pool connections through one httpx client and share the same rules:

* identical info requests in flight at once reach the server once (coalescing);
* info answers are cached for a time that depends on the request type, and
  :meth:`Transport.invalidate_user` drops what is cached about one account;
* every request is charged its documented weight against a per-IP budget
  (1200 per minute), which waits or raises :class:`RateBudgetExceeded`;
* ``timeout`` bounds each attempt as a whole, from connecting to the last byte of
  the answer, however slowly the server trickles it;
* info requests are retried with jittered exponential backoff on timeouts, 5xx
  and 429 (honouring Retry-After); exchange requests are sent as the exact bytes
  given and resent only when the connection failed before anything was sent. Any
  other failure of an exchange request (a timeout after sending, a dropped or cut
  answer, a 5xx, a 200 that is not JSON) is an :class:`ExchangeOutcomeUnknownError`:
  the action may have been executed;
* every network attempt runs inside a circuit breaker that opens on 5xx and timeouts.

Cached answers are shared between callers: treat the returned JSON as read-only
(:mod:`obelisk.hyperliquid.info` turns it into frozen dataclasses).
"""

from __future__ import annotations

import asyncio
import email.utils
import enum
import math
import random as _random
import ssl
import threading
import time
from collections import OrderedDict, deque
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
)
from concurrent.futures import Future
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

import httpcore
import httpx
import orjson

from obelisk.breaker import BreakerConfig, CircuitBreaker
from obelisk.breaker.backoff import backoff_delay
from obelisk.hyperliquid.errors import (
    ExchangeOutcomeUnknownError,
    HyperliquidConnectionError,
    HyperliquidError,
    HyperliquidHTTPError,
    HyperliquidTimeoutError,
    MalformedResponseError,
    RateBudgetExceeded,
    excerpt,
)
from obelisk.hyperliquid.weights import exchange_weight, info_extra_weight, info_weight

MAINNET_URL = "https://api.hyperliquid.xyz"
TESTNET_URL = "https://api.hyperliquid-testnet.xyz"
RETRY_AFTER_CAP = 3600.0
"""The longest Retry-After read from a response, in seconds. ``inf`` and ``nan`` read as
this cap (wait longer than any retry would), a negative value as 0."""

T = TypeVar("T")


DEFAULT_TTLS: Mapping[str, float] = MappingProxyType({
    # market data moves every block: cache just long enough to absorb bursts
    "allMids": 0.5, "l2Book": 0.5, "bbo": 0.5, "metaAndAssetCtxs": 1.0,
    "spotMetaAndAssetCtxs": 1.0, "predictedFundings": 5.0, "perpsAtOpenInterestCap": 5.0,
    # listings change rarely
    "meta": 300.0, "spotMeta": 300.0, "perpDexs": 300.0,
    # account state: short, and dropped by invalidate_user after every action
    "clearinghouseState": 1.0, "spotClearinghouseState": 1.0, "openOrders": 1.0,
    "frontendOpenOrders": 1.0, "orderStatus": 1.0, "activeAssetData": 1.0,
    "userRateLimit": 5.0, "userFees": 60.0, "userRole": 300.0, "maxBuilderFee": 60.0,
})
"""Seconds an answer stays cached, per info type; unlisted types are not cached."""


class BudgetPolicy(enum.Enum):
    """What a request does when the rate budget has no room for it."""

    WAIT = "wait"
    RAISE = "raise"


@dataclass(frozen=True)
class TransportConfig:
    """Timeouts, retries, caching and rate-budget settings of a transport.

    Durations are in seconds. `timeout` is the most one attempt may take in all:
    waiting for a pooled connection, connecting, sending and reading the whole
    answer (a retry is a new attempt with a new `timeout`). `max_retries` counts
    retries after the first attempt of an info request; `exchange_resends` how often
    an exchange body may be resent after a connection error that happened before
    anything was sent. A Retry-After above `max_retry_after` is not waited for: the
    error is raised (Retry-After is read as at most :data:`RETRY_AFTER_CAP`, so
    ``inf`` and ``nan`` are always above it).
    """

    timeout: float = 10.0
    max_retries: int = 3
    backoff_base: float = 0.25
    backoff_max: float = 8.0
    max_retry_after: float = 60.0
    exchange_resends: int = 1
    ttls: Mapping[str, float] = field(default_factory=lambda: DEFAULT_TTLS)
    max_cache_entries: int = 1024
    rate_limit: int = 1200
    rate_window: float = 60.0
    budget_policy: BudgetPolicy = BudgetPolicy.WAIT
    max_budget_wait: float = 60.0
    max_connections: int = 20

    def __post_init__(self) -> None:
        for name in ("timeout", "backoff_base", "backoff_max", "rate_window"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        for name in ("max_retry_after", "max_budget_wait"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value >= 0):
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        for name in ("max_retries", "exchange_resends"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 0):
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        for name in ("max_cache_entries", "rate_limit", "max_connections"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not isinstance(self.budget_policy, BudgetPolicy):
            raise ValueError(f"budget_policy must be a BudgetPolicy, got {self.budget_policy!r}")
        if any(not (isinstance(v, int | float) and v >= 0) for v in self.ttls.values()):
            raise ValueError("every ttl must be a number of seconds >= 0")


@dataclass(frozen=True, slots=True)
class TransportStats:
    """Counters since the transport was made.

    `hits` were answered from the cache, `misses` went to the network, `coalesced`
    joined an identical request already in flight, `evictions` are cache entries
    dropped (expired, over capacity or invalidated), `retries` are extra attempts.
    """

    hits: int = 0
    misses: int = 0
    coalesced: int = 0
    evictions: int = 0
    retries: int = 0
    budget_waits: int = 0


# --- weights --------------------------------------------------------------------------


class RateBudget:
    """A sliding-window budget of request weight, shared by threads and tasks.

    :meth:`try_take` takes `weight` when the last `window` seconds leave room for it
    and otherwise says how long until they will; :meth:`charge` always takes (for
    weight that is only known once an answer arrives).
    """

    def __init__(self, capacity: int, window: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._spent: deque[tuple[float, int]] = deque()
        self._total = 0

    def used(self) -> int:
        """Weight spent in the current window."""
        with self._lock:
            self._expire(self._clock())
            return self._total

    def try_take(self, weight: int) -> float:
        """0.0 after taking `weight`, else seconds until it fits (``inf`` if it never will)."""
        if weight > self.capacity:
            return math.inf
        with self._lock:
            now = self._clock()
            self._expire(now)
            if self._total + weight <= self.capacity:
                self._add(now, weight)
                return 0.0
            excess = self._total + weight - self.capacity
            for spent_at, spent in self._spent:
                excess -= spent
                if excess <= 0:
                    return max(spent_at + self.window - now, 0.0) or 1e-6
            return math.inf  # unreachable while every entry's weight counts in _total

    def charge(self, weight: int) -> None:
        """Take `weight` whether or not it fits."""
        if weight > 0:
            with self._lock:
                self._add(self._clock(), weight)

    def _add(self, now: float, weight: int) -> None:
        self._spent.append((now, weight))
        self._total += weight

    def _expire(self, now: float) -> None:
        spent = self._spent
        while spent and spent[0][0] + self.window <= now:
            self._total -= spent.popleft()[1]


# --- breaker --------------------------------------------------------------------------


class NetworkBreaker(Protocol):
    """What a transport needs from a circuit breaker (``CircuitBreaker`` fits)."""

    def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T: ...

    async def call_async(self, fn: Callable[..., Awaitable[T]], /, *args: Any,
                         **kwargs: Any) -> T: ...


def is_server_fault(error: BaseException) -> bool:
    """Whether `error` says the server side is unhealthy: a timeout, no connection, or 5xx."""
    if isinstance(error, HyperliquidHTTPError):
        return error.status >= 500
    return isinstance(error, HyperliquidTimeoutError | HyperliquidConnectionError)


def default_breaker(name: str = "hyperliquid-http") -> CircuitBreaker:
    """A breaker that opens when half of the last 20 attempts (at least 10) were server faults."""
    return CircuitBreaker(name, BreakerConfig(window_size=20, minimum_calls=10,
                                              failure_rate_threshold=0.5,
                                              record_when=is_server_fault))


# --- cache ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Entry:
    expires: float
    answer: Any
    user: str | None


@dataclass(slots=True)
class _Flight:
    """An info request on the network that identical callers join; `generation` is its
    user's cache generation when it started."""

    user: str | None
    generation: int
    handle: Any = None  # concurrent.futures.Future (sync) or asyncio.Task (async)


@dataclass(slots=True)
class _InfoRequest:
    """One info request, prepared: its wire bytes (also the cache key) and what it is about."""

    body: bytes
    kind: str
    user: str | None
    ttl: float
    weight: int


class _InfoCache:
    """TTL cache of info answers, keyed by request bytes, with per-user invalidation.

    A request remembers the user's generation when it starts; an answer that arrives
    after that user was invalidated is handed to its callers but not cached.
    """

    def __init__(self, max_entries: int) -> None:
        self.lock = threading.Lock()
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._max_entries = max_entries
        self._generations: dict[str, int] = {}
        self.hits = self.misses = self.coalesced = self.evictions = 0
        self.retries = self.budget_waits = 0

    def lookup(self, key: bytes, now: float) -> tuple[bool, Any]:
        """(True, answer) on a fresh hit, else (False, None); call with `lock` held."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        if entry.expires <= now:
            del self._entries[key]
            self.evictions += 1
            return False, None
        self._entries.move_to_end(key)
        self.hits += 1
        return True, entry.answer

    def generation(self, user: str | None) -> int:
        return self._generations.get(user, 0) if user is not None else 0

    def store(self, request: _InfoRequest, answer: Any, now: float, generation: int) -> None:
        if request.ttl <= 0:
            return
        with self.lock:
            if self.generation(request.user) != generation:
                return
            self._entries[request.body] = _Entry(now + request.ttl, answer, request.user)
            self._entries.move_to_end(request.body)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
                self.evictions += 1

    def invalidate_user(self, user: str) -> int:
        """Drop every cached answer about lower-case `user`; call with `lock` held."""
        self._generations[user] = self._generations.get(user, 0) + 1
        stale = [key for key, entry in self._entries.items() if entry.user == user]
        for key in stale:
            del self._entries[key]
        self.evictions += len(stale)
        return len(stale)

    def clear(self) -> None:
        with self.lock:
            self.evictions += len(self._entries)
            self._entries.clear()

    def stats(self) -> TransportStats:
        with self.lock:
            return TransportStats(self.hits, self.misses, self.coalesced, self.evictions,
                                  self.retries, self.budget_waits)


# --- shared logic ---------------------------------------------------------------------


def _retry_after_seconds(value: str | None, now_epoch: float) -> float | None:
    """Retry-After in seconds (delta-seconds or an HTTP date) within [0, RETRY_AFTER_CAP],
    or None if absent or neither a number nor a date.

    A date in the past and a negative number mean now (0). ``inf`` and ``nan`` are
    numbers that name no finite wait: they read as the cap, so the request is not
    retried and nothing downstream sleeps or opens a breaker forever.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, OverflowError):
            return None
        seconds = when.timestamp() - now_epoch
    if math.isnan(seconds):
        return RETRY_AFTER_CAP
    return min(max(seconds, 0.0), RETRY_AFTER_CAP)


def _decode(response: httpx.Response, request: str) -> Any:
    """The JSON of a 200 response; HyperliquidHTTPError / MalformedResponseError otherwise."""
    content = response.content
    if response.status_code != 200:
        raise HyperliquidHTTPError(
            response.status_code, excerpt(content), request=request,
            retry_after=_retry_after_seconds(response.headers.get("retry-after"), time.time()))
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        raise MalformedResponseError(
            f"{request} answered 200 with a body that is not JSON: {excerpt(content)!r}"
        ) from None


def _is_retryable(error: BaseException) -> bool:
    if isinstance(error, HyperliquidHTTPError):
        return error.status >= 500 or error.status == 429
    return isinstance(error, HyperliquidTimeoutError | HyperliquidConnectionError)


def _translate(error: httpx.HTTPError, request: str) -> HyperliquidError:
    if isinstance(error, httpx.TimeoutException):
        return HyperliquidTimeoutError(f"{request} timed out ({type(error).__name__})")
    return HyperliquidConnectionError(f"{request} failed: {type(error).__name__}")


# Errors raised before the request left this process: the same bytes may go again. After
# any other failure the server may have executed the action, so the outcome is unknown.
_NOTHING_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _outcome_unknown(error: Exception) -> ExchangeOutcomeUnknownError:
    """The error to raise, chained from `error`, for an exchange request that failed
    after the server may have had it."""
    what = str(error) if isinstance(error, HyperliquidError) else type(error).__name__
    return ExchangeOutcomeUnknownError(
        f"exchange request failed after it may have reached the server ({what}); "
        f"check orderStatus by cloid before sending again")


def _decode_exchange(response: httpx.Response) -> Any:
    """The JSON of a 200 exchange answer. A 5xx or a 200 that is not JSON (cut short, an
    HTML page from a proxy) says nothing about whether the action ran: outcome unknown.
    A 4xx is the server refusing the request, which it then did not execute."""
    try:
        return _decode(response, "exchange")
    except HyperliquidHTTPError as error:
        if error.status < 500:
            raise
        raise _outcome_unknown(error) from error
    except MalformedResponseError as error:
        raise _outcome_unknown(error) from error


# --- total deadline -------------------------------------------------------------------
#
# httpx's timeouts bound each socket operation, so an answer trickled one byte at a time
# never trips them. The default clients therefore connect through a network backend that
# gives every connect, read and write at most the time left before the deadline of the
# attempt it serves, kept in a context variable (per thread, and per asyncio task).

_deadline: ContextVar[float | None] = ContextVar("obelisk_http_deadline", default=None)


@contextmanager
def _attempt_deadline(seconds: float) -> Iterator[None]:
    """Network operations inside end by ``time.monotonic() + seconds``."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def _time_left(timeout: float | None, expired: type[httpcore.TimeoutException]) -> float | None:
    """`timeout` shortened to what is left of the current deadline; `expired` if none is."""
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0.0:
        raise expired("the request's total timeout has passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _time_left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _time_left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._stream.start_tls(
            ssl_context, server_hostname, _time_left(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._backend.connect_tcp(
            host, port, _time_left(timeout, httpcore.ConnectTimeout), local_address,
            socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None
                            ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._backend.connect_unix_socket(
            path, _time_left(timeout, httpcore.ConnectTimeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _AsyncDeadlineStream(httpcore.AsyncNetworkStream):
    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, _time_left(timeout, httpcore.ReadTimeout))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, _time_left(timeout, httpcore.WriteTimeout))

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        return _AsyncDeadlineStream(await self._stream.start_tls(
            ssl_context, server_hostname, _time_left(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _AsyncDeadlineBackend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None
                          ) -> httpcore.AsyncNetworkStream:
        return _AsyncDeadlineStream(await self._backend.connect_tcp(
            host, port, _time_left(timeout, httpcore.ConnectTimeout), local_address,
            socket_options))

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None
                                  ) -> httpcore.AsyncNetworkStream:
        return _AsyncDeadlineStream(await self._backend.connect_unix_socket(
            path, _time_left(timeout, httpcore.ConnectTimeout), socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


@contextmanager
def _httpx_errors() -> Generator[None, None, None]:
    """Re-raise an httpcore error as the httpx error of the same name, as httpx does."""
    try:
        yield
    except httpcore.TimeoutException as error:
        raise getattr(httpx, type(error).__name__, httpx.TimeoutException)(str(error)) \
            from error
    except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.ProxyError,
            httpcore.UnsupportedProtocol) as error:
        mapped = getattr(httpx, type(error).__name__, None)
        if not (isinstance(mapped, type) and issubclass(mapped, httpx.TransportError)):
            mapped = httpx.TransportError
        raise mapped(str(error)) from error


def _core_request(request: httpx.Request, content: Any) -> httpcore.Request:
    return httpcore.Request(
        method=request.method,
        url=httpcore.URL(scheme=request.url.raw_scheme, host=request.url.raw_host,
                         port=request.url.port, target=request.url.raw_path),
        headers=request.headers.raw, content=content, extensions=request.extensions)


def _pool_settings(limits: httpx.Limits) -> dict[str, Any]:
    return {"ssl_context": httpx.create_ssl_context(),
            "max_connections": limits.max_connections,
            "max_keepalive_connections": limits.max_keepalive_connections,
            "keepalive_expiry": limits.keepalive_expiry}


class _Body(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _httpx_errors():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class _AsyncBody(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            await aclose()


class _DeadlineTransport(httpx.BaseTransport):
    """An HTTP/1.1 connection pool whose sockets honour the current attempt's deadline."""

    def __init__(self, limits: httpx.Limits) -> None:
        self._pool = httpcore.ConnectionPool(network_backend=_DeadlineBackend(),
                                             **_pool_settings(limits))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with _httpx_errors():
            answer = self._pool.handle_request(_core_request(request, request.stream))
        assert isinstance(answer.stream, Iterable)
        return httpx.Response(answer.status, headers=answer.headers,
                              stream=_Body(answer.stream), extensions=answer.extensions)

    def close(self) -> None:
        self._pool.close()


class _AsyncDeadlineTransport(httpx.AsyncBaseTransport):
    """The asyncio :class:`_DeadlineTransport`."""

    def __init__(self, limits: httpx.Limits) -> None:
        self._pool = httpcore.AsyncConnectionPool(network_backend=_AsyncDeadlineBackend(),
                                                  **_pool_settings(limits))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with _httpx_errors():
            answer = await self._pool.handle_async_request(
                _core_request(request, request.stream))
        assert isinstance(answer.stream, AsyncIterable)
        return httpx.Response(answer.status, headers=answer.headers,
                              stream=_AsyncBody(answer.stream), extensions=answer.extensions)

    async def aclose(self) -> None:
        await self._pool.aclose()


def _exchange_bytes(body: bytes | Mapping[str, Any]) -> tuple[bytes, int]:
    """The exact bytes to post for an exchange body, and the request's weight."""
    if isinstance(body, bytes | bytearray | memoryview):
        raw = bytes(body)
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ValueError("exchange body is not JSON") from None
    elif isinstance(body, Mapping):
        parsed = body
        raw = orjson.dumps(body)
    else:
        raise TypeError(f"exchange body must be bytes or a mapping, got {type(body).__name__}")
    action = parsed.get("action") if isinstance(parsed, Mapping) else None
    if not isinstance(action, Mapping):
        raise ValueError("exchange body has no 'action' object")
    return raw, exchange_weight(action)


class _TransportBase:
    """What the sync and async transports share: settings, cache, budget, backoff."""

    def __init__(self, base_url: str, config: TransportConfig | None,
                 breaker: NetworkBreaker | None, clock: Callable[[], float],
                 random: Callable[[], float]) -> None:
        self.base_url = base_url.rstrip("/")
        self.config = config if config is not None else TransportConfig()
        self.breaker: NetworkBreaker = breaker if breaker is not None else default_breaker()
        self.budget = RateBudget(self.config.rate_limit, self.config.rate_window, clock)
        self._clock = clock
        self._random = random
        self._cache = _InfoCache(self.config.max_cache_entries)
        self._timeout = httpx.Timeout(self.config.timeout)
        self._limits = httpx.Limits(max_connections=self.config.max_connections,
                                    max_keepalive_connections=self.config.max_connections)
        self._headers = {"Content-Type": "application/json"}
        self._in_flight: dict[bytes, _Flight] = {}

    def _join(self, request: _InfoRequest,
              start: Callable[[_Flight], Any]) -> tuple[Any, _Flight | None, bool]:
        """``(answer, None, False)`` for a fresh cached answer; else ``(None, flight,
        leader)``: the identical request in flight, or a new one whose handle
        ``start(flight)`` made under the lock, which this caller then leads."""
        cache = self._cache
        with cache.lock:
            found, answer = cache.lookup(request.body, self._clock())
            if found:
                return answer, None, False
            flight = self._in_flight.get(request.body)
            if flight is not None:
                cache.coalesced += 1
                return None, flight, False
            cache.misses += 1
            flight = _Flight(request.user, cache.generation(request.user))
            flight.handle = start(flight)
            self._in_flight[request.body] = flight
            return None, flight, True

    def _land(self, request: _InfoRequest, flight: _Flight, answer: Any = None, *,
              succeeded: bool) -> None:
        """Cache a successful answer (unless its user was invalidated meanwhile), then stop
        sharing the flight; in this order so no caller in between goes to the network."""
        if succeeded:
            self._cache.store(request, answer, self._clock(), flight.generation)
        with self._cache.lock:
            if self._in_flight.get(request.body) is flight:
                del self._in_flight[request.body]

    def stats(self) -> TransportStats:
        """A snapshot of the cache, coalescing and retry counters."""
        return self._cache.stats()

    def invalidate_user(self, address: str) -> int:
        """Forget cached answers about `address` (after an action changed its state).

        Requests for that user still in flight are not joined by later callers and their
        answers are not cached. Returns the number of cache entries dropped.
        """
        user = address.lower()
        with self._cache.lock:
            for key in [key for key, flight in self._in_flight.items() if flight.user == user]:
                del self._in_flight[key]
            return self._cache.invalidate_user(user)

    def clear_cache(self) -> None:
        """Forget every cached answer."""
        self._cache.clear()

    def _prepare(self, body: Mapping[str, Any]) -> _InfoRequest:
        if not isinstance(body, Mapping) or not isinstance(body.get("type"), str):
            raise TypeError("an info request is a mapping with a 'type' string")
        kind = body["type"]
        user = body.get("user")
        return _InfoRequest(orjson.dumps(body, option=orjson.OPT_SORT_KEYS), kind,
                            user.lower() if isinstance(user, str) else None,
                            float(self.config.ttls.get(kind, 0.0)), info_weight(body))

    def _budget_wait(self, weight: int) -> float:
        """0.0 once `weight` is taken, else how long to sleep; raises when not waiting."""
        wait = self.budget.try_take(weight)
        if wait == 0.0:
            return 0.0
        config = self.config
        if config.budget_policy is BudgetPolicy.RAISE or wait > config.max_budget_wait:
            raise RateBudgetExceeded(weight, wait, self.budget.capacity)
        with self._cache.lock:
            self._cache.budget_waits += 1
        return wait

    def _retry_delay(self, error: BaseException, attempt: int) -> float | None:
        """Seconds before retry number `attempt` (0-based) of an info request, or None."""
        if attempt >= self.config.max_retries or not _is_retryable(error):
            return None
        config = self.config
        delay = self._resend_delay(attempt)
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            if retry_after > config.max_retry_after:
                return None
            delay = max(delay, retry_after)
        with self._cache.lock:
            self._cache.retries += 1
        return delay

    def _resend_delay(self, attempt: int) -> float:
        """Doubling from `backoff_base` up to `backoff_max`, the upper half of it at random."""
        return backoff_delay(attempt, self.config.backoff_base, self.config.backoff_max, 2.0,
                             0.5, 1.0 - self._random())


# --- sync -----------------------------------------------------------------------------


class Transport(_TransportBase):
    """Blocking transport over a pooled ``httpx.Client``; safe to share between threads.

    Parameters
    ----------
    base_url : str
        ``MAINNET_URL`` (default), ``TESTNET_URL`` or any other server.
    config : TransportConfig, optional
    breaker : NetworkBreaker, optional
        Guards every network attempt; default :func:`default_breaker`.
    clock, sleep, random
        Monotonic clock, sleep and a uniform [0, 1) source, injectable for tests.
    """

    def __init__(self, base_url: str = MAINNET_URL, config: TransportConfig | None = None, *,
                 breaker: NetworkBreaker | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], object] = time.sleep,
                 random: Callable[[], float] = _random.random,
                 client: httpx.Client | None = None) -> None:
        super().__init__(base_url, config, breaker, clock, random)
        self._sleep = sleep
        self._client = client if client is not None else httpx.Client(
            timeout=self._timeout, limits=self._limits, headers=self._headers,
            transport=_DeadlineTransport(self._limits))

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def post_info(self, body: Mapping[str, Any]) -> Any:
        """The JSON answer to an info request, from the cache, an identical request in
        flight, or the network (with retries)."""
        request = self._prepare(body)
        answer, flight, leader = self._join(request, lambda flight: Future())
        if flight is None:
            return answer
        shared: Future[Any] = flight.handle
        if not leader:
            return shared.result()
        try:
            answer = self._fetch_info(request)
        except BaseException as error:
            self._land(request, flight, succeeded=False)
            shared.set_exception(error)
            raise
        self._land(request, flight, answer, succeeded=True)
        shared.set_result(answer)
        return answer

    def post_exchange(self, body: bytes | Mapping[str, Any]) -> Any:
        """Post a signed exchange body and return its JSON answer.

        The bytes sent are exactly `body` (or a mapping serialised once); they are resent
        unchanged only when the connection failed before any response, never re-signed.
        """
        raw, weight = _exchange_bytes(body)
        for attempt in range(self.config.exchange_resends + 1):
            self._take_budget(weight)
            try:
                return self.breaker.call(self._send_exchange, raw)
            except _ResendableError as error:
                if attempt == self.config.exchange_resends:
                    raise error.cause from None
            self._sleep(self._resend_delay(attempt))
        raise AssertionError("unreachable")

    def _fetch_info(self, request: _InfoRequest) -> Any:
        attempt = 0
        while True:
            self._take_budget(request.weight)
            try:
                answer = self.breaker.call(self._send_info, request)
            except HyperliquidError as error:
                delay = self._retry_delay(error, attempt)
                if delay is None:
                    raise
                self._sleep(delay)
                attempt += 1
                continue
            self.budget.charge(info_extra_weight(request.kind, answer))
            return answer

    def _take_budget(self, weight: int) -> None:
        while (wait := self._budget_wait(weight)) > 0.0:
            self._sleep(wait)

    def _send_info(self, request: _InfoRequest) -> Any:
        try:
            with _attempt_deadline(self.config.timeout):
                response = self._client.post(f"{self.base_url}/info", content=request.body)
        except httpx.HTTPError as error:
            raise _translate(error, request.kind) from None
        return _decode(response, request.kind)

    def _send_exchange(self, raw: bytes) -> Any:
        try:
            with _attempt_deadline(self.config.timeout):
                response = self._client.post(f"{self.base_url}/exchange", content=raw)
        except _NOTHING_SENT as error:
            raise _ResendableError(_translate(error, "exchange")) from None
        except httpx.HTTPError as error:
            raise _outcome_unknown(error) from error
        return _decode_exchange(response)


class _ResendableError(HyperliquidConnectionError):
    """An exchange attempt that got no response; `cause` is what to raise if not resent."""

    def __init__(self, cause: HyperliquidError) -> None:
        super().__init__(str(cause))
        self.cause = cause


# --- asyncio --------------------------------------------------------------------------


class AsyncTransport(_TransportBase):
    """asyncio transport over a pooled ``httpx.AsyncClient``; use it from one event loop.

    Same parameters as :class:`Transport`; `sleep` is a coroutine function.
    """

    def __init__(self, base_url: str = MAINNET_URL, config: TransportConfig | None = None, *,
                 breaker: NetworkBreaker | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
                 random: Callable[[], float] = _random.random,
                 client: httpx.AsyncClient | None = None) -> None:
        super().__init__(base_url, config, breaker, clock, random)
        self._sleep = sleep
        self._client = client if client is not None else httpx.AsyncClient(
            timeout=self._timeout, limits=self._limits, headers=self._headers,
            transport=_AsyncDeadlineTransport(self._limits))

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._client.aclose()

    async def __aenter__(self) -> AsyncTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def post_info(self, body: Mapping[str, Any]) -> Any:
        """Async :meth:`Transport.post_info`; one task serves every identical caller.

        Cancelling one caller does not cancel the request the others wait for.
        """
        request = self._prepare(body)
        answer, flight, leader = self._join(
            request, lambda flight: asyncio.ensure_future(self._lead(request, flight)))
        if flight is None:
            return answer
        task: asyncio.Task[Any] = flight.handle
        if leader:
            task.add_done_callback(_retrieve_exception)
        return await asyncio.shield(task)

    async def post_exchange(self, body: bytes | Mapping[str, Any]) -> Any:
        """Async :meth:`Transport.post_exchange`."""
        raw, weight = _exchange_bytes(body)
        for attempt in range(self.config.exchange_resends + 1):
            await self._take_budget(weight)
            try:
                return await self.breaker.call_async(self._send_exchange, raw)
            except _ResendableError as error:
                if attempt == self.config.exchange_resends:
                    raise error.cause from None
            await self._sleep(self._resend_delay(attempt))
        raise AssertionError("unreachable")

    async def _lead(self, request: _InfoRequest, flight: _Flight) -> Any:
        try:
            answer = await self._fetch_info(request)
        except BaseException:
            self._land(request, flight, succeeded=False)
            raise
        self._land(request, flight, answer, succeeded=True)
        return answer

    async def _fetch_info(self, request: _InfoRequest) -> Any:
        attempt = 0
        while True:
            await self._take_budget(request.weight)
            try:
                answer = await self.breaker.call_async(self._send_info, request)
            except HyperliquidError as error:
                delay = self._retry_delay(error, attempt)
                if delay is None:
                    raise
                await self._sleep(delay)
                attempt += 1
                continue
            self.budget.charge(info_extra_weight(request.kind, answer))
            return answer

    async def _take_budget(self, weight: int) -> None:
        while (wait := self._budget_wait(weight)) > 0.0:
            await self._sleep(wait)

    async def _send_info(self, request: _InfoRequest) -> Any:
        try:
            with _attempt_deadline(self.config.timeout):
                response = await self._client.post(f"{self.base_url}/info",
                                                   content=request.body)
        except httpx.HTTPError as error:
            raise _translate(error, request.kind) from None
        return _decode(response, request.kind)

    async def _send_exchange(self, raw: bytes) -> Any:
        try:
            with _attempt_deadline(self.config.timeout):
                response = await self._client.post(f"{self.base_url}/exchange", content=raw)
        except _NOTHING_SENT as error:
            raise _ResendableError(_translate(error, "exchange")) from None
        except httpx.HTTPError as error:
            raise _outcome_unknown(error) from error
        return _decode_exchange(response)


def _retrieve_exception(task: asyncio.Task[Any]) -> None:
    """Mark a shared task's failure as seen even if every caller was cancelled."""
    if not task.cancelled():
        task.exception()


__all__ = [
    "DEFAULT_TTLS",
    "MAINNET_URL",
    "RETRY_AFTER_CAP",
    "TESTNET_URL",
    "AsyncTransport",
    "BudgetPolicy",
    "NetworkBreaker",
    "RateBudget",
    "Transport",
    "TransportConfig",
    "TransportStats",
    "default_breaker",
    "is_server_fault",
]
