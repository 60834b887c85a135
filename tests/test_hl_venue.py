"""HyperliquidVenue: the Venue protocol over the info and exchange clients, on a local server."""

import asyncio

import pytest
from hl_server import USER, HLServer, Reply

from obelisk import Portfolio
from obelisk.execution.ledger import OrderLedger
from obelisk.execution.recovery import DiscrepancyKind, PositionRecovery
from obelisk.execution.venue import OrderRequest
from obelisk.hyperliquid.exchange import AsyncExchange
from obelisk.hyperliquid.info import AsyncInfo
from obelisk.hyperliquid.transport import AsyncTransport
from obelisk.hyperliquid.venue import HyperliquidVenue
from obelisk.hyperliquid.wallet import Wallet

KEY = "0x" + "2e" * 32


@pytest.fixture
def server():
    with HLServer() as running:
        yield running


def with_venue(server, scenario):
    async def main():
        async with AsyncTransport(server.url) as transport:
            info = AsyncInfo(transport)
            exchange = await AsyncExchange.create(Wallet(KEY), info, account_address=USER)
            return await scenario(HyperliquidVenue(info, exchange, USER), info)

    return asyncio.run(main())


def test_positions_orders_and_statuses_map_onto_the_protocol(server):
    async def scenario(venue, info):
        (position,) = await venue.positions()
        orders = await venue.open_orders()
        status = await venue.order_status(oid=orders[0].oid)
        return position, orders, status

    position, orders, status = with_venue(server, scenario)
    assert (position.coin, position.size, position.leverage, position.isolated) == \
        ("ETH", 0.0335, 20, True)
    assert position.margin == pytest.approx(-95.059824 + 0.0335 * 2986.3)
    (order,) = orders
    assert (order.oid, order.coin, order.is_buy, order.reduce_only) == (77738308, "ETH", True, True)
    assert order.cloid == "0x" + "0" * 31 + "1" and order.price == 2412.7
    assert status == "filled"


def test_place_and_cancel_read_the_per_order_statuses(server):
    server.queue("exchange",
                 Reply({"status": "ok", "response": {"type": "order", "data": {"statuses": [
                     {"resting": {"oid": 77}}]}}}),
                 Reply({"status": "ok", "response": {"type": "order", "data": {"statuses": [
                     {"error": "Order must have minimum value of $10."}]}}}),
                 Reply({"status": "ok", "response": {"type": "cancel", "data": {"statuses": [
                     "success"]}}}),
                 Reply({"status": "ok", "response": {"type": "cancel", "data": {"statuses": [
                     {"error": "Order was never placed, already canceled, or filled."}]}}}))

    async def scenario(venue, info):
        stop = OrderRequest("ETH", False, 0.0335, 2_800.0, reduce_only=True, trigger_px=2_850.0,
                            cloid="0x" + "ab" * 16)
        return (await venue.place(stop), await venue.place(stop),
                await venue.cancel("ETH", 77), await venue.cancel("ETH", 77))

    placed, refused, cancelled, unknown = with_venue(server, scenario)
    assert (placed.oid, placed.status) == (77, "open") and refused.status == "rejected"
    assert cancelled is True and unknown is False
    wire = server.hits_for("exchange")[0].body["action"]["orders"][0]
    assert wire["r"] is True and wire["t"]["trigger"]["triggerPx"] == "2850"
    assert wire["c"] == "0x" + "ab" * 16


def test_recovery_dry_run_against_the_exchange_sends_no_action(server):
    async def scenario(venue, info):
        directory = await info.directory()
        portfolio = Portfolio([directory.instrument("BTC"), directory.instrument("ETH")])
        recovery = PositionRecovery(venue, portfolio, OrderLedger(), dry_run=True,
                                    cache_ttl_ms=0)
        return await recovery.reconcile()

    report = with_venue(server, scenario)
    found = {d.kind for d in report.discrepancies}
    assert {DiscrepancyKind.POSITION_MISMATCH, DiscrepancyKind.UNKNOWN_ORDER} <= found
    assert report.planned and not report.executed and not server.hits_for("exchange")


def test_statuses_fill_ids_and_refused_leverage():
    from types import SimpleNamespace

    from obelisk.hyperliquid.errors import HyperliquidError
    from obelisk.hyperliquid.venue import _fill_id, _status

    assert [_status(s) for s in ("open", "filled", "perpMarginRejected", "marginCanceled",
                                 "reduceOnlyRejected", "somethingNew")] == \
        ["open", "filled", "rejected", "canceled", "rejected", "open"]
    fill = SimpleNamespace(tid=None, hash="0xab", oid=1, time=5, px=2.0, sz=1.0, side="B")
    twin = SimpleNamespace(**{**vars(fill), "sz": 2.0})              # same transaction
    assert _fill_id(fill) == _fill_id(SimpleNamespace(**vars(fill))) != _fill_id(twin)
    assert _fill_id(SimpleNamespace(**{**vars(fill), "tid": 7})) == 7
    with HLServer() as server:
        server.queue("exchange", Reply({"status": "err", "response": "Invalid leverage"}))

        async def scenario(venue, info):
            with pytest.raises(HyperliquidError, match="Invalid leverage"):
                await venue.set_leverage("ETH", 99, isolated=False)

        with_venue(server, scenario)
