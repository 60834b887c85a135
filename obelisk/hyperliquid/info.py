"""Typed Hyperliquid info clients: sync :class:`Info` and asyncio :class:`AsyncInfo`.

Each method sends the body the reference documents and returns frozen dataclasses from
:mod:`obelisk.hyperliquid.types`. Time-ranged requests are paginated: a full page is
followed by a request from its last time, duplicates dropped, until a short page or
`end_time`. :class:`AssetDirectory` maps coin names, asset ids and instruments.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from obelisk.hyperliquid.errors import MalformedResponseError
from obelisk.hyperliquid.transport import AsyncTransport, Transport
from obelisk.hyperliquid.types import (
    ActiveAssetData,
    Agent,
    Candle,
    ClearinghouseState,
    Fill,
    FundingPayment,
    FundingRate,
    L2Book,
    LedgerUpdate,
    Meta,
    MetaAndAssetCtxs,
    Order,
    OrderWithStatus,
    PortfolioPeriod,
    PredictedFunding,
    SpotBalance,
    SpotMeta,
    SpotMetaAndAssetCtxs,
    TwapSliceFill,
    UserFees,
    UserRateLimit,
    VaultEquity,
    order_status_from_wire,
    portfolio_from_wire,
    predicted_fundings_from_wire,
    spot_balances_from_wire,
)
from obelisk.instruments import Instrument

T = TypeVar("T")

PAGE_SIZES: Mapping[str, int] = {"userFillsByTime": 2000, "fundingHistory": 500,
                                 "userFunding": 500, "userNonFundingLedgerUpdates": 500,
                                 "candleSnapshot": 500}
"""Most items one answer of each paginated request holds."""


def _parse(kind: str, parse: Callable[[Any], T], answer: Any) -> T:
    try:
        return parse(answer)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
        raise MalformedResponseError(
            f"{kind} answer does not have the documented shape: {error!r}"[:300]) from None


def _items(parse_item: Callable[[Any], T]) -> Callable[[Any], tuple[T, ...]]:
    def parse(answer: Any) -> tuple[T, ...]:
        if not isinstance(answer, list):
            raise TypeError(f"expected a list, got {type(answer).__name__}")
        return tuple(parse_item(item) for item in answer)
    return parse


def _mids(answer: Any) -> dict[str, float]:
    return {str(coin): float(px) for coin, px in answer.items()}


@dataclass(frozen=True, slots=True)
class _Call(Generic[T]):
    body: dict[str, Any]
    parse: Callable[[Any], T]

    def result(self, answer: Any) -> T:
        return _parse(self.body["type"], self.parse, answer)


@dataclass(frozen=True, slots=True)
class _Paged(Generic[T]):
    """A time-ranged request: `body(start, end)` builds one page's request."""

    kind: str
    body: Callable[[int, int | None], dict[str, Any]]
    parse_item: Callable[[Any], T]
    time_of: Callable[[T], int]
    key: Callable[[T], Hashable]

    def page(self, answer: Any) -> tuple[T, ...]:
        return _parse(self.kind, _items(self.parse_item), answer)


class _Pager(Generic[T]):
    """Collects pages; `next_start` is None once the range is exhausted."""

    def __init__(self, paged: _Paged[T], start: int, end: int | None) -> None:
        self.paged, self.end = paged, end
        self.next_start: int | None = start
        self.items: list[T] = []
        self._seen: set[Hashable] = set()
        self._page_size = PAGE_SIZES[paged.kind]

    def request(self) -> dict[str, Any]:
        assert self.next_start is not None
        return self.paged.body(self.next_start, self.end)

    def add(self, answer: Any) -> None:
        page = self.paged.page(answer)
        fresh = 0
        for item in page:
            key = self.paged.key(item)
            if key not in self._seen:
                self._seen.add(key)
                self.items.append(item)
                fresh += 1
        start = self.next_start
        assert start is not None
        if len(page) < self._page_size:
            self.next_start = None
            return
        # A full page may stop inside its last millisecond: ask again from that time
        # (duplicates are dropped) while pages bring new items, else step past it.
        # A server that ignores startTime (no progress) ends the walk.
        last = max(self.paged.time_of(item) for item in page)
        following = last if fresh and last > start else last + 1
        done = following <= start or (self.end is not None and following > self.end)
        self.next_start = None if done else following

    def result(self) -> list[T]:
        return sorted(self.items, key=self.paged.time_of)


