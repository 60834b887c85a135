"""Tests for obelisk/hyperliquid/info.py and types.py: recorded mainnet answers, pagination,
asset resolution and malformed shapes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from hl_server import USER, HLServer, Reply

from obelisk.hyperliquid.errors import MalformedResponseError
from obelisk.hyperliquid.info import AssetDirectory, AsyncInfo, Info
from obelisk.hyperliquid.transport import AsyncTransport, Transport, TransportConfig
from obelisk.hyperliquid.types import Fill, Meta, SpotMeta

RECORDED = json.loads((Path(__file__).parent / "fixtures" / "hyperliquid_info.json").read_text())
INTERACTIONS = RECORDED["interactions"]


def call_for(info: Info | AsyncInfo, request: dict):
    """The info method call that sends `request` (awaitable on AsyncInfo)."""
    kind, user = request["type"], request.get("user", "")
    simple = {"meta": info.meta, "allMids": info.all_mids}
    if kind in simple:
        return simple[kind]()
    if kind == "l2Book":
        return info.l2_book(request["coin"])
    if kind == "candleSnapshot":
        req = request["req"]
        return info.candle_snapshot(req["coin"], req["interval"], req["startTime"],
                                    req["endTime"])
    if kind == "fundingHistory":
        return info.funding_history(request["coin"], request["startTime"],
                                    request.get("endTime"))
    if kind in ("userFillsByTime", "userFunding", "userNonFundingLedgerUpdates"):
        method = {"userFillsByTime": info.user_fills_by_time, "userFunding": info.user_funding,
                  "userNonFundingLedgerUpdates": info.user_non_funding_ledger_updates}[kind]
        return method(user, request["startTime"], request.get("endTime"))
    by_user = {"clearinghouseState": info.clearinghouse_state, "openOrders": info.open_orders,
               "frontendOpenOrders": info.frontend_open_orders, "userFills": info.user_fills,
               "historicalOrders": info.historical_orders, "portfolio": info.portfolio,
               "userRateLimit": info.user_rate_limit, "userRole": info.user_role,
               "userVaultEquities": info.user_vault_equities, "extraAgents": info.extra_agents,
               "delegatorHistory": info.delegator_history,
               "userTwapSliceFills": info.user_twap_slice_fills}
    return by_user[kind](user)


def time_filtered(answer: list, first_time, last_time):
    """A pager for the server that honours startTime/endTime like the real one: items
    (candles: whose interval) overlapping the range."""
    def page(body: dict) -> list:
        req = body.get("req", body)
        end = req.get("endTime") or float("inf")
        return [item for item in answer
                if last_time(item) >= req["startTime"] and first_time(item) <= end]
    return page


@pytest.mark.parametrize("interaction", INTERACTIONS,
                         ids=[f"{i['case']}-{i['request']['type']}" for i in INTERACTIONS])
def test_recorded_answer_parses(interaction):
    request, answer = interaction["request"], interaction["response"]
    with HLServer({request["type"]: answer}) as server:
        if request["type"] in ("fundingHistory", "userFunding", "userFillsByTime",
                               "userNonFundingLedgerUpdates", "candleSnapshot"):
            if request["type"] == "candleSnapshot":
                pager = time_filtered(answer, lambda c: c["t"], lambda c: c["T"])
            else:
                pager = time_filtered(answer, lambda x: x["time"], lambda x: x["time"])
            server.pages[request["type"]] = pager
        with Transport(server.url) as transport:
            result = call_for(Info(transport), request)

        async def from_async_info():
            async with AsyncTransport(server.url) as transport:
                return await call_for(AsyncInfo(transport), request)

        assert asyncio.run(from_async_info()) == result    # one method, two clients
    if isinstance(answer, list):
        assert len(result) == len(answer)
    elif request["type"] == "allMids":
        assert result == {coin: float(px) for coin, px in answer.items()}
    else:
        assert result is not None
    assert server.hits[0].body["type"] == request["type"]


def test_recorded_state_matches_positions():
    answer = next(i["response"] for i in INTERACTIONS if i["request"]["type"]
                  == "clearinghouseState")
    with HLServer({"clearinghouseState": answer}) as server, Transport(server.url) as t:
        state = Info(t).clearinghouse_state(USER)
    assert state.positions[0].coin == "BTC" and state.positions[0].szi == -0.00785
    assert state.margin_summary.account_value == 1182.312496
    assert state.time is None and state.cross_maintenance_margin_used is None


def test_documented_shapes_parse():
    with HLServer() as server, Transport(server.url) as transport:
        info = Info(transport)
        meta = info.meta()
        assert meta.universe[2].is_delisted and meta.margin_tables[56][1] == (150_000_000, 20)
        assert meta.margin_tiers()["OLD"] == ((0.0, 3),)
        ctxs = info.meta_and_asset_ctxs()
        assert ctxs.ctxs[2].impact_pxs is None and ctxs.ctxs[0].impact_pxs == (14.3047, 14.3444)
        assert info.spot_meta_and_asset_ctxs().ctxs[1].coin == "@107"
        state = info.clearinghouse_state(USER)
        assert state.positions[0].leverage.raw_usd == -95.059824
        assert info.spot_clearinghouse_state(USER)[1].entry_ntl == 234.56
        status = info.order_status(USER, 77738308)
        assert status is not None and status.status == "filled"
        assert status.order.cloid == "0x00000000000000000000000000000001"
        assert info.user_fees(USER).staking_discount == 0.3
        assert info.user_rate_limit(USER).n_requests_surplus == 0
        assert len(info.predicted_fundings()) == 2
        assert info.active_asset_data(USER, "BTC").max_trade_szs == (0.5, 0.4)
        assert info.perps_at_open_interest_cap() == ("BADGER", "CANTO")
        assert info.max_builder_fee(USER, "0xABC") == 10
        assert info.historical_orders(USER)[0].order.tif == "FrontendMarket"
        server.queue("orderStatus", Reply({"status": "unknownOid"}))
        assert info.order_status(USER, "0x" + "0" * 32) is None
    assert server.hits_for("maxBuilderFee")[0].body["builder"] == "0xabc"


def test_asset_directory():
    directory = AssetDirectory(Meta.from_wire(HLServer().answers["meta"]),
                               SpotMeta.from_wire(HLServer().answers["spotMeta"]))
    assert directory.asset("BTC") == 0 and directory.asset("ETH") == 1
    assert directory.asset("PURR/USDC") == 10000 and directory.asset("@107") == 10107
    assert directory.asset("HYPE/USDC") == 10107 and directory.coin(10107) == "@107"
    hype = directory.instrument("@107")
    assert hype.is_spot and hype.sz_decimals == 2
    assert directory.instrument(1).sz_decimals == 4
    with pytest.raises(KeyError):
        directory.asset("NOPE")
    assert [i.asset for i in directory.instruments()] == [0, 1, 2, 10000, 10107]


def fill(time: int, tid: int) -> dict:
    return {"coin": "BTC", "px": "1.0", "sz": "1.0", "side": "B", "time": time,
            "startPosition": "0.0", "dir": "Open Long", "closedPnl": "0.0", "hash": "0x0",
            "oid": 1, "crossed": False, "fee": "0.0", "tid": tid}


def test_pagination_restarts_inside_the_last_millisecond(monkeypatch):
    monkeypatch.setitem(__import__("obelisk.hyperliquid.info").hyperliquid.info.PAGE_SIZES,
                        "userFillsByTime", 3)
    fills = [fill(10, 1), fill(11, 2), fill(12, 3), fill(12, 4), fill(13, 5), fill(20, 6)]

    def pager(body: dict) -> list:
        end = body.get("endTime") or 10**9
        return [f for f in fills if body["startTime"] <= f["time"] <= end][:3]

    with HLServer() as server, Transport(server.url) as transport:
        server.pages["userFillsByTime"] = pager
        found = Info(transport).user_fills_by_time(USER, 0, 15)
    assert [f.tid for f in found] == [1, 2, 3, 4, 5]
    assert [h.body["startTime"] for h in server.hits] == [0, 12, 13]
    assert all(isinstance(f, Fill) for f in found)


def test_async_pagination_and_directory():
    candles = [{"t": t, "T": t + 59, "s": "BTC", "i": "1m", "o": "1", "c": "1", "h": "1",
                "l": "1", "v": "1", "n": 1} for t in range(0, 1200 * 60, 60)]

    async def scenario(url: str):
        async with AsyncTransport(url) as transport:
            info = AsyncInfo(transport)
            found = await info.candle_snapshot("BTC", "1m", 0, 10**9)
            return found, await info.directory()

    with HLServer() as server:
        server.pages["candleSnapshot"] = lambda body: [
            c for c in candles if c["t"] >= body["req"]["startTime"]][:500]
        found, directory = asyncio.run(scenario(server.url))
    assert [c.open_time for c in found] == [c["t"] for c in candles]
    assert directory.asset("@107") == 10107
    assert len(server.hits_for("candleSnapshot")) == 3  # 500, 500, then a short page


@pytest.mark.parametrize(("kind", "answer"), [
    ("meta", {"universe": "BTC"}), ("l2Book", {"coin": "BTC", "time": 1, "levels": [[]]}),
    ("clearinghouseState", {"assetPositions": []}), ("openOrders", {"oid": 1}),
    ("allMids", ["BTC"]), ("userRateLimit", {"cumVlm": None, "nRequestsUsed": 1,
                                             "nRequestsCap": 2}),
])
def test_wrong_shapes_raise_malformed(kind, answer):
    with HLServer({kind: answer}) as server, \
            Transport(server.url, TransportConfig(ttls={})) as transport:
        info = Info(transport)
        call = {"meta": info.meta, "allMids": info.all_mids,
                "l2Book": lambda: info.l2_book("BTC"),
                "clearinghouseState": lambda: info.clearinghouse_state(USER),
                "openOrders": lambda: info.open_orders(USER),
                "userRateLimit": lambda: info.user_rate_limit(USER)}[kind]
        with pytest.raises(MalformedResponseError, match=kind):
            call()
