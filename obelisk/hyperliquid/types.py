"""Frozen dataclasses for Hyperliquid info answers, each built from its wire JSON.

Every ``from_wire`` reads the documented keys and ignores any others, so newer fields
do not break parsing; keys that older recordings lack are optional (``None``).
Decimal strings become floats, ms timestamps and ids stay ints. A missing required
key or a wrong type raises ``KeyError``/``TypeError``/``ValueError``, which the info
client reports as :class:`~obelisk.hyperliquid.errors.MalformedResponseError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from obelisk.instruments import Instrument
from obelisk.margin import MarginTiers, margin_tables_from_meta, tiers_of

Wire = Mapping[str, Any]


def _num(value: Any) -> float:
    """A wire number (decimal string or JSON number) as a float; rejects bools and None."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError(f"expected a decimal string, got {value!r}")
    return float(value)


def _opt_num(value: Any) -> float | None:
    return None if value is None else _num(value)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _opt_int(value: Any) -> int | None:
    return None if value is None else _int(value)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _opt_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return value


def _pair(value: Any) -> tuple[float, float]:
    first, second = _list(value)
    return _num(first), _num(second)


# --- listings -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AssetMeta:
    """One perp of ``meta.universe``: its :class:`Instrument` (asset id = its index there)
    and the flags that only the listing carries."""

    instrument: Instrument
    margin_table_id: int | None = None
    only_isolated: bool = False
    is_delisted: bool = False
    margin_mode: str | None = None

    @property
    def name(self) -> str:
        return self.instrument.name

    @property
    def sz_decimals(self) -> int:
        return self.instrument.sz_decimals

    @property
    def max_leverage(self) -> int:
        return self.instrument.max_leverage

    @classmethod
    def from_wire(cls, data: Wire, asset: int) -> AssetMeta:
        return cls(Instrument.from_meta(data, asset), _opt_int(data.get("marginTableId")),
                   bool(data.get("onlyIsolated", False)), bool(data.get("isDelisted", False)),
                   _opt_str(data.get("marginMode")))


@dataclass(frozen=True, slots=True)
class Meta:
    """A ``meta`` answer: the perp universe and its margin tables by id (absent before 2025),
    read by the rules of :meth:`Instrument.from_meta` and
    :func:`obelisk.margin.margin_tables_from_meta`."""

    universe: tuple[AssetMeta, ...]
    margin_tables: Mapping[int, MarginTiers] = field(default_factory=dict)

    @classmethod
    def from_wire(cls, data: Wire) -> Meta:
        universe = tuple(AssetMeta.from_wire(entry, index)
                         for index, entry in enumerate(_list(data["universe"])))
        return cls(universe, margin_tables_from_meta(data))

    def instruments(self) -> list[Instrument]:
        """Every perp as an :class:`Instrument` (asset id = universe index)."""
        return [asset.instrument for asset in self.universe]

    def margin_tiers(self) -> dict[str, MarginTiers]:
        """Each perp's tier table, by coin."""
        return {a.name: tiers_of(a.name, a.margin_table_id, a.max_leverage, self.margin_tables)
                for a in self.universe}


@dataclass(frozen=True, slots=True)
class SpotToken:
    name: str
    index: int
    sz_decimals: int
    wei_decimals: int
    token_id: str
    is_canonical: bool
    full_name: str | None = None

    @classmethod
    def from_wire(cls, data: Wire) -> SpotToken:
        return cls(_str(data["name"]), _int(data["index"]), _int(data["szDecimals"]),
                   _int(data["weiDecimals"]), _str(data["tokenId"]),
                   bool(data.get("isCanonical", False)), _opt_str(data.get("fullName")))


@dataclass(frozen=True, slots=True)
class SpotPair:
    """One spot market; `name` is its coin string (``PURR/USDC`` or ``@{index}``)."""

    name: str
    index: int
    base_token: int
    quote_token: int
    is_canonical: bool

    @classmethod
    def from_wire(cls, data: Wire) -> SpotPair:
        base, quote = _list(data["tokens"])
        return cls(_str(data["name"]), _int(data["index"]), _int(base), _int(quote),
                   bool(data.get("isCanonical", False)))

    @property
    def asset(self) -> int:
        """The exchange asset id: 10000 + spot index."""
        return 10_000 + self.index


