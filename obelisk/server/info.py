"""``POST /info`` of the local exchange: read-only queries in Hyperliquid's shapes.

Lists are bounded as the exchange bounds them (500 time-ranged rows, 2000 fills
or historical orders, 20 book levels a side). Addresses are matched
case-insensitively; an address the exchange has never seen gets an empty
account, as on Hyperliquid.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import ROUND_DOWN, Context, Decimal
from typing import TYPE_CHECKING, Any

from obelisk._core.book import Side
from obelisk.server.records import Order, Wire, num, units_text

if TYPE_CHECKING:
    from obelisk.server.exchange import Account, LocalExchange

BOOK_LEVELS = 20
TIME_RANGED_ROWS = 500
RECENT_ROWS = 2000
INTERVALS_MS = {
    "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "8h": 28_800_000,
    "12h": 43_200_000, "1d": 86_400_000, "3d": 259_200_000, "1w": 604_800_000,
    "1M": 2_592_000_000,
}
USDC_TOKEN = {"name": "USDC", "szDecimals": 8, "weiDecimals": 8, "index": 0,
              "tokenId": "0x6d1e7cde53ba9467b783cb7c530ce054", "isCanonical": True,
              "evmContract": None, "fullName": None}


def answer(exchange: LocalExchange, request: Wire) -> Any:
    from obelisk.server.decode import Undecodable

    handler = _HANDLERS.get(request["type"])
    if handler is None:
        raise Undecodable(f"unknown info type {request['type']!r}")
    try:
        return handler(exchange, request)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise Undecodable() from None


# ---------------------------------------------------------------- market

def _meta(exchange: LocalExchange, request: Wire) -> Wire:
    _dex(request)
    universe = [{"name": i.name, "szDecimals": i.sz_decimals, "maxLeverage": i.max_leverage,
                 "marginTableId": i.max_leverage} for i in exchange.instruments]
    tables = sorted({i.max_leverage for i in exchange.instruments})
    return {"universe": universe, "marginTables": [
        [lev, {"description": "", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": lev}]}]
        for lev in tables]}


def _spot_meta(exchange: LocalExchange, request: Wire) -> Wire:
    return {"universe": [], "tokens": [USDC_TOKEN]}


def _asset_ctxs(exchange: LocalExchange, request: Wire) -> list[Any]:
    marks = exchange.marks()
    ctxs = []
    for coin in exchange.coins:
        rate, premium = exchange.funding_rate(coin)
        mid = _mid(exchange, coin)
        impact = _impact(exchange, coin)
        open_interest = sum(abs(a.portfolio.position(coin).size)
                            for a in exchange.accounts.values()) / 2
        volume = exchange._day_volume[coin]
        ctxs.append({"dayNtlVlm": num(volume), "funding": num(rate),
                     "impactPxs": impact, "markPx": num(marks[coin]),
                     "midPx": None if mid is None else num(mid),
                     "openInterest": num(open_interest),
                     "oraclePx": num(exchange.oracle.prices[coin]), "premium": num(premium),
                     "prevDayPx": num(exchange._prev_day_px[coin]),
                     "dayBaseVlm": num(volume / exchange.oracle.prices[coin])})
    return [_meta(exchange, request), ctxs]


def _all_mids(exchange: LocalExchange, request: Wire) -> Wire:
    _dex(request)
    out = {}
    for coin in exchange.coins:
        mid = _mid(exchange, coin)
        out[coin] = num(mid if mid is not None else _last_px(exchange, coin))
    return out


def _l2_book(exchange: LocalExchange, request: Wire) -> Wire | None:
    coin = request["coin"]
    if coin not in exchange.books:
        return None
    sig_figs, mantissa = request.get("nSigFigs"), request.get("mantissa")
    if sig_figs is not None and (type(sig_figs) is not int or not 2 <= sig_figs <= 5):
        raise ValueError("nSigFigs must be 2 to 5")
    if mantissa is not None and (sig_figs != 5 or mantissa not in (1, 2, 5)):
        raise ValueError("mantissa must be 1, 2 or 5, and only with nSigFigs 5")
    return {"coin": coin, "time": exchange.clock.now_ms(),
            "levels": book_levels(exchange, coin, sig_figs, mantissa)}


def book_levels(exchange: LocalExchange, coin: str, sig_figs: int | None = None,
                mantissa: int | None = None) -> list[list[Wire]]:
    """Both sides' levels, best first, aggregated to `sig_figs` significant figures."""
    book = exchange.books[coin]
    instrument = exchange.instruments.of(coin)
    sides = []
    for side in (Side.BUY, Side.SELL):
        depth = BOOK_LEVELS if sig_figs is None else max(
            book.bid_level_count if side == Side.BUY else book.ask_level_count, 1)
        prices, sizes, counts = book.depth(side, depth)
        levels: list[list[Any]] = []
        for ticks, lots, n in zip(prices.tolist(), sizes.tolist(), counts.tolist(),
                                  strict=True):
            px = instrument.ticks_to_price(int(ticks))
            if sig_figs is not None:
                px = _bucket(px, sig_figs, mantissa or 1, up=side == Side.SELL)
            if levels and levels[-1][0] == px:
                levels[-1][1] += int(lots)
                levels[-1][2] += int(n)
            else:
                if len(levels) == BOOK_LEVELS:
                    break
                levels.append([px, int(lots), int(n)])
        sides.append([{"px": num(px), "sz": num(lots * instrument.lot_size), "n": n}
                      for px, lots, n in levels])
    return sides


