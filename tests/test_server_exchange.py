"""The local exchange's state machine, driven with bodies the official SDK signs.

Every expectation is computed by hand from the exchange's documented rules:
fees, margin, funding at the oracle, liquidation at the mark.
"""

import copy
import random
from decimal import Decimal

import pytest
from eth_account import Account
from hyperliquid.utils.signing import sign_agent, sign_l1_action, sign_usd_transfer_action

from obelisk.server import LocalExchange, SimClock, Undecodable
from obelisk.server import exchange as exchange_module
from obelisk.server.events import (
    BookChanged,
    Liquidation,
    NonUserCancel,
    OrderUpdates,
    Trades,
    UserFills,
)

KEY = "0x" + "11" * 32
OTHER = "0x" + "22" * 32
TAKER, MAKER = 0.00045, 0.00015


class Trader:
    """One account signing like the SDK does for a local URL (testnet source "b")."""

    def __init__(self, exchange, key=KEY):
        self.exchange, self.wallet = exchange, Account.from_key(key)
        self.address = self.wallet.address.lower()
        self.nonce = exchange.clock.now_ms()

    def body(self, action, nonce=None, wallet=None):
        self.nonce = nonce if nonce is not None else self.nonce + 1
        signature = sign_l1_action(wallet or self.wallet, action, None, self.nonce, None, False)
        return {"action": action, "nonce": self.nonce, "signature": signature,
                "vaultAddress": None, "expiresAfter": None}

    def act(self, action, **options):
        return self.exchange.act(self.body(action, **options))

    def order(self, asset, is_buy, price, size, tif="Gtc", reduce_only=False, cloid=None,
              **options):
        wire = {"a": asset, "b": is_buy, "p": price, "s": size, "r": reduce_only,
                "t": {"limit": {"tif": tif}}}
        if cloid:
            wire["c"] = cloid
        answer = self.act({"type": "order", "orders": [wire], "grouping": "na"}, **options)
        return answer["response"]["data"]["statuses"][0] if answer["status"] == "ok" else answer

    def trigger(self, asset, is_buy, price, size, trigger_px, tpsl="sl", grouping="na"):
        wire = {"a": asset, "b": is_buy, "p": price, "s": size, "r": True,
                "t": {"trigger": {"isMarket": True, "triggerPx": trigger_px, "tpsl": tpsl}}}
        return self.act({"type": "order", "orders": [wire], "grouping": grouping})

    def state(self):
        return self.exchange.info({"type": "clearinghouseState", "user": self.address})

    def position(self, coin):
        for entry in self.state()["assetPositions"]:
            if entry["position"]["coin"] == coin:
                return entry["position"]
        return None


def exchange(makers=2, **accounts):
    ex = LocalExchange(["BTC", "ETH"], makers=makers, clock=SimClock())
    for key, usdc in accounts.items():
        ex.deposit(Account.from_key(KEY if key == "me" else OTHER).address, usdc)
    return ex


def test_an_sdk_signed_ioc_fills_against_the_makers_at_their_price():
    ex = exchange(me=10_000)
    me = Trader(ex)
    best_ask = ex.info({"type": "l2Book", "coin": "ETH"})["levels"][1][0]
    status = me.order(1, True, "3600", "0.5", tif="Ioc")
    assert status == {"filled": {"totalSz": "0.5", "avgPx": best_ask["px"], "oid": status[
        "filled"]["oid"]}}
    price = float(best_ask["px"])
    position = me.position("ETH")
    assert position["szi"] == "0.5" and float(position["entryPx"]) == price
    fee = 0.5 * price * TAKER
    assert float(me.state()["marginSummary"]["accountValue"]) == pytest.approx(
        10_000 - fee + 0.5 * (float(ex.marks()["ETH"]) - price), abs=1e-6)
    (fill,) = ex.info({"type": "userFills", "user": me.address})
    assert (fill["side"], fill["dir"], fill["crossed"]) == ("B", "Open Long", True)
    assert float(fill["fee"]) == pytest.approx(fee, abs=1e-6)


def test_resting_orders_cancels_and_cloids():
    ex = exchange(me=10_000)
    me = Trader(ex)
    cloid = "0x" + "ab" * 16
    resting = me.order(1, True, "3400", "0.5", cloid=cloid)
    oid = resting["resting"]["oid"]
    assert resting == {"resting": {"oid": oid, "cloid": cloid}}
    (row,) = ex.info({"type": "openOrders", "user": me.address})
    assert (row["oid"], row["limitPx"], row["sz"], row["side"]) == (oid, "3400.0", "0.5", "B")
    status = ex.info({"type": "orderStatus", "user": me.address, "oid": cloid})
    assert status["order"]["status"] == "open" and status["order"]["order"]["oid"] == oid
    assert me.order(1, True, "3400", "0.5", cloid=cloid) == {
        "error": f"Duplicate cloid {cloid}. asset=1"}
    cancel = me.act({"type": "cancelByCloid", "cancels": [{"asset": 1, "cloid": cloid}]})
    assert cancel["response"]["data"]["statuses"] == ["success"]
    again = me.act({"type": "cancel", "cancels": [{"a": 1, "o": oid}]})
    assert again["response"]["data"]["statuses"] == [
        {"error": "Order was never placed, already canceled, or filled."}]
    assert ex.info({"type": "orderStatus", "user": me.address, "oid": oid})["order"][
        "status"] == "canceled"
    assert ex.info({"type": "openOrders", "user": me.address}) == []


