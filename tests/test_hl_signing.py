"""obelisk.hyperliquid.signing: hashes, signatures and signers equal the SDK's."""

import copy

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obelisk.hyperliquid import signing
from obelisk.hyperliquid.signing import (
    APPROVE_AGENT_SIGN_TYPES,
    action_hash,
    construct_phantom_agent,
    recover_agent_or_user_from_l1_action,
    recover_signer,
    recover_user_from_user_signed_action,
    sign_l1_action,
)
from obelisk.hyperliquid.wallet import Wallet, to_checksum_address
from obelisk.hyperliquid.wire import (
    Cloid,
    WireError,
    batch_modify_action,
    cancel_action,
    cancel_by_cloid_action,
    order_request_to_order_wire,
    order_wires_to_order_action,
)

sdk = pytest.importorskip("hyperliquid.utils.signing")
eth_account = pytest.importorskip("eth_account")

KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

keys = st.integers(1, N - 1).map(lambda k: f"0x{k:064x}")
addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
vaults = st.none() | addresses
nonces = st.integers(0, 2**64 - 1)
expiries = st.none() | st.integers(0, 2**64 - 1)
amounts = st.decimals(min_value=0, max_value=10**7, places=6).map(lambda d: str(float(d)))
order_types = st.one_of(
    st.sampled_from(["Alo", "Ioc", "Gtc"]).map(lambda tif: {"limit": {"tif": tif}}),
    st.builds(lambda px, market, tpsl: {"trigger": {"triggerPx": px, "isMarket": market,
                                                    "tpsl": tpsl}},
              st.decimals(min_value=0, max_value=10**5, places=3).map(float), st.booleans(),
              st.sampled_from(["tp", "sl"])),
)
orders = st.fixed_dictionaries({
    "is_buy": st.booleans(),
    "sz": st.decimals(min_value=0, max_value=10**5, places=4).map(float),
    "limit_px": st.decimals(min_value=0, max_value=10**5, places=5).map(float),
    "reduce_only": st.booleans(),
    "order_type": order_types,
    "cloid": st.none() | st.integers(0, 2**128 - 1).map(Cloid.from_int),
})


@st.composite
def l1_actions(draw):
    """An order, cancel, cancel-by-cloid or batch-modify action built by obelisk."""
    wires = [order_request_to_order_wire(o, draw(st.integers(0, 200_000)))
             for o in draw(st.lists(orders, min_size=1, max_size=3))]
    kind = draw(st.sampled_from(["order", "cancel", "cancelByCloid", "batchModify"]))
    if kind == "order":
        builder = draw(st.none() | st.builds(lambda b, f: {"b": b, "f": f}, addresses,
                                              st.integers(0, 100)))
        grouping = draw(st.sampled_from(["na", "normalTpsl", "positionTpsl"]))
        return order_wires_to_order_action(wires, builder, grouping)
    if kind == "cancel":
        return cancel_action(draw(st.lists(st.tuples(st.integers(0, 10**5),
                                                      st.integers(0, 2**63)), min_size=1)))
    if kind == "cancelByCloid":
        return cancel_by_cloid_action(draw(st.lists(
            st.tuples(st.integers(0, 10**5), st.integers(0, 2**128 - 1).map(Cloid.from_int)),
            min_size=1)))
    oids = st.integers(0, 2**63) | st.integers(0, 2**128 - 1).map(Cloid.from_int)
    return batch_modify_action([(draw(oids), wire) for wire in wires])


@pytest.fixture(scope="module")
def account():
    return eth_account.Account.from_key(KEY)


