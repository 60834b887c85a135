"""Tests for obelisk/hyperliquid/transport.py against the local server in tests/hl_server.py."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import orjson
import pytest
from hl_server import USER, HLServer, Reply

from obelisk.breaker import BreakerConfig, CircuitBreaker, CircuitOpenError, WindowType
from obelisk.hyperliquid.errors import (
    ExchangeOutcomeUnknownError,
    HyperliquidConnectionError,
    HyperliquidHTTPError,
    HyperliquidTimeoutError,
    MalformedResponseError,
    RateBudgetExceeded,
)
from obelisk.hyperliquid.transport import (
    AsyncTransport,
    BudgetPolicy,
    RateBudget,
    Transport,
    TransportConfig,
    is_server_fault,
)
from obelisk.hyperliquid.weights import exchange_weight, info_extra_weight, info_weight

SIGNED = (b'{"action":{"type":"order","orders":[{"a":0,"b":true,"p":"100","s":"1","r":false,'
          b'"t":{"limit":{"tif":"Gtc"}}}],"grouping":"na"},"nonce":1700000000000,'
          b'"signature":{"r":"0x1","s":"0x2","v":27},"vaultAddress":null}')


class FakeTime:
    """A clock that only moves when something sleeps; records every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def sleep_async(self, seconds: float) -> None:
        self.sleep(seconds)


def consecutive_breaker(failures: int = 3) -> CircuitBreaker:
    return CircuitBreaker("test", BreakerConfig(window_type=WindowType.CONSECUTIVE,
                                                consecutive_failures=failures,
                                                record_when=is_server_fault,
                                                base_backoff=30.0, max_backoff=60.0))


def make(server: HLServer, fake: FakeTime | None = None, **config: object) -> Transport:
    fake = fake or FakeTime()
    return Transport(server.url, TransportConfig(**config),  # type: ignore[arg-type]
                     clock=fake.clock, sleep=fake.sleep, random=lambda: 1.0)


def make_async(server: HLServer, fake: FakeTime | None = None,
               **config: object) -> AsyncTransport:
    fake = fake or FakeTime()
    return AsyncTransport(server.url, TransportConfig(**config),  # type: ignore[arg-type]
                          clock=fake.clock, sleep=fake.sleep_async, random=lambda: 1.0)


@pytest.fixture
def server():
    with HLServer() as running:
        yield running


def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.002)


# --- weights and budget ---------------------------------------------------------------


@pytest.mark.parametrize(("body", "weight"), [
    ({"type": "l2Book", "coin": "BTC"}, 2), ({"type": "allMids"}, 2),
    ({"type": "clearinghouseState", "user": USER}, 2), ({"type": "orderStatus"}, 2),
    ({"type": "spotClearinghouseState"}, 2), ({"type": "userRole"}, 60),
    ({"type": "meta"}, 20), ({"type": "userFills"}, 20), ({"type": "candleSnapshot"}, 20),
])
def test_info_weight(body, weight):
    assert info_weight(body) == weight


def test_extra_weight_per_items():
    assert info_extra_weight("userFills", [{}] * 39) == 1
    assert info_extra_weight("userFills", [{}] * 40) == 2
    assert info_extra_weight("candleSnapshot", [{}] * 119) == 1
    assert info_extra_weight("meta", [{}] * 100) == 0
    assert exchange_weight({"type": "order", "orders": [{}] * 79}) == 2
    assert exchange_weight({"type": "cancel", "cancels": [{}]}) == 1
    assert exchange_weight({"type": "noop"}) == 1


def test_rate_budget_window():
    fake = FakeTime()
    budget = RateBudget(100, 60.0, fake.clock)
    assert budget.try_take(60) == 0.0
    fake.now += 10
    assert budget.try_take(30) == 0.0
    assert budget.try_take(20) == pytest.approx(50.0)  # the first 60 expire at +60
    assert budget.try_take(101) == float("inf")
    fake.now += 50
    assert budget.try_take(20) == 0.0
    assert budget.used() == 50