def test_batch_modify_replaces_the_order():
    ex = exchange(me=10_000)
    me = Trader(ex)
    oid = me.order(1, True, "3400", "0.5")["resting"]["oid"]
    new = {"a": 1, "b": True, "p": "3410", "s": "0.7", "r": False, "t": {"limit": {"tif": "Gtc"}}}
    answer = me.act({"type": "batchModify", "modifies": [{"oid": oid, "order": new}]})
    (status,) = answer["response"]["data"]["statuses"]
    (row,) = ex.info({"type": "openOrders", "user": me.address})
    assert row["oid"] == status["resting"]["oid"] != oid and (row["limitPx"], row["sz"]) == (
        "3410.0", "0.7")


def test_a_modify_may_keep_the_orders_cloid():
    # What the SDK's modify_order(..., cloid=...) sends was refused as a duplicate cloid,
    # and the order it replaced was gone.
    ex = exchange(me=10_000)
    me = Trader(ex)
    cloid = "0x" + "ab" * 16
    me.order(1, True, "3400", "0.5", cloid=cloid)
    new = {"a": 1, "b": True, "p": "3410", "s": "0.5", "r": False,
           "t": {"limit": {"tif": "Gtc"}}, "c": cloid}
    answer = me.act({"type": "batchModify", "modifies": [{"oid": cloid, "order": new}]})
    (status,) = answer["response"]["data"]["statuses"]
    assert status["resting"]["cloid"] == cloid
    (row,) = ex.info({"type": "openOrders", "user": me.address})
    assert (row["cloid"], row["limitPx"]) == (cloid, "3410.0")
    assert me.order(1, True, "3400", "0.5", cloid=cloid) == {
        "error": f"Duplicate cloid {cloid}. asset=1"}      # still one order per cloid


@pytest.mark.parametrize(("price", "size", "options", "error"), [
    ("3400.05", "0.5", {}, "Order has invalid price. asset=1"),
    ("3400", "0.00001", {}, "Order has invalid size. asset=1"),
    ("3400", "0.001", {}, "Order must have minimum value of $10. asset=1"),
    ("100", "1", {}, "Price too far from oracle asset=1"),
    ("3400", "0.5", {"reduce_only": True}, "Reduce only order would increase position. asset=1"),
    ("3600", "0.5", {"tif": "Alo"}, "Post only order would have immediately matched, bbo was "
                                    "{bid}@{ask}. asset=1"),
    ("3400", "0.5", {"tif": "Ioc"}, "Order could not immediately match against any resting "
                                    "orders. asset=1"),
])
def test_per_order_errors_use_the_exchanges_texts_and_change_nothing(price, size, options,
                                                                     error):
    ex = exchange(me=10_000)
    me = Trader(ex)
    levels = ex.info({"type": "l2Book", "coin": "ETH"})["levels"]
    before = ex.info({"type": "l2Book", "coin": "ETH"})["levels"], me.state()
    status = me.order(1, True, price, size, **options)
    assert status == {"error": error.format(bid=levels[0][0]["px"], ask=levels[1][0]["px"])}
    assert (ex.info({"type": "l2Book", "coin": "ETH"})["levels"], me.state()) == before


def test_margin_is_checked_at_the_leverage_against_the_account_value():
    ex = exchange(me=100)                                   # 20x on ETH: $2,000 of notional
    me = Trader(ex)
    assert "resting" in me.order(1, True, "3000", "0.66")     # 1,980 of notional: 99 USDC
    assert me.order(1, True, "3000", "0.01") == {
        "error": "Insufficient margin to place order. asset=1"}   # 1,980 + 30 > 2,000
    assert me.act({"type": "updateLeverage", "asset": 1, "isCross": True, "leverage": 25}) == {
        "status": "ok", "response": {"type": "default"}}
    assert "resting" in me.order(1, True, "3000", "0.01")          # 25x: $2,500 of notional
    assert me.act({"type": "updateLeverage", "asset": 1, "isCross": True, "leverage": 26}) == {
        "status": "err", "response": "Invalid leverage value 26; ETH allows 1 to 25"}