def test_sdk_published_vectors():
    """Values from the SDK repository's tests/signing_test.py, independent of its code."""
    order = {"is_buy": True, "sz": 0.0147, "limit_px": 1670.1, "reduce_only": False,
             "order_type": {"limit": {"tif": "Ioc"}}, "cloid": None}
    action = order_wires_to_order_action([order_request_to_order_wire(order, 4)])
    agent = construct_phantom_agent(action_hash(action, None, 1677777606040, None), True)
    assert agent["connectionId"].hex() == (
        "0fcbeda5ae3c4950a548021552a4fea2226858c4453571bf3f24ba017eac2908")
    order = dict(order, sz=100, limit_px=100, order_type={"limit": {"tif": "Gtc"}},
                 cloid=Cloid.from_str("0x00000000000000000000000000000001"))
    action = order_wires_to_order_action([order_request_to_order_wire(order, 1)])
    assert sign_l1_action(KEY, action, None, 0, None, True) == {
        "r": "0x41ae18e8239a56cacbc5dad94d45d0b747e5da11ad564077fcac71277a946e3",
        "s": "0x3c61f667e747404fe7eea8f90ab0e76cc12ce60270438b2058324681a00116da", "v": 27}
    dummy = {"type": "dummy", "num": 100000000000}
    assert sign_l1_action(KEY, dummy, "0x1719884eb866cb12b2287399b15f7db5e7d775ea", 0, None,
                          False) == {
        "r": "0xe281d2fb5c6e25ca01601f878e4d69c965bb598b88fac58e475dd1f5e56c362b",
        "s": "0x7ddad27e9a238d045c035bc606349d075d5c5cd00a6cd1da23ab5c39d4ef0f60", "v": 27}
    transfer = {"destination": "0x5e9ee1089755c3435139848e47e6635505d5a13a", "amount": "1",
                "time": 1687816341423}
    assert signing.sign_withdraw_from_bridge_action(KEY, transfer, False) == {
        "r": "0x8363524c799e90ce9bc41022f7c39b4e9bdba786e5f9c72b20e43e1462c37cf9",
        "s": "0x58b1411a775938b83e29182e8ef74975f9054c8e97ebf5ec2dc8d51bfc893881", "v": 28}


@settings(max_examples=60, deadline=None)
@given(l1_actions(), vaults, nonces, expiries, st.booleans(), keys)
def test_l1_action_matches_sdk(action, vault, nonce, expires_after, is_mainnet, key):
    theirs = copy.deepcopy(action)
    account = eth_account.Account.from_key(key)
    assert msgpack.packb(action) == msgpack.packb(theirs)
    assert action_hash(action, vault, nonce, expires_after) == sdk.action_hash(
        theirs, vault, nonce, expires_after)
    expected = sdk.sign_l1_action(account, theirs, vault, nonce, expires_after, is_mainnet)
    ours = sign_l1_action(Wallet(key), action, vault, nonce, expires_after, is_mainnet)
    assert ours == expected
    assert sign_l1_action(key, action, vault, nonce, expires_after, is_mainnet) == expected
    assert sign_l1_action(account, action, vault, nonce, expires_after, is_mainnet) == expected
    signer = recover_agent_or_user_from_l1_action(action, ours, vault, nonce, expires_after,
                                                  is_mainnet)
    assert signer == account.address == sdk.recover_agent_or_user_from_l1_action(
        theirs, expected, vault, nonce, expires_after, is_mainnet)
    other = recover_agent_or_user_from_l1_action(action, ours, vault, nonce, expires_after,
                                                 not is_mainnet)
    assert other != signer


def test_expires_after_zero_differs_from_absent_and_vault_case_does_not_matter(account):
    action = {"type": "noop"}
    assert action_hash(action, None, 5, 0) != action_hash(action, None, 5, None)
    vault = "0x1719884eb866cb12b2287399b15f7db5e7d775ea"
    assert action_hash(action, vault, 5, None) == action_hash(action, to_checksum_address(vault),
                                                              5, None)