def _bucket(px: Decimal, sig_figs: int, mantissa: int, *, up: bool) -> Decimal:
    """`px` on a grid of `sig_figs` significant figures (and a mantissa step); asks round
    up and bids down, so a level never shows a better price than it has."""
    exponent = math.floor(math.log10(px)) - sig_figs + 1
    step = Decimal(mantissa) * Decimal(10) ** exponent
    units = px / step
    rounded = units.to_integral_value(rounding="ROUND_CEILING" if up else "ROUND_FLOOR")
    return (rounded * step).normalize()


def _recent_trades(exchange: LocalExchange, request: Wire) -> list[Wire]:
    return list(exchange._trades.get(request["coin"], []))[-RECENT_ROWS:]


def _candles(exchange: LocalExchange, request: Wire) -> list[Wire]:
    req = request["req"]
    coin, interval = req["coin"], req["interval"]
    if interval not in INTERVALS_MS:
        raise ValueError(f"unknown interval {interval}")
    start, end = int(req["startTime"]), int(req.get("endTime") or 2**62)
    ms = INTERVALS_MS[interval]
    bars = exchange.candles(coin, interval)
    decimals = exchange.instruments.of(coin).sz_decimals if bars else 0    # volume is in lots
    return [{"t": t, "T": t + ms - 1, "s": coin, "i": interval, "o": num(b[0]),
             "c": num(b[3]), "h": num(b[1]), "l": num(b[2]), "v": units_text(b[4], decimals),
             "n": b[5]}
            for t, b in sorted(bars.items()) if start <= t <= end][-5000:]


def _funding_history(exchange: LocalExchange, request: Wire) -> list[Wire]:
    start, end = _range(request)
    rows = exchange._funding_history.get(request["coin"], [])
    return [r for r in rows if start <= r["time"] <= end][:TIME_RANGED_ROWS]


# ---------------------------------------------------------------- accounts