@dataclass(frozen=True, slots=True)
class SpotMeta:
    tokens: tuple[SpotToken, ...]
    universe: tuple[SpotPair, ...]

    @classmethod
    def from_wire(cls, data: Wire) -> SpotMeta:
        return cls(tuple(SpotToken.from_wire(t) for t in _list(data["tokens"])),
                   tuple(SpotPair.from_wire(p) for p in _list(data["universe"])))

    def token(self, index: int) -> SpotToken:
        """The token with wire index `index` (KeyError if unlisted)."""
        for token in self.tokens:
            if token.index == index:
                return token
        raise KeyError(f"spot token {index} is not in spotMeta")


@dataclass(frozen=True, slots=True)
class PerpAssetCtx:
    """Live state of one perp (``metaAndAssetCtxs``); hourly `funding` rate."""

    funding: float
    open_interest: float
    mark_px: float
    oracle_px: float
    prev_day_px: float
    day_ntl_vlm: float
    mid_px: float | None = None
    premium: float | None = None
    impact_pxs: tuple[float, float] | None = None
    day_base_vlm: float | None = None

    @classmethod
    def from_wire(cls, data: Wire) -> PerpAssetCtx:
        impact = data.get("impactPxs")
        return cls(_num(data["funding"]), _num(data["openInterest"]), _num(data["markPx"]),
                   _num(data["oraclePx"]), _num(data["prevDayPx"]), _num(data["dayNtlVlm"]),
                   _opt_num(data.get("midPx")), _opt_num(data.get("premium")),
                   None if impact is None else _pair(impact),
                   _opt_num(data.get("dayBaseVlm")))


@dataclass(frozen=True, slots=True)
class SpotAssetCtx:
    mark_px: float
    prev_day_px: float
    day_ntl_vlm: float
    mid_px: float | None = None
    coin: str | None = None
    circulating_supply: float | None = None
    total_supply: float | None = None
    day_base_vlm: float | None = None

    @classmethod
    def from_wire(cls, data: Wire) -> SpotAssetCtx:
        return cls(_num(data["markPx"]), _num(data["prevDayPx"]), _num(data["dayNtlVlm"]),
                   _opt_num(data.get("midPx")), _opt_str(data.get("coin")),
                   _opt_num(data.get("circulatingSupply")), _opt_num(data.get("totalSupply")),
                   _opt_num(data.get("dayBaseVlm")))


@dataclass(frozen=True, slots=True)
class MetaAndAssetCtxs:
    meta: Meta
    ctxs: tuple[PerpAssetCtx, ...]

    @classmethod
    def from_wire(cls, data: Any) -> MetaAndAssetCtxs:
        meta, ctxs = _list(data)
        return cls(Meta.from_wire(meta), tuple(PerpAssetCtx.from_wire(c) for c in _list(ctxs)))


@dataclass(frozen=True, slots=True)
class SpotMetaAndAssetCtxs:
    meta: SpotMeta
    ctxs: tuple[SpotAssetCtx, ...]

    @classmethod
    def from_wire(cls, data: Any) -> SpotMetaAndAssetCtxs:
        meta, ctxs = _list(data)
        return cls(SpotMeta.from_wire(meta),
                   tuple(SpotAssetCtx.from_wire(c) for c in _list(ctxs)))


# --- market data ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class L2Level:
    px: float
    sz: float
    n: int


@dataclass(frozen=True, slots=True)
class L2Snapshot:
    """An ``l2Book`` answer: best-first bids and asks (at most 20 levels each) at `time`.

    A read-only copy; the book kept current from websocket frames is :class:`obelisk.L2Book`.
    """

    coin: str
    time: int
    bids: tuple[L2Level, ...]
    asks: tuple[L2Level, ...]

    @classmethod
    def from_wire(cls, data: Wire) -> L2Snapshot:
        bids, asks = _list(data["levels"])
        return cls(_str(data["coin"]), _int(data["time"]),
                   tuple(L2Level(_num(x["px"]), _num(x["sz"]), _int(x["n"])) for x in bids),
                   tuple(L2Level(_num(x["px"]), _num(x["sz"]), _int(x["n"])) for x in asks))


@dataclass(frozen=True, slots=True)
class FundingRate:
    coin: str
    funding_rate: float
    premium: float
    time: int

    @classmethod
    def from_wire(cls, data: Wire) -> FundingRate:
        return cls(_str(data["coin"]), _num(data["fundingRate"]), _num(data["premium"]),
                   _int(data["time"]))


@dataclass(frozen=True, slots=True)
class PredictedFunding:
    """One venue's next funding for a coin (``predictedFundings``)."""

    coin: str
    venue: str
    funding_rate: float
    next_funding_time: int | None = None
    interval_hours: int | None = None


