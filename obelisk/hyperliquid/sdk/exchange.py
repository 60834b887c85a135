"""The SDK's ``Exchange``: every action, built, signed and posted as the SDK does.

Each method builds the SDK's action dict, signs it with obelisk's signing (libsecp256k1,
precomputed EIP-712 hashes) and posts the SDK's exact bytes through obelisk's
transport. Actions the local server or obelisk's native client do not implement
(deploys, validators, multi-sig, ...) are here all the same: they send exactly what
the SDK sends.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

from obelisk.hyperliquid.actions import NonceSource
from obelisk.hyperliquid.sdk.api import API
from obelisk.hyperliquid.sdk.info import Info
from obelisk.hyperliquid.sdk.utils.constants import MAINNET_API_URL
from obelisk.hyperliquid.sdk.utils.signing import (
    CancelByCloidRequest,
    CancelRequest,
    Grouping,
    ModifyRequest,
    OidOrCloid,
    OrderRequest,
    OrderType,
    OrderWire,
    ScheduleCancelAction,
    float_to_usd_int,
    get_timestamp_ms,
    order_request_to_order_wire,
    order_wires_to_order_action,
    sign_agent,
    sign_approve_builder_fee,
    sign_convert_to_multi_sig_user_action,
    sign_l1_action,
    sign_multi_sig_action,
    sign_send_asset_action,
    sign_spot_transfer_action,
    sign_token_delegate_action,
    sign_usd_class_transfer_action,
    sign_usd_transfer_action,
    sign_user_dex_abstraction_action,
    sign_user_set_abstraction_action,
    sign_withdraw_from_bridge_action,
)
from obelisk.hyperliquid.sdk.utils.types import (
    Abstraction,
    AgentAbstraction,
    BuilderInfo,
    Cloid,
    Meta,
    PerpDexSchemaInput,
    SpotMeta,
)
from obelisk.hyperliquid.signing import as_wallet
from obelisk.hyperliquid.wallet import Wallet
from obelisk.hyperliquid.wire import slippage_price

__all__ = ["Exchange", "USER_SET_ABSTRACTION_WIRE_VALUES"]

USER_SET_ABSTRACTION_WIRE_VALUES = {"disabled": "i", "unifiedAccount": "u",
                                    "portfolioMargin": "p"}
# user-signed actions that carry their own account: posted without a vaultAddress
_NO_VAULT_FIELD = frozenset({"usdClassTransfer", "sendAsset"})
_IOC: OrderType = {"limit": {"tif": "Ioc"}}


def _get_dex(coin: str) -> str:
    return coin.split(":")[0] if ":" in coin else ""


def _multi_sig_payload_action(inner_action: dict[str, Any]) -> dict[str, Any]:
    """`inner_action` as a multi-sig payload names it: abstractions by their wire letter."""
    abstraction = inner_action.get("abstraction")
    if inner_action.get("type") != "userSetAbstraction" \
            or abstraction not in USER_SET_ABSTRACTION_WIRE_VALUES:
        return inner_action
    return {**inner_action, "abstraction": USER_SET_ABSTRACTION_WIRE_VALUES[abstraction]}


class Exchange(API):
    """Trade and move funds; the SDK's ``Exchange`` with the same arguments and answers.

    Parameters
    ----------
    wallet : LocalAccount, Wallet or str
        The signing key: an eth-account ``LocalAccount``, an obelisk
        :class:`~obelisk.hyperliquid.wallet.Wallet`, or a hex private key.
    base_url : str, optional
        The server (mainnet by default; only mainnet signs as mainnet).
    meta, spot_meta, perp_dexs, timeout
        As for :class:`~obelisk.hyperliquid.sdk.info.Info`, which this builds as ``info``.
    vault_address : str, optional
        The vault or sub-account to trade for.
    account_address : str, optional
        The account an agent wallet trades for (read by ``market_close``).
    """

    # Default Max Slippage for Market Orders 5%
    DEFAULT_SLIPPAGE = 0.05

    def __init__(self, wallet: Any, base_url: str | None = None, meta: Meta | None = None,
                 vault_address: str | None = None, account_address: str | None = None,
                 spot_meta: SpotMeta | None = None, perp_dexs: list[str] | None = None,
                 timeout: float | None = None) -> None:
        super().__init__(base_url, timeout)
        self.wallet = Wallet(wallet) if isinstance(wallet, str) else wallet
        self.vault_address = vault_address
        self.account_address = account_address
        self.info = Info(base_url, True, meta, spot_meta, perp_dexs, timeout)
        self.expires_after: int | None = None
        self._signer_of: Any = None
        self._signer: Wallet | None = None
        # The SDK's nonce is the clock's millisecond, so two actions in one millisecond
        # (easy when signing takes microseconds) share it and the second is refused.
        self._nonces = NonceSource(lambda: get_timestamp_ms())

    # ------------------------------------------------------------ plumbing

    @property
    def _key(self) -> Wallet:
        """The obelisk Wallet signing for ``self.wallet`` (made once per wallet set)."""
        if self._signer is None or self._signer_of is not self.wallet:
            self._signer = as_wallet(self.wallet)
            self._signer_of = self.wallet
        return self._signer

    @property
    def _is_mainnet(self) -> bool:
        return self.base_url == MAINNET_API_URL

    def _acting_users(self) -> tuple[str, ...]:
        return tuple(address for address in (self.wallet.address, self.account_address,
                                              self.vault_address) if address)

    def _post_action(self, action: Any, signature: Any, nonce: int) -> Any:
        payload = {
            "action": action,
            "nonce": nonce,
            "signature": signature,
            "vaultAddress": None if action["type"] in _NO_VAULT_FIELD else self.vault_address,
            "expiresAfter": self.expires_after,
        }
        logging.debug(payload)
        return self.post("/exchange", payload)

    def _l1(self, action: Any, *, for_vault: bool, nonce: int | None = None) -> Any:
        """Sign `action` as an L1 action (for the vault, if `for_vault`) and post it."""
        timestamp = self._nonces.next() if nonce is None else nonce
        signature = sign_l1_action(self._key, action, self.vault_address if for_vault else None,
                                   timestamp, self.expires_after, self._is_mainnet)
        return self._post_action(action, signature, timestamp)

    def _slippage_price(self, name: str, is_buy: bool, slippage: float,
                        px: float | None = None) -> float:
        coin = self.info.name_to_coin[name]
        if not px:
            px = float(self.info.all_mids(_get_dex(coin))[coin])
        asset = self.info.coin_to_asset[coin]
        return slippage_price(px, is_buy, slippage, self.info.asset_to_sz_decimals[asset],
                              is_spot=asset >= 10_000)

    def set_expires_after(self, expires_after: int | None) -> None:
        """Reject L1 actions after this ms timestamp (None: never); user-signed actions
        (transfers, approvals) need it None."""
        self.expires_after = expires_after

    # ------------------------------------------------------------ orders

    def order(self, name: str, is_buy: bool, sz: float, limit_px: float, order_type: OrderType,
              reduce_only: bool = False, cloid: Cloid | None = None,
              builder: BuilderInfo | None = None) -> Any:
        order: OrderRequest = {"coin": name, "is_buy": is_buy, "sz": sz, "limit_px": limit_px,
                               "order_type": order_type, "reduce_only": reduce_only}
        if cloid:
            order["cloid"] = cloid
        return self.bulk_orders([order], builder)

    def bulk_orders(self, order_requests: list[OrderRequest],
                    builder: BuilderInfo | None = None, grouping: Grouping = "na") -> Any:
        wires: list[OrderWire] = [
            order_request_to_order_wire(order, self.info.name_to_asset(order["coin"]))
            for order in order_requests]
        timestamp = self._nonces.next()
        if builder:
            builder["b"] = builder["b"].lower()
        action = order_wires_to_order_action(wires, builder, grouping)
        return self._l1(action, for_vault=True, nonce=timestamp)

    def modify_order(self, oid: OidOrCloid, name: str, is_buy: bool, sz: float,
                     limit_px: float, order_type: OrderType, reduce_only: bool = False,
                     cloid: Cloid | None = None) -> Any:
        modify: ModifyRequest = {"oid": oid, "order": {
            "coin": name, "is_buy": is_buy, "sz": sz, "limit_px": limit_px,
            "order_type": order_type, "reduce_only": reduce_only, "cloid": cloid}}
        return self.bulk_modify_orders_new([modify])

    def bulk_modify_orders_new(self, modify_requests: list[ModifyRequest]) -> Any:
        timestamp = self._nonces.next()
        modifies = [
            {"oid": m["oid"].to_raw() if isinstance(m["oid"], Cloid) else m["oid"],
             "order": order_request_to_order_wire(m["order"],
                                                  self.info.name_to_asset(m["order"]["coin"]))}
            for m in modify_requests]
        return self._l1({"type": "batchModify", "modifies": modifies}, for_vault=True,
                        nonce=timestamp)

    def market_open(self, name: str, is_buy: bool, sz: float, px: float | None = None,
                    slippage: float = DEFAULT_SLIPPAGE, cloid: Cloid | None = None,
                    builder: BuilderInfo | None = None) -> Any:
        """An IOC limit order `slippage` through the mid (or `px`)."""
        px = self._slippage_price(name, is_buy, slippage, px)
        return self.order(name, is_buy, sz, px, order_type=_IOC, reduce_only=False,
                          cloid=cloid, builder=builder)

    def market_close(self, coin: str, sz: float | None = None, px: float | None = None,
                     slippage: float = DEFAULT_SLIPPAGE, cloid: Cloid | None = None,
                     builder: BuilderInfo | None = None) -> Any:
        """Close (all or `sz` of) the position in `coin` with a reduce-only IOC order;
        None when there is no position."""
        address: str = self.vault_address or self.account_address or self.wallet.address
        positions = self.info.user_state(address, _get_dex(coin))["assetPositions"]
        for position in positions:
            item = position["position"]
            if coin != item["coin"]:
                continue
            szi = float(item["szi"])
            if not sz:
                sz = abs(szi)
            is_buy = szi < 0
            px = self._slippage_price(coin, is_buy, slippage, px)
            return self.order(coin, is_buy, sz, px, order_type=_IOC, reduce_only=True,
                              cloid=cloid, builder=builder)
        return None

    def cancel(self, name: str, oid: int) -> Any:
        return self.bulk_cancel([{"coin": name, "oid": oid}])

    def cancel_by_cloid(self, name: str, cloid: Cloid) -> Any:
        return self.bulk_cancel_by_cloid([{"coin": name, "cloid": cloid}])

    def bulk_cancel(self, cancel_requests: list[CancelRequest]) -> Any:
        timestamp = self._nonces.next()
        cancels = [{"a": self.info.name_to_asset(c["coin"]), "o": c["oid"]}
                   for c in cancel_requests]
        return self._l1({"type": "cancel", "cancels": cancels}, for_vault=True, nonce=timestamp)

    def bulk_cancel_by_cloid(self, cancel_requests: list[CancelByCloidRequest]) -> Any:
        timestamp = self._nonces.next()
        cancels = [{"asset": self.info.name_to_asset(c["coin"]), "cloid": c["cloid"].to_raw()}
                   for c in cancel_requests]
        return self._l1({"type": "cancelByCloid", "cancels": cancels}, for_vault=True,
                        nonce=timestamp)

    def schedule_cancel(self, time: int | None) -> Any:
        """Cancel every open order at `time` (ms, at least 5 s ahead); None unsets it."""
        action: ScheduleCancelAction = {"type": "scheduleCancel"}
        if time is not None:
            action["time"] = time
        return self._l1(action, for_vault=True)

    # ------------------------------------------------------------ margin

    def update_leverage(self, leverage: int, name: str, is_cross: bool = True) -> Any:
        return self._l1({"type": "updateLeverage", "asset": self.info.name_to_asset(name),
                         "isCross": is_cross, "leverage": leverage}, for_vault=True)

    def update_isolated_margin(self, amount: float, name: str) -> Any:
        timestamp = self._nonces.next()
        action = {"type": "updateIsolatedMargin", "asset": self.info.name_to_asset(name),
                  "isBuy": True, "ntli": float_to_usd_int(amount)}
        return self._l1(action, for_vault=True, nonce=timestamp)

    # ------------------------------------------------------------ account

    def set_referrer(self, code: str) -> Any:
        return self._l1({"type": "setReferrer", "code": code}, for_vault=False)

    def create_sub_account(self, name: str) -> Any:
        return self._l1({"type": "createSubAccount", "name": name}, for_vault=False)

    def sub_account_transfer(self, sub_account_user: str, is_deposit: bool, usd: int) -> Any:
        return self._l1({"type": "subAccountTransfer", "subAccountUser": sub_account_user,
                         "isDeposit": is_deposit, "usd": usd}, for_vault=False)

    def sub_account_spot_transfer(self, sub_account_user: str, is_deposit: bool, token: str,
                                  amount: float) -> Any:
        return self._l1({"type": "subAccountSpotTransfer", "subAccountUser": sub_account_user,
                         "isDeposit": is_deposit, "token": token, "amount": str(amount)},
                        for_vault=False)

    def vault_usd_transfer(self, vault_address: str, is_deposit: bool, usd: int) -> Any:
        return self._l1({"type": "vaultTransfer", "vaultAddress": vault_address,
                         "isDeposit": is_deposit, "usd": usd}, for_vault=False)

    def use_big_blocks(self, enable: bool) -> Any:
        return self._l1({"type": "evmUserModify", "usingBigBlocks": enable}, for_vault=False)

    def agent_enable_dex_abstraction(self) -> Any:
        return self._l1({"type": "agentEnableDexAbstraction"}, for_vault=True)

    def agent_set_abstraction(self, abstraction: AgentAbstraction) -> Any:
        return self._l1({"type": "agentSetAbstraction", "abstraction": abstraction},
                        for_vault=True)

    def noop(self, nonce: int) -> Any:
        return self._l1({"type": "noop"}, for_vault=True, nonce=nonce)

    def gossip_priority_bid(self, slot_id: int, ip: str, max_gas: int) -> Any:
        return self._l1({"type": "gossipPriorityBid", "slotId": slot_id, "ip": ip,
                         "maxGas": max_gas}, for_vault=True)

    # ------------------------------------------------------------ user-signed transfers

    def usd_class_transfer(self, amount: float, to_perp: bool) -> Any:
        timestamp = self._nonces.next()
        str_amount = str(amount)
        if self.vault_address:
            str_amount += f" subaccount:{self.vault_address}"
        action = {"type": "usdClassTransfer", "amount": str_amount, "toPerp": to_perp,
                  "nonce": timestamp}
        signature = sign_usd_class_transfer_action(self._key, action, self._is_mainnet)
        return self._post_action(action, signature, timestamp)

    def send_asset(self, destination: str, source_dex: str, destination_dex: str, token: str,
                   amount: float) -> Any:
        """Move `token` between dexs ("" the default perp dex, "spot") and/or accounts."""
        timestamp = self._nonces.next()
        action = {"type": "sendAsset", "destination": destination, "sourceDex": source_dex,
                  "destinationDex": destination_dex, "token": token, "amount": str(amount),
                  "fromSubAccount": self.vault_address if self.vault_address else "",
                  "nonce": timestamp}
        signature = sign_send_asset_action(self._key, action, self._is_mainnet)
        return self._post_action(action, signature, timestamp)

    def usd_transfer(self, amount: float, destination: str) -> Any:
        timestamp = self._nonces.next()
        action = {"destination": destination, "amount": str(amount), "time": timestamp,
                  "type": "usdSend"}
        signature = sign_usd_transfer_action(self._key, action, self._is_mainnet)
        return self._post_action(action, signature, timestamp)

    def spot_transfer(self, amount: float, destination: str, token: str) -> Any:
        timestamp = self._nonces.next()
        action = {"destination": destination, "amount": str(amount), "token": token,
                  "time": timestamp, "type": "spotSend"}
        signature = sign_spot_transfer_action(self._key, action, self._is_mainnet)
        return self._post_action(action, signature, timestamp)

    def token_delegate(self, validator: str, wei: int, is_undelegate: bool) -> Any:
        timestamp = self._nonces.next()
        action = {"validator": validator, "wei": wei, "isUndelegate": is_undelegate,
                  "nonce": timestamp, "type": "tokenDelegate"}
        signature = sign_token_delegate_action(self._key, action, self._is_mainnet)
        return self._post_action(action, signature, timestamp)

    def withdraw_from_bridge(self, amount: float, destination: str) -> Any:
        timestamp = self._nonces.next()
        action = {"destination": destination, "amount": str(amount), "time": timestamp,
                  "type": "withdraw3"}
        signature = sign_withdraw_from_bridge_action(self._key, action, self._is_mainnet)
        return self._post_action(action, signature, timestamp)

    def approve_agent(self, name: str | None = None) -> tuple[Any, str]:
        """Approve a new random agent key; returns (the answer, the agent's hex key)."""
        agent_key = "0x" + secrets.token_hex(32)
        timestamp = self._nonces.next()
        action = {"type": "approveAgent", "agentAddress": Wallet(agent_key).address,
                  "agentName": name or "", "nonce": timestamp}
        signature = sign_agent(self._key, action, self._is_mainnet)
        if name is None:
            del action["agentName"]
        return self._post_action(action, signature, timestamp), agent_key

    def approve_builder_fee(self, builder: str, max_fee_rate: str) -> Any:
        timestamp = self._nonces.next()
        action = {"maxFeeRate": max_fee_rate, "builder": builder, "nonce": timestamp,
                  "type": "approveBuilderFee"}
        signature = sign_approve_builder_fee(self._key, action, self._is_mainnet)
        return self._post_action(action, signature, timestamp)

    def convert_to_multi_sig_user(self, authorized_users: list[str], threshold: int) -> Any:
        timestamp = self._nonces.next()
        signers = {"authorizedUsers": sorted(authorized_users), "threshold": threshold}
        action = {"type": "convertToMultiSigUser", "signers": json.dumps(signers),
                  "nonce": timestamp}
        signature = sign_convert_to_multi_sig_user_action(self._key, action, self._is_mainnet)
        return self._post_action(action, signature, timestamp)

    def user_dex_abstraction(self, user: str, enabled: bool) -> Any:
        timestamp = self._nonces.next()
        action = {"type": "userDexAbstraction", "user": user.lower(), "enabled": enabled,
                  "nonce": timestamp}
        signature = sign_user_dex_abstraction_action(self._key, action, self._is_mainnet)
        return self._post_action(action, signature, timestamp)

    def user_set_abstraction(self, user: str, abstraction: Abstraction) -> Any:
        timestamp = self._nonces.next()
        action = {"type": "userSetAbstraction", "user": user.lower(),
                  "abstraction": abstraction, "nonce": timestamp}
        signature = sign_user_set_abstraction_action(self._key, action, self._is_mainnet)
        return self._post_action(action, signature, timestamp)

    # ------------------------------------------------------------ multi-sig

    def multi_sig(self, multi_sig_user: str, inner_action: dict[str, Any],
                  signatures: list[dict[str, Any]], nonce: int,
                  vault_address: str | None = None) -> Any:
        """Post `inner_action` for a multi-sig user with its signers' `signatures`."""
        action = {
            "type": "multiSig",
            "signatureChainId": "0x66eee",
            "signatures": signatures,
            "payload": {"multiSigUser": multi_sig_user.lower(),
                        "outerSigner": self.wallet.address.lower(),
                        "action": _multi_sig_payload_action(inner_action)},
        }
        signature = sign_multi_sig_action(self._key, action, self._is_mainnet, vault_address,
                                          nonce, self.expires_after)
        return self._post_action(action, signature, nonce)

    # ------------------------------------------------------------ spot deploy

    def _spot_deploy(self, variant: str, fields: Any) -> Any:
        return self._l1({"type": "spotDeploy", variant: fields}, for_vault=False)

    def spot_deploy_register_token(self, token_name: str, sz_decimals: int, wei_decimals: int,
                                   max_gas: int, full_name: str) -> Any:
        return self._spot_deploy("registerToken2", {
            "spec": {"name": token_name, "szDecimals": sz_decimals, "weiDecimals": wei_decimals},
            "maxGas": max_gas, "fullName": full_name})

    def spot_deploy_user_genesis(self, token: int, user_and_wei: list[tuple[str, str]],
                                 existing_token_and_wei: list[tuple[int, str]]) -> Any:
        return self._spot_deploy("userGenesis", {
            "token": token, "userAndWei": [(user.lower(), wei) for user, wei in user_and_wei],
            "existingTokenAndWei": existing_token_and_wei})

    def spot_deploy_enable_freeze_privilege(self, token: int) -> Any:
        return self.spot_deploy_token_action_inner("enableFreezePrivilege", token)

    def spot_deploy_freeze_user(self, token: int, user: str, freeze: bool) -> Any:
        return self._spot_deploy("freezeUser", {"token": token, "user": user.lower(),
                                                "freeze": freeze})

    def spot_deploy_revoke_freeze_privilege(self, token: int) -> Any:
        return self.spot_deploy_token_action_inner("revokeFreezePrivilege", token)

    def spot_deploy_enable_quote_token(self, token: int) -> Any:
        return self.spot_deploy_token_action_inner("enableQuoteToken", token)

    def spot_deploy_token_action_inner(self, variant: str, token: int) -> Any:
        return self._spot_deploy(variant, {"token": token})

    def spot_deploy_genesis(self, token: int, max_supply: str, no_hyperliquidity: bool) -> Any:
        genesis: dict[str, Any] = {"token": token, "maxSupply": max_supply}
        if no_hyperliquidity:
            genesis["noHyperliquidity"] = True
        return self._spot_deploy("genesis", genesis)

    def spot_deploy_register_spot(self, base_token: int, quote_token: int) -> Any:
        return self._spot_deploy("registerSpot", {"tokens": [base_token, quote_token]})

    def spot_deploy_register_hyperliquidity(self, spot: int, start_px: float, order_sz: float,
                                            n_orders: int,
                                            n_seeded_levels: int | None) -> Any:
        fields: dict[str, Any] = {"spot": spot, "startPx": str(start_px),
                                  "orderSz": str(order_sz), "nOrders": n_orders}
        if n_seeded_levels is not None:
            fields["nSeededLevels"] = n_seeded_levels
        return self._spot_deploy("registerHyperliquidity", fields)

    def spot_deploy_set_deployer_trading_fee_share(self, token: int, share: str) -> Any:
        return self._spot_deploy("setDeployerTradingFeeShare", {"token": token, "share": share})

    # ------------------------------------------------------------ perp deploy

    def perp_deploy_register_asset(self, dex: str, max_gas: int | None, coin: str,
                                   sz_decimals: int, oracle_px: str, margin_table_id: int,
                                   only_isolated: bool,
                                   schema: PerpDexSchemaInput | None) -> Any:
        schema_wire = None
        if schema is not None:
            updater = schema["oracleUpdater"]
            schema_wire = {"fullName": schema["fullName"],
                           "collateralToken": schema["collateralToken"],
                           "oracleUpdater": updater.lower() if updater is not None else None}
        return self._l1({"type": "perpDeploy", "registerAsset": {
            "maxGas": max_gas,
            "assetRequest": {"coin": coin, "szDecimals": sz_decimals, "oraclePx": oracle_px,
                             "marginTableId": margin_table_id, "onlyIsolated": only_isolated},
            "dex": dex, "schema": schema_wire}}, for_vault=False)

    def perp_deploy_set_oracle(self, dex: str, oracle_pxs: dict[str, str],
                               all_mark_pxs: list[dict[str, str]],
                               external_perp_pxs: dict[str, str]) -> Any:
        return self._l1({"type": "perpDeploy", "setOracle": {
            "dex": dex, "oraclePxs": sorted(oracle_pxs.items()),
            "markPxs": [sorted(mark_pxs.items()) for mark_pxs in all_mark_pxs],
            "externalPerpPxs": sorted(external_perp_pxs.items())}}, for_vault=False)

    # ------------------------------------------------------------ validators

    def c_signer_unjail_self(self) -> Any:
        return self.c_signer_inner("unjailSelf")

    def c_signer_jail_self(self) -> Any:
        return self.c_signer_inner("jailSelf")

    def c_signer_inner(self, variant: str) -> Any:
        return self._l1({"type": "CSignerAction", variant: None}, for_vault=False)

    def c_validator_register(self, node_ip: str, name: str, description: str,
                             delegations_disabled: bool, commission_bps: int, signer: str,
                             unjailed: bool, initial_wei: int) -> Any:
        profile = {"node_ip": {"Ip": node_ip}, "name": name, "description": description,
                   "delegations_disabled": delegations_disabled,
                   "commission_bps": commission_bps, "signer": signer}
        return self._l1({"type": "CValidatorAction", "register": {
            "profile": profile, "unjailed": unjailed, "initial_wei": initial_wei}},
            for_vault=False)

    def c_validator_change_profile(self, node_ip: str | None, name: str | None,
                                   description: str | None, unjailed: bool,
                                   disable_delegations: bool | None,
                                   commission_bps: int | None, signer: str | None) -> Any:
        return self._l1({"type": "CValidatorAction", "changeProfile": {
            "node_ip": None if node_ip is None else {"Ip": node_ip}, "name": name,
            "description": description, "unjailed": unjailed,
            "disable_delegations": disable_delegations, "commission_bps": commission_bps,
            "signer": signer}}, for_vault=False)

    def c_validator_unregister(self) -> Any:
        return self._l1({"type": "CValidatorAction", "unregister": None}, for_vault=False)