def _clearinghouse_state(exchange: LocalExchange, request: Wire) -> Wire:
    _dex(request)
    account = _account(exchange, request)
    positions, cross_value = [], 0.0
    summary = {"accountValue": 0.0, "totalNtlPos": 0.0, "totalRawUsd": 0.0,
               "totalMarginUsed": 0.0}
    cross = dict(summary)
    maintenance = 0.0
    if account is not None:
        portfolio = account.portfolio
        for p in portfolio.open_positions():
            leverage: Wire = {"type": "isolated" if p.isolated else "cross", "value": p.leverage}
            if p.isolated:
                leverage["rawUsd"] = num(p.margin - p.size * p.entry_px)
            instrument = exchange.instruments.of(p.coin)
            positions.append({"type": "oneWay", "position": {
                "coin": p.coin, "szi": num(p.size), "entryPx": num(p.entry_px),
                "positionValue": num(abs(p.position_value)),
                "unrealizedPnl": num(p.unrealized_pnl),
                "returnOnEquity": num(p.unrealized_pnl / (abs(p.size) * p.entry_px / p.leverage)),
                "liquidationPx": None if p.liquidation_px is None else num(p.liquidation_px),
                "marginUsed": num(p.margin_used), "maxLeverage": instrument.max_leverage,
                "leverage": leverage,
                "cumFunding": {"allTime": num(-p.funding), "sinceOpen": num(-p.funding),
                               "sinceChange": num(-p.funding)}}})
            summary["totalNtlPos"] += abs(p.position_value)
            summary["totalMarginUsed"] += p.margin_used
            if not p.isolated:
                cross["totalNtlPos"] += abs(p.position_value)
                cross["totalMarginUsed"] += p.margin_used
                maintenance += p.maintenance_margin
        cross_value = portfolio.cross_account_value
        summary["accountValue"] = portfolio.account_value
        cross["accountValue"] = cross_value
        summary["totalRawUsd"] = portfolio.account_value - sum(
            p.size * p.mark_px for p in portfolio.open_positions())
        cross["totalRawUsd"] = cross_value - sum(p.size * p.mark_px
                                                 for p in portfolio.open_positions()
                                                 if not p.isolated)
    return {"marginSummary": {k: num(v) for k, v in summary.items()},
            "crossMarginSummary": {k: num(v) for k, v in cross.items()},
            "crossMaintenanceMarginUsed": num(maintenance),
            "withdrawable": num(_rounded_down(account.portfolio.withdrawable)
                                if account else 0.0),
            "assetPositions": positions, "time": exchange.clock.now_ms()}


def _spot_state(exchange: LocalExchange, request: Wire) -> Wire:
    account = _account(exchange, request)
    if account is None or not account.spot_usdc:
        return {"balances": []}
    return {"balances": [{"coin": "USDC", "token": 0, "total": num(account.spot_usdc),
                          "hold": "0.0", "entryNtl": "0.0"}]}


def _open_orders(exchange: LocalExchange, request: Wire) -> list[Wire]:
    _dex(request)
    return [o.open_wire() for o in _open(exchange, request)]


def _frontend_open_orders(exchange: LocalExchange, request: Wire) -> list[Wire]:
    _dex(request)
    return [o.frontend_wire() for o in _open(exchange, request)]


def _order_status(exchange: LocalExchange, request: Wire) -> Wire:
    account = _account(exchange, request)
    ref = request["oid"]
    if not isinstance(ref, (int, str)) or isinstance(ref, bool):
        raise TypeError("oid must be an int or a cloid")
    if account is not None:
        for change in reversed(account.history):      # the latest status change
            order = change.order
            if (order.oid == ref) if isinstance(ref, int) else (order.cloid == ref.lower()):
                return {"status": "order", "order": change.status_wire()}
    return {"status": "unknownOid"}


def _historical_orders(exchange: LocalExchange, request: Wire) -> list[Wire]:
    account = _account(exchange, request)
    if account is None:
        return []
    return [change.status_wire() for change in reversed(account.history)][:RECENT_ROWS]


def _user_fills(exchange: LocalExchange, request: Wire) -> list[Wire]:
    account = _account(exchange, request)
    return [] if account is None else list(reversed(account.fills))[:RECENT_ROWS]


def _user_fills_by_time(exchange: LocalExchange, request: Wire) -> list[Wire]:
    account = _account(exchange, request)
    start, end = _range(request)
    if account is None:
        return []
    return [f for f in account.fills if start <= f["time"] <= end][:RECENT_ROWS]


def _user_funding(exchange: LocalExchange, request: Wire) -> list[Wire]:
    account = _account(exchange, request)
    start, end = _range(request)
    if account is None:
        return []
    return [f for f in account.fundings if start <= f["time"] <= end][:TIME_RANGED_ROWS]


def _user_rate_limit(exchange: LocalExchange, request: Wire) -> Wire:
    from obelisk.server.exchange import REQUEST_BUFFER

    account = _account(exchange, request)
    volume = account.volume if account else 0.0
    return {"cumVlm": num(volume), "nRequestsUsed": account.requests if account else 0,
            "nRequestsCap": REQUEST_BUFFER + int(volume), "nRequestsSurplus": 0}