def test_an_open_isolated_position_lowers_its_leverage_only_with_the_margin_for_it():
    # Lowering the leverage of an open isolated position was accepted whatever its margin
    # (the exchange refuses it, with these texts); switching modes said something else.
    ex = exchange(me=10_000)
    me = Trader(ex)
    leverage = {"type": "updateLeverage", "asset": 1, "isCross": False}
    assert me.act({**leverage, "leverage": 10})["status"] == "ok"
    assert "filled" in me.order(1, True, "3600", "1", tif="Ioc")      # ~$3,500: ~$350 margin
    refused = {"status": "err", "response": (
        "Isolated position does not have sufficient margin available to decrease leverage. "
        "To decrease leverage, add margin to the position.")}
    assert me.act({**leverage, "leverage": 5}) == refused            # needs ~$700
    assert me.act({**leverage, "isCross": True, "leverage": 10}) == {
        "status": "err", "response": "Cannot switch leverage type with open position."}
    assert me.act({**leverage, "leverage": 20})["status"] == "ok"     # raising needs nothing
    assert me.act({"type": "updateIsolatedMargin", "asset": 1, "isBuy": True,
                   "ntli": 400_000_000})["status"] == "ok"            # +$400
    assert me.act({**leverage, "leverage": 5})["status"] == "ok"
    assert me.position("ETH")["leverage"]["value"] == 5


def test_bad_signatures_unknown_signers_and_unfunded_accounts():
    ex = exchange(me=1_000)
    me = Trader(ex)
    body = me.body({"type": "noop"})
    tampered = copy.deepcopy(body)
    tampered["nonce"] += 1                               # recovers to another address
    answer = ex.act(tampered)
    assert answer["status"] == "err" and answer["response"].startswith("User or API Wallet 0x")
    assert answer["response"].endswith(" does not exist.")
    body["signature"] = {"r": "0x0", "s": "0x0", "v": 27}
    assert ex.act(body) == {"status": "err", "response": "Unable to recover signer"}
    stranger = Trader(ex, OTHER)
    assert stranger.act({"type": "noop"})["response"] == \
        f"User or API Wallet {stranger.address} does not exist."
    ex.deposit(stranger.address, 5)
    ex.accounts[stranger.address].portfolio.withdraw(5)
    assert stranger.act({"type": "noop"})["response"] == \
        f"Must deposit before performing actions. User: {stranger.address}"


def test_nonces_are_kept_per_signer_as_the_exchange_keeps_them():
    ex = exchange(me=1_000)
    me = Trader(ex)
    now = ex.clock.now_ms()
    assert me.act({"type": "noop"}, nonce=now + 5)["status"] == "ok"
    assert me.act({"type": "noop"}, nonce=now + 5) == {
        "status": "err", "response": f"Invalid nonce: duplicate nonce {now + 5}"}
    assert me.act({"type": "noop"}, nonce=now + 1)["status"] == "ok"   # older, still unused
    for i in range(100):
        me.act({"type": "noop"}, nonce=now + 1_000 + i)
    least = now + 1_000                                   # the 100 highest are kept
    assert me.act({"type": "noop"}, nonce=now + 2) == {
        "status": "err", "response": f"Invalid nonce: nonce too low {now + 2} < {least}"}
    late = now + 24 * 3_600_000 + 1
    assert me.act({"type": "noop"}, nonce=late)["response"].startswith(
        f"Invalid nonce: {late} is outside the allowed time window")


def test_an_approved_agent_trades_for_its_master_with_its_own_nonces():
    ex = exchange(me=10_000)
    me = Trader(ex)
    agent = Account.from_key("0x" + "33" * 32)
    nonce = ex.clock.now_ms() + 7
    action = {"type": "approveAgent", "agentAddress": agent.address, "agentName": "bot",
              "nonce": nonce}
    signature = sign_agent(me.wallet, action, False)      # adds chain fields like the SDK
    answer = ex.act({"action": action, "nonce": nonce, "signature": signature,
                     "vaultAddress": None, "expiresAfter": None})
    assert answer == {"status": "ok", "response": {"type": "default"}}
    status = me.order(1, True, "3400", "0.5", wallet=agent, nonce=nonce)   # same nonce: ok
    (row,) = ex.info({"type": "openOrders", "user": me.address})
    assert row["oid"] == status["resting"]["oid"]
    assert ex.info({"type": "openOrders", "user": agent.address.lower()}) == []


def test_an_account_cannot_approve_another_users_address_as_its_agent():
    # It could: the other user's orders then landed on the approver's account, and the
    # other user could no longer act for itself.
    ex = exchange(me=10_000, other=10_000)
    me, other = Trader(ex), Trader(ex, OTHER)
    nonce = ex.clock.now_ms() + 7
    action = {"type": "approveAgent", "agentAddress": other.wallet.address, "agentName": "",
              "nonce": nonce}
    answer = ex.act({"action": action, "nonce": nonce, "signature": sign_agent(me.wallet, action,
                                                                               False),
                     "vaultAddress": None, "expiresAfter": None})
    assert answer == {"status": "err",
                      "response": f"Agent {other.address} is already a user's address"}
    status = other.order(1, True, "3400", "0.5")
    (row,) = ex.info({"type": "openOrders", "user": other.address})
    assert row["oid"] == status["resting"]["oid"]
    assert ex.info({"type": "openOrders", "user": me.address}) == []


