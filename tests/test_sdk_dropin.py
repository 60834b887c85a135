"""`obelisk.hyperliquid.sdk` against the official SDK it replaces.

* every public method of the SDK's Info, Exchange and utils.signing exists here with the
  same parameters;
* every Exchange method posts the very bytes the SDK posts (hypothesis over arguments;
  the SDK's network is a capture of what ``requests`` would send, ours an httpx mock);
* Info answers and errors equal the SDK's, on the local server and on canned answers;
* a typical SDK script runs against ``obelisk serve`` with only its imports changed.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

requests = pytest.importorskip("requests")
eth_account = pytest.importorskip("eth_account")
sdk_exchange_module = pytest.importorskip("hyperliquid.exchange")
import hyperliquid.info as sdk_info_module  # noqa: E402
import hyperliquid.utils.signing as sdk_signing  # noqa: E402
import hyperliquid.websocket_manager as sdk_ws_module  # noqa: E402
from hyperliquid.utils import error as sdk_error  # noqa: E402
from hyperliquid.utils.types import Cloid as SdkCloid  # noqa: E402

from obelisk.hyperliquid.sdk import api as our_api  # noqa: E402
from obelisk.hyperliquid.sdk import exchange as our_exchange_module  # noqa: E402
from obelisk.hyperliquid.sdk import info as our_info_module  # noqa: E402
from obelisk.hyperliquid.sdk import websocket_manager as our_ws_module  # noqa: E402
from obelisk.hyperliquid.sdk.utils import error as our_error  # noqa: E402
from obelisk.hyperliquid.sdk.utils import signing as our_signing  # noqa: E402
from obelisk.hyperliquid.sdk.utils.constants import MAINNET_API_URL, TESTNET_API_URL  # noqa: E402
from obelisk.hyperliquid.sdk.utils.types import Cloid  # noqa: E402
from obelisk.hyperliquid.transport import Transport, TransportConfig  # noqa: E402
from obelisk.hyperliquid.wallet import Wallet  # noqa: E402

KEY = "0x" + "1f" * 32
NONCE = 1_700_000_000_123
USER = "0x5e9ee1089755c3435139848e47e6635505d5a13a"
VAULT = "0x1719884eb866cb12b2287399b15f7db5e7d775ea"
META = {"universe": [{"name": "BTC", "szDecimals": 5}, {"name": "ETH", "szDecimals": 4}]}
SPOT_META = {"tokens": [{"name": "USDC", "szDecimals": 8, "weiDecimals": 8, "index": 0,
                         "tokenId": "0x6d1e7cde53ba9467b783cb7c530ce054", "isCanonical": True,
                         "evmContract": None, "fullName": None},
                        {"name": "PURR", "szDecimals": 0, "weiDecimals": 5, "index": 1,
                         "tokenId": "0xc1fb593aeffbeb02f85e0308e9956a90", "isCanonical": True,
                         "evmContract": None, "fullName": None}],
             "universe": [{"name": "PURR/USDC", "tokens": [1, 0], "index": 0,
                           "isCanonical": True}]}
MIDS = {"BTC": "60012.5", "ETH": "3001.7", "PURR/USDC": "0.21234"}


# ------------------------------------------------------------------ the same API


def public_methods(cls):
    return {name: member for name, member in vars(cls).items()
            if callable(member) and not name.startswith("_")}


@pytest.mark.parametrize(("theirs", "ours"), [
    (sdk_info_module.Info, our_info_module.Info),
    (sdk_exchange_module.Exchange, our_exchange_module.Exchange),
    (sdk_ws_module.WebsocketManager, our_ws_module.WebsocketManager),
])
def test_every_public_method_has_the_sdks_parameters(theirs, ours):
    assert set(public_methods(theirs)) <= set(public_methods(ours))
    for name in ["__init__", *public_methods(theirs)]:
        expected = inspect.signature(getattr(theirs, name)).parameters
        got = inspect.signature(getattr(ours, name)).parameters
        assert [(p.name, p.kind, p.default) for p in expected.values()] == \
               [(p.name, p.kind, p.default) for p in got.values()], name


def test_every_public_signing_function_and_constant_exists():
    names = {name for name, value in vars(sdk_signing).items()
             if not name.startswith("_") and getattr(value, "__module__", None)
             == sdk_signing.__name__ and inspect.isfunction(value)}
    names |= {name for name in vars(sdk_signing) if name.endswith("_TYPES")}
    missing = sorted(name for name in names if not hasattr(our_signing, name))
    assert not missing
    for name in names:
        if name.endswith("_TYPES"):
            assert getattr(our_signing, name) == getattr(sdk_signing, name), name


def test_errors_have_the_sdks_fields():
    for args in [(404, "E1", "bad", {"h": "1"}, {"d": 2}), (422, None, "text", None)]:
        theirs, ours = sdk_error.ClientError(*args), our_error.ClientError(*args)
        assert vars(theirs) == vars(ours) and theirs.args == ours.args
    assert vars(sdk_error.ServerError(502, "x")) == vars(our_error.ServerError(502, "x"))
    assert issubclass(our_error.ClientError, our_error.Error)


# ------------------------------------------------------------------ canned network


def canned_answer(path, body):
    """What the fake server answers: the mids, a short ETH and a long BTC position."""
    if path.endswith("/exchange"):
        return {"status": "ok", "response": {"type": "default"}}
    if body["type"] == "allMids":
        return MIDS
    if body["type"] == "clearinghouseState":
        return {"assetPositions": [
            {"type": "oneWay", "position": {"coin": "ETH", "szi": "-1.5"}},
            {"type": "oneWay", "position": {"coin": "BTC", "szi": "0.25"}}]}
    raise AssertionError(body)


class FakeSession:
    """A ``requests.Session`` that records the bytes ``requests`` would send."""

    def __init__(self, answer=canned_answer):
        self.headers = {"Content-Type": "application/json"}
        self.sent = []
        self.answer = answer

    def post(self, url, json=None, timeout=None):
        prepared = requests.Request("POST", url, json=json, headers=self.headers).prepare()
        self.sent.append((url, prepared.body))
        status, content_type, text = as_http(self.answer(url, json))
        response = requests.Response()
        response.status_code, response._content, response.encoding = status, text.encode(), "utf-8"
        response.headers["Content-Type"] = content_type
        return response


def as_http(answer):
    """(status, content type, body) for an answer given as JSON or as such a triple."""
    if isinstance(answer, tuple):
        return answer
    return 200, "application/json", json.dumps(answer)


def fake_network(api, answer=canned_answer, config=None):
    """Point an obelisk SDK object's transport at `answer`; returns the bytes sent."""
    sent = []

    def handle(request):
        sent.append((str(request.url), request.content))
        status, content_type, text = as_http(answer(str(request.url),
                                                    json.loads(request.content)))
        return httpx.Response(status, headers={"content-type": content_type}, text=text)

    client = httpx.Client(transport=httpx.MockTransport(handle),
                          event_hooks={"response": [our_api._check]})
    api._client = client
    api.transport = Transport(api.base_url, config, client=client)
    return sent


