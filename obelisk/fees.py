"""Hyperliquid's perp fee schedule: the rates a fill pays, from the account's volume tier.

The tier comes from the rolling 14-day weighted volume (perps + 2 x spot);
staked HYPE discounts the rates, and a large enough share of the exchange's
maker volume turns the maker fee into a rebate (a negative rate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from obelisk._core.position import fill_fee, fill_fees
from obelisk.errors import MarginError

# (14-day weighted volume above which the tier applies, taker rate, maker rate)
PERP_FEE_TIERS: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.00045, 0.00015),
    (5e6, 0.00040, 0.00012),
    (25e6, 0.00035, 0.00008),
    (100e6, 0.00030, 0.00004),
    (500e6, 0.00028, 0.0),
    (2e9, 0.00026, 0.0),
    (7e9, 0.00024, 0.0),
)
# (HYPE staked above which the discount applies, discount)
STAKING_DISCOUNTS: tuple[tuple[float, float], ...] = (
    (10, 0.05), (100, 0.10), (1_000, 0.15), (10_000, 0.20), (100_000, 0.30), (500_000, 0.40),
)
# (share of the exchange's 14-day maker volume above which the rebate applies, maker rate)
MAKER_REBATES: tuple[tuple[float, float], ...] = (
    (0.005, -0.00001), (0.015, -0.00002), (0.03, -0.00003),
)


@dataclass(frozen=True)
class FeeRates:
    """Fractions of notional a fill pays: 0.00045 is 0.045 %. A negative maker rate is a rebate."""

    taker: float = PERP_FEE_TIERS[0][1]
    maker: float = PERP_FEE_TIERS[0][2]

    def fee(self, size: float, price: float, *, maker: bool) -> float:
        """The fee of one fill in USDC (negative for a rebate), by the position kernel's rule."""
        return fill_fee(size, price, maker, self.taker, self.maker)

    def of_fills(self, fills: np.ndarray) -> np.ndarray:
        """The fee of each fill of a POSITION_FILL_DTYPE array, in USDC."""
        return fill_fees(fills["size"], fills["price"], fills["maker"], self.taker, self.maker)


def perp_fee_rates(weighted_volume_14d: float = 0.0, *, staked_hype: float = 0.0,
                   maker_volume_share: float = 0.0) -> FeeRates:
    """The rates of the account's tier, after the staking discount and any maker rebate."""
    for value, what in ((weighted_volume_14d, "weighted_volume_14d"),
                        (staked_hype, "staked_hype"), (maker_volume_share, "maker_volume_share")):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise MarginError(f"{what} must be a finite number >= 0, got {value!r}")
    taker, maker = next((t, m) for bound, t, m in reversed(PERP_FEE_TIERS)
                        if weighted_volume_14d > bound or bound == 0)
    discount = next((d for bound, d in reversed(STAKING_DISCOUNTS) if staked_hype > bound), 0.0)
    taker *= 1 - discount
    maker *= 1 - discount
    rebate = next((r for bound, r in reversed(MAKER_REBATES) if maker_volume_share > bound), None)
    return FeeRates(taker=taker, maker=rebate if rebate is not None else maker)
