"""The live loop against a real in-process `obelisk serve` on a simulated clock: it starts
HALTED and trades only after reconciling, feeds the strategy books and its own fills, a
clean stop cancels the strategy's resting orders and unsets the dead man's switch, and a
loop that dies without stopping has its orders cancelled by that switch."""

from __future__ import annotations

import asyncio
import itertools
import threading

import pytest

pytest.importorskip("aiohttp")
requests = pytest.importorskip("requests")

from obelisk import Side, TimeInForce  # noqa: E402
from obelisk._core import risk as core_risk  # noqa: E402
from obelisk.hyperliquid import Exchange, Info, Transport, TransportConfig, Wallet  # noqa: E402
from obelisk.hyperliquid import live as live_module  # noqa: E402
from obelisk.hyperliquid.errors import (  # noqa: E402
    ExchangeOutcomeUnknownError,
    HyperliquidConnectionError,
)
from obelisk.hyperliquid.live import LiveConfig, LiveLoop  # noqa: E402
from obelisk.instruments import Rounding  # noqa: E402
from obelisk.risk import RiskLimits, TradingState  # noqa: E402
from obelisk.server.runner import serve  # noqa: E402

ROOMY = 1_000_000
KEYS = (f"0x{i:064x}" for i in itertools.count(0x11FE0))


