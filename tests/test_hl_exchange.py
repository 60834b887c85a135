"""Exchange requests: whole bodies equal the official SDK's; HTTP behaviour on a local server."""

import asyncio
import math
import threading
from types import SimpleNamespace

import pytest
from hl_server import USER, HLServer, Reply
from hypothesis import given, settings
from hypothesis import strategies as st

from obelisk.hyperliquid.actions import (
    ExchangeActions,
    NonceSource,
    OrderOutcome,
    parse_exchange_response,
)
from obelisk.hyperliquid.errors import (
    InvalidAddressError,
    InvalidAmountError,
    InvalidTransferError,
    MalformedResponseError,
)
from obelisk.hyperliquid.exchange import AsyncExchange, Exchange, slippage_price
from obelisk.hyperliquid.info import AsyncInfo, Info
from obelisk.hyperliquid.transport import AsyncTransport, Transport
from obelisk.hyperliquid.wallet import Wallet
from obelisk.hyperliquid.wire import Cloid

KEY = "0x" + "1f" * 32
AGENT_KEY = "0x" + "2e" * 32
DESTINATION = "0x0000000000000000000000000000000000000abc"
ASSETS = {"BTC": 0, "ETH": 1, "PURR/USDC": 10_000}
VAULT = "0x1719884eb866cb12b2287399b15f7db5e7d775ea"
NONCE = 1_700_000_000_123


# ------------------------------------------------------------ parity with the SDK

def sdk_exchange(is_mainnet, vault, expires_after):
    """The official SDK's Exchange with its network replaced by a capture of the body."""
    sdk_exchange_module = pytest.importorskip("hyperliquid.exchange")
    from eth_account import Account
    from hyperliquid.utils import constants

    sdk = sdk_exchange_module.Exchange.__new__(sdk_exchange_module.Exchange)
    sdk.wallet = Account.from_key(KEY)
    sdk.vault_address, sdk.account_address, sdk.expires_after = vault, None, expires_after
    sdk.base_url = constants.MAINNET_API_URL if is_mainnet else constants.TESTNET_API_URL
    sdk.info = SimpleNamespace(name_to_asset=ASSETS.__getitem__)
    sent = []
    sdk.post = lambda path, payload: sent.append(payload)
    return sdk, sent


def ours(is_mainnet, vault, expires_after):
    return ExchangeActions(Wallet(KEY), ASSETS.__getitem__, is_mainnet=is_mainnet,
                           vault_address=vault, expires_after=expires_after,
                           nonces=NonceSource(lambda: NONCE))


prices = st.sampled_from([0.1234, 1.5, 27.35, 1891.4, 60_000.0, 113_377.0])
sizes = st.sampled_from([0.001, 0.02, 1.0, 12.5, 1000.0])
order_types = st.one_of(
    st.sampled_from([{"limit": {"tif": t}} for t in ("Gtc", "Ioc", "Alo")]),
    st.builds(lambda px, m, kind: {"trigger": {"triggerPx": px, "isMarket": m, "tpsl": kind}},
              prices, st.booleans(), st.sampled_from(["tp", "sl"])))
cloids = st.one_of(st.none(), st.integers(0, 2**128 - 1).map(Cloid.from_int))
orders = st.fixed_dictionaries({
    "coin": st.sampled_from(list(ASSETS)), "is_buy": st.booleans(), "sz": sizes,
    "limit_px": prices, "order_type": order_types, "reduce_only": st.booleans(),
}, optional={"cloid": cloids.filter(lambda c: c is not None)})
setups = st.tuples(st.booleans(), st.sampled_from([None, VAULT]),
                   st.sampled_from([None, NONCE + 60_000]))


@settings(max_examples=25, deadline=None)
@given(setups, st.lists(orders, min_size=1, max_size=3),
       st.sampled_from(["na", "normalTpsl", "positionTpsl"]),
       st.sampled_from([None, {"b": "0xABCDEF0123456789ABCDEF0123456789ABCDEF01", "f": 10}]))
def test_order_bodies_equal_the_sdk(setup, requests, grouping, builder):
    sdk, sent = sdk_exchange(*setup)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("hyperliquid.exchange.get_timestamp_ms", lambda: NONCE)
        sdk.bulk_orders([dict(r) for r in requests], dict(builder) if builder else None,
                        grouping)
    assert ours(*setup).bulk_orders(requests, builder, grouping) == sent[0]
    sdk_signing = pytest.importorskip("hyperliquid.utils.signing")
    wires = [sdk_signing.order_request_to_order_wire(dict(r), ASSETS[r["coin"]])
             for r in requests]
    assert ours(*setup).order_wires(wires, builder, grouping) == sent[0]   # wires as they are