@pytest.mark.parametrize("field, value", [("amount", "sNaN"), ("signatureChainId", "0x" + "f" * 70),
                                          ("signatureChainId", "-0x1")])
def test_user_signed_fields_that_crashed_the_handler_are_refused(field, value):
    # float(Decimal("sNaN")) is a ValueError and a chain id past 2**256 an OverflowError:
    # both escaped as HTTP 500.
    ex = exchange(me=1_000)
    me = Trader(ex)
    nonce = ex.clock.now_ms() + 7
    action = {"type": "usdSend", "destination": Account.from_key(OTHER).address.lower(),
              "amount": value if field == "amount" else "1.0", "time": nonce}
    signature = sign_usd_transfer_action(me.wallet, action, False)   # adds the chain fields
    action[field] = value
    answer = ex.act({"action": action, "nonce": nonce, "signature": signature,
                     "vaultAddress": None, "expiresAfter": None})
    assert answer["status"] == "err"
    assert answer["response"] in ('Invalid amount "sNaN"', "Unable to recover signer")
    assert me.state()["marginSummary"]["accountValue"] == "1000.0"


def test_the_printed_withdrawable_amount_can_be_withdrawn():
    # It was rounded to 8 decimals, sometimes up, and sending exactly it was refused.
    ex = exchange(me=1_000)
    me = Trader(ex)
    assert "filled" in me.order(1, True, "3600", "2", tif="Ioc")
    printed = me.state()["withdrawable"]
    assert Decimal(printed) <= Decimal(ex.accounts[me.address].portfolio.withdrawable)
    nonce = ex.clock.now_ms() + 7
    action = {"type": "usdSend", "destination": Account.from_key(OTHER).address.lower(),
              "amount": printed, "time": nonce}
    answer = ex.act({"action": action, "nonce": nonce,
                     "signature": sign_usd_transfer_action(me.wallet, action, False),
                     "vaultAddress": None, "expiresAfter": None})
    assert answer == {"status": "ok", "response": {"type": "default"}}


def test_tpsl_children_are_refused_like_any_order_and_share_no_cloid():
    # A child refused after its parent filled at once was answered "waitingForTrigger" and
    # never placed; children and positionTpsl triggers skipped the duplicate-cloid check.
    ex = exchange(me=10_000)
    me = Trader(ex)
    sl = {"trigger": {"isMarket": True, "triggerPx": "3000", "tpsl": "sl"}}

    def wire(is_buy, price, size, reduce_only, kind, cloid=None):
        order = {"a": 1, "b": is_buy, "p": price, "s": size, "r": reduce_only, "t": kind}
        return {**order, "c": cloid} if cloid else order

    def statuses(orders, grouping):
        answer = me.act({"type": "order", "orders": orders, "grouping": grouping})
        return answer["response"]["data"]["statuses"]

    parent = wire(True, "3600", "0.5", False, {"limit": {"tif": "Ioc"}})
    filled, child = statuses([parent, wire(False, "3000.05", "0.5", True, sl)], "normalTpsl")
    assert "filled" in filled and child == {"error": "Order has invalid price. asset=1"}
    cloid = "0x" + "cd" * 16
    assert "resting" in me.order(1, True, "3000", "0.5", cloid=cloid)
    duplicate = {"error": f"Duplicate cloid {cloid}. asset=1"}
    resting = wire(True, "3000", "0.5", False, {"limit": {"tif": "Gtc"}})
    assert statuses([resting, wire(False, "3000", "0.5", True, sl, cloid)],
                    "normalTpsl")[1] == duplicate
    assert statuses([wire(False, "3000", "0.5", True, sl, cloid)], "positionTpsl") == [duplicate]
    open_orders = ex.info({"type": "frontendOpenOrders", "user": me.address})
    with_cloid = [o for o in open_orders if o["cloid"] == cloid] + \
        [c for o in open_orders for c in o["children"] if c["cloid"] == cloid]
    assert len(with_cloid) == 1


def test_funding_is_paid_every_hour_at_the_oracle():
    ex = exchange(makers=0, me=10_000, other=10_000)
    me, other = Trader(ex), Trader(ex, OTHER)
    oracle = ex.oracle.prices["ETH"]
    assert "resting" in other.order(1, False, f"{oracle:.1f}", "1")
    assert "filled" in me.order(1, True, f"{oracle:.1f}", "1", tif="Ioc")
    balances = [float(t.state()["marginSummary"]["accountValue"]) for t in (me, other)]
    ex.clock.advance(3_600_000)
    ex.step()
    rate = 0.0000125                                      # no book: premium 0, interest only
    (history,) = ex.info({"type": "fundingHistory", "coin": "ETH", "startTime": 0})[:1]
    assert float(history["fundingRate"]) == rate
    paid = 1 * ex.oracle.prices["ETH"] * rate
    (funding,) = ex.info({"type": "userFunding", "user": me.address, "startTime": 0})
    assert float(funding["delta"]["usdc"]) == pytest.approx(-paid, abs=1e-6)
    assert ex.accounts[me.address].portfolio.balance == pytest.approx(
        10_000 - oracle * TAKER - paid, abs=1e-6)
    assert ex.accounts[other.address].portfolio.balance == pytest.approx(
        10_000 - oracle * MAKER + paid, abs=1e-6)
    assert balances                                        # both sides were filled