def admin(url, path, **body):
    answer = requests.post(url.admin_url + path, json=body, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()


def server_ms(url):
    return requests.get(url.admin_url + "/health", timeout=5).json()["time"]


@pytest.fixture(scope="module")
def market():
    with serve(port=0, clock="sim", makers=2, seed=7, coins=("BTC", "ETH"),
               ip_weight_per_minute=ROOMY) as url:
        yield url


class Scripted:
    """Takes once on the first BTC book (a fill), then rests one bid far below the mid."""

    def __init__(self):
        self.books: list[str] = []
        self.fills: list[int] = []
        self.states: list[TradingState] = []
        self.resting: list[int] = []

    def on_book(self, coin, book, loop):
        self.books.append(coin)
        self.states.append(loop.risk.state)
        if coin != "BTC" or self.resting:
            return
        row = loop.instruments.index(coin)
        instrument = loop.instruments[row]
        ask = book.best_ask()
        price = float(instrument.ticks_to_price(ask))
        lots = round(100 / price * 10 ** instrument.sz_decimals)      # about $100
        loop.engine.submit(row, Side.BUY, ask, lots, tif=TimeInForce.IOC)
        low = instrument.round_price_to_ticks(price * 0.9, Rounding.DOWN)
        self.resting.append(loop.engine.submit(row, Side.BUY, low, lots, tif=TimeInForce.GTC))

    def on_fills(self, report, loop):
        self.fills.extend(report.fill_oids.tolist())


def make_loop(url, strategy, wallet=None, **config):
    wallet = wallet or Wallet(next(KEYS))
    admin(url, "/deposit", user=wallet.address, usdc=100_000.0)
    return LiveLoop.connect(strategy, wallet, url, ("BTC", "ETH"),
                            transport_config=TransportConfig(rate_limit=ROOMY),
                            limits=RiskLimits(max_data_age_s=3_600),
                            config=LiveConfig(dead_man_s=30, renew_s=10, **config),
                            clock_ms=lambda: server_ms(url))


def open_orders(url, user):
    with Transport(url, TransportConfig(rate_limit=ROOMY)) as transport:
        return transport.post_info({"type": "openOrders", "user": user})


def btc_bid(loop, offset):
    """A ~$100 BTC bid `offset` ticks from the best bid: (row, ticks, lots)."""
    row = loop.instruments.index("BTC")
    instrument = loop.instruments[row]
    price = loop.books["BTC"].best_bid() + offset
    lots = round(100 / float(instrument.ticks_to_price(price)) * 10 ** instrument.sz_decimals)
    return row, price, lots


async def until(condition, timeout=10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_loop_reconciles_before_trading_feeds_the_strategy_and_stops_clean(market):
    async def main():
        strategy = Scripted()
        loop = await make_loop(market, strategy)
        assert loop.risk.state == TradingState.HALTED and not loop.trading
        report = await loop.start()
        assert report.passed and loop.risk.state == TradingState.ACTIVE
        assert loop.portfolio.balance == pytest.approx(100_000.0)
        await until(lambda: strategy.fills and strategy.resting)
        assert set(strategy.books) >= {"BTC"}
        assert all(state == TradingState.ACTIVE for state in strategy.states)
        assert strategy.fills[0] == strategy.resting[0] - 1      # the IOC taker's fill
        async with loop.turn():
            assert loop.portfolio.position("BTC").size > 0
        assert [o["cloid"] for o in open_orders(market, loop.account)] == \
            [loop.venue.cloid(strategy.resting[0])]
        await loop.stop()
        assert open_orders(market, loop.account) == []

    asyncio.run(main())


def test_the_dead_mans_switch_cancels_the_orders_of_a_loop_that_died(market):
    async def main():
        strategy = Scripted()
        loop = await make_loop(market, strategy)
        task = asyncio.create_task(loop.run())
        await until(lambda: strategy.resting and len(open_orders(market, loop.account)) == 1)
        task.cancel()                   # the process dies: no clean stop
        with pytest.raises(asyncio.CancelledError):
            await task
        return loop.account

    user = asyncio.run(main())
    assert len(open_orders(market, user)) == 1      # still resting after the crash
    admin(market, "/advance", ms=31_000)             # past the scheduleCancel deadline
    assert open_orders(market, user) == []


def test_a_clean_stop_unsets_the_dead_mans_switch(market):
    """After stop, an order placed by hand is still open past the loop's last deadline."""
    wallet = Wallet(next(KEYS))

    async def main():
        loop = await make_loop(market, Scripted(), wallet)
        await loop.start()
        await until(lambda: loop.strategy.resting)
        await loop.stop()

    asyncio.run(main())
    with Transport(market, TransportConfig(rate_limit=ROOMY)) as transport:
        exchange = Exchange(wallet, Info(transport))
        mid = float(exchange.info.all_mids()["BTC"])
        price = float(exchange.directory.instrument("BTC").round_price(mid * 0.8, Rounding.DOWN))
        result = exchange.order("BTC", True, 0.001, price, {"limit": {"tif": "Gtc"}})
        assert result.statuses[0].kind == "resting", result
    admin(market, "/advance", ms=31_000)
    assert len(open_orders(market, wallet.address)) == 1


def test_the_loop_reads_the_websocket_while_a_batch_is_on_its_way(market):
    # The engine's flush ran on the event loop: during a batch's round trip to the
    # exchange nothing else ran (no frame read, no dead man's switch renewed). Now the
    # batch goes from a worker thread; a book that changes meanwhile reaches the
    # strategy once the batch is back.
    async def main():
        strategy = Scripted()
        loop = await make_loop(market, strategy)
        await loop.start()
        await until(lambda: strategy.resting and len(open_orders(market, loop.account)) == 1)
        entered, release, released_by_loop = threading.Event(), threading.Event(), []
        execute = loop.venue.execute

        def slow_execute(events):
            entered.set()
            released_by_loop.append(release.wait(5))
            return execute(events)

        loop.venue.execute = slow_execute
        book = loop.books["BTC"]
        row, low, lots = btc_bid(loop, -1_000)
        async with loop.turn():
            bid = loop.engine.submit(row, Side.BUY, low, lots)
        await until(entered.is_set)                 # the batch is on its way
        seen, heard = book.last_time, len(strategy.books)
        admin(market, "/advance", ms=2_000)          # the makers requote: a new BTC book
        await until(lambda: book.last_time != seen)  # read while the batch is out
        assert len(strategy.books) == heard          # the strategy hears it after the batch
        release.set()
        await until(lambda: len(strategy.books) > heard)
        assert released_by_loop == [True]
        assert bid in {loop.venue.engine_oid(o["cloid"]) for o in open_orders(
            market, loop.account)}
        await loop.stop()

    asyncio.run(main())


class Quiet:
    """Trades nothing by itself; `raising` makes its on_book fail."""

    raising = False

    def on_book(self, coin, book, loop):
        if self.raising:
            raise RuntimeError("a bug in the strategy's on_book")

    def on_fills(self, report, loop):
        pass


def slow_venue(loop, wait=5.0):
    """The venue's next calls wait for `release` (up to `wait` s): `entered` is set as one
    begins, `returned` as it ends."""
    entered, release, returned = threading.Event(), threading.Event(), threading.Event()
    execute = loop.venue.execute

    def slow_execute(events):
        entered.set()
        release.wait(wait)
        try:
            return execute(events)
        finally:
            returned.set()

    loop.venue.execute = slow_execute
    return entered, release, returned


async def rest_a_bid(loop, below=1_000):
    """Queue a ~$100 bid `below` ticks under the BTC best bid, holding the turn; its oid."""
    row, low, lots = btc_bid(loop, -below)
    async with loop.turn():
        return loop.engine.submit(row, Side.BUY, low, lots)


def test_a_strategy_whose_on_book_raises_does_not_stop_the_loop(market, caplog):
    # The books that changed during a flush reach the strategy after it, from the task
    # that flushed: an on_book that raised there ended the loop's pump for good, and
    # nothing was sent or polled any more.
    async def main():
        strategy = Quiet()
        loop = await make_loop(market, strategy)
        await loop.start()
        entered, release, _ = slow_venue(loop)
        await rest_a_bid(loop)
        await until(entered.is_set)
        book, seen = loop.books["BTC"], loop.books["BTC"].last_time
        admin(market, "/advance", ms=2_000)
        await until(lambda: book.last_time != seen)
        strategy.raising = True
        release.set()
        await until(lambda: "the strategy's on_book raised" in caplog.text)
        strategy.raising = False
        second = await rest_a_bid(loop, below=1_010)
        await until(lambda: second in {loop.venue.engine_oid(o["cloid"])
                                       for o in open_orders(market, loop.account)})
        await loop.stop()

    with caplog.at_level("ERROR", logger="obelisk.hyperliquid.live"):
        asyncio.run(main())


def test_a_stop_while_a_flush_is_in_the_risk_check_halts_after_it_and_cancels(market,
                                                                           monkeypatch):
    # The halt of stop() hit the risk checks while the flush's thread held them
    # (ConcurrentUseError): stop() raised with the order left open, and the loop's tasks
    # kept renewing the dead man's switch.
    async def main():
        loop = await make_loop(market, Quiet())
        await loop.start()
        inside, release = threading.Event(), threading.Event()
        as_records = core_risk.as_records

        def slow(*args, **kwargs):      # called while the risk checks are held
            if threading.current_thread() is not threading.main_thread():
                inside.set()
                release.wait(5)
            return as_records(*args, **kwargs)

        monkeypatch.setattr(core_risk, "as_records", slow)
        await rest_a_bid(loop)
        await until(inside.is_set)
        stopping = asyncio.create_task(loop.stop())
        await asyncio.sleep(0.1)
        assert not stopping.done() and loop.turn().locked()
        monkeypatch.setattr(core_risk, "as_records", as_records)
        release.set()
        await stopping
        assert loop.risk.state == TradingState.HALTED
        assert all(task.done() for task in loop._tasks)
        return loop.account

    assert open_orders(market, asyncio.run(main())) == []


def test_a_flush_keeps_the_turn_until_its_thread_returns_however_often_it_is_cancelled(
        market):
    # A second cancellation (a caller's deadline on stop()) cut short the wait for the
    # flush's thread: the turn was handed on while the thread still ran the engine, and
    # the loop stayed "flushing", so no book reached the strategy again.
    async def main():
        strategy = Scripted()
        loop = await make_loop(market, strategy)
        await loop.start()
        await until(lambda: strategy.resting and len(open_orders(market, loop.account)) == 1)
        entered, _, returned = slow_venue(loop, wait=1.0)
        await rest_a_bid(loop)
        await until(entered.is_set)
        with pytest.raises(TimeoutError):       # cancels the stop, then its tasks again
            await asyncio.wait_for(loop.stop(), 0.3)
        assert returned.is_set()                # the flush outlasted both cancellations
        assert not loop.turn().locked()
        assert not loop.trading and loop.risk.state == TradingState.HALTED
        await loop._close()

    asyncio.run(main())


def test_a_cancellation_that_lands_as_the_flush_thread_returns_is_not_lost():
    # Cancelled in the loop turn the thread's result arrived, the wait returned as if
    # nothing had happened: the pump ran on and stop() waited for it for ever.
    async def main():
        release = threading.Event()
        thread = asyncio.ensure_future(asyncio.to_thread(release.wait, 5))
        waiter = asyncio.create_task(live_module._outlast(thread))
        await asyncio.sleep(0.05)
        thread.add_done_callback(lambda _: waiter.cancel())
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await waiter

    asyncio.run(main())


async def resting_bid(loop, above_best=10):
    """A ~$100 bid `above_best` ticks over the BTC best bid, flushed: (oid, ticks, lots)."""
    row, price, lots = btc_bid(loop, above_best)
    async with loop.turn():
        oid = loop.engine.submit(row, Side.BUY, price, lots)
        await loop._flush_queued()
    return oid, price, lots


def sell_into(url, price, lots, key=0x3BAD1):
    """Another account sells `lots` (BTC) at `price` ticks, IOC."""
    taker = Wallet(f"0x{key:064x}")
    admin(url, "/deposit", user=taker.address, usdc=100_000.0)
    with Transport(url, TransportConfig(rate_limit=ROOMY)) as transport:
        exchange = Exchange(taker, Info(transport))
        instrument = exchange.directory.instrument("BTC")
        return exchange.order("BTC", False, lots / 10 ** instrument.sz_decimals,
                              float(instrument.ticks_to_price(price)), {"limit": {"tif": "Ioc"}})


async def open_count_settles(loop, expected):
    async def settled():
        async with loop.turn():
            loop._poll()
            return loop.risk.open_orders == expected
    deadline = asyncio.get_running_loop().time() + 5
    while not await settled():
        assert asyncio.get_running_loop().time() < deadline, loop.risk.open_orders
        await asyncio.sleep(0.05)


def test_an_order_filled_while_a_reconciliation_ran_stops_counting_as_open(market):
    # Recovery applied the fill and the venue never heard of it (its frame was dropped as
    # applied): the order counted open for good, and max_open_orders would fill up.
    async def main():
        loop = await make_loop(market, Quiet())
        await loop.start()
        oid, price, lots = await resting_bid(loop)
        assert loop.risk.open_orders == 1
        reconcile = loop.recovery.reconcile

        async def pass_after_a_fill(**options):
            await asyncio.to_thread(sell_into, market, price, lots)
            await until(lambda: any(kind == "userFills" for kind, _ in loop._held))
            return await reconcile(**options)

        loop.recovery.reconcile = pass_after_a_fill
        assert (await loop.reconcile()).passed
        await open_count_settles(loop, 0)
        await loop.stop()

    asyncio.run(main())


def test_an_order_whose_answers_were_lost_is_tracked_once_reconciled(market):
    # Both answers lost: the reconciliation found it resting and kept it open, but the
    # venue did not track it, so when it filled nothing said it was done.
    async def main():
        loop = await make_loop(market, Quiet())
        await loop.start()
        transport = loop.exchange.info.transport
        post, left = transport.post_exchange, [2]

        def lossy(body):
            if left[0] <= 0:
                return post(body)
            left[0] -= 1
            post(body)
            raise ExchangeOutcomeUnknownError("answer lost (injected)")

        transport.post_exchange = lossy
        row, book = loop.instruments.index("BTC"), loop.books["BTC"]
        async with loop.turn():                 # the second answer lost is of the resend
            loop.engine.submit(row, Side.BUY, book.best_ask() + 10, 1, tif=TimeInForce.ALO)
        oid, price, lots = await resting_bid(loop)
        assert oid in loop.engine.unknown_oids
        await until(lambda: loop._reconciling is not None and loop._reconciling.done(), 15)
        assert loop._reconciling.result().passed and loop.risk.open_orders == 1
        await asyncio.to_thread(sell_into, market, price, lots, 0x3BAD2)
        await open_count_settles(loop, 0)
        await loop.stop()

    asyncio.run(main())


def test_an_order_closed_elsewhere_while_its_cancel_is_out_stops_counting_as_open(market):
    # Its close, read while the engine's own cancel was out, was left to the cancel's
    # answer, and that answer ("already canceled") removed nothing: open for good.
    async def main():
        wallet = Wallet(next(KEYS))
        loop = await make_loop(market, Quiet(), wallet)
        await loop.start()
        oid, _, _ = await resting_bid(loop, above_best=-1_000)
        exchange_oid = next(e for e, o in loop.venue._by_exchange_oid.items() if o == oid)
        sending, go = threading.Event(), threading.Event()
        post_cancels = loop.venue._post_cancels

        def paused(*args, **kwargs):        # the cancel is about to leave
            sending.set()
            go.wait(10)
            return post_cancels(*args, **kwargs)

        loop.venue._post_cancels = paused

        async def cancel():
            async with loop.turn():
                loop.engine.cancel(loop.instruments.index("BTC"), oid)
                await loop._flush_queued()

        cancelling = asyncio.create_task(cancel())
        await asyncio.to_thread(sending.wait, 10)

        def cancel_elsewhere():             # another client of the same account
            with Transport(market, TransportConfig(rate_limit=ROOMY)) as transport:
                return Exchange(wallet, Info(transport)).cancel("BTC", exchange_oid)

        assert (await asyncio.to_thread(cancel_elsewhere)).statuses[0].kind == "success"
        await asyncio.sleep(0.3)            # its frame is read while the cancel is out
        await until(loop.venue._inbox.empty)
        go.set()
        await cancelling
        assert loop.engine.stats.rejected == 1
        await open_count_settles(loop, 0)
        loop.venue._post_cancels = post_cancels
        await loop.stop()

    asyncio.run(main())


def test_a_reconciliation_keeps_what_is_left_of_a_partly_filled_order(market):
    # It took the order's size from its "open" frame: partly filled before the pass, the
    # order was tracked at its full size again and, once filled, counted open for good.
    async def main():
        loop = await make_loop(market, Quiet())
        await loop.start()
        oid, price, lots = await resting_bid(loop)
        half = lots // 2
        await asyncio.to_thread(sell_into, market, price, half, 0x4BAD1)
        await open_count_settles(loop, 1)
        assert (await loop.reconcile()).passed
        await asyncio.to_thread(sell_into, market, price, lots - half, 0x4BAD2)
        await open_count_settles(loop, 0)
        await loop.stop()

    asyncio.run(main())


def test_a_cancel_refused_on_another_coin_leaves_the_order_counted_open(market):
    # The refusal ("never placed, already canceled, or filled") was taken as proof the
    # order had closed: dropped while it still rested, it no longer counted open.
    async def main():
        loop = await make_loop(market, Quiet())
        await loop.start()
        oid, _, _ = await resting_bid(loop, above_best=-1_000)
        async with loop.turn():
            loop.engine.cancel(loop.instruments.index("ETH"), oid)      # the wrong row
            await loop._flush_queued()
        assert loop.engine.stats.rejected == 1
        await open_count_settles(loop, 1)
        assert len(open_orders(market, loop.account)) == 1
        await loop.stop()

    asyncio.run(main())


def test_an_order_reported_done_is_not_tracked_again_by_a_reconciliation(market):
    # Filled after a pass fetched it open, with its "filled" frame late: reported done,
    # then tracked again from the ledger by the resync, and reported removed as well.
    async def main():
        loop = await make_loop(market, Quiet())
        await loop.start()
        oid, price, lots = await resting_bid(loop)
        told = []
        loop.engine.on_removed = lambda oids: told.append(("removed", oids.tolist()))
        late, hand_over = [], loop._hand_over

        def filled_frame_late(kind, data):
            if kind == "orderUpdates" and any(u.get("status") == "filled" for u in data):
                late.append((kind, data))
            else:
                hand_over(kind, data)

        loop._hand_over = filled_frame_late
        reconcile = loop.recovery.reconcile

        async def pass_then_fill(**options):
            report = await reconcile(**options)             # fetched: the order is open
            await asyncio.to_thread(sell_into, market, price, lots, 0x5BAD1)
            await until(lambda: any(kind == "userFills" for kind, _ in loop._held))
            return report

        loop.recovery.reconcile = pass_then_fill
        assert (await loop.reconcile()).passed
        loop.recovery.reconcile = reconcile
        await open_count_settles(loop, 0)
        await until(lambda: late)
        for frame in late:
            hand_over(*frame)
        assert (await loop.reconcile()).passed
        await open_count_settles(loop, 0)
        assert told == []                   # done once, never removed too
        await loop.stop()

    asyncio.run(main())


def test_an_order_filled_while_its_frames_were_lost_is_reported_done_not_removed(market):
    # Recovery applied the fill and closed the order as filled, and the resync reported it
    # removed: a strategy told so may place a filled order again.
    async def main():
        loop = await make_loop(market, Quiet())
        await loop.start()
        oid, price, lots = await resting_bid(loop)
        cloid = loop.venue.cloid(oid)
        await until(lambda: any(o.cloid == cloid for o in loop.ledger.orders.values()))
        told = []
        loop.engine.on_removed = lambda oids: told.append(oids.tolist())
        lost, hand_over = [], loop._hand_over

        def drop_the_accounts_frames(kind, data):       # a websocket that lost them
            if kind in ("userFills", "orderUpdates"):
                lost.append(kind)
            else:
                hand_over(kind, data)

        loop._hand_over = drop_the_accounts_frames
        await asyncio.to_thread(sell_into, market, price, lots, 0x6BAD1)
        await until(lambda: {"userFills", "orderUpdates"} <= set(lost))
        loop._hand_over = hand_over
        report = await loop.reconcile()
        assert report.passed and {"missed_fill", "missing_order"} <= {
            d.kind for d in report.discrepancies}
        await open_count_settles(loop, 0)
        assert told == []
        await loop.stop()

    asyncio.run(main())


def test_an_abandoned_loop_sends_none_of_the_orders_still_queued(market):
    # Abandoning closes the engine, which flushed the queue with trading still ACTIVE:
    # the strategy's queued orders were placed after the abandon.
    async def main():
        loop = await make_loop(market, Quiet())
        task = asyncio.create_task(loop.run())
        await until(lambda: loop.trading)
        row, low, lots = btc_bid(loop, -1_000)
        async with loop.turn():             # no flush can take the order before the abandon
            loop.engine.submit(row, Side.BUY, low, lots)
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert loop.engine.stats.refused == 1 and loop.engine.stats.rested == 0
        return loop.account

    assert open_orders(market, asyncio.run(main())) == []


def refuse_cancels(loop, times):
    """The next `times` cancel actions fail before they leave (a network fault, as an open
    breaker refuses them); orders still go."""
    transport = loop.exchange.info.transport
    post, left = transport.post_exchange, [times]

    def refusing(body):
        if body["action"]["type"] == "cancelByCloid" and left[0] > 0:
            left[0] -= 1
            raise HyperliquidConnectionError("exchange failed: ConnectError (injected)")
        return post(body)

    transport.post_exchange = refusing
    return left


def test_a_stop_sends_refused_cancels_again_until_none_rests(market):
    async def main():
        strategy = Scripted()
        loop = await make_loop(market, strategy, retry_s=0.1)
        await loop.start()
        await until(lambda: strategy.resting and len(open_orders(market, loop.account)) == 1)
        left = refuse_cancels(loop, 2)
        await loop.stop()
        assert left == [0]                               # refused twice, then sent
        assert loop.venue.stats.not_sent == 2
        return loop.account

    user = asyncio.run(main())
    assert open_orders(market, user) == []


def test_a_stop_that_cannot_cancel_leaves_the_dead_mans_switch_set(market, caplog):
    async def main():
        strategy = Scripted()
        loop = await make_loop(market, strategy, retry_s=0.1, stop_s=0.3)
        await loop.start()
        await until(lambda: strategy.resting and len(open_orders(market, loop.account)) == 1)
        refuse_cancels(loop, 1_000)
        await loop.stop()
        return loop.account

    with caplog.at_level("ERROR", logger="obelisk.hyperliquid.live"):
        user = asyncio.run(main())
    assert "1 resting orders were still open 0.3 s into the stop" in caplog.text
    assert len(open_orders(market, user)) == 1
    admin(market, "/advance", ms=31_000)             # past the switch's deadline
    assert open_orders(market, user) == []


def test_without_a_fills_snapshot_the_loop_reconciles_after_snapshot_s(market, caplog):
    """The wait for the connection's userFills snapshot ends when it arrives, or after
    `snapshot_s` with a warning; either way the loop reconciles and trades."""
    async def main():
        loop = await make_loop(market, Scripted(), snapshot_s=0.3)
        hear = loop._on_user_frame
        loop._on_user_frame = lambda kind, data: None if (
            kind == "userFills" and data.get("isSnapshot")) else hear(kind, data)
        report = await loop.start()
        assert report.passed and loop.risk.state == TradingState.ACTIVE
        await loop.stop()

    with caplog.at_level("WARNING", logger="obelisk.hyperliquid.live"):
        asyncio.run(main())
    assert "no userFills snapshot within 0.3 s" in caplog.text
