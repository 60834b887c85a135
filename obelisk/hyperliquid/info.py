"""Typed Hyperliquid info clients: sync :class:`Info` and asyncio :class:`AsyncInfo`.

Each method sends the body the reference documents and returns frozen dataclasses from
:mod:`obelisk.hyperliquid.types`. Time-ranged requests are paginated: a full page is
followed by a request from its last time, duplicates dropped, until a short page or
`end_time`. :class:`AssetDirectory` maps coin names, asset ids and instruments.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any, Protocol, TypeVar

from obelisk.hyperliquid.errors import MalformedResponseError
from obelisk.hyperliquid.transport import AsyncTransport, Transport
from obelisk.hyperliquid.twins import AsyncClient, BlockingClient, Request, client_method
from obelisk.hyperliquid.types import (
    ActiveAssetData,
    Agent,
    Candle,
    ClearinghouseState,
    Fill,
    FundingPayment,
    FundingRate,
    L2Snapshot,
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


class _Query(Request[T]):
    """An info request as a conversation, without I/O: post each body :meth:`request`
    gives (None: done), hand its answer to :meth:`add`, then read :meth:`result`."""

    def request(self) -> dict[str, Any] | None:
        raise NotImplementedError

    def add(self, answer: Any) -> None:
        raise NotImplementedError

    def result(self) -> T:
        raise NotImplementedError


class _Call(_Query[T]):
    """A request with a single answer."""

    def __init__(self, body: dict[str, Any], parse: Callable[[Any], T]) -> None:
        self._body: dict[str, Any] | None = body
        self._kind = str(body["type"])
        self._parse = parse

    def request(self) -> dict[str, Any] | None:
        return self._body

    def add(self, answer: Any) -> None:
        self._result = _parse(self._kind, self._parse, answer)
        self._body = None

    def result(self) -> T:
        return self._result


class _Pager(_Query[list[T]]):
    """A time-ranged request, walked page by page: `page_body(start, end)` builds one
    page's request; items are ordered by `time_of` and told apart by `key`."""

    def __init__(self, kind: str, page_body: Callable[[int, int | None], dict[str, Any]],
                 parse_item: Callable[[Any], T], time_of: Callable[[T], int],
                 key: Callable[[T], Hashable], start: int, end: int | None) -> None:
        self._kind, self._page_body, self._parse_page = kind, page_body, _items(parse_item)
        self._time_of, self._key = time_of, key
        self.end = end
        self.next_start: int | None = start
        self.items: list[T] = []
        self._seen: set[Hashable] = set()
        self._page_size = PAGE_SIZES[kind]

    def request(self) -> dict[str, Any] | None:
        if self.next_start is None:
            return None
        return self._page_body(self.next_start, self.end)

    def add(self, answer: Any) -> None:
        page = _parse(self._kind, self._parse_page, answer)
        fresh = 0
        for item in page:
            key = self._key(item)
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
        last = max(self._time_of(item) for item in page)
        following = last if fresh and last > start else last + 1
        done = following <= start or (self.end is not None and following > self.end)
        self.next_start = None if done else following

    def result(self) -> list[T]:
        return sorted(self.items, key=self._time_of)


class _Timed(Protocol):
    """A hashable item with a ms `time` (the frozen dataclasses of time-ranged answers)."""

    @property
    def time(self) -> int: ...

    def __hash__(self) -> int: ...


TimedItem = TypeVar("TimedItem", bound=_Timed)


def _by_time(body: dict[str, Any], parse_item: Callable[[Any], TimedItem], start: int,
             end: int | None) -> _Pager[TimedItem]:
    """Every item of `body`'s kind from `start` to `end` (ms), walked by ``time``."""
    def page_body(page_start: int, page_end: int | None) -> dict[str, Any]:
        page = dict(body, startTime=page_start)
        if page_end is not None:
            page["endTime"] = page_end
        return page

    return _Pager(body["type"], page_body, parse_item, lambda item: item.time,
                  lambda item: item, start, end)


