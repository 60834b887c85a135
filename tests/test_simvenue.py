"""SimVenue: matching, fees into the venue portfolio, order life cycles and fault injection."""

import asyncio
import functools
import inspect
import math

import pytest

from obelisk import FeeRates, Instrument
from obelisk.errors import InvalidOrderError, MarginError, UnknownAssetError
from obelisk.execution.venue import OrderRequest, PlaceResult, Venue, VenueFill, VenueOrder
from obelisk.sim.venue import SimVenue

ETH, BTC = Instrument("ETH", 1, 4, 25), Instrument("BTC", 0, 5, 40)
FEES = FeeRates(taker=0.0005, maker=0.0001)


class Clock:
    """Milliseconds that only move when told."""

    def __init__(self) -> None:
        self.now = 1_000

    def __call__(self) -> int:
        return self.now


def make(balance: float = 100_000.0) -> tuple[SimVenue, Clock]:
    clock = Clock()
    return SimVenue([ETH, BTC], balance=balance, fees=FEES, clock_ms=clock), clock


def run_async(test):
    """Run an async test body on a fresh event loop (pytest-asyncio is not used)."""
    @functools.wraps(test)
    def run() -> None:
        asyncio.run(test())
    return run


def buy(size, price, tif="Gtc", **options) -> OrderRequest:
    return OrderRequest("ETH", True, size, price, tif, **options)


def sell(size, price, tif="Gtc", **options) -> OrderRequest:
    return OrderRequest("ETH", False, size, price, tif, **options)


async def go_long(venue: SimVenue, size: float, price: float) -> None:
    venue.add_liquidity("ETH", False, price, size)
    assert (await venue.place(buy(size, price, "Ioc"))).status == "filled"


async def go_short(venue: SimVenue, size: float, price: float) -> None:
    venue.add_liquidity("ETH", True, price, size)
    assert (await venue.place(sell(size, price, "Ioc"))).status == "filled"


def test_speaks_the_venue_protocol():
    def names(cls):
        return {n for n in vars(cls) if not n.startswith("_")}

    venue, _ = make()
    assert names(Venue) <= set(dir(venue))
    assert all(inspect.iscoroutinefunction(getattr(venue, n)) for n in names(Venue))


# ------------------------------------------------------------ matching


@run_async
async def test_gtc_that_does_not_cross_rests():
    venue, _ = make()
    venue.add_liquidity("ETH", False, 3001, 1.0)
    result = await venue.place(buy(0.5, 3000, cloid="a"))
    assert result == PlaceResult(result.oid, "open", 0.0)
    assert await venue.open_orders() == [VenueOrder(result.oid, "ETH", True, 0.5, 3000, cloid="a")]
    assert await venue.order_status(oid=result.oid) == "open"
    assert await venue.fills_since(0) == []
    assert await venue.positions() == []


@run_async
async def test_crossing_order_fills_at_maker_prices_in_price_time_order():
    venue, _ = make()
    first = venue.add_liquidity("ETH", False, 3000, 1.0)
    second = venue.add_liquidity("ETH", False, 3000, 1.0)
    dearer = venue.add_liquidity("ETH", False, 3001, 1.0)
    result = await venue.place(buy(1.5, 3001))
    assert (result.status, result.filled) == ("filled", 1.5)
    fills = await venue.fills_since(0)
    assert [(f.size, f.price, f.maker) for f in fills] == [(1.0, 3000.0, False),
                                                           (0.5, 3000.0, False)]
    assert venue.remove_liquidity("ETH", first) is False      # used up first
    assert venue.remove_liquidity("ETH", second) is True      # half left
    assert venue.remove_liquidity("ETH", dearer) is True      # untouched