def test_a_position_below_maintenance_margin_is_liquidated_at_the_mark():
    ex = exchange(makers=0, me=200, other=100_000)
    me, other = Trader(ex), Trader(ex, OTHER)
    events = []
    ex.listen(events.append)
    assert "resting" in other.order(1, False, "3500", "1")
    assert "filled" in me.order(1, True, "3500", "1", tif="Ioc")    # 20x on $200: 3,500 long
    liquidation_px = float(me.position("ETH")["liquidationPx"])
    assert liquidation_px < 3500
    ex.set_oracle("ETH", liquidation_px - 1)
    ex.step()
    assert me.position("ETH") is None
    mark = float(ex.instruments[1].round_price(liquidation_px - 1, "nearest"))
    fills = ex.info({"type": "userFills", "user": me.address})
    assert fills[0]["liquidation"]["method"] == "backstop" and float(fills[0]["px"]) == mark
    expected = 200 - 3500 * TAKER - (3500 - mark) - mark * TAKER
    assert ex.accounts[me.address].portfolio.balance == pytest.approx(expected, abs=1e-6)
    assert any(isinstance(e, Liquidation) and e.user == me.address for e in events)


def test_a_stop_loss_trigger_fires_when_the_mark_crosses_it():
    ex = exchange(me=10_000)
    me = Trader(ex)
    assert "filled" in me.order(1, True, "3600", "1", tif="Ioc")
    answer = me.trigger(1, False, "3000", "1", "3300")
    oid = answer["response"]["data"]["statuses"][0]["resting"]["oid"]
    (row,) = ex.info({"type": "frontendOpenOrders", "user": me.address})
    assert (row["isTrigger"], row["orderType"], row["triggerCondition"]) == (
        True, "Stop Market", "Price below 3300.0")
    ex.set_oracle("ETH", 3_290)
    ex.step()
    assert ex.info({"type": "orderStatus", "user": me.address, "oid": oid})["order"][
        "status"] == "filled"
    assert me.position("ETH") is None


def test_a_fired_trigger_passes_the_checks_of_a_new_order_or_is_rejected():
    # A trigger went to the book when it fired without any check: $100 of collateral
    # opened ~$200,000 of ETH, liquidated at once into a negative account.
    ex = exchange(me=100)
    me = Trader(ex)
    assert me.order(1, True, "3600", "100", tif="Ioc") == {
        "error": "Insufficient margin to place order. asset=1"}
    wire = {"a": 1, "b": True, "p": "3600", "s": "100", "r": False,
            "t": {"trigger": {"isMarket": True, "triggerPx": "3400", "tpsl": "sl"}}}
    answer = me.act({"type": "order", "orders": [wire], "grouping": "na"})
    oid = answer["response"]["data"]["statuses"][0]["resting"]["oid"]
    ex.step()                                       # the mark is above 3400: it fires
    assert ex.info({"type": "orderStatus", "user": me.address, "oid": oid})["order"][
        "status"] == "perpMarginRejected"
    assert me.position("ETH") is None
    assert me.state()["marginSummary"]["accountValue"] == "100.0"


def _status(ex, trader, oid):
    return ex.info({"type": "orderStatus", "user": trader.address, "oid": oid})["order"]["status"]


@pytest.mark.parametrize(("first", "second", "cut"), [
    # two reduce-only sells of a 0.5 long: the second would open a short
    (("0.5", True), ("0.5", True), "0.0"),
    # the first takes 0.3: the second may fill 0.2, and its other 0.3 is canceled
    (("0.3", True), ("0.5", True), "0.2"),
    # a plain sell ahead closes the long: the reduce-only behind it may fill nothing
    (("0.5", False), ("0.5", True), "0.0"),
])
def test_a_resting_reduce_only_order_never_fills_past_the_position(first, second, cut):
    # Both resting reduce-only sells of a 0.5 long filled when one taker swept them:
    # the long became a short of 0.5. A reduce-only maker is checked as the taker
    # reaches it; what it cannot reduce is canceled and the taker goes on past it.
    ex = exchange(me=10_000, other=100_000)
    me, other = Trader(ex), Trader(ex, OTHER)
    assert "filled" in me.order(1, True, "3600", "0.5", tif="Ioc")
    ahead = me.order(1, False, "3500", first[0], reduce_only=first[1])["resting"]["oid"]
    behind = me.order(1, False, "3500.1", second[0], reduce_only=second[1])["resting"]["oid"]
    best_maker = float(ex.info({"type": "l2Book", "coin": "ETH"})["levels"][1][2]["px"])
    taken = other.order(1, True, "3600", "1.5", tif="Ioc")["filled"]
    assert taken["totalSz"] == "1.5"
    assert me.position("ETH") is None                      # closed, not flipped
    assert _status(ex, me, ahead) == "filled"
    assert _status(ex, me, behind) == "reduceOnlyCanceled"
    mine = ex.info({"type": "userFills", "user": me.address})
    assert sum(Decimal(f["sz"]) for f in mine if f["side"] == "A") == Decimal("0.5")
    assert [f["sz"] for f in mine if f["px"] == "3500.1"] == ([cut] if cut != "0.0" else [])
    makers = Decimal("1.5") - Decimal(first[0]) - Decimal(cut)    # the rest from the makers
    assert float(other.position("ETH")["szi"]) == 1.5
    assert float(taken["avgPx"]) == pytest.approx(
        (3500 * float(first[0]) + 3500.1 * float(cut) + best_maker * float(makers)) / 1.5,
        rel=1e-4)
    assert ex.info({"type": "openOrders", "user": me.address}) == []