# ------------------------------------------------------------------ exchange bodies


class CloidNo(int):
    """A cloid in an argument strategy: becomes each library's own Cloid."""


def realise(value, cloid_type):
    if isinstance(value, CloidNo):
        return cloid_type.from_int(int(value))
    if isinstance(value, dict):
        return {key: realise(item, cloid_type) for key, item in value.items()}
    if isinstance(value, list):
        return [realise(item, cloid_type) for item in value]
    if isinstance(value, tuple):
        return tuple(realise(item, cloid_type) for item in value)
    return value


coins = st.sampled_from(["BTC", "ETH", "PURR/USDC"])
prices = st.sampled_from([0.1234, 1.5, 27.35, 1891.4, 60_000.0, 113_377.0])
sizes = st.sampled_from([0.001, 0.02, 1.0, 12.5, 1000.0])
amounts = st.sampled_from([0.5, 1.0, 10.25, 1234.567891, 100_000.0])
addresses = st.sampled_from([USER, VAULT, "0xAbCdEf0123456789aBcDeF0123456789AbCdEf01"])
cloid_nos = st.integers(0, 2**128 - 1).map(CloidNo)
oids = st.one_of(st.integers(1, 2**40), cloid_nos)
order_types = st.one_of(
    st.sampled_from([{"limit": {"tif": t}} for t in ("Gtc", "Ioc", "Alo")]),
    st.builds(lambda px, m, kind: {"trigger": {"triggerPx": px, "isMarket": m, "tpsl": kind}},
              prices, st.booleans(), st.sampled_from(["tp", "sl"])))