def predicted_fundings_from_wire(data: Any) -> tuple[PredictedFunding, ...]:
    """Flatten ``[[coin, [[venue, {fundingRate, nextFundingTime} | null], ...]], ...]``."""
    found = []
    for coin, venues in _list(data):
        for venue, entry in _list(venues):
            if entry is not None:
                found.append(PredictedFunding(
                    _str(coin), _str(venue), _num(entry["fundingRate"]),
                    _opt_int(entry.get("nextFundingTime")),
                    _opt_int(entry.get("fundingIntervalHours"))))
    return tuple(found)


@dataclass(frozen=True, slots=True)
class Candle:
    open_time: int
    close_time: int
    coin: str
    interval: str
    open: float
    close: float
    high: float
    low: float
    volume: float
    trades: int

    @classmethod
    def from_wire(cls, data: Wire) -> Candle:
        return cls(_int(data["t"]), _int(data["T"]), _str(data["s"]), _str(data["i"]),
                   _num(data["o"]), _num(data["c"]), _num(data["h"]), _num(data["l"]),
                   _num(data["v"]), _int(data["n"]))


# --- account state --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Leverage:
    """``cross`` or ``isolated`` leverage; isolated positions carry their `raw_usd`."""

    type: str
    value: int
    raw_usd: float | None = None

    @classmethod
    def from_wire(cls, data: Wire) -> Leverage:
        return cls(_str(data["type"]), _int(data["value"]), _opt_num(data.get("rawUsd")))


@dataclass(frozen=True, slots=True)
class CumFunding:
    all_time: float
    since_open: float
    since_change: float


@dataclass(frozen=True, slots=True)
class Position:
    coin: str
    szi: float
    entry_px: float | None
    position_value: float
    unrealized_pnl: float
    return_on_equity: float
    liquidation_px: float | None
    margin_used: float
    leverage: Leverage
    max_leverage: int | None = None
    cum_funding: CumFunding | None = None

    @classmethod
    def from_wire(cls, data: Wire) -> Position:
        cum = data.get("cumFunding")
        return cls(_str(data["coin"]), _num(data["szi"]), _opt_num(data.get("entryPx")),
                   _num(data["positionValue"]), _num(data["unrealizedPnl"]),
                   _num(data["returnOnEquity"]), _opt_num(data.get("liquidationPx")),
                   _num(data["marginUsed"]), Leverage.from_wire(data["leverage"]),
                   _opt_int(data.get("maxLeverage")),
                   None if cum is None else CumFunding(_num(cum["allTime"]),
                                                       _num(cum["sinceOpen"]),
                                                       _num(cum["sinceChange"])))


@dataclass(frozen=True, slots=True)
class MarginSummary:
    account_value: float
    total_ntl_pos: float
    total_raw_usd: float
    total_margin_used: float

    @classmethod
    def from_wire(cls, data: Wire) -> MarginSummary:
        return cls(_num(data["accountValue"]), _num(data["totalNtlPos"]),
                   _num(data["totalRawUsd"]), _num(data["totalMarginUsed"]))


@dataclass(frozen=True, slots=True)
class ClearinghouseState:
    """A perp account (``clearinghouseState``)."""

    positions: tuple[Position, ...]
    margin_summary: MarginSummary
    cross_margin_summary: MarginSummary
    withdrawable: float
    cross_maintenance_margin_used: float | None = None
    time: int | None = None

    @classmethod
    def from_wire(cls, data: Wire) -> ClearinghouseState:
        return cls(tuple(Position.from_wire(p["position"]) for p in _list(data["assetPositions"])),
                   MarginSummary.from_wire(data["marginSummary"]),
                   MarginSummary.from_wire(data["crossMarginSummary"]),
                   _num(data["withdrawable"]),
                   _opt_num(data.get("crossMaintenanceMarginUsed")), _opt_int(data.get("time")))


@dataclass(frozen=True, slots=True)
class SpotBalance:
    coin: str
    token: int
    total: float
    hold: float
    entry_ntl: float | None = None


def spot_balances_from_wire(data: Wire) -> tuple[SpotBalance, ...]:
    return tuple(SpotBalance(_str(b["coin"]), _int(b["token"]), _num(b["total"]),
                             _num(b["hold"]), _opt_num(b.get("entryNtl")))
                 for b in _list(data["balances"]))