@run_async
async def test_partial_fill_rests_the_remainder_until_an_external_fill():
    venue, _ = make()
    venue.add_liquidity("ETH", False, 3000, 0.5)
    result = await venue.place(buy(2.0, 3000))
    assert (result.status, result.filled) == ("open", 0.5)
    [order] = await venue.open_orders()
    assert order.size == 1.5
    assert venue.external_fill("ETH", False, 1.5, 3000) == 1.5
    assert await venue.order_status(oid=result.oid) == "filled"
    assert await venue.open_orders() == []
    assert [f.maker for f in await venue.fills_since(0)] == [False, True]
    assert (await venue.positions())[0].size == 2.0


@run_async
async def test_fees_and_position_equal_a_hand_computation():
    venue, _ = make(balance=100_000.0)
    await go_long(venue, 1.0, 3000)                              # taker
    await venue.place(buy(1.0, 2990))
    venue.external_fill("ETH", False, 1.0, 2990)           # maker
    await go_short(venue, 0.5, 3010)                             # taker, closes half
    fills = await venue.fills_since(0)
    assert [f.fee for f in fills] == pytest.approx([1.0 * 3000 * 0.0005, 1.0 * 2990 * 0.0001,
                                                    0.5 * 3010 * 0.0005])
    assert [f.maker for f in fills] == [False, True, False]
    position = venue.portfolio.position("ETH")
    fees = 1.5 + 0.299 + 0.7525
    realized = 0.5 * (3010 - 2995)
    assert position.size == pytest.approx(1.5)
    assert position.entry_px == pytest.approx((3000 + 2990) / 2)
    assert position.fees == pytest.approx(fees)
    assert position.realized_pnl == pytest.approx(realized)
    assert venue.portfolio.balance == pytest.approx(100_000 + realized - fees)
    [reported] = await venue.positions()
    assert (reported.coin, reported.size, reported.entry_px) == ("ETH", 1.5, 2995.0)


@run_async
async def test_ioc_remainder_is_cancelled():
    venue, _ = make()
    venue.add_liquidity("ETH", False, 3000, 0.5)
    result = await venue.place(buy(2.0, 3000, "Ioc"))
    assert (result.status, result.filled) == ("canceled", 0.5)
    assert await venue.order_status(oid=result.oid) == "canceled"
    assert await venue.open_orders() == []
    assert venue.external_fill("ETH", False, 2.0, 3000) == 0.0   # nothing rests


@run_async
async def test_alo_is_rejected_if_it_would_take_and_rests_otherwise():
    venue, _ = make()
    ask = venue.add_liquidity("ETH", False, 3000, 1.0)
    taking = await venue.place(buy(1.0, 3000, "Alo"))
    assert (taking.status, taking.filled) == ("rejected", 0.0)
    assert await venue.order_status(oid=taking.oid) == "rejected"
    assert await venue.fills_since(0) == []
    assert venue.remove_liquidity("ETH", ask) is True            # untouched
    making = await venue.place(buy(1.0, 2999, "Alo"))
    assert making.status == "open"


@run_async
async def test_own_crossing_order_cancels_the_resting_one_like_hyperliquid():
    venue, _ = make()
    resting = await venue.place(sell(1.0, 3000))
    taker = await venue.place(buy(1.0, 3000))
    assert await venue.order_status(oid=resting.oid) == "canceled"
    assert taker.status == "open"
    assert [o.oid for o in await venue.open_orders()] == [taker.oid]
    assert await venue.fills_since(0) == []


# ------------------------------------------------------------ reduce-only


@run_async
async def test_reduce_only_is_rejected_when_it_would_increase_the_position():
    venue, _ = make()
    flat = await venue.place(sell(1.0, 3000, reduce_only=True))
    assert flat.status == "rejected"
    await go_long(venue, 1.0, 3000)
    assert (await venue.place(buy(0.1, 2900, reduce_only=True))).status == "rejected"
    assert await venue.open_orders() == []


@run_async
async def test_reduce_only_is_clipped_to_the_position():
    venue, _ = make()
    await go_long(venue, 1.0, 3000)
    venue.add_liquidity("ETH", True, 2990, 5.0)
    result = await venue.place(sell(3.0, 2990, "Ioc", reduce_only=True))
    assert (result.status, result.filled) == ("filled", 1.0)     # the clipped size filled
    assert await venue.positions() == []