def test_a_reduce_only_order_in_reach_of_a_taker_that_stops_short_is_left_alone():
    ex = exchange(me=10_000, other=100_000)
    me, other = Trader(ex), Trader(ex, OTHER)
    assert "filled" in me.order(1, True, "3600", "0.5", tif="Ioc")
    first = me.order(1, False, "3500", "0.5", reduce_only=True)["resting"]["oid"]
    second = me.order(1, False, "3500.1", "0.5", reduce_only=True)["resting"]["oid"]
    assert other.order(1, True, "3600", "0.3", tif="Ioc")["filled"]["totalSz"] == "0.3"
    assert me.position("ETH")["szi"] == "0.2"
    assert _status(ex, me, first) == _status(ex, me, second) == "open"
    assert other.order(1, True, "3500.1", "0.5", tif="Ioc")["filled"]["totalSz"] == "0.2"
    assert (_status(ex, me, first), _status(ex, me, second)) == ("filled", "reduceOnlyCanceled")


def test_scheduled_cancel_fires_on_the_exchanges_clock():
    ex = exchange(me=10_000)
    me = Trader(ex)
    events = []
    ex.listen(events.append)
    oid = me.order(1, True, "3400", "0.5")["resting"]["oid"]
    now = ex.clock.now_ms()
    assert me.act({"type": "scheduleCancel", "time": now + 1_000})["response"] == \
        "Scheduled cancel time too early, must be at least 5 seconds from now."
    assert me.act({"type": "scheduleCancel", "time": now + 10_000})["status"] == "ok"
    ex.clock.advance(9_999)
    ex.step()
    assert ex.info({"type": "openOrders", "user": me.address})
    ex.clock.advance(1)
    ex.step()
    assert ex.info({"type": "openOrders", "user": me.address}) == []
    assert ex.info({"type": "orderStatus", "user": me.address, "oid": oid})["order"][
        "status"] == "scheduledCancel"
    assert any(isinstance(e, NonUserCancel) for e in events)


def test_fills_reach_listeners_with_the_user():
    ex = exchange(me=10_000)
    me = Trader(ex)
    events = []
    ex.listen(events.append)
    me.order(1, True, "3600", "0.5", tif="Ioc")
    (mine,) = [e for e in events if isinstance(e, UserFills)]
    assert mine.user == me.address and mine.fills[0]["sz"] == "0.5"


def test_an_action_tells_listeners_once_per_user_and_channel_in_order():
    ex = exchange(me=1_000_000)
    me = Trader(ex)
    events = []
    ex.listen(events.append)
    wires = [{"a": 1, "b": True, "p": "3600", "s": "9", "r": False, "t": {"limit": {"tif": "Ioc"}}},
             {"a": 1, "b": True, "p": "3000", "s": "1", "r": False, "t": {"limit": {"tif": "Gtc"}}},
             {"a": 0, "b": False, "p": "90000", "s": "0.3", "r": False,
              "t": {"limit": {"tif": "Ioc"}}}]
    me.act({"type": "order", "orders": wires, "grouping": "na"})
    fills = ex.info({"type": "userFills", "user": me.address})
    (mine,) = [e for e in events if isinstance(e, UserFills)]
    assert len(mine.fills) == len(fills) > 3 and sorted(mine.fills, key=lambda f: f["tid"]) \
        == mine.fills == sorted(fills, key=lambda f: f["tid"])
    (updates,) = [e for e in events if isinstance(e, OrderUpdates)]
    assert [u["status"] for u in updates.updates] == ["filled", "open", "filled"]
    assert sorted(e.coin for e in events if isinstance(e, BookChanged)) == ["BTC", "ETH"]
    assert sorted(e.coin for e in events if isinstance(e, Trades)) == ["BTC", "ETH"]