builders = st.one_of(st.none(), st.builds(lambda f: {"b": "0xABCDEF0123456789ABCDEF0123456789"
                                                         "ABCDEF01", "f": f},
                                          st.integers(0, 100)))
order_requests = st.fixed_dictionaries({
    "coin": coins, "is_buy": st.booleans(), "sz": sizes, "limit_px": prices,
    "order_type": order_types, "reduce_only": st.booleans()},
    optional={"cloid": st.one_of(st.none(), cloid_nos)})
words = st.text("abcdefghijklmnopqrstuvwxyzABC0123456789 _-", min_size=0, max_size=12)
tokens = st.integers(0, 2000)
px_maps = st.dictionaries(st.sampled_from(["BTC", "ETH", "SOL"]), st.sampled_from(["1.5", "30"]))
inner_actions = st.sampled_from([
    {"type": "userSetAbstraction", "user": USER, "abstraction": "unifiedAccount", "nonce": 7},
    {"type": "userSetAbstraction", "user": USER, "abstraction": "other", "nonce": 7},
    {"type": "scheduleCancel", "time": 123},
])
signature_lists = st.lists(st.fixed_dictionaries({"r": st.just("0x1"), "s": st.just("0x2"),
                                                  "v": st.sampled_from([27, 28])}), max_size=2)


def args(*strategies, **named):
    return st.tuples(st.tuples(*strategies), st.fixed_dictionaries(named))