@run_async
async def test_resting_reduce_only_shrinks_with_the_position():
    venue, _ = make()
    await go_long(venue, 2.0, 3000)
    take_profit = await venue.place(sell(2.0, 3100, reduce_only=True))
    assert take_profit.status == "open"
    await go_short(venue, 0.5, 3000)
    [order] = await venue.open_orders()
    assert order.size == 1.5
    assert venue.external_fill("ETH", True, 1.0, 3100) == 1.0
    assert venue.external_fill("ETH", True, 1.0, 3100) == 0.5   # shrunk on the book too
    assert await venue.positions() == []
    assert await venue.order_status(oid=take_profit.oid) == "filled"


@run_async
async def test_resting_reduce_only_is_cancelled_when_the_position_closes():
    venue, _ = make()
    await go_long(venue, 2.0, 3000)
    take_profit = await venue.place(sell(2.0, 3100, reduce_only=True))
    await go_short(venue, 2.0, 3000)
    assert await venue.open_orders() == []
    assert await venue.order_status(oid=take_profit.oid) == "canceled"


# ------------------------------------------------------------ triggers


@run_async
async def test_sell_stop_waits_off_book_until_the_mark_falls_to_it():
    venue, _ = make()
    await go_long(venue, 1.0, 3000)
    stop = await venue.place(sell(1.0, 2850, reduce_only=True, trigger_px=2900))
    assert stop.status == "open"
    venue.add_liquidity("ETH", True, 2890, 2.0)
    assert venue.external_fill("ETH", True, 1.0, 2850) == 0.0   # not on the book
    venue.set_mark("ETH", 2901)
    assert await venue.order_status(oid=stop.oid) == "open"
    assert [o.trigger_px for o in await venue.open_orders()] == [2900]
    venue.set_mark("ETH", 2900)
    assert await venue.order_status(oid=stop.oid) == "triggered"
    assert await venue.open_orders() == []
    last = (await venue.fills_since(0))[-1]
    assert (last.oid, last.size, last.price, last.maker) == (stop.oid, -1.0, 2890.0, False)
    assert await venue.positions() == []


@run_async
async def test_buy_stop_fires_when_the_mark_rises_to_it():
    venue, _ = make()
    await go_short(venue, 1.0, 3000)
    stop = await venue.place(buy(1.0, 3150, reduce_only=True, trigger_px=3100))
    venue.add_liquidity("ETH", False, 3120, 1.0)
    venue.set_mark("ETH", 3099.5)
    assert await venue.order_status(oid=stop.oid) == "open"
    venue.set_mark("ETH", 3100)
    assert await venue.order_status(oid=stop.oid) == "triggered"
    assert (await venue.fills_since(0))[-1].price == 3120.0
    assert await venue.positions() == []


@run_async
async def test_trigger_already_crossed_fires_when_placed_and_ioc_leaves_nothing():
    venue, _ = make()
    await go_long(venue, 1.0, 3000)
    venue.set_mark("ETH", 2800)
    stop = await venue.place(sell(1.0, 2700, reduce_only=True, trigger_px=2900))
    assert (stop.status, stop.filled) == ("triggered", 0.0)   # no bids: IOC fills nothing
    assert await venue.open_orders() == []
    assert (await venue.positions())[0].size == 1.0


# ------------------------------------------------------------ idempotency, cancel, status


@run_async
async def test_cloid_places_once_however_often_it_is_sent():
    venue, _ = make()
    venue.add_liquidity("ETH", False, 3000, 0.4)
    order = buy(1.0, 3000, cloid="0xabc")
    first = await venue.place(order)
    again = await venue.place(order)
    assert again == first == PlaceResult(first.oid, "open", 0.4)
    assert venue.calls["place"] == 2
    assert len(await venue.open_orders()) == 1
    assert len(await venue.fills_since(0)) == 1
    assert await venue.order_status(cloid="0xabc") == "open"
    assert await venue.order_status(cloid="0xother") is None
    with pytest.raises(InvalidOrderError, match="already used"):
        await venue.place(buy(2.0, 3000, cloid="0xabc"))


