"""The SDK's typing vocabulary: metadata, subscriptions, websocket messages, Cloid.

The ``TypedDict`` s describe the plain dicts the API sends and takes; they are for type
checkers only. :class:`Cloid` is obelisk's client order id, raising the SDK's errors.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

# the SDK's module re-exports these typing names; scripts import them from here
from typing import (  # noqa: UP035
    Any,
    Dict,
    List,
    Literal,
    NamedTuple,
    Optional,
    Tuple,
    TypedDict,
    Union,
    cast,
)

from obelisk.hyperliquid.wire import Cloid as _WireCloid

if sys.version_info >= (3, 11):
    from typing import NotRequired
else:  # pragma: no cover - Python 3.10
    try:
        from typing_extensions import NotRequired
    except ImportError:
        class _NotRequired:
            """``NotRequired[T]`` read as ``T`` (no typing_extensions on Python 3.10)."""

            def __class_getitem__(cls, item: Any) -> Any:
                return item

        NotRequired = _NotRequired  # type: ignore[assignment,misc]

Option = Optional

__all__ = [
    "SIDES", "Abstraction", "ActiveAssetCtx", "ActiveAssetCtxMsg", "ActiveAssetCtxSubscription",
    "ActiveAssetData", "ActiveAssetDataMsg", "ActiveAssetDataSubscription",
    "ActiveSpotAssetCtx", "ActiveSpotAssetCtxMsg", "AgentAbstraction", "AllMidsData",
    "AllMidsMsg", "AllMidsSubscription", "Any", "AssetInfo", "BboData", "BboMsg",
    "BboSubscription", "BuilderInfo", "Callable", "CandleSubscription", "Cloid",
    "CrossLeverage", "Dict", "Fill", "IsolatedLeverage", "L2BookData", "L2BookMsg",
    "L2BookSubscription", "L2Level", "Leverage", "List", "Literal", "Meta", "NamedTuple",
    "NotRequired", "Option", "Optional", "OrderUpdatesSubscription", "OtherWsMsg",
    "PerpAssetCtx", "PerpDexSchemaInput", "PongMsg", "Side", "SpotAssetCtx", "SpotAssetInfo",
    "SpotMeta", "SpotMetaAndAssetCtxs", "SpotTokenInfo", "Subscription", "Trade", "TradesMsg",
    "TradesSubscription", "Tuple", "TypedDict", "Union", "UserEventsData", "UserEventsMsg",
    "UserEventsSubscription", "UserFillsData", "UserFillsMsg", "UserFillsSubscription",
    "UserFundingsSubscription", "UserNonFundingLedgerUpdatesSubscription",
    "WebData2Subscription", "WsMsg", "cast",
]

# ------------------------------------------------------------------ metadata


class AssetInfo(TypedDict):
    name: str
    szDecimals: int


class Meta(TypedDict):
    universe: list[AssetInfo]


Side = Literal["A", "B"]
SIDES: list[Side] = ["A", "B"]


class SpotAssetInfo(TypedDict):
    name: str
    tokens: list[int]
    index: int
    isCanonical: bool


class SpotTokenInfo(TypedDict):
    name: str
    szDecimals: int
    weiDecimals: int
    index: int
    tokenId: str
    isCanonical: bool
    evmContract: str | None
    fullName: str | None


class SpotMeta(TypedDict):
    universe: list[SpotAssetInfo]
    tokens: list[SpotTokenInfo]


class SpotAssetCtx(TypedDict):
    dayNtlVlm: str
    markPx: str
    midPx: str | None
    prevDayPx: str
    circulatingSupply: str
    coin: str


SpotMetaAndAssetCtxs = tuple[SpotMeta, list[SpotAssetCtx]]

# ------------------------------------------------------------------ subscriptions


class AllMidsSubscription(TypedDict):
    type: Literal["allMids"]


class BboSubscription(TypedDict):
    type: Literal["bbo"]
    coin: str


class L2BookSubscription(TypedDict):
    type: Literal["l2Book"]
    coin: str


class TradesSubscription(TypedDict):
    type: Literal["trades"]
    coin: str


class UserEventsSubscription(TypedDict):
    type: Literal["userEvents"]
    user: str


class UserFillsSubscription(TypedDict):
    type: Literal["userFills"]
    user: str


class CandleSubscription(TypedDict):
    type: Literal["candle"]
    coin: str
    interval: str


class OrderUpdatesSubscription(TypedDict):
    type: Literal["orderUpdates"]
    user: str


class UserFundingsSubscription(TypedDict):
    type: Literal["userFundings"]
    user: str


class UserNonFundingLedgerUpdatesSubscription(TypedDict):
    type: Literal["userNonFundingLedgerUpdates"]
    user: str


class WebData2Subscription(TypedDict):
    type: Literal["webData2"]
    user: str


class ActiveAssetCtxSubscription(TypedDict):
    type: Literal["activeAssetCtx"]
    coin: str


class ActiveAssetDataSubscription(TypedDict):
    type: Literal["activeAssetData"]
    user: str
    coin: str


Subscription = (
    AllMidsSubscription | BboSubscription | L2BookSubscription | TradesSubscription
    | UserEventsSubscription | UserFillsSubscription | CandleSubscription
    | OrderUpdatesSubscription | UserFundingsSubscription
    | UserNonFundingLedgerUpdatesSubscription | WebData2Subscription
    | ActiveAssetCtxSubscription | ActiveAssetDataSubscription
)

# ------------------------------------------------------------------ websocket messages


class AllMidsData(TypedDict):
    mids: dict[str, str]


class AllMidsMsg(TypedDict):
    channel: Literal["allMids"]
    data: AllMidsData


class L2Level(TypedDict):
    px: str
    sz: str
    n: int


class L2BookData(TypedDict):
    coin: str
    levels: tuple[list[L2Level], list[L2Level]]
    time: int


class L2BookMsg(TypedDict):
    channel: Literal["l2Book"]
    data: L2BookData


class BboData(TypedDict):
    coin: str
    time: int
    bbo: tuple[L2Level | None, L2Level | None]


class BboMsg(TypedDict):
    channel: Literal["bbo"]
    data: BboData


class PongMsg(TypedDict):
    channel: Literal["pong"]


class Trade(TypedDict):
    coin: str
    side: Side
    px: str
    sz: int
    hash: str
    time: int


class CrossLeverage(TypedDict):
    type: Literal["cross"]
    value: int


class IsolatedLeverage(TypedDict):
    type: Literal["isolated"]
    value: int
    rawUsd: str


Leverage = CrossLeverage | IsolatedLeverage


class TradesMsg(TypedDict):
    channel: Literal["trades"]
    data: list[Trade]


class PerpAssetCtx(TypedDict):
    funding: str
    openInterest: str
    prevDayPx: str
    dayNtlVlm: str
    premium: str
    oraclePx: str
    markPx: str
    midPx: str | None
    impactPxs: tuple[str, str] | None
    dayBaseVlm: str


class ActiveAssetCtx(TypedDict):
    coin: str
    ctx: PerpAssetCtx


class ActiveSpotAssetCtx(TypedDict):
    coin: str
    ctx: SpotAssetCtx


class ActiveAssetCtxMsg(TypedDict):
    channel: Literal["activeAssetCtx"]
    data: ActiveAssetCtx


class ActiveSpotAssetCtxMsg(TypedDict):
    channel: Literal["activeSpotAssetCtx"]
    data: ActiveSpotAssetCtx


class ActiveAssetData(TypedDict):
    user: str
    coin: str
    leverage: Leverage
    maxTradeSzs: tuple[str, str]
    availableToTrade: tuple[str, str]
    markPx: str


class ActiveAssetDataMsg(TypedDict):
    channel: Literal["activeAssetData"]
    data: ActiveAssetData


class Fill(TypedDict):
    coin: str
    px: str
    sz: str
    side: Side
    time: int
    startPosition: str
    dir: str
    closedPnl: str
    hash: str
    oid: int
    crossed: bool
    fee: str
    tid: int
    feeToken: str


class UserEventsData(TypedDict, total=False):
    fills: list[Fill]


class UserEventsMsg(TypedDict):
    channel: Literal["user"]
    data: UserEventsData


class UserFillsData(TypedDict):
    user: str
    isSnapshot: bool
    fills: list[Fill]


class UserFillsMsg(TypedDict):
    channel: Literal["userFills"]
    data: UserFillsData


class OtherWsMsg(TypedDict, total=False):
    channel: Literal["candle", "orderUpdates", "userFundings", "userNonFundingLedgerUpdates",
                     "webData2"]
    data: Any


WsMsg = (
    AllMidsMsg | BboMsg | L2BookMsg | TradesMsg | UserEventsMsg | PongMsg | UserFillsMsg
    | OtherWsMsg | ActiveAssetCtxMsg | ActiveSpotAssetCtxMsg | ActiveAssetDataMsg
)

# ------------------------------------------------------------------ actions


class BuilderInfo(TypedDict):
    """``b``: the builder's address; ``f``: its fee in tenths of a basis point."""

    b: str
    f: int


Abstraction = Literal["unifiedAccount", "portfolioMargin", "disabled"]
AgentAbstraction = Literal["u", "p", "i"]


class PerpDexSchemaInput(TypedDict):
    fullName: str
    collateralToken: int
    oracleUpdater: str | None


class Cloid(_WireCloid):
    """A client order id, ``0x`` and 32 hex digits: obelisk's, with the SDK's errors.

    What the SDK refuses (no ``0x``, not 32 digits after it) raises ``TypeError`` as the
    SDK does; obelisk also refuses what the SDK would send but the exchange cannot match
    (upper-case or non-hex digits), with :class:`~obelisk.hyperliquid.wire.WireError`.
    """

    __slots__ = ()

    def __init__(self, raw_cloid: str) -> None:
        if raw_cloid[:2] != "0x":
            raise TypeError("cloid is not a hex string")
        if len(raw_cloid[2:]) != 32:
            raise TypeError("cloid is not 16 bytes")
        super().__init__(raw_cloid)

    @staticmethod
    def from_int(cloid: int) -> Cloid:
        return Cloid(f"{cloid:#034x}")

    @staticmethod
    def from_str(cloid: str) -> Cloid:
        return Cloid(cloid)