def test_budget_raise_policy(server):
    with make(server, rate_limit=5, budget_policy=BudgetPolicy.RAISE) as transport:
        transport.post_info({"type": "l2Book", "coin": "BTC"})
        transport.post_info({"type": "l2Book", "coin": "ETH"})
        with pytest.raises(RateBudgetExceeded) as caught:
            transport.post_info({"type": "l2Book", "coin": "SOL"})
        with pytest.raises(RateBudgetExceeded):
            transport.post_info({"type": "meta"})  # weight 20 > the whole budget
    assert caught.value.weight == 2 and caught.value.wait == pytest.approx(60.0)
    assert len(server.hits) == 2


def test_budget_wait_policy_sleeps_until_room(server):
    fake = FakeTime()
    with make(server, fake, rate_limit=40, ttls={}) as transport:
        transport.post_info({"type": "meta"})
        fake.now += 15
        transport.post_info({"type": "spotMeta"})
        transport.post_info({"type": "meta"})
    assert fake.sleeps == [pytest.approx(45.0)]
    assert transport.stats().budget_waits == 1 and len(server.hits) == 3


def test_extra_weight_is_charged_after_the_answer(server):
    server.answers["userFills"] = [{"n": i} for i in range(100)]
    with make(server) as transport:
        transport.post_info({"type": "userFills", "user": USER})
        assert transport.budget.used() == 20 + 5


# --- caching --------------------------------------------------------------------------


def test_cache_hit_then_ttl_expiry(server):
    fake = FakeTime()
    with make(server, fake, ttls={"allMids": 0.5, "meta": 300.0}) as transport:
        first = transport.post_info({"type": "allMids"})
        assert transport.post_info({"type": "allMids"}) == first
        assert len(server.hits_for("allMids")) == 1
        fake.now += 0.5
        transport.post_info({"type": "allMids"})
        assert len(server.hits_for("allMids")) == 2
        transport.post_info({"type": "meta"})
        fake.now += 299
        transport.post_info({"type": "meta"})
        assert len(server.hits_for("meta")) == 1
    stats = transport.stats()
    assert (stats.hits, stats.misses, stats.evictions) == (2, 3, 1)


def test_uncached_type_always_goes_out(server):
    with make(server) as transport:
        for _ in range(3):
            transport.post_info({"type": "userFills", "user": USER})
    assert len(server.hits_for("userFills")) == 3 and transport.stats().hits == 0


def test_invalidate_user_drops_only_that_user(server):
    other = "0x" + "1" * 40
    with make(server) as transport:
        for user in (USER, other):
            transport.post_info({"type": "openOrders", "user": user})
            transport.post_info({"type": "clearinghouseState", "user": user})
        transport.post_info({"type": "allMids"})
        assert transport.invalidate_user(USER.upper().replace("0X", "0x")) == 2
        for user in (USER, other):
            transport.post_info({"type": "openOrders", "user": user})
            transport.post_info({"type": "clearinghouseState", "user": user})
        transport.post_info({"type": "allMids"})
    assert len(server.hits_for("openOrders")) == 3
    assert len(server.hits_for("clearinghouseState")) == 3
    assert len(server.hits_for("allMids")) == 1
    assert transport.stats().evictions == 2


def test_answer_in_flight_during_invalidation_is_not_cached(server):
    hold = threading.Event()
    server.queue("openOrders", Reply([], hold=hold))
    with make(server) as transport, ThreadPoolExecutor(2) as pool:
        body = {"type": "openOrders", "user": USER}
        stale = pool.submit(transport.post_info, body)
        wait_until(lambda: len(server.hits) == 1)
        transport.invalidate_user(USER)
        fresh = pool.submit(transport.post_info, body)  # does not join the stale flight
        wait_until(lambda: len(server.hits) == 2)
        hold.set()
        assert stale.result() == [] and len(fresh.result()) == 1
        transport.post_info(body)
    assert len(server.hits_for("openOrders")) == 2


def test_lru_capacity_evicts(server):
    with make(server, max_cache_entries=2) as transport:
        for coin in ("A", "B", "C", "A"):
            transport.post_info({"type": "l2Book", "coin": coin})
    assert len(server.hits) == 4 and transport.stats().evictions == 2


# --- coalescing -----------------------------------------------------------------------


