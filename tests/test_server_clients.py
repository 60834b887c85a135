"""`obelisk serve` driven by real clients over HTTP: the official SDK, unchanged, for every
action the issue lists, and obelisk's own sync and async clients doing the same.

A simulated clock keeps the market still unless a test moves it (admin `/advance`,
`/oracle`), so expected numbers can be computed by hand.
"""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("aiohttp")
requests = pytest.importorskip("requests")
eth_account = pytest.importorskip("eth_account")
from hyperliquid.exchange import Exchange as SdkExchange  # noqa: E402
from hyperliquid.utils.signing import OrderType  # noqa: E402
from hyperliquid.utils.types import Cloid as SdkCloid  # noqa: E402

from obelisk.hyperliquid import AsyncExchange, AsyncInfo, Exchange, Info, Wallet  # noqa: E402
from obelisk.hyperliquid.transport import AsyncTransport, Transport  # noqa: E402
from obelisk.server.runner import serve  # noqa: E402

ROOMY = 1_000_000
KEYS = iter(["0x" + f"{i:02x}" * 32 for i in range(0x41, 0x80)])


def admin(url, path, **body):
    answer = requests.post(url.admin_url + path, json=body, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.fixture(scope="module")
def market():
    with serve(port=0, clock="sim", makers=2, seed=11, coins=("BTC", "ETH"),
               ip_weight_per_minute=ROOMY) as url:
        yield url


@pytest.fixture
def trader(market):
    """A fresh funded account per test: no test sees another's orders or positions."""
    account = eth_account.Account.from_key(next(KEYS))
    admin(market, "/deposit", user=account.address, usdc=100_000)
    return account


def statuses(answer):
    assert answer["status"] == "ok", answer
    return answer["response"]["data"]["statuses"]


def open_oids(exchange, user):
    return sorted(o["oid"] for o in exchange.info.open_orders(user))


# ------------------------------------------------------------ the official SDK

def test_sdk_bulk_orders_modify_and_cancel_by_cloid(market, trader):
    exchange = SdkExchange(trader, market)
    mid = float(exchange.info.all_mids()["ETH"])
    gtc: OrderType = {"limit": {"tif": "Gtc"}}
    cloid = SdkCloid.from_int(7)
    placed = statuses(exchange.bulk_orders([
        {"coin": "ETH", "is_buy": True, "sz": 0.1, "limit_px": round(mid * 0.95, 1),
         "order_type": gtc, "reduce_only": False, "cloid": cloid},
        {"coin": "ETH", "is_buy": False, "sz": 0.1, "limit_px": round(mid * 1.05, 1),
         "order_type": gtc, "reduce_only": False},
    ]))
    first, second = (s["resting"]["oid"] for s in placed)
    assert open_oids(exchange, trader.address) == sorted([first, second])

    moved = statuses(exchange.modify_order(cloid, "ETH", True, 0.2, round(mid * 0.96, 1), gtc,
                                           cloid=SdkCloid.from_int(8)))
    replacement = moved[0]["resting"]["oid"]
    by_oid = exchange.modify_order(second, "ETH", False, 0.3, round(mid * 1.04, 1), gtc)
    again = statuses(by_oid)[0]["resting"]["oid"]
    rows = {o["oid"]: o for o in exchange.info.open_orders(trader.address)}
    assert set(rows) == {replacement, again}
    assert (rows[replacement]["sz"], rows[again]["sz"]) == ("0.2", "0.3")
    status = exchange.info.query_order_by_cloid(trader.address, SdkCloid.from_int(8))
    assert status["order"]["status"] == "open"

    assert statuses(exchange.cancel_by_cloid("ETH", SdkCloid.from_int(8))) == ["success"]
    assert statuses(exchange.bulk_cancel([{"coin": "ETH", "oid": again}])) == ["success"]
    assert exchange.info.open_orders(trader.address) == []


def test_sdk_leverage_and_isolated_margin(market, trader):
    exchange = SdkExchange(trader, market)
    assert exchange.update_leverage(10, "ETH", is_cross=False)["status"] == "ok"
    statuses(exchange.market_open("ETH", True, 1.0))
    position = exchange.info.user_state(trader.address)["assetPositions"][0]["position"]
    assert position["leverage"]["type"] == "isolated" and position["leverage"]["value"] == 10
    margin = float(position["marginUsed"])
    assert exchange.update_isolated_margin(50, "ETH")["status"] == "ok"
    position = exchange.info.user_state(trader.address)["assetPositions"][0]["position"]
    assert float(position["marginUsed"]) == pytest.approx(margin + 50, abs=1e-6)
    assert exchange.update_leverage(99, "ETH")["status"] == "err"
    statuses(exchange.market_close("ETH"))


def test_sdk_schedule_cancel_fires_when_the_clock_passes_it(market, trader):
    exchange = SdkExchange(trader, market)
    mid = float(exchange.info.all_mids()["BTC"])
    statuses(exchange.order("BTC", True, 0.01, round(mid * 0.9), {"limit": {"tif": "Gtc"}}))
    now = admin(market, "/advance", ms=0)["time"]
    assert exchange.schedule_cancel(now + 10_000)["status"] == "ok"
    admin(market, "/advance", ms=9_000)
    assert exchange.info.open_orders(trader.address)
    admin(market, "/advance", ms=1_000)
    assert exchange.info.open_orders(trader.address) == []


def test_sdk_agent_approval_then_the_agent_trades_for_its_master(market, trader):
    exchange = SdkExchange(trader, market)
    answer, agent_key = exchange.approve_agent("bot")
    assert answer["status"] == "ok", answer
    agent = eth_account.Account.from_key(agent_key)
    as_agent = SdkExchange(agent, market, account_address=trader.address)
    mid = float(as_agent.info.all_mids()["ETH"])
    oid = statuses(as_agent.order("ETH", True, 0.1, round(mid * 0.9, 1),
                                  {"limit": {"tif": "Gtc"}}))[0]["resting"]["oid"]
    assert open_oids(exchange, trader.address) == [oid]
    assert as_agent.info.open_orders(agent.address) == []
    as_agent.cancel("ETH", oid)


def test_sdk_tp_sl_children_fire_when_the_oracle_crosses_them(market, trader):
    exchange = SdkExchange(trader, market)
    mid = float(exchange.info.all_mids()["ETH"])
    stop_px, take_px = round(mid * 0.95, 1), round(mid * 1.05, 1)
    placed = statuses(exchange.bulk_orders([
        {"coin": "ETH", "is_buy": True, "sz": 0.5, "limit_px": round(mid * 1.01, 1),
         "order_type": {"limit": {"tif": "Ioc"}}, "reduce_only": False},
        {"coin": "ETH", "is_buy": False, "sz": 0.5, "limit_px": round(stop_px * 0.9, 1),
         "order_type": {"trigger": {"triggerPx": stop_px, "isMarket": True, "tpsl": "sl"}},
         "reduce_only": True},
        {"coin": "ETH", "is_buy": False, "sz": 0.5, "limit_px": round(take_px * 0.9, 1),
         "order_type": {"trigger": {"triggerPx": take_px, "isMarket": True, "tpsl": "tp"}},
         "reduce_only": True},
    ], grouping="normalTpsl"))
    assert "filled" in placed[0] and placed[1:] == ["waitingForTrigger", "waitingForTrigger"]
    triggers = exchange.info.frontend_open_orders(trader.address)
    assert sorted(o["orderType"] for o in triggers) == ["Stop Market", "Take Profit Market"]
    admin(market, "/oracle", coin="ETH", px=stop_px * 0.99)       # the stop fires
    assert exchange.info.user_state(trader.address)["assetPositions"] == []
    fills = exchange.info.user_fills(trader.address)
    assert fills[0]["side"] == "A" and fills[0]["dir"] == "Close Long"
    admin(market, "/oracle", coin="ETH", px=mid)
    # the take profit is still waiting: reduce-only with nothing to reduce, it fires empty
    assert any(o["orderType"] == "Take Profit Market"
               for o in exchange.info.frontend_open_orders(trader.address))


def test_sdk_funding_is_paid_on_the_hour(market, trader):
    exchange = SdkExchange(trader, market)
    statuses(exchange.market_open("BTC", False, 0.01))
    now = admin(market, "/advance", ms=0)["time"]
    admin(market, "/advance", ms=3_600_000 - now % 3_600_000)
    (row,) = exchange.info.user_funding_history(trader.address, now)
    delta = row["delta"]
    rate, szi = float(delta["fundingRate"]), float(delta["szi"])
    history = exchange.info.funding_history("BTC", now)
    assert float(history[-1]["fundingRate"]) == rate and szi == -0.01
    oracle = float(exchange.info.meta_and_asset_ctxs()[1][0]["oraclePx"])
    assert float(delta["usdc"]) == pytest.approx(-szi * oracle * rate, rel=1e-6, abs=1e-6)
    statuses(exchange.market_close("BTC"))


# ------------------------------------------------------------ obelisk's own clients

def test_obelisk_sync_client_trades_against_the_server(market, trader):
    wallet = Wallet(trader.key.hex())
    with Transport(market) as transport:
        info = Info(transport)
        exchange = Exchange(wallet, info)
        mid = float(info.all_mids()["ETH"])
        result = exchange.order("ETH", True, 0.1, round(mid * 0.9, 1), {"limit": {"tif": "Gtc"}})
        (outcome,) = result.statuses
        assert result.ok and outcome.kind == "resting"
        assert [o.oid for o in info.open_orders(wallet.address)] == [outcome.oid]
        cancelled = exchange.cancel("ETH", outcome.oid)
        assert cancelled.statuses[0].kind == "success"
        opened = exchange.market_open("ETH", True, 0.2)
        assert opened.statuses[0].kind == "filled" and opened.statuses[0].total_size == 0.2
        state = info.clearinghouse_state(wallet.address)
        assert [(p.coin, p.szi) for p in state.positions] == [("ETH", 0.2)]
        closed = exchange.market_close("ETH")
        assert closed.ok and info.clearinghouse_state(wallet.address).positions == ()


def test_obelisk_async_client_trades_against_the_server(market, trader):
    wallet = Wallet(trader.key.hex())

    async def scenario():
        async with AsyncTransport(market) as transport:
            info = AsyncInfo(transport)
            exchange = AsyncExchange(wallet, info, directory=await info.directory())
            opened = await exchange.market_open("BTC", False, 0.01)
            assert opened.statuses[0].kind == "filled"
            state = await info.clearinghouse_state(wallet.address)
            assert [(p.coin, p.szi) for p in state.positions] == [("BTC", -0.01)]
            fills = await info.user_fills(wallet.address)
            assert fills[0].side == "A" and fills[0].crossed
            await exchange.market_close("BTC")
            return (await info.clearinghouse_state(wallet.address)).positions

    assert asyncio.run(scenario()) == ()