@dataclass(frozen=True, slots=True)
class ActiveAssetData:
    """Leverage and tradeable sizes of one user on one perp, as (buy, sell) pairs."""

    coin: str
    leverage: Leverage
    max_trade_szs: tuple[float, float]
    available_to_trade: tuple[float, float]
    mark_px: float

    @classmethod
    def from_wire(cls, data: Wire) -> ActiveAssetData:
        return cls(_str(data["coin"]), Leverage.from_wire(data["leverage"]),
                   _pair(data["maxTradeSzs"]), _pair(data["availableToTrade"]),
                   _num(data["markPx"]))


# --- orders and fills -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Order:
    """An order as ``openOrders`` and ``frontendOpenOrders`` describe it.

    The ``frontendOpenOrders`` / ``orderStatus`` / ``historicalOrders`` fields are
    ``None`` (or empty) for the plain ``openOrders`` shape.
    """

    coin: str
    side: str
    limit_px: float
    sz: float
    oid: int
    timestamp: int
    orig_sz: float | None = None
    cloid: str | None = None
    order_type: str | None = None
    tif: str | None = None
    reduce_only: bool | None = None
    is_trigger: bool | None = None
    trigger_px: float | None = None
    trigger_condition: str | None = None
    is_position_tpsl: bool | None = None
    children: tuple[Order, ...] = ()

    @classmethod
    def from_wire(cls, data: Wire) -> Order:
        return cls(_str(data["coin"]), _str(data["side"]), _num(data["limitPx"]),
                   _num(data["sz"]), _int(data["oid"]), _int(data["timestamp"]),
                   _opt_num(data.get("origSz")), _opt_str(data.get("cloid")),
                   _opt_str(data.get("orderType")), _opt_str(data.get("tif")),
                   data.get("reduceOnly"), data.get("isTrigger"),
                   _opt_num(data.get("triggerPx")), _opt_str(data.get("triggerCondition")),
                   data.get("isPositionTpsl"),
                   tuple(Order.from_wire(c) for c in _list(data.get("children", []))))


@dataclass(frozen=True, slots=True)
class OrderWithStatus:
    """An order with its lifecycle status (``orderStatus``, ``historicalOrders``)."""

    order: Order
    status: str
    status_timestamp: int

    @classmethod
    def from_wire(cls, data: Wire) -> OrderWithStatus:
        return cls(Order.from_wire(data["order"]), _str(data["status"]),
                   _int(data["statusTimestamp"]))


def order_status_from_wire(data: Wire) -> OrderWithStatus | None:
    """``orderStatus``: the order and status, or None for ``{"status": "unknownOid"}``."""
    if data["status"] != "order":
        return None
    return OrderWithStatus.from_wire(data["order"])


@dataclass(frozen=True, slots=True)
class Fill:
    coin: str
    px: float
    sz: float
    side: str
    time: int
    start_position: float
    dir: str
    closed_pnl: float
    hash: str
    oid: int
    crossed: bool
    fee: float
    tid: int | None = None
    fee_token: str | None = None
    builder_fee: float | None = None
    cloid: str | None = None

    @classmethod
    def from_wire(cls, data: Wire) -> Fill:
        return cls(_str(data["coin"]), _num(data["px"]), _num(data["sz"]), _str(data["side"]),
                   _int(data["time"]), _num(data["startPosition"]), _str(data["dir"]),
                   _num(data["closedPnl"]), _str(data["hash"]), _int(data["oid"]),
                   bool(data["crossed"]), _num(data["fee"]), _opt_int(data.get("tid")),
                   _opt_str(data.get("feeToken")), _opt_num(data.get("builderFee")),
                   _opt_str(data.get("cloid")))


@dataclass(frozen=True, slots=True)
class TwapSliceFill:
    twap_id: int
    fill: Fill

    @classmethod
    def from_wire(cls, data: Wire) -> TwapSliceFill:
        return cls(_int(data["twapId"]), Fill.from_wire(data["fill"]))


# --- ledger ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FundingPayment:
    """One hourly funding payment of a user; `usdc` < 0 means paid."""

    time: int
    hash: str
    coin: str
    usdc: float
    szi: float
    funding_rate: float
    n_samples: int | None = None

    @classmethod
    def from_wire(cls, data: Wire) -> FundingPayment:
        delta = data["delta"]
        return cls(_int(data["time"]), _str(data["hash"]), _str(delta["coin"]),
                   _num(delta["usdc"]), _num(delta["szi"]), _num(delta["fundingRate"]),
                   _opt_int(delta.get("nSamples")))