EXCHANGE_CALLS = {
    "order": args(coins, st.booleans(), sizes, prices, order_types, st.booleans(),
                  st.one_of(st.none(), cloid_nos), builders),
    "bulk_orders": args(st.lists(order_requests, min_size=1, max_size=3), builders,
                        st.sampled_from(["na", "normalTpsl", "positionTpsl", {"p": 3}])),
    "modify_order": args(oids, coins, st.booleans(), sizes, prices, order_types, st.booleans(),
                         st.one_of(st.none(), cloid_nos)),
    "bulk_modify_orders_new": args(st.lists(st.fixed_dictionaries(
        {"oid": oids, "order": order_requests}), min_size=1, max_size=3)),
    "market_open": args(coins, st.booleans(), sizes, st.one_of(st.none(), prices),
                        st.sampled_from([0.01, 0.05, 0.1]), st.one_of(st.none(), cloid_nos),
                        builders),
    "market_close": args(st.sampled_from(["ETH", "BTC"]), st.one_of(st.none(), sizes),
                         st.one_of(st.none(), prices), st.sampled_from([0.01, 0.05]),
                         st.one_of(st.none(), cloid_nos), builders),
    "cancel": args(coins, st.integers(1, 2**40)),
    "cancel_by_cloid": args(coins, cloid_nos),
    "bulk_cancel": args(st.lists(st.fixed_dictionaries({"coin": coins,
                                                        "oid": st.integers(1, 2**40)}),
                                 min_size=1, max_size=3)),
    "bulk_cancel_by_cloid": args(st.lists(st.fixed_dictionaries({"coin": coins,
                                                                 "cloid": cloid_nos}),
                                          min_size=1, max_size=3)),
    "schedule_cancel": args(st.one_of(st.none(), st.integers(NONCE, NONCE + 10**9))),
    "update_leverage": args(st.integers(1, 50), coins, st.booleans()),
    "update_isolated_margin": args(st.sampled_from([-12.5, 0.000001, 3.0, 1000.25]), coins),
    "set_referrer": args(words),
    "create_sub_account": args(words),
    "usd_class_transfer": args(amounts, st.booleans()),
    "send_asset": args(addresses, st.sampled_from(["", "spot", "abc"]),
                       st.sampled_from(["", "spot"]), st.sampled_from(["USDC", "PURR"]),
                       amounts),
    "sub_account_transfer": args(addresses, st.booleans(), st.integers(0, 10**12)),
    "sub_account_spot_transfer": args(addresses, st.booleans(), st.sampled_from(["USDC"]),
                                      amounts),
    "vault_usd_transfer": args(addresses, st.booleans(), st.integers(0, 10**12)),
    "usd_transfer": args(amounts, addresses),
    "spot_transfer": args(amounts, addresses, st.sampled_from(
        ["PURR:0xc1fb593aeffbeb02f85e0308e9956a90"])),
    "token_delegate": args(addresses, st.integers(0, 2**63), st.booleans()),
    "withdraw_from_bridge": args(amounts, addresses),
    "approve_agent": args(st.one_of(st.none(), words)),
    "approve_builder_fee": args(addresses, st.sampled_from(["0.001%", "0.1%"])),
    "convert_to_multi_sig_user": args(st.lists(addresses, max_size=3), st.integers(1, 3)),
    "spot_deploy_register_token": args(words, st.integers(0, 8), st.integers(0, 18),
                                       st.integers(0, 10**9), words),
    "spot_deploy_user_genesis": args(tokens,
                                     st.lists(st.tuples(addresses, st.just("100")), max_size=2),
                                     st.lists(st.tuples(tokens, st.just("7")), max_size=2)),
    "spot_deploy_enable_freeze_privilege": args(tokens),
    "spot_deploy_freeze_user": args(tokens, addresses, st.booleans()),
    "spot_deploy_revoke_freeze_privilege": args(tokens),
    "spot_deploy_enable_quote_token": args(tokens),
    "spot_deploy_token_action_inner": args(st.sampled_from(["enableQuoteToken", "x"]), tokens),
    "spot_deploy_genesis": args(tokens, st.just("1000000"), st.booleans()),
    "spot_deploy_register_spot": args(tokens, tokens),
    "spot_deploy_register_hyperliquidity": args(tokens, prices, sizes, st.integers(0, 100),
                                                st.one_of(st.none(), st.integers(0, 10))),
    "spot_deploy_set_deployer_trading_fee_share": args(tokens, st.just("50%")),
    "perp_deploy_register_asset": args(
        words, st.one_of(st.none(), st.integers(0, 10**6)), words, st.integers(0, 5),
        st.just("12.5"), st.integers(0, 60), st.booleans(),
        st.one_of(st.none(), st.fixed_dictionaries({
            "fullName": words, "collateralToken": tokens,
            "oracleUpdater": st.one_of(st.none(), addresses)}))),
    "perp_deploy_set_oracle": args(words, px_maps, st.lists(px_maps, max_size=2), px_maps),
    "c_signer_unjail_self": args(),
    "c_signer_jail_self": args(),
    "c_signer_inner": args(st.sampled_from(["unjailSelf", "jailSelf"])),
    "c_validator_register": args(st.just("1.2.3.4"), words, words, st.booleans(),
                                 st.integers(0, 10_000), addresses, st.booleans(),
                                 st.integers(0, 2**60)),
    "c_validator_change_profile": args(st.one_of(st.none(), st.just("1.2.3.4")),
                                       st.one_of(st.none(), words), st.one_of(st.none(), words),
                                       st.booleans(), st.one_of(st.none(), st.booleans()),
                                       st.one_of(st.none(), st.integers(0, 10_000)),
                                       st.one_of(st.none(), addresses)),
    "c_validator_unregister": args(),
    "multi_sig": args(addresses, inner_actions, signature_lists, st.integers(1, 2**50),
                      st.one_of(st.none(), st.just(VAULT))),
    "use_big_blocks": args(st.booleans()),
    "agent_enable_dex_abstraction": args(),
    "agent_set_abstraction": args(st.sampled_from(["u", "p", "i"])),
    "user_dex_abstraction": args(addresses, st.booleans()),
    "user_set_abstraction": args(addresses, st.sampled_from(["unifiedAccount", "disabled"])),
    "noop": args(st.integers(1, 2**50)),
    "gossip_priority_bid": args(st.integers(0, 5), st.just("1.2.3.4"), st.integers(0, 10**6)),
}