def test_threads_share_one_request(server):
    callers = 16
    server.gate.clear()
    with make(server, ttls={}) as transport, ThreadPoolExecutor(callers) as pool:
        futures = [pool.submit(transport.post_info, {"type": "l2Book", "coin": "BTC"})
                   for _ in range(callers)]
        wait_until(lambda: transport.stats().coalesced == callers - 1)
        server.gate.set()
        answers = [f.result() for f in futures]
    assert len(server.hits) == 1
    assert all(answer == answers[0] for answer in answers)
    assert transport.stats().misses == 1


def test_threads_share_one_failure(server):
    server.gate.clear()
    server.queue("meta", Reply(b"nope", status=400))
    with make(server) as transport, ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(transport.post_info, {"type": "meta"}) for _ in range(4)]
        wait_until(lambda: transport.stats().coalesced == 3)
        server.gate.set()
        for future in futures:
            with pytest.raises(HyperliquidHTTPError):
                future.result()
        transport.post_info({"type": "meta"})  # the failure is not cached
    assert len(server.hits) == 2


def test_tasks_share_one_request(server):
    callers = 16

    async def burst() -> list:
        async with make_async(server, ttls={}) as transport:
            server.gate.clear()
            tasks = [asyncio.ensure_future(transport.post_info({"type": "allMids"}))
                     for _ in range(callers)]
            await asyncio.sleep(0)
            assert transport.stats().coalesced == callers - 1
            server.gate.set()
            answers = await asyncio.gather(*tasks)
            tasks[0].cancel()
            return answers

    answers = asyncio.run(burst())
    assert len(server.hits) == 1 and len(answers) == callers


def test_cancelled_task_does_not_cancel_the_shared_request(server):
    async def scenario() -> object:
        async with make_async(server, ttls={}) as transport:
            server.gate.clear()
            first = asyncio.ensure_future(transport.post_info({"type": "meta"}))
            second = asyncio.ensure_future(transport.post_info({"type": "meta"}))
            await asyncio.sleep(0)
            first.cancel()
            server.gate.set()
            return await second

    assert asyncio.run(scenario())["universe"][0]["name"] == "BTC"
    assert len(server.hits) == 1


def test_async_cache_and_invalidation(server):
    async def scenario() -> None:
        async with make_async(server) as transport:
            body = {"type": "frontendOpenOrders", "user": USER}
            await transport.post_info(body)
            await transport.post_info(body)
            transport.invalidate_user(USER)
            await transport.post_info(body)
            assert transport.stats().hits == 1

    asyncio.run(scenario())
    assert len(server.hits) == 2


# --- retries --------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_retries_then_succeeds(server, status):
    fake = FakeTime()
    server.queue("meta", Reply(b"busy", status=status), Reply(b"busy", status=status))
    with make(server, fake, backoff_base=0.25) as transport:
        assert transport.post_info({"type": "meta"})["universe"]
    assert len(server.hits) == 3
    assert fake.sleeps == [0.25, 0.5]  # random() = 1.0: the full exponential delay
    assert transport.stats().retries == 2


def test_backoff_is_jittered_and_capped(server):
    fake = FakeTime()
    server.queue("meta", *[Reply(b"x", status=500)] * 4)
    transport = Transport(server.url, TransportConfig(backoff_base=1.0, backoff_max=2.0,
                                                      max_retries=4),
                          breaker=consecutive_breaker(10), clock=fake.clock,
                          sleep=fake.sleep, random=lambda: 0.0)
    with transport:
        transport.post_info({"type": "meta"})
    assert fake.sleeps == [0.5, 1.0, 1.0, 1.0]


def test_retry_after_is_honoured(server):
    fake = FakeTime()
    server.queue("allMids", Reply(b"slow down", status=429, headers={"Retry-After": "7"}))
    with make(server, fake) as transport:
        transport.post_info({"type": "allMids"})
    assert fake.sleeps == [7.0]


def test_retry_after_too_long_raises(server):
    server.queue("allMids", Reply(b"slow down", status=429, headers={"Retry-After": "600"}))
    with make(server) as transport, pytest.raises(HyperliquidHTTPError) as caught:
        transport.post_info({"type": "allMids"})
    assert caught.value.status == 429 and caught.value.retry_after == 600.0
    assert len(server.hits) == 1