@run_async
async def test_cancel_returns_false_unless_the_order_is_open():
    venue, _ = make()
    resting = await venue.place(buy(1.0, 2900))
    stop = await venue.place(buy(1.0, 3200, trigger_px=3100))
    assert await venue.cancel("BTC", resting.oid) is False          # wrong coin
    assert await venue.cancel("ETH", resting.oid) is True
    assert await venue.cancel("ETH", resting.oid) is False          # already cancelled
    assert await venue.cancel("ETH", 999) is False                  # never placed
    assert await venue.cancel("ETH", stop.oid) is True
    assert await venue.order_status(oid=stop.oid) == "canceled"
    venue.set_mark("ETH", 3150)
    assert await venue.order_status(oid=stop.oid) == "canceled"     # did not fire
    assert await venue.open_orders() == []
    assert venue.external_fill("ETH", False, 1.0, 2900) == 0.0
    with pytest.raises(UnknownAssetError):
        await venue.cancel("DOGE", resting.oid)


@run_async
async def test_order_status_follows_the_order_and_needs_an_id():
    venue, _ = make()
    await go_long(venue, 1.0, 3000)
    filled = (await venue.fills_since(0))[0].oid
    assert await venue.order_status(oid=filled) == "filled"
    assert await venue.cancel("ETH", filled) is False
    resting = await venue.place(sell(1.0, 3100))
    assert await venue.order_status(oid=resting.oid) == "open"
    venue.external_fill("ETH", True, 0.4, 3100)
    assert await venue.order_status(oid=resting.oid) == "open"
    venue.external_fill("ETH", True, 0.6, 3100)
    assert await venue.order_status(oid=resting.oid) == "filled"
    assert await venue.order_status(oid=12345) is None
    with pytest.raises(ValueError, match="oid or a cloid"):
        await venue.order_status()


@run_async
async def test_fills_since_filters_by_clock_time_and_tids_increase():
    venue, clock = make()
    await go_long(venue, 1.0, 3000)
    clock.now = 2_000
    await go_short(venue, 0.5, 3000)
    clock.now = 3_000
    await go_short(venue, 0.5, 3000)
    fills = await venue.fills_since(0)
    assert [f.time_ms for f in fills] == [1_000, 2_000, 3_000]
    assert [f.tid for f in fills] == sorted({f.tid for f in fills})
    assert await venue.fills_since(2_000) == fills[1:]
    assert await venue.fills_since(3_001) == []
    assert all(isinstance(f, VenueFill) for f in fills)


# ------------------------------------------------------------ behind the account's back


@run_async
async def test_external_fill_takes_better_priced_liquidity_first():
    venue, _ = make()
    venue.add_liquidity("ETH", True, 3001, 1.0)
    mine = await venue.place(buy(1.0, 3000))
    assert venue.external_fill("ETH", False, 1.5, 3000) == 0.5
    [fill] = await venue.fills_since(0)
    assert (fill.oid, fill.size, fill.price, fill.maker) == (mine.oid, 0.5, 3000.0, True)
    assert fill.fee == pytest.approx(0.5 * 3000 * FEES.maker)
    assert venue.portfolio.position("ETH").size == 0.5
    assert venue.external_fill("BTC", False, 1.0, 60000) == 0.0   # nothing to hit


@run_async
async def test_drop_order_cancels_behind_the_clients_back():
    venue, _ = make()
    resting = await venue.place(buy(1.0, 2900))
    stop = await venue.place(buy(1.0, 3200, trigger_px=3100))
    assert venue.drop_order(resting.oid) is True
    assert venue.drop_order(stop.oid) is True
    assert venue.drop_order(resting.oid) is False
    assert await venue.order_status(oid=resting.oid) == "canceled"
    assert await venue.open_orders() == []
    assert venue.external_fill("ETH", False, 1.0, 2900) == 0.0
    assert await venue.cancel("ETH", resting.oid) is False