@settings(max_examples=10, deadline=None)
@given(setups)
def test_other_action_bodies_equal_the_sdk(setup):
    sdk_types = pytest.importorskip("hyperliquid.utils.types")
    cloid, sdk_cloid = Cloid.from_int(7), sdk_types.Cloid.from_int(7)
    order = {"coin": "ETH", "is_buy": True, "sz": 1.0, "limit_px": 2000.0,
             "order_type": {"limit": {"tif": "Gtc"}}, "reduce_only": False, "cloid": None}
    calls = [
        (lambda s: s.bulk_cancel([{"coin": "BTC", "oid": 7}, {"coin": "ETH", "oid": 9}]),
         lambda o: o.bulk_cancel([("BTC", 7), ("ETH", 9)])),
        (lambda s: s.bulk_cancel_by_cloid([{"coin": "ETH", "cloid": sdk_cloid}]),
         lambda o: o.bulk_cancel_by_cloid([("ETH", cloid)])),
        (lambda s: s.bulk_modify_orders_new([{"oid": 42, "order": order},
                                             {"oid": sdk_cloid, "order": order}]),
         lambda o: o.bulk_modify([{"oid": 42, "order": order}, {"oid": cloid, "order": order}])),
        (lambda s: s.schedule_cancel(NONCE + 10_000), lambda o: o.schedule_cancel(NONCE + 10_000)),
        (lambda s: s.schedule_cancel(None), lambda o: o.schedule_cancel(None)),
        (lambda s: s.update_leverage(7, "BTC", False),
         lambda o: o.update_leverage(7, "BTC", False)),
        (lambda s: s.update_isolated_margin(-12.5, "ETH"),
         lambda o: o.update_isolated_margin(-12.5, "ETH")),
        (lambda s: s.usd_transfer(10.5, USER), lambda o: o.usd_transfer(10.5, USER)),
        (lambda s: s.spot_transfer(3.0, USER, "PURR:0xc1fb593aeffbeb02f85e0308e9956a90"),
         lambda o: o.spot_transfer(3.0, USER, "PURR:0xc1fb593aeffbeb02f85e0308e9956a90")),
        (lambda s: s.withdraw_from_bridge(5.0, USER), lambda o: o.withdraw_from_bridge(5.0, USER)),
        (lambda s: s.usd_class_transfer(1.5, True), lambda o: o.usd_class_transfer(1.5, True)),
        (lambda s: s.send_asset(USER, "", "spot", "USDC", 2.0),
         lambda o: o.send_asset(USER, "", "spot", "USDC", 2.0)),
        (lambda s: s.approve_builder_fee(VAULT, "0.001%"),
         lambda o: o.approve_builder_fee(VAULT, "0.001%")),
    ]
    user_signed = {"usd_transfer", "spot_transfer", "withdraw_from_bridge", "usd_class_transfer",
                   "send_asset", "approve_builder_fee"}
    for sdk_call, our_call in calls:
        is_mainnet, vault, expires = setup
        name = our_call.__code__.co_names[0]
        if name in user_signed:
            expires = None                      # user-signed actions cannot expire
        sdk, sent = sdk_exchange(is_mainnet, vault, expires)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("hyperliquid.exchange.get_timestamp_ms", lambda: NONCE)
            sdk_call(sdk)
        assert our_call(ours(is_mainnet, vault, expires)) == sent[0], name


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["usd_transfer", "withdraw_from_bridge", "spot_transfer"]),
       st.decimals(min_value="0.0001", max_value=10**9, places=6).map(float))