def test_gives_up_after_max_retries(server):
    server.queue("meta", *[Reply(b"down", status=503)] * 3)
    with make(server, max_retries=2) as transport, pytest.raises(HyperliquidHTTPError) as caught:
        transport.post_info({"type": "meta"})
    assert caught.value.status == 503 and "down" in caught.value.body
    assert len(server.hits) == 3


def test_client_errors_are_not_retried(server):
    server.queue("meta", Reply({"error": "bad"}, status=422))
    with make(server) as transport, pytest.raises(HyperliquidHTTPError) as caught:
        transport.post_info({"type": "meta"})
    assert caught.value.status == 422 and len(server.hits) == 1


def test_timeout_is_retried(server):
    hold = threading.Event()
    server.queue("meta", Reply(hold=hold))
    fake = FakeTime()
    try:
        with make(server, fake, timeout=0.2) as transport:
            assert transport.post_info({"type": "meta"})["universe"]
    finally:
        hold.set()
    assert len(server.hits) == 2 and fake.sleeps == [0.25]


def test_timeout_after_retries_raises(server):
    hold = threading.Event()
    server.queue("meta", Reply(hold=hold), Reply(hold=hold))
    try:
        with make(server, timeout=0.2, max_retries=1) as transport, \
                pytest.raises(HyperliquidTimeoutError):
            transport.post_info({"type": "meta"})
    finally:
        hold.set()


def test_async_retries(server):
    fake = FakeTime()
    server.queue("l2Book", Reply(b"x", status=502))

    async def scenario() -> object:
        async with make_async(server, fake) as transport:
            return await transport.post_info({"type": "l2Book", "coin": "BTC"})

    assert asyncio.run(scenario())["coin"] == "BTC"
    assert len(server.hits) == 2 and fake.sleeps == [0.25]


# --- breaker --------------------------------------------------------------------------


def test_breaker_opens_on_repeated_5xx(server):
    server.queue("meta", *[Reply(b"x", status=500)] * 3)
    transport = Transport(server.url, TransportConfig(max_retries=5),
                          breaker=consecutive_breaker(3), sleep=lambda _: None)
    with transport, pytest.raises(CircuitOpenError):
        transport.post_info({"type": "meta"})
    assert len(server.hits) == 3


def test_default_breaker_opens_on_5xx_not_on_4xx(server):
    server.queue("meta", *[Reply(b"x", status=422)] * 10)
    with make(server, max_retries=0, ttls={}) as transport:
        for _ in range(10):
            with pytest.raises(HyperliquidHTTPError):
                transport.post_info({"type": "meta"})
        transport.post_info({"type": "meta"})
        server.queue("meta", *[Reply(b"x", status=500)] * 10)
        for _ in range(9):  # 4xx were ignored: 1 success + 9 failures fill the minimum
            with pytest.raises(HyperliquidHTTPError):
                transport.post_info({"type": "meta"})
        with pytest.raises(CircuitOpenError):
            transport.post_info({"type": "meta"})
    assert len(server.hits) == 20


# --- malformed answers ----------------------------------------------------------------


def test_malformed_json_raises(server):
    server.queue("meta", Reply(b"<html>oops</html>"))
    with make(server) as transport, pytest.raises(MalformedResponseError, match="not JSON"):
        transport.post_info({"type": "meta"})


def test_bad_request_bodies_rejected(server):
    with make(server) as transport:
        with pytest.raises(TypeError):
            transport.post_info({"coin": "BTC"})
        with pytest.raises(ValueError):
            transport.post_exchange(b"not json")
        with pytest.raises(ValueError):
            transport.post_exchange({"nonce": 1})
    assert server.hits == []


# --- exchange -------------------------------------------------------------------------


def test_post_exchange_sends_the_exact_bytes(server):
    with make(server) as transport:
        answer = transport.post_exchange(SIGNED)
    assert answer == {"status": "ok", "response": {"type": "default"}}
    assert [hit.raw for hit in server.hits] == [SIGNED]