def test_malformed_bodies_are_undecodable_and_change_nothing():
    ex = exchange(me=10_000)
    me = Trader(ex)
    me.order(1, True, "3400", "0.5")
    good = me.body({"type": "order", "orders": [
        {"a": 1, "b": True, "p": "3410", "s": "0.5", "r": False, "t": {"limit": {"tif": "Gtc"}}}],
        "grouping": "na"})
    snapshot = (ex.info({"type": "openOrders", "user": me.address}), me.state()["marginSummary"])
    rng = random.Random(7)
    breaks = [
        lambda b: b.pop("signature"), lambda b: b.update(nonce="1"),
        lambda b: b["action"].update(type="teleport"),
        lambda b: b["action"]["orders"][0].pop("p"),
        lambda b: b["action"]["orders"][0].update(a="1"),
        lambda b: b["action"]["orders"][0]["t"].update(limit={"tif": "Day"}),
        lambda b: b["action"].update(grouping="sometimes"),
        lambda b: b["action"].update(orders=[]),
        lambda b: b["action"]["orders"][0].update(c="0x12"),
        # 34 characters that int(text, 16) would read: a sign, a space, an underscore
        lambda b: b["action"]["orders"][0].update(c="0x-" + "1" * 31),
        lambda b: b["action"]["orders"][0].update(c="0x " + "1" * 31),
        lambda b: b["action"]["orders"][0].update(c="0x1_" + "1" * 30),
        lambda b: b["action"]["orders"][0].update(t={"limit": {"tif": ["Gtc"]}}),
    ]
    for _ in range(90):
        body = copy.deepcopy(good)
        rng.choice(breaks)(body)
        with pytest.raises(Undecodable):
            ex.act(body)
    assert (ex.info({"type": "openOrders", "user": me.address}),
            me.state()["marginSummary"]) == snapshot
    for request in ({"type": "l2Book"}, {"type": "nope"}, {"coin": "ETH"},
                    {"type": "clearinghouseState", "user": "bob"}):
        with pytest.raises(Undecodable):
            ex.info(request)
    assert ex.info({"type": "l2Book", "coin": "DOGE"}) is None


def test_l2_book_aggregates_to_significant_figures():
    ex = exchange()
    levels = ex.info({"type": "l2Book", "coin": "BTC", "nSigFigs": 3})["levels"]
    raw = ex.info({"type": "l2Book", "coin": "BTC"})["levels"]
    assert levels[1][0]["px"] == "101000.0"              # asks round up at 3 figures
    assert float(levels[1][0]["sz"]) == pytest.approx(sum(float(x["sz"]) for x in raw[1]))
    assert levels[0][0]["px"] == "99900.0" and levels[0][0]["n"] == len(raw[0])
    fine = ex.info({"type": "l2Book", "coin": "BTC", "nSigFigs": 5, "mantissa": 5})["levels"]
    assert all(float(x["px"]) % 5 == 0 for x in fine[0] + fine[1])


def test_on_a_simulated_clock_wall_clock_nonces_stay_on_time():
    import time

    ex = exchange(me=1_000)
    me = Trader(ex)
    ex.clock.advance(3 * 86_400_000)                      # days ahead of any wall clock nonce
    wall = time.time_ns() // 1_000_000
    assert me.act({"type": "noop"}, nonce=wall)["status"] == "ok"      # the SDK's nonces
    assert me.act({"type": "noop"}, nonce=ex.clock.now_ms() + 1)["status"] == "ok"
    stale = ex.clock.now_ms() - 3 * 86_400_000 - 1
    assert me.act({"type": "noop"}, nonce=stale)["response"].startswith(
        f"Invalid nonce: {stale} is outside the allowed time window")


def test_scheduled_cancel_counts_triggers_that_fire_not_renewals():
    ex = exchange(me=10_000)
    me = Trader(ex)
    for _ in range(30):                                   # a dead man's switch renewed often
        deadline = ex.clock.now_ms() + 30_000
        assert me.act({"type": "scheduleCancel", "time": deadline})["status"] == "ok"
        ex.clock.advance(10_000)
        ex.step()
    for _ in range(10):                                   # ten that fire use up the day
        me.act({"type": "scheduleCancel", "time": ex.clock.now_ms() + 5_000})
        ex.clock.advance(5_000)
        ex.step()
    answer = me.act({"type": "scheduleCancel", "time": ex.clock.now_ms() + 5_000})
    assert answer == {"status": "err",
                      "response": "Too many scheduled cancel triggers today (at most 10)."}


def test_funding_pays_an_eighth_of_the_8_hour_rate_when_the_premium_is_large():
    ex = exchange(makers=0, me=100_000, other=100_000)
    other = Trader(ex, OTHER)
    oracle = ex.oracle.prices["ETH"]
    assert "resting" in other.order(1, True, f"{oracle * 1.02:.1f}", "1")
    assert "resting" in other.order(1, False, f"{oracle * 1.04:.1f}", "1")
    ex.clock.advance(3_600_000)
    ex.step()
    (history,) = ex.info({"type": "fundingHistory", "coin": "ETH", "startTime": 0})[:1]
    premium = float(history["premium"])
    assert premium > 0.02                                  # the book sits 3 % over the oracle
    eight_hour = premium + min(max(0.0001 - premium, -0.0005), 0.0005)
    assert float(history["fundingRate"]) == pytest.approx(eight_hour / 8, rel=1e-9)