def user_actions(draw_address, amount, time, to_perp, name, fee):
    """One action of each user-signed kind, as the SDK's Exchange methods build them."""
    return [
        (signing.sign_usd_transfer_action, sdk.sign_usd_transfer_action, "UsdSend",
         sdk.USD_SEND_SIGN_TYPES,
         {"destination": draw_address, "amount": amount, "time": time, "type": "usdSend"}),
        (signing.sign_withdraw_from_bridge_action, sdk.sign_withdraw_from_bridge_action,
         "Withdraw", sdk.WITHDRAW_SIGN_TYPES,
         {"destination": draw_address, "amount": amount, "time": time, "type": "withdraw3"}),
        (signing.sign_spot_transfer_action, sdk.sign_spot_transfer_action, "SpotSend",
         sdk.SPOT_TRANSFER_SIGN_TYPES,
         {"destination": draw_address, "amount": amount,
          "token": "PURR:0xc1fb593aeffbeb02f85e0308e9956a90", "time": time, "type": "spotSend"}),
        (signing.sign_usd_class_transfer_action, sdk.sign_usd_class_transfer_action,
         "UsdClassTransfer", sdk.USD_CLASS_TRANSFER_SIGN_TYPES,
         {"type": "usdClassTransfer", "amount": f"{amount} subaccount:{draw_address}",
          "toPerp": to_perp, "nonce": time}),
        (signing.sign_send_asset_action, sdk.sign_send_asset_action, "SendAsset",
         sdk.SEND_ASSET_SIGN_TYPES,
         {"type": "sendAsset", "destination": draw_address, "sourceDex": "", "destinationDex":
          "spot", "token": "USDC", "amount": amount, "fromSubAccount": "", "nonce": time}),
        (signing.sign_agent, sdk.sign_agent, "ApproveAgent",
         list(APPROVE_AGENT_SIGN_TYPES),
         {"type": "approveAgent", "agentAddress": to_checksum_address(draw_address),
          "agentName": name, "nonce": time}),
        (signing.sign_approve_builder_fee, sdk.sign_approve_builder_fee, "ApproveBuilderFee",
         list(signing.APPROVE_BUILDER_FEE_SIGN_TYPES),
         {"maxFeeRate": fee, "builder": draw_address, "nonce": time,
          "type": "approveBuilderFee"}),
    ]


@settings(max_examples=25, deadline=None)
@given(addresses, amounts, st.integers(0, 2**64 - 1), st.booleans(),
       st.text(max_size=16), st.sampled_from(["0.001%", "0.1%", "0.01%"]), st.booleans())
def test_user_signed_actions_match_sdk(account, address, amount, time, to_perp, name, fee,
                                       is_mainnet):
    wallet = Wallet(KEY)
    for ours_sign, sdk_sign, kind, sign_types, action in user_actions(
            address, amount, time, to_perp, name, fee):
        theirs = copy.deepcopy(action)
        expected = sdk_sign(account, theirs, is_mainnet)
        assert ours_sign(wallet, action, is_mainnet) == expected
        assert action == theirs                       # same keys added, in the same order
        assert list(action) == list(theirs)
        primary = f"HyperliquidTransaction:{kind}"
        signer = recover_user_from_user_signed_action(action, expected, sign_types, primary,
                                                      is_mainnet)
        assert signer == account.address == sdk.recover_user_from_user_signed_action(
            theirs, expected, sign_types, primary, is_mainnet)
        assert recover_user_from_user_signed_action(action, expected, sign_types, primary,
                                                    not is_mainnet) != signer


def test_recover_accepts_padded_hex_and_ints(account):
    action = {"type": "scheduleCancel", "time": 123456789}
    signature = sign_l1_action(account, action, None, 0, None, True)
    digest = signing.l1_action_digest(action, None, 0, None, True)
    padded = {"r": "0x" + int(signature["r"], 16).to_bytes(32, "big").hex(),
              "s": int(signature["s"], 16), "v": signature["v"]}
    assert recover_signer(digest, padded) == recover_signer(digest, signature) == account.address
    with pytest.raises(WireError):
        recover_signer(digest, dict(signature, v=29))


