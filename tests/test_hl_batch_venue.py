"""TradingEngine through HyperliquidBatchVenue against a real `obelisk serve` (loopback HTTP
and websocket): the portfolio agrees with the exchange after every batch, fills are
applied once however late or often they come, the exchange's rejections become engine
outcomes with its text, a lost answer never places an order twice, and cancels by
engine order id work.

The server's clock is simulated, so the market only moves when its makers requote after
the account trades; every test trades its own freshly funded account.
"""

from __future__ import annotations

import gc
import itertools
import random
import threading
import time
import tracemalloc

import numpy as np
import pytest

pytest.importorskip("aiohttp")
requests = pytest.importorskip("requests")

from obelisk import EVENT_DTYPE, EventKind, OrderStatus, Portfolio, Side, TimeInForce  # noqa: E402
from obelisk.execution.engine import TradingEngine  # noqa: E402
from obelisk.execution.venue import ACCOUNT  # noqa: E402
from obelisk.hyperliquid import (  # noqa: E402
    Exchange,
    HyperliquidBatchVenue,
    Info,
    Wallet,
    batch_venue,  # noqa: E402
)
from obelisk.hyperliquid.batch_venue import WebsocketThread, cloid_of, oid_of_cloid  # noqa: E402
from obelisk.hyperliquid.errors import ExchangeOutcomeUnknownError  # noqa: E402
from obelisk.hyperliquid.transport import BudgetPolicy, Transport, TransportConfig  # noqa: E402
from obelisk.hyperliquid.ws import Backoff  # noqa: E402
from obelisk.instruments import InstrumentTable, Rounding  # noqa: E402
from obelisk.risk import RiskLimits, RiskManager, TradingState  # noqa: E402
from obelisk.server.runner import serve  # noqa: E402

ROOMY = 1_000_000
KEYS = (f"0x{i:064x}" for i in itertools.count(0xB47C4))
BTC, ETH = 0, 1