def test_every_exchange_method_is_compared():
    posting = set(public_methods(sdk_exchange_module.Exchange)) - {"set_expires_after"}
    assert posting == set(EXCHANGE_CALLS)


def sdk_exchange(base_url, vault, expires_after):
    sdk = sdk_exchange_module.Exchange(eth_account.Account.from_key(KEY), base_url, META,
                                       vault, None, SPOT_META)
    sdk.session, sdk.info.session = FakeSession(), FakeSession()
    sdk.set_expires_after(expires_after)
    return sdk


def our_exchange(base_url, vault, expires_after, wallet_kind):
    wallet = {"account": eth_account.Account.from_key(KEY), "wallet": Wallet(KEY),
              "hex": KEY}[wallet_kind]
    ours = our_exchange_module.Exchange(wallet, base_url, META, vault, None, SPOT_META)
    sent = fake_network(ours)
    fake_network(ours.info)
    ours.set_expires_after(expires_after)
    return ours, sent


setups = st.tuples(st.sampled_from([MAINNET_API_URL, TESTNET_API_URL]),
                   st.sampled_from([None, VAULT]), st.sampled_from([None, NONCE + 60_000]),
                   st.sampled_from(["account", "wallet", "hex"]))


@pytest.mark.parametrize("method", sorted(EXCHANGE_CALLS))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_exchange_bodies_are_byte_identical(method, data):
    base_url, vault, expires_after, wallet_kind = data.draw(setups)
    positional, named = data.draw(EXCHANGE_CALLS[method])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sdk_exchange_module, "get_timestamp_ms", lambda: NONCE)
        patch.setattr(our_exchange_module, "get_timestamp_ms", lambda: NONCE)
        patch.setattr("secrets.token_hex", lambda n: "ab" * n)
        sdk = sdk_exchange(base_url, vault, expires_after)
        theirs = getattr(sdk, method)(*realise(positional, SdkCloid),
                                      **realise(named, SdkCloid))
        ours, sent = our_exchange(base_url, vault, expires_after, wallet_kind)
        mine = getattr(ours, method)(*realise(positional, Cloid), **realise(named, Cloid))

    assert sent == sdk.session.sent
    assert mine == theirs