@pytest.mark.parametrize(("action", "vault", "nonce", "expires"), [
    ({"type": "updateLeverage", "asset": 0, "isCross": True, "leverage": 10.0}, None, 1, None),
    ({"type": "noop"}, "0x1234", 1, None),
    ({"type": "noop"}, None, -1, None),
    ({"type": "noop"}, None, 1, 2**64),
])
def test_l1_rejects_floats_bad_vaults_and_out_of_range_ints(action, vault, nonce, expires):
    with pytest.raises(WireError):
        sign_l1_action(KEY, action, vault, nonce, expires, True)


@pytest.mark.parametrize("nested", [
    {"orders": [{"a": 0, "p": "1", "t": {"trigger": {"triggerPx": 1.5}}}]},
    {"orders": [{"a": 0}, {"a": 1, "s": float("nan")}]},
    {"cancels": ({"a": 0, "o": 1}, [2, (3, 4.0)])},
    {"deep": [[[[{"x": [None, True, b"", -0.0]}]]]]},
])
def test_l1_rejects_a_float_at_any_depth(nested):
    with pytest.raises(WireError, match="float"):
        sign_l1_action(KEY, {"type": "noop", **nested}, None, 1, None, True)


def test_l1_float_check_passes_every_other_value():
    action = {"type": "order", "orders": [{"a": 0, "b": True, "p": "1.5", "s": "2", "r": False,
                                           "t": {"limit": {"tif": "Gtc"}}, "c": None}],
              "grouping": "na", "extra": [(1, 2), [b"x", -3]]}
    signing._reject_floats(action)          # returns: nothing to refuse


def test_user_signed_rejects_wrong_field_types():
    with pytest.raises(WireError):
        signing.sign_usd_transfer_action(KEY, {"destination": "0x" + "11" * 20, "amount": 1.0,
                                               "time": 1}, True)
    with pytest.raises(WireError):
        signing.sign_usd_class_transfer_action(KEY, {"amount": "1", "toPerp": 1, "nonce": 1},
                                               True)
    with pytest.raises(WireError, match="time"):
        signing.sign_usd_transfer_action(KEY, {"destination": "0x" + "11" * 20, "amount": "1"},
                                         True)


def test_sign_rejects_unknown_wallet_type():
    with pytest.raises(TypeError):
        sign_l1_action(12345, {"type": "noop"}, None, 1, None, True)


def test_every_signer_form_signs_alike(account):
    """A Wallet, a hex key (with or without 0x) and an account object give one signature."""
    action = {"type": "scheduleCancel", "time": 123456789}
    signatures = [sign_l1_action(signer, action, None, 7, None, False)
                  for signer in (Wallet(KEY), KEY, KEY[2:], account)]
    assert all(signature == signatures[0] for signature in signatures)
    transfer = {"destination": "0x" + "11" * 20, "amount": "1", "time": 7}
    assert (signing.sign_usd_transfer_action(KEY, dict(transfer), True)
            == signing.sign_usd_transfer_action(account, dict(transfer), True))
    assert sign_l1_action.__name__ == "sign_l1_action" and sign_l1_action.__doc__


def test_the_domains_of_unknown_chain_ids_are_not_all_kept(monkeypatch):
    # Each signatureChainId a server was sent, signed or not, stayed in memory for good.
    monkeypatch.setattr(signing, "_USER_DOMAINS", {})
    action = {"type": "usdSend", "destination": "0x" + "00" * 20, "amount": "1", "time": 1,
              "hyperliquidChain": "Testnet"}
    digests = set()
    for chain_id in range(1, 1_000):
        digests.add(signing.user_signed_action_digest(
            {**action, "signatureChainId": hex(chain_id)}, signing.USD_SEND_SIGN_TYPES,
            "HyperliquidTransaction:UsdSend"))
    assert len(signing._USER_DOMAINS) == signing._USER_DOMAINS_KEPT
    assert len(digests) == 999                      # each still signed on its own domain