def admin(url, path, **body):
    answer = requests.post(url.admin_url + path, json=body, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.fixture(scope="module")
def market():
    with serve(port=0, clock="sim", makers=2, seed=5, coins=("BTC", "ETH"),
               ip_weight_per_minute=ROOMY) as url:
        yield url


@pytest.fixture(scope="module")
def websocket(market):
    with WebsocketThread(market.replace("http://", "ws://") + "/ws") as thread:
        yield thread


class Desk:
    """One funded account traded by a TradingEngine through a HyperliquidBatchVenue."""

    def __init__(self, url, websocket=None, *, usdc=100_000.0, config=None, wallet=None,
                 **venue_options):
        self.wallet = wallet or Wallet(next(KEYS))
        self.user = self.wallet.address
        admin(url, "/deposit", user=self.user, usdc=usdc)
        self.transport = Transport(url, config or TransportConfig(rate_limit=ROOMY))
        self.info = Info(self.transport)
        self.exchange = Exchange(self.wallet, self.info)
        self.table = InstrumentTable([self.exchange.directory.instrument(c)
                                      for c in ("BTC", "ETH")])
        if websocket is not None:
            venue_options.update(websocket=websocket.client, loop=websocket.loop)
        venue_options.setdefault("session", 0)          # open_oids reads session 0's cloids
        self.venue = HyperliquidBatchVenue(self.exchange, self.table, **venue_options)
        self.portfolio = Portfolio(self.table, balance=usdc)
        self.risk = RiskManager(self.portfolio, RiskLimits(max_data_age_s=3_600))
        self.mark()
        self.engine = TradingEngine(self.portfolio, self.venue, self.risk, batch_size=10_000,
                                    max_batch_wait_ms=1e9)
        self.outcomes: dict[int, int] = {}
        self.closed: set[int] = set()       # rested orders a fill completed or the venue removed
        self.engine.on_fills = lambda report: self.closed.update(report.done_oids.tolist())
        self.engine.on_removed = lambda oids: self.closed.update(oids.tolist())
        self._record_outcomes()

    def _record_outcomes(self):
        """Keep each order's venue status (the engine's view of it) by engine oid."""
        execute = self.venue.execute

        def recording(events, **options):
            report = execute(events, **options)
            self.outcomes.update(zip(events["oid"].tolist(),
                                     report.results["status"].tolist(), strict=True))
            return report

        self.venue.execute = recording

    def mark(self):
        for coin, mid in self.mids().items():
            self.risk.update_market(coin, mid)

    def mids(self):
        self.transport.clear_cache()
        answer = self.info.all_mids()
        return {coin: float(answer[coin]) for coin in self.table.coins}

    def ticks(self, row, fraction_of_mid, rounding=Rounding.DOWN):
        instrument = self.table[row]
        return instrument.round_price_to_ticks(self.mids()[instrument.name] * fraction_of_mid,
                                               rounding)

    def lots(self, row, usdc):
        instrument = self.table[row]
        return max(1, round(usdc / self.mids()[instrument.name] * 10 ** instrument.sz_decimals))

    def state(self):
        return self.transport.post_info({"type": "clearinghouseState", "user": self.user})

    def open_orders(self):
        return self.transport.post_info({"type": "openOrders", "user": self.user})

    def settle(self, timeout=5.0):
        """Flush, wait for the fills the exchange reported, apply them; the differences
        left between the portfolio and the exchange (empty once they agree)."""
        self.engine.flush()
        deadline = time.monotonic() + timeout
        while True:
            self.venue.wait_for_fills(max(0.0, deadline - time.monotonic()))
            self.engine.poll()
            differences = self.portfolio.differences(self.state())
            if not differences or time.monotonic() > deadline:
                return differences
            time.sleep(0.01)

    def believed_open(self):
        """Engine oids the engine still counts open: rested, not cancelled, done or removed."""
        return {oid for oid, status in self.outcomes.items() if status == OrderStatus.RESTED} \
            - self.closed

    def exchange_open(self):
        return sorted(oid_of_cloid(o.get("cloid")) for o in self.open_orders())

    def close(self):
        self.engine.close()
        self.venue.close()
        self.transport.close()


@pytest.fixture
def desk(market, websocket):
    made = Desk(market, websocket)
    yield made
    made.close()


# ------------------------------------------------------------------ cloids

def test_cloids_are_32_hex_digits_and_name_their_engine_oid_and_session():
    cloid = cloid_of(7, session=3)
    assert cloid == "0x0b15000000000003" + f"{7:016x}" and len(cloid) == 34
    assert oid_of_cloid(cloid, session=3) == 7
    assert oid_of_cloid(cloid, session=4) is None
    assert oid_of_cloid("0x" + "ab" * 16) is None and oid_of_cloid(None) is None


def test_a_restarted_engine_takes_a_new_session_and_its_first_orders_are_accepted(market):
    # every process numbers its orders from 1: with the same session its first cloids would
    # repeat the last run's, and the exchange refuses them as duplicates
    first = Desk(market, session=None)
    first.engine.submit(BTC, Side.BUY, first.ticks(BTC, 0.9), first.lots(BTC, 40))
    first.engine.flush()
    assert first.engine.stats.rested == 1
    time.sleep(0.002)
    again = Desk(market, session=None, wallet=first.wallet)
    assert again.venue.session > first.venue.session
    assert abs(again.venue.session - time.time() * 1000) < 5_000
    again.engine.submit(BTC, Side.BUY, again.ticks(BTC, 0.91), again.lots(BTC, 40))
    again.engine.flush()
    assert again.engine.stats.rested == 1, again.venue.last_errors
    first.close()
    again.close()


def test_after_every_batch_the_portfolio_equals_the_exchange(desk):
    """Seeded batches of every order kind on both coins, split over several actions, with
    cancels of earlier resting orders: after each settles, no difference at all."""
    rng = random.Random(16)
    desk.venue.max_orders_per_action = 7
    resting: list[tuple[int, int]] = []
    for _ in range(4):
        desk.mark()
        for _ in range(12):
            row = rng.choice((BTC, ETH))
            side = rng.choice((Side.BUY, Side.SELL))
            lots = desk.lots(row, rng.uniform(15, 400))
            away = rng.choice((0.97, 0.99, 1.002, 1.01))
            cross = away > 1
            fraction = away if side == Side.BUY else 2 - away
            rounding = Rounding.DOWN if side == Side.BUY else Rounding.UP
            kind = rng.random()
            if kind < 0.15:
                desk.engine.submit(row, side, 0, lots, market=True)
            elif kind < 0.5:
                desk.engine.submit(row, side, desk.ticks(row, fraction, rounding), lots,
                                   tif=TimeInForce.IOC)
            else:
                tif = TimeInForce.GTC if cross or rng.random() < 0.5 else TimeInForce.ALO
                oid = desk.engine.submit(row, side, desk.ticks(row, fraction, rounding), lots,
                                         tif=tif)
                resting.append((row, oid))
        for row, oid in rng.sample(resting, k=len(resting) // 3):
            desk.engine.cancel(row, oid)
            resting.remove((row, oid))
        assert desk.settle() == []
        assert desk.exchange_open() == sorted(desk.believed_open())
        assert desk.risk.open_orders == len(desk.believed_open())
    stats = desk.engine.stats
    assert stats.filled and stats.rested and stats.cancelled and stats.fills, \
        (stats, desk.venue.last_errors)
    assert stats.unknown == stats.failed == 0
    assert desk.venue.stats.actions > stats.batches          # batches were split
    assert desk.venue.awaiting_fills == 0


# ------------------------------------------------------------------ (2) late, repeated fills

def test_fills_that_arrive_late_out_of_order_and_twice_are_applied_once(market):
    """No websocket: the batch's report has no fills; they arrive later, reversed and each
    twice, through the venue's inbox, and also from its own userFillsByTime poll."""
    desk = Desk(market)
    try:
        for side, fraction in ((Side.BUY, 1.01), (Side.SELL, 0.99), (Side.BUY, 1.01)):
            desk.engine.submit(ETH, side, desk.ticks(ETH, fraction), desk.lots(ETH, 200),
                               tif=TimeInForce.IOC)
        desk.engine.flush()
        assert desk.engine.stats.filled == 3 and desk.engine.stats.fills == 0
        fills = desk.transport.post_info({"type": "userFills", "user": desk.user})
        assert len(fills) >= 3
        late = list(reversed(fills))
        desk.venue.receive("userFills", {"user": desk.user, "fills": late})
        desk.venue.receive("userFills", {"user": desk.user, "fills": late})
        desk.engine.poll()                                  # also polls userFillsByTime
        desk.venue.receive("userFills", {"user": desk.user, "fills": fills[:1]})
        desk.engine.poll()
        assert desk.engine.stats.fills == len(fills)
        assert desk.venue.stats.duplicate_fills >= 2 * len(fills)
        assert desk.portfolio.differences(desk.state()) == []
    finally:
        desk.close()


def test_fills_read_from_the_websocket_before_their_answer_are_counted_once(desk):
    """The exchange's answer is slow to come back after the match, so the venue reads the
    fills from the websocket while it waits: an IOC that filled, and a buy that took the
    asks up to its price and rests the rest. Each is counted once; the resting order keeps
    what is left, and its cancel ends it."""
    post, answered, taken = desk.transport.post_exchange, [], []
    take = desk.venue._take_fill

    def slow_answer(body):
        answer = post(body)
        time.sleep(0.3)                    # the fills' frames arrive meanwhile
        answered.append(time.monotonic())
        return answer

    def spied(fill, history):
        taken.append(time.monotonic())
        take(fill, history)

    desk.transport.post_exchange, desk.venue._take_fill = slow_answer, spied
    ioc = desk.engine.submit(ETH, Side.BUY, desk.ticks(ETH, 1.01), desk.lots(ETH, 200),
                             tif=TimeInForce.IOC)
    through = desk.engine.submit(BTC, Side.BUY, desk.ticks(BTC, 1.0002), desk.lots(BTC, 150_000))
    desk.engine.flush()
    assert taken and min(taken) < answered[0]             # read before the answer was
    assert desk.outcomes[ioc] == OrderStatus.FILLED
    assert desk.outcomes[through] == OrderStatus.RESTED
    assert desk.venue.awaiting_fills == 0
    fills = desk.transport.post_info({"type": "userFills", "user": desk.user})
    assert {fill["coin"] for fill in fills} == {"BTC", "ETH"}    # the resting buy took asks
    assert desk.settle() == []
    assert desk.exchange_open() == sorted(desk.believed_open()) == [through]
    assert desk.risk.open_orders == 1
    desk.engine.cancel(BTC, through)
    assert desk.settle() == []
    assert desk.engine.stats.cancelled == 1 and desk.exchange_open() == []


def test_a_fill_repeated_after_the_websocket_delivered_it_is_dropped(desk):
    desk.engine.submit(BTC, Side.SELL, desk.ticks(BTC, 0.99, Rounding.UP),
                       desk.lots(BTC, 300), tif=TimeInForce.IOC)
    assert desk.settle() == []
    applied = desk.engine.stats.fills
    fills = desk.transport.post_info({"type": "userFills", "user": desk.user})
    desk.venue.receive("userFills", {"user": desk.user, "fills": fills})
    desk.venue.receive("userFills", {"user": desk.user, "fills": fills, "isSnapshot": True})
    desk.engine.poll()
    assert desk.engine.stats.fills == applied
    assert desk.portfolio.differences(desk.state()) == []


# ------------------------------------------------------------------ (3) rejections

def test_exchange_rejections_become_engine_outcomes_with_the_exchange_text(market, websocket):
    """The exchange reserves margin for resting orders, which the local risk checks do not
    count: the second big resting order passes risk and is refused for margin."""
    desk = Desk(market, websocket, usdc=1_000.0)
    try:
        first = desk.engine.submit(BTC, Side.BUY, desk.ticks(BTC, 0.95), desk.lots(BTC, 15_000))
        desk.engine.flush()
        too_big = desk.engine.submit(ETH, Side.BUY, desk.ticks(ETH, 0.95),
                                     desk.lots(ETH, 15_000))
        crossing = desk.engine.submit(ETH, Side.BUY, desk.ticks(ETH, 1.01), desk.lots(ETH, 50),
                                      tif=TimeInForce.ALO)
        fok = desk.engine.submit(ETH, Side.BUY, desk.ticks(ETH, 1.01), desk.lots(ETH, 50),
                                 tif=TimeInForce.FOK)
        assert desk.settle() == []
        stats = desk.engine.stats
        assert (stats.rested, stats.rejected, stats.refused) == (1, 3, 0)
        errors = desk.venue.last_errors
        assert "Insufficient margin to place order" in errors[too_big]
        assert "Post only order would have immediately matched" in errors[crossing]
        assert "FOK is not a Hyperliquid time in force" in errors[fok]
        assert first not in errors
        assert desk.venue.stats.refused_locally == 1          # FOK never left the process
        assert desk.exchange_open() == [first]
    finally:
        desk.close()


def test_a_reduce_only_order_the_exchange_refuses_is_rejected_with_its_text(desk):
    """The engine sends no reduce-only flag (EVENT_DTYPE has none); the venue sends it when
    asked, and the exchange refuses one that would open a position."""
    events = np.zeros(1, EVENT_DTYPE)
    events[0] = (9_001, desk.ticks(ETH, 1.01), desk.lots(ETH, 50), ACCOUNT,
                 desk.table.assets[ETH], EventKind.LIMIT, Side.BUY, TimeInForce.IOC)
    report = desk.venue.execute(events, reduce_only=np.ones(1, bool))
    assert report.results["status"][0] == OrderStatus.REJECTED
    assert "Reduce only order would increase position" in desk.venue.last_errors[9_001]


def test_the_venue_keeps_no_memory_per_order_sent_once_its_caches_are_full(desk,
                                                                         monkeypatch):
    # The engine oids of every order sent were kept, to tell this venue's fills from a
    # previous process's: ~60 bytes an order for as long as the venue ran.
    monkeypatch.setattr(batch_venue, "_ERRORS_KEPT", 10)
    monkeypatch.setattr(batch_venue, "_EXCHANGE_OIDS", 10)
    monkeypatch.setattr(batch_venue, "_SEEN_TIDS", 10)
    price = desk.ticks(ETH, 0.98)                      # IOC buys under the asks: sent, unfilled
    lots = desk.lots(ETH, 50)
    next_oid = iter(range(50_000, 10**9))

    def send(batches):
        for _ in range(batches):
            events = np.zeros(100, EVENT_DTYPE)
            for i in range(100):
                events[i] = (next(next_oid), price, lots, ACCOUNT, desk.table.assets[ETH],
                             EventKind.LIMIT, Side.BUY, TimeInForce.IOC)
            report = desk.venue.execute(events)
            assert (report.results["status"] == OrderStatus.CANCELLED).all()

    send(2)                                            # the bounded caches fill up
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    send(10)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename")
                if stat.traceback[0].filename == batch_venue.__file__)
    assert grown < 8 * 1_000, f"{grown} bytes kept for 1,000 orders sent"


def test_a_request_weight_budget_that_is_spent_refuses_with_a_clear_reason(market):
    config = TransportConfig(rate_limit=200, budget_policy=BudgetPolicy.RAISE)
    desk = Desk(market, config=config)
    try:
        price, lots = desk.ticks(ETH, 0.95), desk.lots(ETH, 50)
        desk.transport.budget.charge(200)          # the window is spent
        oid = desk.engine.submit(ETH, Side.BUY, price, lots)
        desk.engine.flush()
        assert desk.engine.stats.rejected == 1 and desk.engine.stats.unknown == 0
        assert "not sent: RateBudgetExceeded" in desk.venue.last_errors[oid]
        assert desk.venue.stats.not_sent == 1
    finally:
        desk.close()


# ------------------------------------------------------------------ (4) lost answers

def lose_answers(desk, times, *, forward=True):
    """The next `times` exchange posts reach the server (unless not `forward`), then their
    answers are lost."""
    post = desk.transport.post_exchange
    left = [times]

    def lossy(body):
        if left[0] <= 0:
            return post(body)
        left[0] -= 1
        if forward:
            post(body)
        raise ExchangeOutcomeUnknownError("the answer was lost (injected)")

    desk.transport.post_exchange = lossy


def _mixed_batch(desk):
    """Two resting orders, an IOC that fills, one the exchange refuses (post-only crossing:
    refused orders leave no trace that orderStatus could find)."""
    return [desk.engine.submit(ETH, Side.BUY, desk.ticks(ETH, 0.96), desk.lots(ETH, 60)),
            desk.engine.submit(BTC, Side.SELL, desk.ticks(BTC, 1.04, Rounding.UP),
                               desk.lots(BTC, 60)),
            desk.engine.submit(ETH, Side.BUY, desk.ticks(ETH, 1.01), desk.lots(ETH, 80),
                               tif=TimeInForce.IOC),
            desk.engine.submit(BTC, Side.BUY, desk.ticks(BTC, 1.01), desk.lots(BTC, 50),
                               tif=TimeInForce.ALO)]


@pytest.mark.parametrize("forward", [True, False], ids=["executed", "never-arrived"])
def test_a_lost_answer_is_resolved_by_cloid_without_placing_any_order_twice(desk, forward):
    lose_answers(desk, 1, forward=forward)
    oids = _mixed_batch(desk)
    assert desk.settle() == []
    stats, venue = desk.engine.stats, desk.venue.stats
    assert (stats.rested, stats.filled, stats.rejected, stats.unknown) == (2, 1, 1, 0)
    assert venue.lost_answers == 1 and venue.looked_up == 4
    # only what the exchange did not know went again: the refused order, or all of them
    assert venue.resent == (1 if forward else 4)
    assert "Post only" in desk.venue.last_errors[oids[3]]
    assert desk.exchange_open() == sorted(desk.believed_open()) == sorted(oids[:2])
    historical = desk.transport.post_info({"type": "historicalOrders", "user": desk.user})
    placed = [h["order"].get("cloid") for h in historical if h["status"] in ("open", "filled")]
    assert len(placed) == len(set(placed)) == 3         # each order exists once


def test_an_answer_lost_twice_leaves_the_batch_unknown_and_halts(desk):
    lose_answers(desk, 2, forward=True)
    oids = _mixed_batch(desk)
    desk.engine.flush()
    assert desk.engine.stats.unknown == 4
    assert desk.engine.unknown_oids == set(oids)
    assert desk.risk.state == TradingState.HALTED
    # what the exchange did still reaches the portfolio: its fills are reported later
    desk.risk.set_state(TradingState.ACTIVE)
    assert desk.settle() == []
    assert len(desk.exchange_open()) == 2


def _resting_batch(desk, count):
    """`count` resting buys far below the mid, alternating coins, each of its own price."""
    return [desk.engine.submit(row, Side.BUY, desk.ticks(row, 0.9 + i / 1000),
                               desk.lots(row, 40))
            for i, row in zip(range(count), itertools.cycle((BTC, ETH)))]


def test_a_lost_answer_among_actions_in_flight_is_resolved_alone(desk):
    """Six orders as three actions sent at once; the second answer is lost after the server
    ran it. Only that action is looked up, nothing is placed twice, outcomes keep their
    orders."""
    desk.venue.max_orders_per_action, desk.venue.max_inflight = 2, 3
    post, posts, lock = desk.transport.post_exchange, [], threading.Lock()

    def second_lost(body):
        with lock:
            posts.append(body)
            lost = len(posts) == 2
        answer = post(body)
        if lost:
            raise ExchangeOutcomeUnknownError("the answer was lost (injected)")
        return answer

    desk.transport.post_exchange = second_lost
    oids = _resting_batch(desk, 6)
    assert desk.settle() == []
    assert desk.engine.stats.rested == 6 and desk.engine.stats.unknown == 0
    assert (desk.venue.stats.actions, desk.venue.stats.lost_answers,
            desk.venue.stats.looked_up, desk.venue.stats.resent) == (3, 1, 2, 0)
    assert desk.exchange_open() == sorted(oids)
    historical = desk.transport.post_info({"type": "historicalOrders", "user": desk.user})
    assert sorted(oid_of_cloid(h["order"]["cloid"]) for h in historical) == sorted(oids)


@pytest.mark.parametrize("inflight", [1, 3])
def test_order_actions_overlap_up_to_max_inflight_and_cancels_wait_for_them(desk, inflight):
    desk.venue.max_orders_per_action, desk.venue.max_inflight = 2, inflight
    post, now, most, lock = desk.transport.post_exchange, [0], [0], threading.Lock()

    def slow(body):                          # long enough for the next action to start
        with lock:
            now[0] += 1
            most[0] = max(most[0], now[0])
        try:
            time.sleep(0.05)
            return post(body)
        finally:
            with lock:
                now[0] -= 1

    desk.transport.post_exchange = slow
    oids = _resting_batch(desk, 8)
    desk.engine.cancel(BTC, oids[0])         # placed in the first action of the same batch
    desk.engine.cancel(ETH, oids[7])         # and in the last
    assert desk.settle() == []
    assert most[0] == inflight
    stats = desk.engine.stats
    assert (stats.rested, stats.cancelled, stats.rejected) == (8, 2, 0), desk.venue.last_errors
    assert desk.exchange_open() == sorted(oids[1:7])


@pytest.fixture
def own_websocket(market):
    """A websocket of the test's own, which it may cut."""
    with WebsocketThread(market.replace("http://", "ws://") + "/ws",
                         backoff=Backoff(0.01, 0.05)) as thread:
        yield thread


def test_actions_posted_on_the_websocket_run_in_batch_order_with_several_on_their_way(
        market, own_websocket):
    """post_via="websocket": four actions written before the first answer is read, none over
    HTTP, and the exchange places the orders in the engine's order."""
    desk = Desk(market, own_websocket, post_via="websocket", max_inflight=4,
                max_orders_per_action=2)
    poster, steps, lock = desk.venue.poster, [], threading.Lock()
    dispatch, answer = poster.dispatch, poster.answer

    def dispatched(body, **options):
        with lock:
            steps.append("written")
        return dispatch(body, **options)

    def answered(future, body):
        time.sleep(0.05)                # the venue reads answers slowly: more get written
        try:
            return answer(future, body)
        finally:
            with lock:
                steps.append("answered")

    def no_http(body):
        raise AssertionError("an action went over HTTP")

    poster.dispatch, poster.answer, desk.transport.post_exchange = dispatched, answered, no_http
    try:
        oids = _resting_batch(desk, 8)
        assert desk.settle() == []
        assert desk.engine.stats.rested == 8
        assert steps == ["written"] * 4 + ["answered"] * 4
        historical = desk.transport.post_info({"type": "historicalOrders", "user": desk.user})
        placed = sorted(historical, key=lambda h: h["order"]["oid"])  # the exchange's order
        assert [oid_of_cloid(h["order"]["cloid"]) for h in placed] == oids
    finally:
        desk.close()


def test_answers_lost_with_the_websocket_are_resolved_by_cloid_over_http(market, own_websocket):
    """The socket is cut when the second action's answer arrives: the exchange ran it, the
    venue never reads it. The actions on their way are looked up by cloid over HTTP; nothing
    is placed twice, and the socket comes back."""
    desk = Desk(market, own_websocket, post_via="websocket", max_inflight=3,
                max_orders_per_action=2)
    client = own_websocket.client
    answer_post, answers = client._answer_post, []

    def cut_at_the_second(data):
        answers.append(data)
        if len(answers) == 2:
            client._conn.transport.abort()      # the answer is dropped with the connection
            return
        answer_post(data)

    client._answer_post = cut_at_the_second
    try:
        oids = _resting_batch(desk, 6)
        assert desk.settle() == []
        assert desk.engine.stats.rested == 6 and desk.engine.stats.unknown == 0
        assert desk.venue.stats.lost_answers >= 1    # (an action still unread by the server
        # when the socket was cut never ran: looked up, not found, sent again over HTTP)
        assert desk.exchange_open() == sorted(oids)                # each placed once
        own_websocket.call(client.wait_connected())
        client._answer_post = answer_post
        again = _resting_batch(desk, 2)
        assert desk.settle() == [] and desk.exchange_open() == sorted(oids + again)
    finally:
        desk.close()


def _orders_then_their_cancels(desk):
    """Four resting orders as two actions, and in the same batch the cancels of the first
    and the last: a cancel that overtook its order would be refused ("never placed")."""
    oids = _resting_batch(desk, 4)
    desk.engine.cancel(BTC, oids[0])
    desk.engine.cancel(ETH, oids[3])
    return oids


def _slow_info(desk, query, seconds):
    """`query` info requests (the venue's lookups by cloid) take `seconds` longer."""
    post_info = desk.transport.post_info

    def slow(body, *args, **options):
        if body.get("type") == query:
            time.sleep(seconds)
        return post_info(body, *args, **options)

    desk.transport.post_info = slow


def _assert_cancels_ran_after_their_orders(desk, oids):
    assert desk.settle() == []
    stats = desk.engine.stats
    assert (stats.rested, stats.cancelled, stats.rejected, stats.unknown) == (4, 2, 0, 0), \
        desk.venue.last_errors
    assert desk.exchange_open() == sorted(oids[1:3])
    historical = desk.transport.post_info({"type": "historicalOrders", "user": desk.user})
    placed = {h["order"]["oid"]: h["order"]["cloid"] for h in historical}
    assert sorted(placed.values()) == sorted(desk.venue.cloid(oid) for oid in oids)


def test_while_the_websocket_is_down_actions_go_over_http_one_after_another(market):
    """The socket is down for the whole batch: every action goes over HTTP, and (with three
    senders) the slow order actions would let the cancels behind them arrive first. Each
    action waits for the one before it instead."""
    with WebsocketThread(market.replace("http://", "ws://") + "/ws",
                         backoff=Backoff(30.0, 30.0, jitter=0.0)) as thread:
        desk = Desk(market, thread, post_via="websocket", max_inflight=3,
                    max_orders_per_action=2)
        try:
            thread.loop.call_soon_threadsafe(lambda: thread.client._conn.transport.abort())
            deadline = time.monotonic() + 5
            while thread.client.connected and time.monotonic() < deadline:
                time.sleep(0.005)
            assert not thread.client.connected
            post = desk.transport.post_exchange

            def slow_orders(body):
                if body["action"]["type"] == "order":
                    time.sleep(0.1)
                return post(body)

            desk.transport.post_exchange = slow_orders
            oids = _orders_then_their_cancels(desk)
            _assert_cancels_ran_after_their_orders(desk, oids)
        finally:
            desk.close()


def test_an_action_lost_with_the_websocket_is_placed_before_the_actions_behind_it(
        market, own_websocket):
    """The first order action is written into a connection that dies before the server reads
    it. The actions behind it wait until the venue has looked it up (slowly) and sent it
    again over HTTP: its cancel, later in the batch, finds the order."""
    desk = Desk(market, own_websocket, post_via="websocket", max_inflight=3,
                max_orders_per_action=2)
    client = own_websocket.client
    conn = client._conn
    send = conn.send

    async def swallow_the_first_order(message, *args, **options):
        if b'"type":"order"' in message and not getattr(conn, "swallowed", False):
            conn.swallowed = True
            conn.transport.abort()          # written, as far as the client knows; never read
            return None
        return await send(message, *args, **options)

    conn.send = swallow_the_first_order
    _slow_info(desk, "orderStatus", 0.05)
    try:
        oids = _orders_then_their_cancels(desk)
        _assert_cancels_ran_after_their_orders(desk, oids)
        assert desk.venue.stats.lost_answers >= 1 and desk.venue.stats.resent >= 2
    finally:
        desk.close()


def test_post_via_websocket_needs_the_websocket(market):
    with pytest.raises(ValueError, match="needs the websocket client"):
        Desk(market, post_via="websocket")
    with pytest.raises(ValueError, match="'http' or 'websocket'"):
        Desk(market, post_via="carrier pigeon")


def test_the_next_order_action_is_signed_while_the_last_is_on_its_way(desk):
    """One action on the wire at a time (the exchange runs the batch in order), but the
    venue signs the next one meanwhile: the exchange's time hides the signing."""
    desk.venue.max_orders_per_action = 2
    post, sign = desk.transport.post_exchange, desk.exchange.sign_order_wires
    steps, on_wire, most, lock = [], [0], [0], threading.Lock()

    def slow(body):
        with lock:
            on_wire[0] += 1
            most[0] = max(most[0], on_wire[0])
        try:
            time.sleep(0.05)
            return post(body)
        finally:
            with lock:
                on_wire[0] -= 1
                steps.append("answered")

    def spied(wires, *args):
        with lock:
            steps.append("signed")
        return sign(wires, *args)

    desk.transport.post_exchange, desk.exchange.sign_order_wires = slow, spied
    oids = _resting_batch(desk, 6)
    assert desk.settle() == []
    assert desk.engine.stats.rested == 6 and most[0] == 1
    assert steps == ["signed", "signed", "answered", "signed", "answered", "answered"]
    historical = desk.transport.post_info({"type": "historicalOrders", "user": desk.user})
    placed = sorted(historical, key=lambda h: h["order"]["oid"])      # the exchange's order
    assert [oid_of_cloid(h["order"]["cloid"]) for h in placed] == oids


def test_a_cancel_action_is_queued_behind_the_orders_and_the_next_is_signed_meanwhile(desk):
    """Orders placed, then a batch of their cancels and new orders: the cancel action goes
    first (Hyperliquid runs a block's cancels first), the new orders are signed while it is
    on the wire, and each action runs after the one before it."""
    desk.venue.max_orders_per_action = 2
    placed = _resting_batch(desk, 2)
    assert desk.settle() == []
    post, steps, lock = desk.transport.post_exchange, [], threading.Lock()
    signs = {name: getattr(desk.exchange, name)
             for name in ("sign_order_wires", "sign_cancels_by_cloid")}

    def slow(body):
        time.sleep(0.05)
        answer = post(body)
        with lock:
            steps.append(f"{body['action']['type']} answered")
        return answer

    def spied(name):
        def sign(requests, *args):
            with lock:
                steps.append(f"{name} signed")
            return signs[name](requests, *args)
        return sign

    desk.transport.post_exchange = slow
    for name in signs:
        setattr(desk.exchange, name, spied(name))
    desk.engine.cancel(BTC, placed[0])
    desk.engine.cancel(ETH, placed[1])
    fresh = _resting_batch(desk, 2)
    assert desk.settle() == []
    assert steps == ["sign_cancels_by_cloid signed", "sign_order_wires signed",
                     "cancelByCloid answered", "order answered"]
    stats = desk.engine.stats
    assert (stats.rested, stats.cancelled, stats.rejected) == (4, 2, 0), desk.venue.last_errors
    assert desk.exchange_open() == sorted(fresh)


# ------------------------------------------------------------------ (5) cancels

def test_cancels_by_engine_order_id(desk):
    rested = [desk.engine.submit(row, Side.BUY, desk.ticks(row, 0.9 + i / 100),
                                 desk.lots(row, 40))
              for i, row in enumerate((BTC, ETH, ETH))]
    desk.engine.flush()
    assert desk.engine.stats.rested == 3
    desk.engine.cancel(BTC, rested[0])
    desk.engine.cancel(ETH, rested[2])
    desk.engine.cancel(ETH, 777_777)                         # never placed
    desk.engine.flush()
    stats = desk.engine.stats
    assert (stats.cancelled, stats.rejected) == (2, 1)
    assert "never placed" in desk.venue.last_errors[777_777]
    assert desk.exchange_open() == [rested[1]]
    assert desk.risk.open_orders == 1
    assert desk.settle() == []


def test_a_batch_is_sent_as_at_most_three_kinds_of_action():
    from obelisk.hyperliquid.batch_venue import _actions

    # order 1, cancel 9 (sent before), order 2, cancel 1 (placed above), cancel 3 (below)
    kinds = np.array([EventKind.LIMIT, EventKind.CANCEL, EventKind.LIMIT, EventKind.CANCEL,
                      EventKind.CANCEL, EventKind.LIMIT])
    oids = np.array([1, 9, 2, 1, 3, 3])
    assert list(_actions(kinds, oids, 500)) == [([1, 4], True), ([0, 2, 5], False),
                                                ([3], True)]
    assert [len(group) for group, _ in _actions(kinds, oids, 2)] == [2, 2, 1, 1]