def test_actions_in_one_millisecond_get_distinct_nonces():
    """The SDK would sign both with the clock's millisecond; the exchange refuses the second."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(our_exchange_module, "get_timestamp_ms", lambda: NONCE)
        ours, sent = our_exchange(MAINNET_API_URL, None, None, "wallet")
        ours.cancel("ETH", 1)
        ours.cancel("ETH", 2)
        ours.schedule_cancel(None)
    assert [json.loads(body)["nonce"] for _, body in sent] == [NONCE, NONCE + 1, NONCE + 2]


# ------------------------------------------------------------------ info on the local server

ROOMY = 1_000_000


@pytest.fixture(scope="module")
def market():
    pytest.importorskip("aiohttp")
    from obelisk.server.runner import serve

    with serve(port=0, clock="sim", makers=2, seed=5, coins=("BTC", "ETH"),
               ip_weight_per_minute=ROOMY) as url:
        trader = eth_account.Account.from_key("0x" + "5a" * 32)
        requests.post(url.admin_url + "/deposit", json={"user": trader.address, "usdc": 100_000},
                      timeout=5).raise_for_status()
        sdk = sdk_exchange_module.Exchange(trader, url)
        mid = float(sdk.info.all_mids()["ETH"])
        sdk.order("ETH", True, 0.5, round(mid * 0.9, 1), {"limit": {"tif": "Gtc"}},
                  cloid=SdkCloid.from_int(99))
        sdk.market_open("ETH", True, 0.2)
        yield url, trader.address


def info_calls(user):
    start = 1_600_000_000_000
    return [
        ("user_state", (user,)), ("user_state", (user, "")), ("spot_user_state", (user,)),
        ("open_orders", (user,)), ("frontend_open_orders", (user,)), ("all_mids", ()),
        ("user_fills", (user,)), ("user_fills_by_time", (user, start)),
        ("user_fills_by_time", (user, start, None, True)), ("meta", ()), ("meta", ("",)),
        ("meta_and_asset_ctxs", ()), ("perp_dexs", ()), ("spot_meta", ()),
        ("spot_meta_and_asset_ctxs", ()), ("funding_history", ("ETH", start)),
        ("funding_history", ("BTC", start, start + 10**10)),
        ("user_funding_history", (user, start)), ("l2_snapshot", ("ETH",)),
        ("candles_snapshot", ("BTC", "1h", start, 2_000_000_000_000)), ("user_fees", (user,)),
        ("user_staking_summary", (user,)), ("user_staking_delegations", (user,)),
        ("user_staking_rewards", (user,)), ("delegator_history", (user,)),
        ("query_order_by_oid", (user, 1)), ("query_order_by_cloid", (user, "cloid")),
        ("query_referral_state", (user,)), ("query_sub_accounts", (user,)),
        ("query_user_to_multi_sig_signers", (user,)), ("query_perp_deploy_auction_status", ()),
        ("query_user_dex_abstraction_state", (user,)), ("query_user_abstraction_state", (user,)),
        ("historical_orders", (user,)), ("user_non_funding_ledger_updates", (user, start)),
        ("portfolio", (user,)), ("user_twap_slice_fills", (user,)),
        ("user_vault_equities", (user,)), ("user_role", (user,)), ("user_rate_limit", (user,)),
        ("query_spot_deploy_auction_status", (user,)), ("extra_agents", (user,)),
        ("name_to_asset", ("ETH",)),
    ]


def outcome(call):
    """What a call gave: its answer, or its exception's type and SDK fields."""
    try:
        return "answer", call()
    except (sdk_error.ClientError, our_error.ClientError) as error:
        headers = error.error_data if error.error_code is None else error.header
        return ("ClientError", error.status_code, error.error_code, error.error_message,
                headers and headers.get("content-type"),
                None if error.error_code is None else error.error_data)
    except (sdk_error.ServerError, our_error.ServerError) as error:
        return "ServerError", error.status_code, error.message
    except Exception as error:  # noqa: BLE001 - compared by type and text
        return type(error).__name__, str(error)


def test_every_info_method_is_compared():
    exercised = {name for name, _ in info_calls(USER)}
    exercised |= {"subscribe", "unsubscribe", "disconnect_websocket", "set_perp_meta"}
    assert set(public_methods(sdk_info_module.Info)) == exercised


def test_info_answers_and_errors_equal_the_sdks_on_the_server(market):
    url, user = market
    theirs = sdk_info_module.Info(url, skip_ws=True)
    ours = our_info_module.Info(url, skip_ws=True)
    assert (ours.coin_to_asset, ours.name_to_coin, ours.asset_to_sz_decimals) == \
           (theirs.coin_to_asset, theirs.name_to_coin, theirs.asset_to_sz_decimals)
    for name, call_args in info_calls(user):
        if name == "query_order_by_cloid":
            mine = outcome(lambda: ours.query_order_by_cloid(user, Cloid.from_int(99)))
            got = outcome(lambda: theirs.query_order_by_cloid(user, SdkCloid.from_int(99)))
        else:
            mine = outcome(lambda n=name, a=call_args: getattr(ours, n)(*a))
            got = outcome(lambda n=name, a=call_args: getattr(theirs, n)(*a))
        assert mine == got, name


def test_answers_are_private_copies(market):
    url, user = market
    info = our_info_module.Info(url, skip_ws=True)
    first = info.user_state(user)
    first["marginSummary"] = "scribbled"
    assert info.user_state(user)["marginSummary"] != "scribbled"