def _time_range(body: dict[str, Any], start: int, end: int | None) -> dict[str, Any]:
    body = dict(body, startTime=start)
    if end is not None:
        body["endTime"] = end
    return body


# --- request builders (shared by Info and AsyncInfo) ------------------------------------


def _user_call(kind: str, user: str, parse: Callable[[Any], T], **extra: Any) -> _Call[T]:
    return _Call({"type": kind, "user": user, **extra}, parse)


def _fills_by_time(user: str, aggregate: bool) -> _Paged[Fill]:
    return _Paged("userFillsByTime",
                  lambda s, e: _time_range({"type": "userFillsByTime", "user": user,
                                            "aggregateByTime": aggregate}, s, e),
                  Fill.from_wire, lambda f: f.time, lambda f: f)


def _funding_history(coin: str) -> _Paged[FundingRate]:
    return _Paged("fundingHistory",
                  lambda s, e: _time_range({"type": "fundingHistory", "coin": coin}, s, e),
                  FundingRate.from_wire, lambda f: f.time, lambda f: f)


def _user_funding(user: str) -> _Paged[FundingPayment]:
    return _Paged("userFunding",
                  lambda s, e: _time_range({"type": "userFunding", "user": user}, s, e),
                  FundingPayment.from_wire, lambda f: f.time, lambda f: f)


def _ledger(user: str) -> _Paged[LedgerUpdate]:
    return _Paged("userNonFundingLedgerUpdates",
                  lambda s, e: _time_range({"type": "userNonFundingLedgerUpdates",
                                            "user": user}, s, e),
                  LedgerUpdate.from_wire, lambda u: u.time, lambda u: u)


def _candles(coin: str, interval: str, end_time: int) -> _Paged[Candle]:
    return _Paged("candleSnapshot",
                  lambda s, e: {"type": "candleSnapshot",
                                "req": {"coin": coin, "interval": interval, "startTime": s,
                                        "endTime": end_time if e is None else e}},
                  Candle.from_wire, lambda c: c.open_time, lambda c: c.open_time)


class _Requests:
    """The body and parser of every single-answer info request."""

    @staticmethod
    def meta(dex: str) -> _Call[Meta]:
        return _Call({"type": "meta", "dex": dex} if dex else {"type": "meta"}, Meta.from_wire)

    @staticmethod
    def spot_meta() -> _Call[SpotMeta]:
        return _Call({"type": "spotMeta"}, SpotMeta.from_wire)

    @staticmethod
    def meta_and_asset_ctxs() -> _Call[MetaAndAssetCtxs]:
        return _Call({"type": "metaAndAssetCtxs"}, MetaAndAssetCtxs.from_wire)

    @staticmethod
    def spot_meta_and_asset_ctxs() -> _Call[SpotMetaAndAssetCtxs]:
        return _Call({"type": "spotMetaAndAssetCtxs"}, SpotMetaAndAssetCtxs.from_wire)

    @staticmethod
    def all_mids(dex: str) -> _Call[dict[str, float]]:
        return _Call({"type": "allMids", "dex": dex} if dex else {"type": "allMids"}, _mids)

    @staticmethod
    def l2_book(coin: str, n_sig_figs: int | None, mantissa: int | None) -> _Call[L2Book]:
        body: dict[str, Any] = {"type": "l2Book", "coin": coin}
        if n_sig_figs is not None:
            body["nSigFigs"] = n_sig_figs
        if mantissa is not None:
            body["mantissa"] = mantissa
        return _Call(body, L2Book.from_wire)


