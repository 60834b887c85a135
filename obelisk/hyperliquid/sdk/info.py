"""The SDK's ``Info``: every read of ``/info``, as the plain JSON the server answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from obelisk.hyperliquid.sdk.api import API
from obelisk.hyperliquid.sdk.utils.types import (
    Cloid,
    Meta,
    SpotMeta,
    SpotMetaAndAssetCtxs,
    Subscription,
)
from obelisk.hyperliquid.sdk.websocket_manager import WebsocketManager

__all__ = ["Info"]

SPOT_ASSET_OFFSET = 10_000          # spot asset ids are 10000 + the pair's index
BUILDER_DEX_OFFSET = 110_000        # the first builder-deployed perp dex's first asset id
BUILDER_DEX_STRIDE = 10_000         # asset ids each further builder dex moves up by
_COIN_SUBSCRIPTIONS = frozenset({"l2Book", "trades", "candle", "bbo", "activeAssetCtx"})


class Info(API):
    """Read markets and accounts; the SDK's ``Info`` with the same arguments and answers.

    Parameters
    ----------
    base_url : str, optional
        The server (mainnet by default).
    skip_ws : bool
        Do not open the websocket (then ``subscribe`` raises RuntimeError).
    meta, spot_meta : dict, optional
        The perp and spot metadata, when known; fetched otherwise.
    perp_dexs : list of str, optional
        Builder-deployed perp dexs to map as well ("" is the original dex).
    timeout : float, optional
        Seconds one request may take in all.

    Attributes
    ----------
    coin_to_asset, name_to_coin, asset_to_sz_decimals : dict
        The SDK's name and asset-id maps.
    """

    def __init__(self, base_url: str | None = None, skip_ws: bool | None = False,
                 meta: Meta | None = None, spot_meta: SpotMeta | None = None,
                 perp_dexs: list[str] | None = None,
                 timeout: float | None = None) -> None:
        super().__init__(base_url, timeout)
        self.ws_manager: WebsocketManager | None = None
        if not skip_ws:
            self.ws_manager = WebsocketManager(self.base_url)
            self.ws_manager.start()
        if spot_meta is None:
            spot_meta = self.spot_meta()
        self.coin_to_asset: dict[str, int] = {}
        self.name_to_coin: dict[str, str] = {}
        self.asset_to_sz_decimals: dict[int, int] = {}
        self._map_spot(spot_meta)

        offsets = {"": 0}
        if perp_dexs is None:
            perp_dexs = [""]
        else:
            for i, dex in enumerate(self.perp_dexs()[1:]):
                offsets[dex["name"]] = BUILDER_DEX_OFFSET + i * BUILDER_DEX_STRIDE
        for dex_name in perp_dexs:
            if dex_name == "" and meta is not None:
                self.set_perp_meta(meta, 0)
            else:
                self.set_perp_meta(self.meta(dex=dex_name), offsets[dex_name])

    def _map_spot(self, spot_meta: SpotMeta) -> None:
        tokens = {token["index"]: token for token in spot_meta["tokens"]}
        for pair in spot_meta["universe"]:
            asset = SPOT_ASSET_OFFSET + pair["index"]
            name = pair["name"]
            self.coin_to_asset[name] = asset
            self.name_to_coin[name] = name
            base, quote = (tokens[index] for index in pair["tokens"])
            self.asset_to_sz_decimals[asset] = base["szDecimals"]
            self.name_to_coin.setdefault(f"{base['name']}/{quote['name']}", name)

    def set_perp_meta(self, meta: Meta, offset: int) -> Any:
        """Map the coins of one perp dex's `meta` to asset ids from `offset`."""
        for index, asset_info in enumerate(meta["universe"]):
            name = asset_info["name"]
            self.coin_to_asset[name] = offset + index
            self.name_to_coin[name] = name
            self.asset_to_sz_decimals[offset + index] = asset_info["szDecimals"]

    def disconnect_websocket(self) -> None:
        if self.ws_manager is None:
            raise RuntimeError("Cannot call disconnect_websocket since skip_ws was used")
        self.ws_manager.stop()

    def _info(self, kind: str, **fields: Any) -> Any:
        return self.post("/info", {"type": kind, **fields})

    # ------------------------------------------------------------ account state

    def user_state(self, address: str, dex: str = "") -> Any:
        """Positions and margin of a perp account (``clearinghouseState``)."""
        return self._info("clearinghouseState", user=address, dex=dex)

    def spot_user_state(self, address: str) -> Any:
        return self._info("spotClearinghouseState", user=address)

    def open_orders(self, address: str, dex: str = "") -> Any:
        return self._info("openOrders", user=address, dex=dex)

    def frontend_open_orders(self, address: str, dex: str = "") -> Any:
        return self._info("frontendOpenOrders", user=address, dex=dex)

    def user_fills(self, address: str) -> Any:
        return self._info("userFills", user=address)

    def user_fills_by_time(self, address: str, start_time: int, end_time: int | None = None,
                           aggregate_by_time: bool | None = False) -> Any:
        return self._info("userFillsByTime", user=address, startTime=start_time,
                          endTime=end_time, aggregateByTime=aggregate_by_time)

    def user_fees(self, address: str) -> Any:
        return self._info("userFees", user=address)

    def user_staking_summary(self, address: str) -> Any:
        return self._info("delegatorSummary", user=address)

    def user_staking_delegations(self, address: str) -> Any:
        return self._info("delegations", user=address)

    def user_staking_rewards(self, address: str) -> Any:
        return self._info("delegatorRewards", user=address)

    def delegator_history(self, user: str) -> Any:
        return self._info("delegatorHistory", user=user)

    def user_funding_history(self, user: str, startTime: int,
                             endTime: int | None = None) -> Any:
        if endTime is not None:
            return self._info("userFunding", user=user, startTime=startTime, endTime=endTime)
        return self._info("userFunding", user=user, startTime=startTime)

    def query_order_by_oid(self, user: str, oid: int) -> Any:
        return self._info("orderStatus", user=user, oid=oid)

    def query_order_by_cloid(self, user: str, cloid: Cloid) -> Any:
        return self._info("orderStatus", user=user, oid=cloid.to_raw())

    def query_referral_state(self, user: str) -> Any:
        return self._info("referral", user=user)

    def query_sub_accounts(self, user: str) -> Any:
        return self._info("subAccounts", user=user)

    def query_user_to_multi_sig_signers(self, multi_sig_user: str) -> Any:
        return self._info("userToMultiSigSigners", user=multi_sig_user)

    def query_perp_deploy_auction_status(self) -> Any:
        return self._info("perpDeployAuctionStatus")

    def query_user_dex_abstraction_state(self, user: str) -> Any:
        return self._info("userDexAbstraction", user=user)

    def query_user_abstraction_state(self, user: str) -> Any:
        return self._info("userAbstraction", user=user)

    def historical_orders(self, user: str) -> Any:
        return self._info("historicalOrders", user=user)

    def user_non_funding_ledger_updates(self, user: str, startTime: int,
                                        endTime: int | None = None) -> Any:
        return self._info("userNonFundingLedgerUpdates", user=user, startTime=startTime,
                          endTime=endTime)

    def portfolio(self, user: str) -> Any:
        return self._info("portfolio", user=user)

    def user_twap_slice_fills(self, user: str) -> Any:
        return self._info("userTwapSliceFills", user=user)

    def user_vault_equities(self, user: str) -> Any:
        return self._info("userVaultEquities", user=user)

    def user_role(self, user: str) -> Any:
        return self._info("userRole", user=user)

    def user_rate_limit(self, user: str) -> Any:
        return self._info("userRateLimit", user=user)

    def query_spot_deploy_auction_status(self, user: str) -> Any:
        return self._info("spotDeployState", user=user)

    def extra_agents(self, user: str) -> Any:
        return self._info("extraAgents", user=user)

    # ------------------------------------------------------------ markets

    def all_mids(self, dex: str = "") -> Any:
        return self._info("allMids", dex=dex)

    def meta(self, dex: str = "") -> Meta:
        return cast(Meta, self._info("meta", dex=dex))

    def meta_and_asset_ctxs(self) -> Any:
        return self._info("metaAndAssetCtxs")

    def perp_dexs(self) -> Any:
        return self._info("perpDexs")

    def spot_meta(self) -> SpotMeta:
        return cast(SpotMeta, self._info("spotMeta"))

    def spot_meta_and_asset_ctxs(self) -> SpotMetaAndAssetCtxs:
        return cast(SpotMetaAndAssetCtxs, self._info("spotMetaAndAssetCtxs"))

    def funding_history(self, name: str, startTime: int, endTime: int | None = None) -> Any:
        coin = self.name_to_coin[name]
        if endTime is not None:
            return self._info("fundingHistory", coin=coin, startTime=startTime, endTime=endTime)
        return self._info("fundingHistory", coin=coin, startTime=startTime)

    def l2_snapshot(self, name: str) -> Any:
        return self._info("l2Book", coin=self.name_to_coin[name])

    def candles_snapshot(self, name: str, interval: str, startTime: int, endTime: int) -> Any:
        return self._info("candleSnapshot", req={"coin": self.name_to_coin[name],
                                                 "interval": interval, "startTime": startTime,
                                                 "endTime": endTime})

    def name_to_asset(self, name: str) -> int:
        return self.coin_to_asset[self.name_to_coin[name]]

    # ------------------------------------------------------------ websocket

    def _remap_coin_subscription(self, subscription: Subscription) -> None:
        if subscription["type"] in _COIN_SUBSCRIPTIONS:
            fields = cast(dict, subscription)
            fields["coin"] = self.name_to_coin[fields["coin"]]

    def subscribe(self, subscription: Subscription, callback: Callable[[Any], None]) -> int:
        self._remap_coin_subscription(subscription)
        if self.ws_manager is None:
            raise RuntimeError("Cannot call subscribe since skip_ws was used")
        return self.ws_manager.subscribe(subscription, callback)

    def unsubscribe(self, subscription: Subscription, subscription_id: int) -> bool:
        self._remap_coin_subscription(subscription)
        if self.ws_manager is None:
            raise RuntimeError("Cannot call unsubscribe since skip_ws was used")
        return self.ws_manager.unsubscribe(subscription, subscription_id)
