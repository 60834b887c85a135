"""The market around the local exchange's accounts: listed coins, oracle prices, makers.

The oracle is a seeded random walk per coin, so a run with the same seed and
the same (simulated) clock sees the same prices. Market makers are internal
accounts that quote a ladder around the oracle with post-only orders, so an
SDK ``market_open`` finds liquidity on an otherwise empty exchange.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from obelisk.instruments import Instrument, Rounding

# name: (szDecimals, maxLeverage, starting oracle price)
KNOWN_COINS: dict[str, tuple[int, int, float]] = {
    "BTC": (5, 40, 100_000.0), "ETH": (4, 25, 3_500.0), "SOL": (2, 20, 150.0),
    "HYPE": (2, 10, 40.0), "ARB": (1, 50, 0.5), "DOGE": (0, 20, 0.2), "AVAX": (2, 20, 25.0),
    "LINK": (1, 20, 15.0), "XRP": (0, 20, 2.0), "SUI": (1, 20, 3.0),
}
DEFAULT_COINS = ("BTC", "ETH", "SOL")
VOLATILITY_PER_SQRT_SECOND = 1e-4        # about 3 % a day, like a large perp


@dataclass(frozen=True)
class Listing:
    """A listed perp: its grid and where its oracle starts."""

    instrument: Instrument
    start_px: float


def listings(coins: Sequence[str]) -> list[Listing]:
    """Listings for the named coins, asset ids in the given order."""
    if not coins:
        raise ValueError("list at least one coin")
    if len(set(coins)) != len(coins):
        raise ValueError(f"coins are listed twice: {list(coins)}")
    unknown = [c for c in coins if c not in KNOWN_COINS]
    if unknown:
        raise ValueError(f"unknown coins {unknown}; the local exchange lists "
                         f"{', '.join(KNOWN_COINS)}")
    out = []
    for asset, coin in enumerate(coins):
        sz_decimals, max_leverage, price = KNOWN_COINS[coin]
        out.append(Listing(Instrument(coin, asset, sz_decimals, max_leverage), price))
    return out


class Oracle:
    """A seeded geometric random walk per coin, kept on each coin's price grid."""

    def __init__(self, listed: Sequence[Listing], seed: int, now_ms: int) -> None:
        self._rng = random.Random(seed)
        self._instruments = {x.instrument.name: x.instrument for x in listed}
        self.prices = {x.instrument.name: self._on_grid(x.instrument, x.start_px)
                       for x in listed}
        self._last_ms = now_ms

    def advance(self, now_ms: int) -> bool:
        """Walk to `now_ms` in one step per elapsed interval; True if a price moved."""
        seconds = (now_ms - self._last_ms) / 1000
        if seconds < 1:
            return False
        self._last_ms = now_ms
        sigma = VOLATILITY_PER_SQRT_SECOND * math.sqrt(seconds)
        for coin, instrument in self._instruments.items():
            shock = self._rng.gauss(-sigma * sigma / 2, sigma)
            self.prices[coin] = self._on_grid(instrument, self.prices[coin] * math.exp(shock))
        return True

    @staticmethod
    def _on_grid(instrument: Instrument, price: float) -> float:
        return float(instrument.round_price(price, Rounding.NEAREST))


@dataclass(frozen=True)
class Quote:
    is_buy: bool
    price: float
    size: float


def maker_quotes(instrument: Instrument, oracle: float, maker: int, *, levels: int = 5,
                 spacing: float = 2e-4, notional: float = 20_000.0) -> list[Quote]:
    """Maker `maker`'s ladder: `levels` post-only quotes a side, `spacing` apart, the first
    one `spacing` x (maker + 1) / 2 from the oracle, each worth about `notional` USDC."""
    quotes = []
    size = float(instrument.round_size(max(notional / oracle, 10 ** -instrument.sz_decimals),
                                       Rounding.NEAREST))
    for level in range(levels):
        away = spacing * ((maker + 1) / 2 + level)
        bid = float(instrument.round_price(oracle * (1 - away), Rounding.DOWN))
        ask = float(instrument.round_price(oracle * (1 + away), Rounding.UP))
        quotes += [Quote(True, bid, size), Quote(False, ask, size)]
    return quotes