def test_valid_transfer_amounts_sign_as_the_sdk_does(method, amount):
    """Validation lets through every amount the SDK sends in plain notation, unchanged."""
    args = (amount, USER) + (("PURR:0xc1fb593aeffbeb02f85e0308e9956a90",)
                             if method == "spot_transfer" else ())
    sdk, sent = sdk_exchange(False, None, None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("hyperliquid.exchange.get_timestamp_ms", lambda: NONCE)
        getattr(sdk, method)(*args)
    assert getattr(ours(False, None, None), method)(*args) == sent[0]


# ------------------------------------------------------------------- nonces

def test_nonces_are_unique_and_increasing_across_threads():
    source = NonceSource(lambda: NONCE)          # a clock that stands still
    seen = []
    lock = threading.Lock()

    def take():
        for _ in range(500):
            nonce = source.next()
            with lock:
                seen.append(nonce)

    workers = [threading.Thread(target=take) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(set(seen)) == 2_000 and min(seen) == NONCE


# ------------------------------------------------------------------ responses

def test_responses_parse_into_typed_statuses():
    answer = {"status": "ok", "response": {"type": "order", "data": {"statuses": [
        {"resting": {"oid": 77738308, "cloid": "0x" + "00" * 15 + "07"}},
        {"filled": {"totalSz": "0.02", "avgPx": "1891.4", "oid": 77747314}},
        {"error": "Order must have minimum value of $10. asset=0"},
        "waitingForFill"]}}}
    result = parse_exchange_response(answer, 4)
    assert not result.ok and result.kind == "order"
    assert all(isinstance(status, OrderOutcome) for status in result.statuses)
    resting, filled, error, waiting = result.statuses
    assert (resting.kind, resting.oid) == ("resting", 77738308)
    assert resting.cloid == "0x" + "0" * 30 + "07"
    assert (filled.total_size, filled.average_price, filled.oid) == (0.02, 1891.4, 77747314)
    assert error.error.startswith("Order must have") and not error.ok
    assert waiting.kind == "waitingForFill" and waiting.ok
    one_error = {"status": "ok", "response": {"type": "order", "data": {"statuses": [
        {"error": "Invalid TP/SL price."}]}}}
    assert [s.error for s in parse_exchange_response(one_error, 3).statuses] == \
        ["Invalid TP/SL price."] * 3                # one error answers the whole batch
    refused = parse_exchange_response({"status": "err", "response": "User does not exist."}, 2)
    assert not refused.ok and refused.error == "User does not exist." and len(refused.statuses) == 2
    assert parse_exchange_response({"status": "ok", "response": {"type": "default"}}).ok
    def statuses(*entries):
        return {"status": "ok", "response": {"type": "order", "data": {"statuses": entries}}}

    for garbage in (None, [], {"status": "maybe"}, {"status": "ok", "response": "x"},
                    statuses(7), statuses({"resting": {"oid": None}}),
                    statuses({"filled": {"totalSz": None, "avgPx": "1.0", "oid": 1}}),
                    statuses({"filled": {"totalSz": "0.1", "avgPx": "x", "oid": 1}})):
        with pytest.raises(MalformedResponseError):
            parse_exchange_response(garbage)


def test_slippage_price_matches_the_sdk_recipe():
    assert slippage_price(123_456.0, True, 0.05, 5, False) == 129_630.0
    assert slippage_price(2_000.0, False, 0.05, 4, False) == 1_900.0
    assert slippage_price(0.14, True, 0.05, 0, True) == 0.147


# ----------------------------------------------------------------- over HTTP

@pytest.fixture
def server():
    with HLServer() as running:
        yield running


def test_an_order_is_posted_once_and_drops_the_accounts_cached_state(server):
    with Transport(server.url) as transport:
        info = Info(transport)
        exchange = Exchange(Wallet(KEY), info, account_address=USER)
        info.open_orders(USER)
        info.open_orders(USER)
        assert len(server.hits_for("openOrders")) == 1          # cached
        server.queue("exchange", Reply({"status": "ok", "response": {"type": "order", "data": {
            "statuses": [{"resting": {"oid": 5}}]}}}))
        result = exchange.order("BTC", True, 0.01, 60_000.0, {"limit": {"tif": "Gtc"}})
        assert result.ok and result.statuses[0].oid == 5
        assert len(server.hits_for("exchange")) == 1
        body = server.hits_for("exchange")[0].body
        assert body["action"]["orders"][0]["a"] == 0 and body["vaultAddress"] is None
        info.open_orders(USER)
        assert len(server.hits_for("openOrders")) == 2          # invalidated by the order


def test_an_answered_action_is_never_resent(server):
    with Transport(server.url) as transport:
        exchange = Exchange(Wallet(KEY), Info(transport))
        server.queue("exchange", Reply({"error": "busy"}, status=500))
        with pytest.raises(Exception, match="500"):
            exchange.cancel("ETH", 7)
        assert len(server.hits_for("exchange")) == 1


def test_market_close_reads_the_position_and_sends_a_reduce_only_ioc(server):
    with Transport(server.url) as transport:
        exchange = Exchange(Wallet(KEY), Info(transport), account_address=USER)
        exchange.market_close("ETH")
        (hit,) = server.hits_for("exchange")
        (wire,) = hit.body["action"]["orders"]
        position = next(p for p in Info(transport).clearinghouse_state(USER).positions
                        if p.coin == "ETH")
        assert wire["r"] is True and wire["t"] == {"limit": {"tif": "Ioc"}}
        assert wire["b"] == (position.szi < 0) and float(wire["s"]) == abs(position.szi)


def test_async_exchange_posts_and_parses(server):
    async def main():
        async with AsyncTransport(server.url) as transport:
            exchange = await AsyncExchange.create(Wallet(KEY), AsyncInfo(transport))
            result = await exchange.market_open("ETH", True, 0.5)
            assert result.ok
            (wire,) = server.hits_for("exchange")[0].body["action"]["orders"]
            assert float(wire["p"]) == slippage_price(3601.5, True, 0.05, 4, False)

    asyncio.run(main())


# ------------------------------------------------------------- transfer checks

TRANSFERS = {
    "usd_transfer": lambda x, amount, to: x.usd_transfer(amount, to),
    "spot_transfer": lambda x, amount, to: x.spot_transfer(amount, to, "PURR:0xc1fb593aeff"),
    "withdraw_from_bridge": lambda x, amount, to: x.withdraw_from_bridge(amount, to),
    "usd_class_transfer": lambda x, amount, to: x.usd_class_transfer(amount, True),
    "send_asset": lambda x, amount, to: x.send_asset(to, "", "spot", "USDC", amount),
}
BAD_AMOUNTS = [-1, -1.0, 0, 0.0, -0.0, math.nan, math.inf, -math.inf, 1e30, 2.0**64, 10**30,
               0.1 + 0.2, 1e-9, True, "10", None]
BAD_ADDRESSES = ["x", "not an address", "0x123", "0x" + "g" * 40, "0X" + "ab" * 20, "ab" * 21,
                 "0x" + "ab" * 20 + "0", " 0x" + "ab" * 20, "", None, 0xABC]


@pytest.mark.parametrize("method", list(TRANSFERS))
@pytest.mark.parametrize("amount", BAD_AMOUNTS, ids=repr)
def test_a_bad_transfer_amount_is_refused_and_nothing_is_sent(server, method, amount):
    with Transport(server.url) as transport:
        exchange = Exchange(Wallet(KEY), Info(transport))
        with pytest.raises(InvalidAmountError) as caught:
            TRANSFERS[method](exchange, amount, DESTINATION)
        assert isinstance(caught.value, InvalidTransferError)
        assert isinstance(caught.value, ValueError)
    assert server.hits_for("exchange") == []


@pytest.mark.parametrize("method", [m for m in TRANSFERS if m != "usd_class_transfer"])
@pytest.mark.parametrize("destination", BAD_ADDRESSES, ids=repr)
def test_a_bad_destination_is_refused_and_nothing_is_sent(server, method, destination):
    with Transport(server.url) as transport:
        exchange = Exchange(Wallet(KEY), Info(transport))
        with pytest.raises(InvalidAddressError, match="not an address"):
            TRANSFERS[method](exchange, 1.0, destination)
    assert server.hits_for("exchange") == []


def test_the_issue_cases_are_refused_by_both_clients(server):
    """Issue 13: usd_transfer(-1, "x"), (nan, ...) and (1e30, "not an address") were sent."""
    cases = [(-1, "x"), (math.nan, DESTINATION), (1e30, "not an address"), (1e30, DESTINATION)]
    with Transport(server.url) as transport:
        exchange = Exchange(Wallet(KEY), Info(transport))
        for amount, destination in cases:
            with pytest.raises(InvalidTransferError):
                exchange.usd_transfer(amount, destination)

    async def main():
        async with AsyncTransport(server.url) as transport:
            exchange = await AsyncExchange.create(Wallet(KEY), AsyncInfo(transport))
            for amount, destination in cases:
                with pytest.raises(InvalidTransferError):
                    await exchange.usd_transfer(amount, destination)

    asyncio.run(main())
    assert server.hits_for("exchange") == []


def test_a_bad_sub_account_is_refused_for_the_transfers_that_name_it(server):
    with Transport(server.url) as transport:
        exchange = Exchange(Wallet(KEY), Info(transport), vault_address="0xnot-a-vault")
        for method in ("usd_class_transfer", "send_asset"):
            with pytest.raises(InvalidAddressError, match="sub-account"):
                TRANSFERS[method](exchange, 1.0, DESTINATION)
    assert server.hits_for("exchange") == []


def test_amounts_are_checked_against_the_assets_decimals_and_units():
    actions = ours(False, None, None)
    assert actions.usd_transfer(0.000001, USER)["action"]["amount"] == "0.000001"
    assert actions.spot_transfer(1e-08, USER, "PURR")["action"]["amount"] == "0.00000001"
    assert actions.usd_transfer(10, USER)["action"]["amount"] == "10"        # str(int), as the SDK
    assert actions.usd_transfer(1e13, USER)["action"]["amount"] == "10000000000000.0"
    for too_fine in (0.0000001, 1.0000001):
        with pytest.raises(InvalidAmountError, match="more than 6 decimals"):
            actions.usd_transfer(too_fine, USER)
    actions.spot_transfer(1.00000001, USER, "PURR")                           # 8 for tokens
    with pytest.raises(InvalidAmountError, match="more than 8 decimals"):
        actions.spot_transfer(1.000000001, USER, "PURR")
    with pytest.raises(InvalidAmountError, match="too large"):
        actions.usd_transfer(2e13, USER)                                       # > 2**64 micro-USDC
    assert actions.usd_class_transfer(1.5, True)["action"]["amount"] == "1.5"


# ------------------------------------------------------ whose cache an action drops

def test_an_agents_action_drops_its_owners_cached_state(server):
    """Issue 13: with an agent and no account_address, the agent's cache was dropped."""
    with Transport(server.url) as transport:
        info = Info(transport)
        owner = Wallet(KEY)
        _, agent = Exchange(owner, info).approve_agent("bot")
        exchange = Exchange(agent, info)
        info.open_orders(owner.address)
        info.open_orders(owner.address)
        assert len(server.hits_for("openOrders")) == 1          # cached
        exchange.cancel("ETH", 7)
        info.open_orders(owner.address)
        assert len(server.hits_for("openOrders")) == 2          # dropped by the agent's cancel
        assert exchange.account == agent.owner == owner.address != agent.address


def test_an_agent_named_with_its_owner_trades_for_the_owner(server):
    with Transport(server.url) as transport:
        info = Info(transport)
        exchange = Exchange(Wallet(AGENT_KEY, owner=USER), info)
        assert exchange.account.lower() == USER
        info.open_orders(USER)
        exchange.cancel("ETH", 7)
        info.open_orders(USER)
        assert len(server.hits_for("openOrders")) == 2


def test_account_address_wins_over_the_agents_owner(server):
    with Transport(server.url) as transport:
        exchange = Exchange(Wallet(AGENT_KEY, owner=USER), Info(transport),
                            account_address=VAULT)
        assert exchange.account == exchange.own_account == VAULT
        exchange = Exchange(Wallet(AGENT_KEY, owner=USER), Info(transport), vault_address=VAULT)
        assert exchange.account == VAULT and exchange.own_account.lower() == USER


def test_an_async_agents_action_drops_its_owners_cached_state(server):
    async def main():
        async with AsyncTransport(server.url) as transport:
            info = AsyncInfo(transport)
            exchange = await AsyncExchange.create(Wallet(AGENT_KEY, owner=USER), info)
            await info.open_orders(USER)
            await exchange.cancel("ETH", 7)
            await info.open_orders(USER)
            assert len(server.hits_for("openOrders")) == 2

    asyncio.run(main())


def test_a_transfer_drops_the_senders_and_the_destinations_state(server):
    """usdSend moves the signer's own funds even when a vault is traded, and credits another."""
    with Transport(server.url) as transport:
        info = Info(transport)
        exchange = Exchange(Wallet(KEY), info, vault_address=VAULT)
        sender = exchange.wallet.address
        for user in (sender, DESTINATION, VAULT):
            info.clearinghouse_state(user)
        exchange.usd_transfer(1.0, DESTINATION)
        for user in (sender, DESTINATION, VAULT):
            info.clearinghouse_state(user)
        fetched = [hit.body["user"].lower() for hit in server.hits_for("clearinghouseState")]
        assert fetched.count(sender.lower()) == 2 and fetched.count(DESTINATION) == 2
        assert fetched.count(VAULT) == 1                # untouched by a usdSend