def test_an_action_refreshes_every_infos_cache(market):
    url, _ = market
    account = eth_account.Account.from_key("0x" + "5b" * 32)
    requests.post(url.admin_url + "/deposit", json={"user": account.address, "usdc": 10_000},
                  timeout=5).raise_for_status()
    info = our_info_module.Info(url, skip_ws=True)
    exchange = our_exchange_module.Exchange(account, url)
    assert info.open_orders(account.address) == []
    mid = float(info.all_mids()["ETH"])
    exchange.order("ETH", True, 0.1, round(mid * 0.9, 1), {"limit": {"tif": "Gtc"}})
    assert len(info.open_orders(account.address)) == 1


# ------------------------------------------------------------------ errors on canned answers

CANNED = [
    (422, "text/plain", "Failed to deserialize the JSON body into the target type"),
    (400, "application/json", json.dumps({"code": 7, "msg": "bad", "data": {"x": 1}})),
    (404, "application/json", json.dumps({"code": "E", "msg": "none"})),
    (403, "application/json", "null"),
    (500, "application/json", "null"),
    (502, "text/html", "<html>bad gateway</html>"),
    (200, "text/html", "<html>a proxy page</html>"),
    (200, "application/json", json.dumps([1, {"a": None}])),
]


@pytest.mark.parametrize("path", ["/info", "/exchange"])
@pytest.mark.parametrize("answer", CANNED, ids=[f"{a[0]}-{a[1]}" for a in CANNED])
def test_errors_equal_the_sdks_on_the_same_answers(answer, path):
    theirs = sdk_info_module.Info(MAINNET_API_URL, True, META, SPOT_META)
    theirs.session = FakeSession(lambda url, body: answer)
    ours = our_info_module.Info(MAINNET_API_URL, True, META, SPOT_META)
    fake_network(ours, lambda url, body: answer, TransportConfig(max_retries=0))
    payload = {"type": "allMids"} if path == "/info" else {"action": {"type": "noop"}}
    assert outcome(lambda: ours.post(path, dict(payload))) == \
           outcome(lambda: theirs.post(path, dict(payload)))


def test_no_connection_raises_requests_connection_error():
    ours = our_info_module.Info("http://127.0.0.1:9", True, META, SPOT_META, timeout=2)
    ours.transport = Transport(ours.base_url, TransportConfig(timeout=2, max_retries=0),
                               client=ours._client)
    with pytest.raises(requests.exceptions.ConnectionError):
        ours.all_mids()


# ------------------------------------------------------------------ websocket


@pytest.mark.parametrize("subscription", [
    {"type": "allMids"}, {"type": "l2Book", "coin": "ETH"}, {"type": "trades", "coin": "Ab"},
    {"type": "userEvents", "user": USER}, {"type": "userFills", "user": VAULT.upper()},
    {"type": "candle", "coin": "BTC", "interval": "1M"}, {"type": "orderUpdates", "user": USER},
    {"type": "userFundings", "user": USER}, {"type": "userNonFundingLedgerUpdates", "user": USER},
    {"type": "webData2", "user": USER}, {"type": "bbo", "coin": "ETH"},
    {"type": "activeAssetCtx", "coin": "@1"},
    {"type": "activeAssetData", "coin": "ETH", "user": USER}, {"type": "nope"},
])
def test_subscription_identifiers_equal_the_sdks(subscription):
    assert our_ws_module.subscription_to_identifier(subscription) == \
           sdk_ws_module.subscription_to_identifier(subscription)


@pytest.mark.parametrize("message", [
    {"channel": "pong"}, {"channel": "allMids", "data": {"mids": {}}},
    {"channel": "l2Book", "data": {"coin": "ETH"}}, {"channel": "trades", "data": []},
    {"channel": "trades", "data": [{"coin": "BTC"}]}, {"channel": "user", "data": {}},
    {"channel": "userFills", "data": {"user": USER.upper()}},
    {"channel": "candle", "data": {"s": "BTC", "i": "1M"}}, {"channel": "orderUpdates"},
    {"channel": "userFundings", "data": {"user": USER}},
    {"channel": "userNonFundingLedgerUpdates", "data": {"user": USER}},
    {"channel": "webData2", "data": {"user": USER}}, {"channel": "bbo", "data": {"coin": "E"}},
    {"channel": "activeAssetCtx", "data": {"coin": "ETH"}},
    {"channel": "activeSpotAssetCtx", "data": {"coin": "@1"}},
    {"channel": "activeAssetData", "data": {"coin": "ETH", "user": USER}},
    {"channel": "subscriptionResponse", "data": {}},
])
def test_message_identifiers_equal_the_sdks(message):
    assert our_ws_module.ws_msg_to_identifier(message) == \
           sdk_ws_module.ws_msg_to_identifier(message)


