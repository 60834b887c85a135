"""Hyperliquid's funding formula from a live book: impact prices and premium samples.

Every 5 s the exchange samples ``premium = (max(impact_bid - oracle, 0) -
max(oracle - impact_ask, 0)) / oracle``, where the impact prices are the
average fill prices of selling and buying the impact notional (20 000 USDC
for BTC and ETH, 6 000 for other perps). The hour's rate then follows from
the average premium (:func:`funding_rate`, :func:`hourly_funding_rate`, both
compiled in the position core and exported here).
"""

from __future__ import annotations

from obelisk._core.l2 import L2Book
from obelisk._core.position import funding_premium, funding_rate, hourly_funding_rate
from obelisk.errors import InsufficientLiquidityError, InvalidFundingError

__all__ = ["funding_premium", "funding_rate", "hourly_funding_rate", "impact_notional",
           "impact_prices", "premium_sample"]

IMPACT_NOTIONAL_USD = {"BTC": 20_000.0, "ETH": 20_000.0}
DEFAULT_IMPACT_NOTIONAL_USD = 6_000.0
BUY, SELL = 0, 1


def impact_notional(coin: str) -> float:
    """The USDC notional whose average fill prices are the coin's impact prices."""
    return IMPACT_NOTIONAL_USD.get(coin, DEFAULT_IMPACT_NOTIONAL_USD)


def impact_prices(book: L2Book, notional_usd: float | None = None
                  ) -> tuple[float | None, float | None]:
    """(impact bid, impact ask) in USD: the average prices of selling and of buying the notional.

    A side too thin to fill the notional gives None.
    """
    instrument = book.instrument
    usd = impact_notional(instrument.name) if notional_usd is None else notional_usd
    if not usd > 0:
        raise InvalidFundingError(f"impact notional must be positive, got {usd}")
    tick = 10.0 ** -instrument.price_decimals
    lot = 10.0 ** -instrument.sz_decimals
    notional = usd / (tick * lot)                  # in ticks x lots, the book's units
    prices: list[float | None] = []
    for side in (SELL, BUY):                       # selling takes bids; buying takes asks
        average, worst, filled = book.impact_notional(side, notional)
        thin = average is None or notional - average * filled >= worst
        prices.append(None if thin else average * tick)
    return prices[0], prices[1]


def premium_sample(book: L2Book, oracle_price: float, notional_usd: float | None = None
                   ) -> float:
    """One premium sample of the funding formula, from the book and the oracle price."""
    bid, ask = impact_prices(book, notional_usd)
    if bid is None or ask is None:
        raise InsufficientLiquidityError(
            f"{book.instrument.name}'s book is too thin for its impact notional")
    return funding_premium(bid, ask, oracle_price)