def _user_fees(exchange: LocalExchange, request: Wire) -> Wire:
    _account(exchange, request)
    fees = exchange.fees
    schedule = {"cross": num(fees.taker), "add": num(fees.maker), "spotCross": "0.0007",
                "spotAdd": "0.0004", "tiers": {"vip": [], "mm": []}, "referralDiscount": "0.0",
                "stakingDiscountTiers": []}
    return {"dailyUserVlm": [], "feeSchedule": schedule,
            "userCrossRate": num(fees.taker), "userAddRate": num(fees.maker),
            "userSpotCrossRate": "0.0007", "userSpotAddRate": "0.0004",
            "activeReferralDiscount": "0.0", "trial": None, "feeTrialReward": "0.0",
            "nextTrialAvailableTimestamp": None, "stakingLink": None,
            "activeStakingDiscount": {"bpsOfMaxSupply": "0.0", "discount": "0.0"}}


def _perp_dexs(exchange: LocalExchange, request: Wire) -> list[Any]:
    return [None]


# ---------------------------------------------------------------- helpers

def _dex(request: Wire) -> None:
    dex = request.get("dex", "")
    if dex not in ("", None):
        raise ValueError(f"the local exchange has one perp dex, not {dex!r}")


def _account(exchange: LocalExchange, request: Wire) -> Account | None:
    user = request["user"]
    if not isinstance(user, str) or len(user) != 42 or not user.startswith(("0x", "0X")):
        raise ValueError(f"not an address: {user!r}")
    int(user[2:], 16)
    account = exchange.accounts.get(user.lower())
    return None if account is None or account.internal else account


def _open(exchange: LocalExchange, request: Wire) -> list[Order]:
    account = _account(exchange, request)
    if account is None:
        return []
    return sorted(account.orders.values(), key=lambda o: o.oid, reverse=True)


def _range(request: Wire) -> tuple[int, int]:
    start = request["startTime"]
    end = request.get("endTime")
    if type(start) is not int or (end is not None and type(end) is not int):
        raise TypeError("startTime and endTime are integer milliseconds")
    return start, 2**62 if end is None else end


def _mid(exchange: LocalExchange, coin: str) -> float | None:
    mid = exchange.books[coin].mid()
    if mid is None:
        return None
    instrument = exchange.instruments.of(coin)
    return mid * float(instrument.tick_size)


def _last_px(exchange: LocalExchange, coin: str) -> float:
    trades = exchange._trades.get(coin)
    return float(trades[-1]["px"]) if trades else exchange.oracle.prices[coin]


def _impact(exchange: LocalExchange, coin: str) -> list[str] | None:
    book = exchange.books[coin]
    bid, ask = book.best_bid(), book.best_ask()
    if bid is None or ask is None:
        return None
    instrument = exchange.instruments.of(coin)
    return [num(instrument.ticks_to_price(bid)), num(instrument.ticks_to_price(ask))]


_HANDLERS: dict[str, Callable[[LocalExchange, Wire], Any]] = {
    "meta": _meta, "spotMeta": _spot_meta, "metaAndAssetCtxs": _asset_ctxs,
    "allMids": _all_mids, "l2Book": _l2_book, "recentTrades": _recent_trades,
    "candleSnapshot": _candles, "fundingHistory": _funding_history,
    "clearinghouseState": _clearinghouse_state, "spotClearinghouseState": _spot_state,
    "openOrders": _open_orders, "frontendOpenOrders": _frontend_open_orders,
    "orderStatus": _order_status, "historicalOrders": _historical_orders,
    "userFills": _user_fills, "userFillsByTime": _user_fills_by_time,
    "userFunding": _user_funding, "userRateLimit": _user_rate_limit, "userFees": _user_fees,
    "perpDexs": _perp_dexs,
}


def _rounded_down(amount: float) -> float:
    """`amount` cut to the 8 decimals it is printed with, never rounded up: a withdrawal of
    exactly the printed amount must be possible."""
    return float(Decimal(amount).quantize(Decimal("1e-8"), rounding=ROUND_DOWN,
                                          context=Context(prec=400)))