def test_subscribe_delivers_whole_messages(market):
    url, _ = market
    info = our_info_module.Info(url, skip_ws=False)
    try:
        received = []
        first = info.subscribe({"type": "l2Book", "coin": "ETH"}, received.append)
        second = info.subscribe({"type": "l2Book", "coin": "ETH"}, received.append)
        assert (first, second) == (1, 2)
        deadline = time.monotonic() + 5
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert received and received[0]["channel"] == "l2Book"
        assert received[0]["data"]["coin"] == "ETH"
        assert info.unsubscribe({"type": "l2Book", "coin": "ETH"}, first)
        assert not info.unsubscribe({"type": "l2Book", "coin": "ETH"}, first)
    finally:
        info.disconnect_websocket()


# ------------------------------------------------------------------ a typical SDK script

SCRIPT = '''\
import eth_account
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils import constants

BASE_URL = "{url}"
GTC = {{"limit": {{"tif": "Gtc"}}}}
account = eth_account.Account.from_key("{key}")
info = Info(BASE_URL, skip_ws=True)
exchange = Exchange(account, BASE_URL)
state = info.user_state(account.address)
print("account value", state["marginSummary"]["accountValue"])
bid = float(info.l2_snapshot("ETH")["levels"][0][0]["px"])
order = exchange.order("ETH", True, 0.1, round(bid * 0.9, 1), GTC)
oid = order["response"]["data"]["statuses"][0]["resting"]["oid"]
moved = exchange.modify_order(oid, "ETH", True, 0.2, round(bid * 0.95, 1), GTC)
new_oid = moved["response"]["data"]["statuses"][0]["resting"]["oid"]
print("cancel", exchange.cancel("ETH", new_oid)["status"], constants.MAINNET_API_URL != BASE_URL)
print("open", exchange.market_open("ETH", True, 0.05)["status"])
print("close", exchange.market_close("ETH")["response"]["data"]["statuses"][0].keys())
print("positions", info.user_state(account.address)["assetPositions"])
'''


def run_script(source):
    done = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_typical_sdk_script_runs_with_only_its_imports_changed(market):
    url, _ = market
    keys = ["0x" + "6a" * 32, "0x" + "6b" * 32]
    for key in keys:
        address = eth_account.Account.from_key(key).address
        requests.post(url.admin_url + "/deposit", json={"user": address, "usdc": 50_000},
                      timeout=5).raise_for_status()
    original = SCRIPT.format(url=url, key=keys[0])
    assert len(original.splitlines()) == 21
    ported = SCRIPT.format(url=url, key=keys[1]).replace("from hyperliquid.",
                                                         "from obelisk.hyperliquid.sdk.")
    changed = [(a, b) for a, b in zip(original.splitlines(), ported.splitlines(), strict=True)
               if a != b]
    assert all(a.startswith("from hyperliquid.") for a, _ in changed[:3])
    assert len(changed) == 4 and "account = " in changed[3][0]       # a fresh account
    guard = "import sys\nassert not any(m.startswith('hyperliquid') for m in sys.modules)\n"
    theirs = run_script(original)
    ours = run_script(ported + guard)
    assert ours == theirs
    assert "cancel ok True" in ours and "open ok" in ours and "positions []" in ours


def test_the_sdk_is_never_imported():
    code = ("import sys, obelisk.hyperliquid.sdk.exchange, obelisk.hyperliquid.sdk.info\n"
            "print([m for m in sys.modules if m.startswith('hyperliquid')],"
            " 'numpy' in sys.modules, [m for m in sys.modules if m.endswith(('.book', '.l2'))])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == "[] False []", done.stderr