class Info:
    """Blocking typed info client over a :class:`Transport` (shared, not owned)."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def _run(self, call: _Call[T]) -> T:
        return call.result(self.transport.post_info(call.body))

    def _pages(self, paged: _Paged[T], start: int, end: int | None) -> list[T]:
        pager = _Pager(paged, start, end)
        while pager.next_start is not None:
            pager.add(self.transport.post_info(pager.request()))
        return pager.result()

    # listings and market data
    def meta(self, dex: str = "") -> Meta:
        return self._run(_Requests.meta(dex))

    def spot_meta(self) -> SpotMeta:
        return self._run(_Requests.spot_meta())

    def meta_and_asset_ctxs(self) -> MetaAndAssetCtxs:
        return self._run(_Requests.meta_and_asset_ctxs())

    def spot_meta_and_asset_ctxs(self) -> SpotMetaAndAssetCtxs:
        return self._run(_Requests.spot_meta_and_asset_ctxs())

    def all_mids(self, dex: str = "") -> dict[str, float]:
        return self._run(_Requests.all_mids(dex))

    def l2_book(self, coin: str, n_sig_figs: int | None = None,
                mantissa: int | None = None) -> L2Book:
        return self._run(_Requests.l2_book(coin, n_sig_figs, mantissa))

    def predicted_fundings(self) -> tuple[PredictedFunding, ...]:
        return self._run(_Call({"type": "predictedFundings"}, predicted_fundings_from_wire))

    def perps_at_open_interest_cap(self) -> tuple[str, ...]:
        return self._run(_Call({"type": "perpsAtOpenInterestCap"}, _items(str)))

    def funding_history(self, coin: str, start_time: int,
                        end_time: int | None = None) -> list[FundingRate]:
        return self._pages(_funding_history(coin), start_time, end_time)

    def candle_snapshot(self, coin: str, interval: str, start_time: int,
                        end_time: int) -> list[Candle]:
        return self._pages(_candles(coin, interval, end_time), start_time, end_time)

    # account
    def clearinghouse_state(self, user: str, dex: str = "") -> ClearinghouseState:
        extra = {"dex": dex} if dex else {}
        return self._run(_user_call("clearinghouseState", user,
                                    ClearinghouseState.from_wire, **extra))

    def spot_clearinghouse_state(self, user: str) -> tuple[SpotBalance, ...]:
        return self._run(_user_call("spotClearinghouseState", user, spot_balances_from_wire))

    def open_orders(self, user: str) -> tuple[Order, ...]:
        return self._run(_user_call("openOrders", user, _items(Order.from_wire)))

    def frontend_open_orders(self, user: str) -> tuple[Order, ...]:
        return self._run(_user_call("frontendOpenOrders", user, _items(Order.from_wire)))

    def order_status(self, user: str, oid: int | str) -> OrderWithStatus | None:
        """The order by oid or cloid with its status; None when the server does not know it."""
        return self._run(_user_call("orderStatus", user, order_status_from_wire, oid=oid))

    def historical_orders(self, user: str) -> tuple[OrderWithStatus, ...]:
        return self._run(_user_call("historicalOrders", user,
                                    _items(OrderWithStatus.from_wire)))

    def user_fills(self, user: str, aggregate_by_time: bool = False) -> tuple[Fill, ...]:
        extra = {"aggregateByTime": True} if aggregate_by_time else {}
        return self._run(_user_call("userFills", user, _items(Fill.from_wire), **extra))

    def user_fills_by_time(self, user: str, start_time: int, end_time: int | None = None,
                           aggregate_by_time: bool = False) -> list[Fill]:
        return self._pages(_fills_by_time(user, aggregate_by_time), start_time, end_time)

    def user_funding(self, user: str, start_time: int,
                     end_time: int | None = None) -> list[FundingPayment]:
        return self._pages(_user_funding(user), start_time, end_time)

    def user_non_funding_ledger_updates(self, user: str, start_time: int,
                                        end_time: int | None = None) -> list[LedgerUpdate]:
        return self._pages(_ledger(user), start_time, end_time)

    def user_rate_limit(self, user: str) -> UserRateLimit:
        return self._run(_user_call("userRateLimit", user, UserRateLimit.from_wire))

    def user_fees(self, user: str) -> UserFees:
        return self._run(_user_call("userFees", user, UserFees.from_wire))

    def user_role(self, user: str) -> str:
        return self._run(_user_call("userRole", user, lambda a: str(a["role"])))

    def portfolio(self, user: str) -> tuple[PortfolioPeriod, ...]:
        return self._run(_user_call("portfolio", user, portfolio_from_wire))

    def active_asset_data(self, user: str, coin: str) -> ActiveAssetData:
        return self._run(_user_call("activeAssetData", user, ActiveAssetData.from_wire,
                                    coin=coin))

    def user_vault_equities(self, user: str) -> tuple[VaultEquity, ...]:
        return self._run(_user_call("userVaultEquities", user, _items(VaultEquity.from_wire)))

    def extra_agents(self, user: str) -> tuple[Agent, ...]:
        return self._run(_user_call("extraAgents", user, _items(Agent.from_wire)))

    def user_twap_slice_fills(self, user: str) -> tuple[TwapSliceFill, ...]:
        return self._run(_user_call("userTwapSliceFills", user,
                                    _items(TwapSliceFill.from_wire)))

    def delegator_history(self, user: str) -> tuple[LedgerUpdate, ...]:
        return self._run(_user_call("delegatorHistory", user, _items(LedgerUpdate.from_wire)))

    def max_builder_fee(self, user: str, builder: str) -> int:
        return self._run(_user_call("maxBuilderFee", user, int, builder=builder.lower()))

    def directory(self) -> AssetDirectory:
        """Names, asset ids and instruments of every perp and spot market."""
        return AssetDirectory(self.meta(), self.spot_meta())


class AsyncInfo:
    """asyncio typed info client over an :class:`AsyncTransport`; same methods as :class:`Info`."""

    def __init__(self, transport: AsyncTransport) -> None:
        self.transport = transport

    async def _run(self, call: _Call[T]) -> T:
        return call.result(await self.transport.post_info(call.body))

    async def _pages(self, paged: _Paged[T], start: int, end: int | None) -> list[T]:
        pager = _Pager(paged, start, end)
        while pager.next_start is not None:
            pager.add(await self.transport.post_info(pager.request()))
        return pager.result()

    async def meta(self, dex: str = "") -> Meta:
        return await self._run(_Requests.meta(dex))

    async def spot_meta(self) -> SpotMeta:
        return await self._run(_Requests.spot_meta())

    async def meta_and_asset_ctxs(self) -> MetaAndAssetCtxs:
        return await self._run(_Requests.meta_and_asset_ctxs())

    async def spot_meta_and_asset_ctxs(self) -> SpotMetaAndAssetCtxs:
        return await self._run(_Requests.spot_meta_and_asset_ctxs())

    async def all_mids(self, dex: str = "") -> dict[str, float]:
        return await self._run(_Requests.all_mids(dex))

    async def l2_book(self, coin: str, n_sig_figs: int | None = None,
                      mantissa: int | None = None) -> L2Book:
        return await self._run(_Requests.l2_book(coin, n_sig_figs, mantissa))

    async def predicted_fundings(self) -> tuple[PredictedFunding, ...]:
        return await self._run(_Call({"type": "predictedFundings"},
                                     predicted_fundings_from_wire))

    async def perps_at_open_interest_cap(self) -> tuple[str, ...]:
        return await self._run(_Call({"type": "perpsAtOpenInterestCap"}, _items(str)))

    async def funding_history(self, coin: str, start_time: int,
                              end_time: int | None = None) -> list[FundingRate]:
        return await self._pages(_funding_history(coin), start_time, end_time)

    async def candle_snapshot(self, coin: str, interval: str, start_time: int,
                              end_time: int) -> list[Candle]:
        return await self._pages(_candles(coin, interval, end_time), start_time, end_time)

    async def clearinghouse_state(self, user: str, dex: str = "") -> ClearinghouseState:
        extra = {"dex": dex} if dex else {}
        return await self._run(_user_call("clearinghouseState", user,
                                          ClearinghouseState.from_wire, **extra))

    async def spot_clearinghouse_state(self, user: str) -> tuple[SpotBalance, ...]:
        return await self._run(_user_call("spotClearinghouseState", user,
                                          spot_balances_from_wire))

    async def open_orders(self, user: str) -> tuple[Order, ...]:
        return await self._run(_user_call("openOrders", user, _items(Order.from_wire)))

    async def frontend_open_orders(self, user: str) -> tuple[Order, ...]:
        return await self._run(_user_call("frontendOpenOrders", user, _items(Order.from_wire)))

    async def order_status(self, user: str, oid: int | str) -> OrderWithStatus | None:
        return await self._run(_user_call("orderStatus", user, order_status_from_wire, oid=oid))

    async def historical_orders(self, user: str) -> tuple[OrderWithStatus, ...]:
        return await self._run(_user_call("historicalOrders", user,
                                          _items(OrderWithStatus.from_wire)))

    async def user_fills(self, user: str, aggregate_by_time: bool = False) -> tuple[Fill, ...]:
        extra = {"aggregateByTime": True} if aggregate_by_time else {}
        return await self._run(_user_call("userFills", user, _items(Fill.from_wire), **extra))

    async def user_fills_by_time(self, user: str, start_time: int, end_time: int | None = None,
                                 aggregate_by_time: bool = False) -> list[Fill]:
        return await self._pages(_fills_by_time(user, aggregate_by_time), start_time, end_time)

    async def user_funding(self, user: str, start_time: int,
                           end_time: int | None = None) -> list[FundingPayment]:
        return await self._pages(_user_funding(user), start_time, end_time)

    async def user_non_funding_ledger_updates(self, user: str, start_time: int,
                                              end_time: int | None = None) -> list[LedgerUpdate]:
        return await self._pages(_ledger(user), start_time, end_time)

    async def user_rate_limit(self, user: str) -> UserRateLimit:
        return await self._run(_user_call("userRateLimit", user, UserRateLimit.from_wire))

    async def user_fees(self, user: str) -> UserFees:
        return await self._run(_user_call("userFees", user, UserFees.from_wire))

    async def user_role(self, user: str) -> str:
        return await self._run(_user_call("userRole", user, lambda a: str(a["role"])))

    async def portfolio(self, user: str) -> tuple[PortfolioPeriod, ...]:
        return await self._run(_user_call("portfolio", user, portfolio_from_wire))

    async def active_asset_data(self, user: str, coin: str) -> ActiveAssetData:
        return await self._run(_user_call("activeAssetData", user, ActiveAssetData.from_wire,
                                          coin=coin))

    async def user_vault_equities(self, user: str) -> tuple[VaultEquity, ...]:
        return await self._run(_user_call("userVaultEquities", user,
                                          _items(VaultEquity.from_wire)))

    async def extra_agents(self, user: str) -> tuple[Agent, ...]:
        return await self._run(_user_call("extraAgents", user, _items(Agent.from_wire)))

    async def user_twap_slice_fills(self, user: str) -> tuple[TwapSliceFill, ...]:
        return await self._run(_user_call("userTwapSliceFills", user,
                                          _items(TwapSliceFill.from_wire)))

    async def delegator_history(self, user: str) -> tuple[LedgerUpdate, ...]:
        return await self._run(_user_call("delegatorHistory", user,
                                          _items(LedgerUpdate.from_wire)))

    async def max_builder_fee(self, user: str, builder: str) -> int:
        return await self._run(_user_call("maxBuilderFee", user, int, builder=builder.lower()))

    async def directory(self) -> AssetDirectory:
        return AssetDirectory(await self.meta(), await self.spot_meta())


class AssetDirectory:
    """Coin name <-> asset id <-> :class:`Instrument` for every perp and spot market.

    Perps: asset id = ``meta`` universe index, name as listed. Spot: asset id =
    10000 + pair index; the coin is the pair's name (``PURR/USDC`` or ``@107``), and
    ``BASE/QUOTE`` token names (``HYPE/USDC``) resolve to it too. A spot instrument's
    size decimals are its base token's.
    """

    def __init__(self, meta: Meta, spot_meta: SpotMeta | None = None) -> None:
        self._by_name: dict[str, Instrument] = {}
        self._by_asset: dict[int, Instrument] = {}
        for instrument in meta.instruments():
            self._add(instrument)
        if spot_meta is not None:
            for pair in spot_meta.universe:
                base = spot_meta.token(pair.base_token)
                quote = spot_meta.token(pair.quote_token)
                instrument = Instrument(pair.name, pair.asset, base.sz_decimals, 1, True)
                self._add(instrument)
                self._by_name.setdefault(f"{base.name}/{quote.name}", instrument)

    def _add(self, instrument: Instrument) -> None:
        self._by_name[instrument.name] = instrument
        self._by_asset[instrument.asset] = instrument

    def instrument(self, coin_or_asset: str | int) -> Instrument:
        """The instrument of a coin name or asset id (KeyError if unknown)."""
        table: Mapping[Any, Instrument] = (
            self._by_asset if isinstance(coin_or_asset, int) else self._by_name)
        try:
            return table[coin_or_asset]
        except KeyError:
            raise KeyError(f"unknown coin or asset {coin_or_asset!r}") from None

    def asset(self, coin: str) -> int:
        """The asset id used in exchange actions for `coin`."""
        return self.instrument(coin).asset

    def coin(self, asset: int) -> str:
        """The coin string info and websocket requests use for `asset`."""
        return self.instrument(asset).name

    def instruments(self) -> list[Instrument]:
        """Every instrument, perps first, by asset id."""
        return [self._by_asset[a] for a in sorted(self._by_asset)]


__all__ = ["PAGE_SIZES", "AssetDirectory", "AsyncInfo", "Info"]