def test_a_fill_that_flips_a_position_says_so_in_its_direction():
    ex = exchange(me=100_000)
    me = Trader(ex)
    me.order(1, False, "3000", "0.5", tif="Ioc")                   # short 0.5
    me.order(1, True, "3600", "1.2", tif="Ioc")                    # buys through flat to long 0.7
    fills = ex.info({"type": "userFills", "user": me.address})
    flip = [f for f in fills if f["side"] == "B"]
    assert [(f["startPosition"], f["dir"]) for f in flip][0] == ("-0.5", "Short > Long")
    assert me.position("ETH")["szi"] == "0.7"


def test_candles_fold_every_trade_of_a_sweep():
    ex = exchange(me=100_000)
    me = Trader(ex)
    for is_buy, price, size in ((True, "3600", "23.7"), (False, "3000", "45.1"),
                                (True, "3600", "30.9")):
        me.order(1, is_buy, price, size, tif="Ioc")
        ex.clock.advance(70_000)                                   # the next 1m bar
    trades = sorted(ex.info({"type": "recentTrades", "coin": "ETH"}), key=lambda t: t["tid"])
    assert len(trades) > 3                                         # sweeps of several levels
    for interval, ms in (("1m", 60_000), ("1h", 3_600_000)):
        bars = ex.info({"type": "candleSnapshot", "req": {
            "coin": "ETH", "interval": interval, "startTime": 0, "endTime": 2**60}})
        expected: dict[int, list] = {}
        for t in trades:
            expected.setdefault(t["time"] - t["time"] % ms, []).append(t)
        assert [b["t"] for b in bars] == sorted(expected)
        for bar in bars:
            group = expected[bar["t"]]
            prices = [Decimal(t["px"]) for t in group]
            assert (Decimal(bar["o"]), Decimal(bar["h"]), Decimal(bar["l"]), Decimal(bar["c"])) \
                == (prices[0], max(prices), min(prices), prices[-1])
            assert Decimal(bar["v"]) == sum(Decimal(t["sz"]) for t in group)
            assert bar["n"] == len(group)


def test_memory_stays_flat_finished_orders_and_old_fills_are_forgotten(monkeypatch):
    monkeypatch.setattr(exchange_module, "KEPT_FINISHED", 20)
    monkeypatch.setattr(exchange_module, "KEPT_FILLS", 15)
    ex = exchange(me=1_000_000)
    me = Trader(ex)
    open_cloid = "0x" + "ff" * 16
    assert "resting" in me.order(1, True, "3000", "0.01", cloid=open_cloid)
    cloids = [f"0x{n + 1:032x}" for n in range(200)]
    for cloid in cloids:
        assert "filled" in me.order(1, True, "3600", "0.01", tif="Ioc", cloid=cloid)
    open_orders = sum(len(account.orders) for account in ex.accounts.values())
    assert len(ex._orders) <= 2 * open_orders + 20 < 241     # not all 241 ever placed
    fills = ex.info({"type": "userFills", "user": me.address})
    assert len(fills) == 15 and fills[0]["cloid"] == cloids[-1]      # the newest 15
    assert me.order(1, True, "3600", "0.01", tif="Ioc", cloid=cloids[-1]) == {
        "error": f"Duplicate cloid {cloids[-1]}. asset=1"}   # finished lately: still known
    assert "filled" in me.order(1, True, "3600", "0.01", tif="Ioc", cloid=cloids[0])
    cancel = me.act({"type": "cancelByCloid", "cancels": [{"asset": 1, "cloid": open_cloid}]})
    assert cancel["response"]["data"]["statuses"] == ["success"]     # open: never forgotten


class WallLikeClock(SimClock):
    """Moves when told, but steps as the wall clock's exchange does (not simulated)."""

    simulated = False


def test_on_the_wall_clock_makers_requote_a_slice_per_step():
    ex = LocalExchange(["BTC", "ETH"], makers=8, clock=WallLikeClock())
    simulated = LocalExchange(["BTC", "ETH"], makers=8, clock=SimClock())

    def ladders(exchange):
        return [frozenset(maker.orders) for maker in exchange._makers]

    for exchange in (ex, simulated):
        before = ladders(exchange)
        exchange.clock.advance(1_000)                          # the oracle moves
        exchange.step()
        moved = [now != then for now, then in zip(ladders(exchange), before, strict=True)]
        if exchange is simulated:
            assert all(moved)                                  # a test's /advance: all at once
        else:
            assert moved == [True] * 2 + [False] * 6           # a quarter of 8 per step
            for _ in range(3):
                exchange.step()
            assert all(now != then for now, then in zip(ladders(exchange), before,
                                                          strict=True))
            assert len({coin for coin in exchange.books if exchange.books[coin]}) == 2