@dataclass(frozen=True, slots=True)
class LedgerUpdate:
    """A non-funding ledger event (deposit, transfer, delegation, ...).

    `kind` is the delta's ``type`` (or, for ``delegatorHistory``, its single key);
    `usdc` is the USDC amount when the event has one; `details` keeps the delta's
    fields as (key, value) pairs, values as sent.
    """

    time: int
    hash: str
    kind: str
    usdc: float | None
    details: tuple[tuple[str, Any], ...]

    @classmethod
    def from_wire(cls, data: Wire) -> LedgerUpdate:
        delta = data["delta"]
        if "type" in delta:
            kind, fields = _str(delta["type"]), delta
        else:
            (kind, fields), = delta.items()
        details = tuple((k, _frozen(v)) for k, v in sorted(fields.items()) if k != "type")
        return cls(_int(data["time"]), _str(data["hash"]), kind,
                   _opt_num(fields.get("usdc")), details)


def _frozen(value: Any) -> Any:
    """JSON as hashable values: lists become tuples, objects sorted (key, value) tuples."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, Mapping):
        return tuple((k, _frozen(v)) for k, v in sorted(value.items()))
    return value


# --- user limits, fees, portfolio, vaults ---------------------------------------------


@dataclass(frozen=True, slots=True)
class UserRateLimit:
    cum_vlm: float
    n_requests_used: int
    n_requests_cap: int
    n_requests_surplus: int | None = None

    @classmethod
    def from_wire(cls, data: Wire) -> UserRateLimit:
        return cls(_num(data["cumVlm"]), _int(data["nRequestsUsed"]),
                   _int(data["nRequestsCap"]), _opt_int(data.get("nRequestsSurplus")))


@dataclass(frozen=True, slots=True)
class UserFees:
    """A user's effective fee rates (fractions) after staking and referral discounts."""

    cross_rate: float
    add_rate: float
    spot_cross_rate: float | None = None
    spot_add_rate: float | None = None
    referral_discount: float | None = None
    staking_discount: float | None = None

    @classmethod
    def from_wire(cls, data: Wire) -> UserFees:
        staking = data.get("activeStakingDiscount")
        return cls(_num(data["userCrossRate"]), _num(data["userAddRate"]),
                   _opt_num(data.get("userSpotCrossRate")), _opt_num(data.get("userSpotAddRate")),
                   _opt_num(data.get("activeReferralDiscount")),
                   None if staking is None else _num(staking["discount"]))


@dataclass(frozen=True, slots=True)
class PortfolioPeriod:
    """Account value and pnl history over one period (``day``, ``week``, ``perpAllTime``...)."""

    period: str
    account_value_history: tuple[tuple[int, float], ...]
    pnl_history: tuple[tuple[int, float], ...]
    volume: float


def portfolio_from_wire(data: Any) -> tuple[PortfolioPeriod, ...]:
    def series(points: Any) -> tuple[tuple[int, float], ...]:
        return tuple((_int(t), _num(v)) for t, v in _list(points))

    return tuple(PortfolioPeriod(_str(period), series(body["accountValueHistory"]),
                                 series(body["pnlHistory"]), _num(body["vlm"]))
                 for period, body in _list(data))


@dataclass(frozen=True, slots=True)
class VaultEquity:
    vault_address: str
    equity: float
    locked_until: int | None = None

    @classmethod
    def from_wire(cls, data: Wire) -> VaultEquity:
        return cls(_str(data["vaultAddress"]), _num(data["equity"]),
                   _opt_int(data.get("lockedUntilTimestamp")))


@dataclass(frozen=True, slots=True)
class Agent:
    """An API wallet approved by a user (``extraAgents``)."""

    name: str
    address: str
    valid_until: int | None = None

    @classmethod
    def from_wire(cls, data: Wire) -> Agent:
        return cls(_str(data["name"]), _str(data["address"]), _opt_int(data.get("validUntil")))


__all__ = [
    "ActiveAssetData", "Agent", "AssetMeta", "Candle", "ClearinghouseState", "CumFunding",
    "Fill", "FundingPayment", "FundingRate", "L2Level", "L2Snapshot", "LedgerUpdate",
    "Leverage", "MarginSummary", "Meta", "MetaAndAssetCtxs",
    "Order", "OrderWithStatus", "PerpAssetCtx", "PortfolioPeriod", "Position",
    "PredictedFunding", "SpotAssetCtx", "SpotBalance", "SpotMeta", "SpotMetaAndAssetCtxs",
    "SpotPair", "SpotToken", "TwapSliceFill", "UserFees", "UserRateLimit", "VaultEquity",
    "order_status_from_wire", "portfolio_from_wire", "predicted_fundings_from_wire",
    "spot_balances_from_wire",
]