def _user_call(kind: str, user: str, parse: Callable[[Any], T], **extra: Any) -> _Call[T]:
    return _Call({"type": kind, "user": user, **extra}, parse)


def _with_dex(kind: str, dex: str) -> dict[str, Any]:
    return {"type": kind, "dex": dex} if dex else {"type": kind}


class _InfoMethods:
    """Every info request, written once for :class:`Info` and :class:`AsyncInfo`."""

    # listings and market data
    @client_method
    def meta(self, dex: str = "") -> _Call[Meta]:
        return _Call(_with_dex("meta", dex), Meta.from_wire)

    @client_method
    def spot_meta(self) -> _Call[SpotMeta]:
        return _Call({"type": "spotMeta"}, SpotMeta.from_wire)

    @client_method
    def meta_and_asset_ctxs(self) -> _Call[MetaAndAssetCtxs]:
        return _Call({"type": "metaAndAssetCtxs"}, MetaAndAssetCtxs.from_wire)

    @client_method
    def spot_meta_and_asset_ctxs(self) -> _Call[SpotMetaAndAssetCtxs]:
        return _Call({"type": "spotMetaAndAssetCtxs"}, SpotMetaAndAssetCtxs.from_wire)

    @client_method
    def all_mids(self, dex: str = "") -> _Call[dict[str, float]]:
        return _Call(_with_dex("allMids", dex), _mids)

    @client_method
    def l2_book(self, coin: str, n_sig_figs: int | None = None,
                mantissa: int | None = None) -> _Call[L2Snapshot]:
        body: dict[str, Any] = {"type": "l2Book", "coin": coin}
        if n_sig_figs is not None:
            body["nSigFigs"] = n_sig_figs
        if mantissa is not None:
            body["mantissa"] = mantissa
        return _Call(body, L2Snapshot.from_wire)

    @client_method
    def predicted_fundings(self) -> _Call[tuple[PredictedFunding, ...]]:
        return _Call({"type": "predictedFundings"}, predicted_fundings_from_wire)

    @client_method
    def perps_at_open_interest_cap(self) -> _Call[tuple[str, ...]]:
        return _Call({"type": "perpsAtOpenInterestCap"}, _items(str))

    @client_method
    def funding_history(self, coin: str, start_time: int,
                        end_time: int | None = None) -> _Pager[FundingRate]:
        return _by_time({"type": "fundingHistory", "coin": coin}, FundingRate.from_wire,
                        start_time, end_time)

    @client_method
    def candle_snapshot(self, coin: str, interval: str, start_time: int,
                        end_time: int) -> _Pager[Candle]:
        def page_body(page_start: int, page_end: int | None) -> dict[str, Any]:
            return {"type": "candleSnapshot",
                    "req": {"coin": coin, "interval": interval, "startTime": page_start,
                            "endTime": end_time if page_end is None else page_end}}

        return _Pager("candleSnapshot", page_body, Candle.from_wire, lambda c: c.open_time,
                      lambda c: c.open_time, start_time, end_time)

    # account
    @client_method
    def clearinghouse_state(self, user: str, dex: str = "") -> _Call[ClearinghouseState]:
        extra = {"dex": dex} if dex else {}
        return _user_call("clearinghouseState", user, ClearinghouseState.from_wire, **extra)

    @client_method
    def spot_clearinghouse_state(self, user: str) -> _Call[tuple[SpotBalance, ...]]:
        return _user_call("spotClearinghouseState", user, spot_balances_from_wire)

    @client_method
    def open_orders(self, user: str) -> _Call[tuple[Order, ...]]:
        return _user_call("openOrders", user, _items(Order.from_wire))

    @client_method
    def frontend_open_orders(self, user: str) -> _Call[tuple[Order, ...]]:
        return _user_call("frontendOpenOrders", user, _items(Order.from_wire))

    @client_method
    def order_status(self, user: str, oid: int | str) -> _Call[OrderWithStatus | None]:
        """The order by oid or cloid with its status; None when the server does not know it."""
        return _user_call("orderStatus", user, order_status_from_wire, oid=oid)

    @client_method
    def historical_orders(self, user: str) -> _Call[tuple[OrderWithStatus, ...]]:
        return _user_call("historicalOrders", user, _items(OrderWithStatus.from_wire))

    @client_method
    def user_fills(self, user: str, aggregate_by_time: bool = False) -> _Call[tuple[Fill, ...]]:
        extra = {"aggregateByTime": True} if aggregate_by_time else {}
        return _user_call("userFills", user, _items(Fill.from_wire), **extra)

    @client_method
    def user_fills_by_time(self, user: str, start_time: int, end_time: int | None = None,
                           aggregate_by_time: bool = False) -> _Pager[Fill]:
        return _by_time({"type": "userFillsByTime", "user": user,
                         "aggregateByTime": aggregate_by_time}, Fill.from_wire,
                        start_time, end_time)

    @client_method
    def user_funding(self, user: str, start_time: int,
                     end_time: int | None = None) -> _Pager[FundingPayment]:
        return _by_time({"type": "userFunding", "user": user}, FundingPayment.from_wire,
                        start_time, end_time)

    @client_method
    def user_non_funding_ledger_updates(self, user: str, start_time: int,
                                        end_time: int | None = None) -> _Pager[LedgerUpdate]:
        return _by_time({"type": "userNonFundingLedgerUpdates", "user": user},
                        LedgerUpdate.from_wire, start_time, end_time)

    @client_method
    def user_rate_limit(self, user: str) -> _Call[UserRateLimit]:
        return _user_call("userRateLimit", user, UserRateLimit.from_wire)

    @client_method
    def user_fees(self, user: str) -> _Call[UserFees]:
        return _user_call("userFees", user, UserFees.from_wire)

    @client_method
    def user_role(self, user: str) -> _Call[str]:
        return _user_call("userRole", user, lambda a: str(a["role"]))

    @client_method
    def portfolio(self, user: str) -> _Call[tuple[PortfolioPeriod, ...]]:
        return _user_call("portfolio", user, portfolio_from_wire)

    @client_method
    def active_asset_data(self, user: str, coin: str) -> _Call[ActiveAssetData]:
        return _user_call("activeAssetData", user, ActiveAssetData.from_wire, coin=coin)

    @client_method
    def user_vault_equities(self, user: str) -> _Call[tuple[VaultEquity, ...]]:
        return _user_call("userVaultEquities", user, _items(VaultEquity.from_wire))

    @client_method
    def extra_agents(self, user: str) -> _Call[tuple[Agent, ...]]:
        return _user_call("extraAgents", user, _items(Agent.from_wire))

    @client_method
    def user_twap_slice_fills(self, user: str) -> _Call[tuple[TwapSliceFill, ...]]:
        return _user_call("userTwapSliceFills", user, _items(TwapSliceFill.from_wire))

    @client_method
    def delegator_history(self, user: str) -> _Call[tuple[LedgerUpdate, ...]]:
        return _user_call("delegatorHistory", user, _items(LedgerUpdate.from_wire))

    @client_method
    def max_builder_fee(self, user: str, builder: str) -> _Call[int]:
        return _user_call("maxBuilderFee", user, int, builder=builder.lower())


class Info(_InfoMethods, BlockingClient):
    """Blocking typed info client over a :class:`Transport` (shared, not owned)."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def _submit(self, query: _Query[T]) -> T:
        while (body := query.request()) is not None:
            query.add(self.transport.post_info(body))
        return query.result()

    def directory(self) -> AssetDirectory:
        """Names, asset ids and instruments of every perp and spot market."""
        return AssetDirectory(self.meta(), self.spot_meta())


class AsyncInfo(_InfoMethods, AsyncClient):
    """asyncio typed info client over an :class:`AsyncTransport`; same methods as :class:`Info`."""

    def __init__(self, transport: AsyncTransport) -> None:
        self.transport = transport

    async def _submit(self, query: _Query[T]) -> T:
        while (body := query.request()) is not None:
            query.add(await self.transport.post_info(body))
        return query.result()

    async def directory(self) -> AssetDirectory:
        """Names, asset ids and instruments of every perp and spot market."""
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