def test_post_exchange_never_resends_after_a_response(server):
    server.queue("exchange", Reply(b"oops", status=500), Reply(b"x", status=429))
    with make(server) as transport:
        with pytest.raises(ExchangeOutcomeUnknownError) as caught:     # a 5xx: it may have run
            transport.post_exchange(SIGNED)
        assert caught.value.__cause__.status == 500 and len(server.hits) == 1
        with pytest.raises(HyperliquidHTTPError) as refused:           # a 4xx: it did not
            transport.post_exchange(SIGNED)
        assert refused.value.status == 429
    assert len(server.hits) == 2


def test_post_exchange_never_resends_after_a_timeout(server):
    hold = threading.Event()
    server.queue("exchange", Reply(hold=hold))
    try:
        with make(server, timeout=0.2) as transport, \
                pytest.raises(ExchangeOutcomeUnknownError, match="orderStatus"):
            transport.post_exchange(SIGNED)
    finally:
        hold.set()
    assert len(server.hits) == 1


def test_a_connection_dropped_after_sending_is_an_unknown_outcome_not_a_resend(server):
    server.queue("exchange", Reply(drop=True))      # the server had the request: it may be live
    with make(server) as transport, pytest.raises(ExchangeOutcomeUnknownError):
        transport.post_exchange(SIGNED)
    assert [hit.raw for hit in server.hits] == [SIGNED]


class RefusingFirst:
    """An httpx transport whose first `refusals` connections are refused."""

    def __init__(self, refusals: int) -> None:
        self.refusals, self.sent = refusals, []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.refusals:
            self.refusals -= 1
            raise httpx.ConnectError("connection refused", request=request)
        self.sent.append(request.read())
        return httpx.Response(200, json={"status": "ok", "response": {"type": "default"}})


def refusing_transport(handler: RefusingFirst, **config: object) -> Transport:
    fake = FakeTime()
    return Transport("http://127.0.0.1:9", TransportConfig(**config),  # type: ignore[arg-type]
                     clock=fake.clock, sleep=fake.sleep, random=lambda: 1.0,
                     client=httpx.Client(transport=httpx.MockTransport(handler)))


def test_post_exchange_resends_identical_bytes_when_the_connection_was_refused():
    handler = RefusingFirst(1)
    with refusing_transport(handler) as transport:
        assert transport.post_exchange(SIGNED)["status"] == "ok"
    assert handler.sent == [SIGNED]


def test_post_exchange_gives_up_after_resends():
    handler = RefusingFirst(5)
    with refusing_transport(handler, exchange_resends=1) as transport, \
            pytest.raises(HyperliquidConnectionError) as caught:
        transport.post_exchange(SIGNED)
    assert not isinstance(caught.value, ExchangeOutcomeUnknownError)
    assert handler.refusals == 3 and handler.sent == []


def test_post_exchange_mapping_is_serialised_once():
    body = {"action": {"type": "noop"}, "nonce": 5, "signature": {"r": "0x1", "s": "0x2",
                                                                  "v": 27}}
    handler = RefusingFirst(1)
    with refusing_transport(handler) as transport:
        transport.post_exchange(body)
    assert orjson.loads(handler.sent[0]) == body


def test_async_post_exchange(server):
    server.queue("exchange", Reply(b"x", status=500))

    async def scenario() -> None:
        async with make_async(server) as transport:
            with pytest.raises(ExchangeOutcomeUnknownError):
                await transport.post_exchange(SIGNED)
            with pytest.raises(ExchangeOutcomeUnknownError):
                server.queue("exchange", Reply(drop=True))
                await transport.post_exchange(SIGNED)

    asyncio.run(scenario())
    assert [hit.raw for hit in server.hits] == [SIGNED, SIGNED]      # neither was resent


def test_errors_do_not_echo_the_signed_body(server):
    server.queue("exchange", Reply(b"bad", status=400))
    with make(server) as transport, pytest.raises(HyperliquidHTTPError) as caught:
        transport.post_exchange(SIGNED)
    assert "signature" not in str(caught.value) and "0x1" not in str(caught.value)


def test_config_validation():
    with pytest.raises(ValueError):
        TransportConfig(timeout=0)
    with pytest.raises(ValueError):
        TransportConfig(max_retries=-1)
    with pytest.raises(ValueError):
        TransportConfig(ttls={"meta": -1})