@run_async
async def test_fail_next_raises_once_before_acting_and_counts_the_call():
    venue, _ = make()
    venue.fail_next("place", ConnectionError("down"))
    venue.fail_next("place", TimeoutError("slow"))
    with pytest.raises(ConnectionError):
        await venue.place(buy(1.0, 2900, cloid="c1"))
    with pytest.raises(TimeoutError):
        await venue.place(buy(1.0, 2900, cloid="c1"))
    assert await venue.open_orders() == []
    assert await venue.order_status(cloid="c1") is None
    assert (await venue.place(buy(1.0, 2900, cloid="c1"))).status == "open"
    assert venue.calls["place"] == 3
    assert venue.calls["open_orders"] == 1
    with pytest.raises(ValueError, match="not a SimVenue call"):
        venue.fail_next("plaec", ConnectionError())


@run_async
async def test_fail_next_after_acts_then_raises_like_a_lost_response():
    venue, _ = make()
    venue.fail_next("place", ConnectionError("response lost"), after=True)
    with pytest.raises(ConnectionError):
        await venue.place(buy(1.0, 2900, cloid="c1"))
    [order] = await venue.open_orders()
    retry = await venue.place(buy(1.0, 2900, cloid="c1"))
    assert retry.oid == order.oid
    assert len(await venue.open_orders()) == 1


# ------------------------------------------------------------ input checks and the rest


@pytest.mark.parametrize("order", [
    buy(1.0, 3000.123, cloid="bad"),          # finer than the tick
    buy(1.0, 3000.25, cloid="bad"),           # six significant figures
    buy(0.00001, 3000, cloid="bad"),          # finer than the lot
    buy(0.0, 3000, cloid="bad"),
    buy(1.0, 3200, trigger_px=3100.001, cloid="bad"),
])
def test_off_grid_orders_are_refused_and_change_nothing(order):
    @run_async
    async def check():
        venue, _ = make()
        venue.add_liquidity("ETH", False, 3000, 1.0)
        with pytest.raises(InvalidOrderError, match="invalid"):
            await venue.place(order)
        assert await venue.order_status(cloid="bad") is None
        assert await venue.open_orders() == []
        assert await venue.fills_since(0) == []
        assert (await venue.place(buy(1.0, 2000))).oid == 2          # no oid was used up
    check()


@run_async
async def test_liquidity_only_rests_and_can_be_cleared():
    venue, _ = make()
    venue.add_liquidity("ETH", False, 3000, 1.0)
    venue.add_liquidity("ETH", False, 3001, 1.0)
    mine = await venue.place(sell(1.0, 3002))
    with pytest.raises(InvalidOrderError, match="would cross"):
        venue.add_liquidity("ETH", True, 3000, 1.0)
    assert venue.remove_liquidity("ETH", mine.oid) is False     # not liquidity
    assert venue.clear_liquidity("ETH") == 2
    assert (await venue.place(buy(1.0, 3001, "Ioc"))).filled == 0.0
    assert await venue.order_status(oid=mine.oid) == "open"


@run_async
async def test_set_leverage_shows_in_positions():
    venue, _ = make()
    await venue.set_leverage("ETH", 5, isolated=True)
    await go_long(venue, 1.0, 3000)
    [position] = await venue.positions()
    assert (position.leverage, position.isolated) == (5, True)
    assert math.isclose(position.margin, 3000 / 5, rel_tol=1e-9)
    with pytest.raises(MarginError):
        await venue.set_leverage("ETH", 50, isolated=False)


@run_async
async def test_unknown_coins_are_refused():
    venue, _ = make()
    with pytest.raises(UnknownAssetError):
        await venue.place(OrderRequest("DOGE", True, 1.0, 0.1))
    with pytest.raises(UnknownAssetError):
        venue.set_mark("DOGE", 0.1)
