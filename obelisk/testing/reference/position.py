"""Pure-Python twin of :class:`obelisk._core.position.PositionBook`, written to be obviously right.

Each rule is written the way Hyperliquid's documentation states it (margin
tiers as a table walk, the liquidation price as ``price - side x
margin_available / size / (1 - l x side)``), not the way the compiled kernels
rearrange it, so the two check each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class ReferencePosition:
    size: float = 0.0
    entry_px: float = 0.0
    leverage: float = 20.0
    isolated: bool = False
    margin: float = 0.0
    realized_pnl: float = 0.0
    fees: float = 0.0
    funding: float = 0.0
    mark_px: float = math.nan


@dataclass
class ReferencePositionBook:
    margin_tiers: list[list[tuple[float, int]]]
    balance: float = 0.0
    taker_rate: float = 0.00045
    maker_rate: float = 0.00015
    legacy_liquidation: bool = False
    positions: list[ReferencePosition] = field(default_factory=list)
    lots: list[float] | None = None

    def __post_init__(self) -> None:
        if not self.positions:
            self.positions = [ReferencePosition(leverage=min(20.0, tiers[0][1]))
                              for tiers in self.margin_tiers]

    # ------------------------------------------------------------ tiers

    def tier_table(self, asset: int) -> list[tuple[float, float, float]]:
        """(lower bound, mmr, maintenance deduction) per tier."""
        table: list[tuple[float, float, float]] = []
        for bound, max_leverage in self.margin_tiers[asset]:
            mmr = 1 / (2 * max_leverage)
            if not table:
                table.append((bound, mmr, 0.0))
            else:
                _, previous_mmr, previous_deduction = table[-1]
                table.append((bound, mmr, previous_deduction + bound * (mmr - previous_mmr)))
        return table

    def maintenance_margin(self, asset: int, notional: float) -> float:
        tier = [row for row in self.tier_table(asset) if row[0] <= notional][-1]
        return notional * tier[1] - tier[2]

    # ------------------------------------------------------------ fills

    def half_lot(self, asset: int) -> float:
        return self.lots[asset] / 2 if self.lots else 0.0

    def apply_fill(self, asset: int, size: float, price: float, maker: bool = False) -> float:
        p = self.positions[asset]
        if math.isnan(p.mark_px):
            p.mark_px = price
        fee = abs(size) * price * (self.maker_rate if maker else self.taker_rate)
        realized = 0.0
        opening = abs(size)
        if p.size != 0 and (p.size > 0) != (size > 0):
            closing = min(abs(size), abs(p.size))
            opening = abs(size) - closing
            gap = abs(abs(size) - abs(p.size))
            if gap <= 1e-12 * (abs(size) + abs(p.size)) or gap < self.half_lot(asset):
                closing, opening = abs(p.size), 0.0     # float dust of decimal sizes: closed
            direction = 1 if p.size > 0 else -1
            realized = direction * (price - p.entry_px) * closing
            if p.isolated:
                released = p.margin if closing == abs(p.size) else p.margin * closing / abs(p.size)
                p.margin -= released
                self.balance += released
            if opening > 0:
                p.size, p.entry_px = math.copysign(opening, size), price
            elif closing == abs(p.size):
                p.size, p.entry_px = 0.0, 0.0
            else:
                p.size += size
        else:
            p.entry_px = (abs(p.size) * p.entry_px + abs(size) * price) / (abs(p.size) + abs(size))
            p.size += size
        if p.isolated and opening > 0:
            p.margin += opening * price / p.leverage
            self.balance -= opening * price / p.leverage
        p.realized_pnl += realized
        p.fees += fee
        self.balance += realized - fee
        return realized

    def apply_funding(self, rates: list[float], oracle: list[float]) -> float:
        paid = 0.0
        for asset, p in enumerate(self.positions):
            if p.size == 0 or math.isnan(rates[asset]):
                continue
            payment = p.size * oracle[asset] * rates[asset]
            p.funding += payment
            if p.isolated:
                p.margin -= payment
            else:
                self.balance -= payment
            paid += payment
        return paid

    def mark(self, prices: list[float]) -> None:
        for p, price in zip(self.positions, prices, strict=True):
            if not math.isnan(price):
                p.mark_px = price

    # ---------------------------------------------------------- derived

    def unrealized_pnl(self, asset: int) -> float:
        p = self.positions[asset]
        return 0.0 if p.size == 0 else p.size * (p.mark_px - p.entry_px)

    def position_value(self, asset: int) -> float:
        p = self.positions[asset]
        return 0.0 if p.size == 0 else abs(p.size) * p.mark_px

    def position_maintenance(self, asset: int) -> float:
        return self.maintenance_margin(asset, self.position_value(asset))

    def cross_assets(self) -> list[int]:
        return [a for a, p in enumerate(self.positions) if not p.isolated and p.size != 0]

    def cross_account_value(self) -> float:
        return self.balance + sum(self.unrealized_pnl(a) for a in self.cross_assets())

    def account_value(self) -> float:
        isolated = sum(p.margin + self.unrealized_pnl(a)
                       for a, p in enumerate(self.positions) if p.isolated)
        return self.cross_account_value() + isolated

    def cross_maintenance(self) -> float:
        return sum(self.position_maintenance(a) for a in self.cross_assets())

    def withdrawable(self) -> float:
        cross_im = sum(self.position_value(a) / self.positions[a].leverage
                       for a in self.cross_assets())
        cross_value = sum(self.position_value(a) for a in self.cross_assets())
        return max(0.0, self.cross_account_value() - max(cross_im, 0.1 * cross_value))

    def liquidation_px(self, asset: int) -> float:
        p = self.positions[asset]
        if p.size == 0:
            return math.nan
        side = 1 if p.size > 0 else -1
        if p.isolated:
            equity = p.margin + self.unrealized_pnl(asset)
            others = 0.0
        else:
            equity = self.cross_account_value()
            others = self.cross_maintenance() - self.position_maintenance(asset)
        if self.legacy_liquidation:
            available = equity - others - self.position_maintenance(asset)
            price = p.mark_px - side * available / abs(p.size)
        else:
            table = self.tier_table(asset)
            price = math.nan
            for k, (lower, mmr, deduction) in enumerate(table):
                # margin_available with tier k's rule, then the documented formula with l = mmr(k)
                available = equity - others - (self.position_value(asset) * mmr - deduction)
                price = p.mark_px - side * available / abs(p.size) / (1 - mmr * side)
                upper = table[k + 1][0] if k + 1 < len(table) else math.inf
                if lower * (1 - 1e-12) <= abs(p.size) * price <= upper * (1 + 1e-12):
                    break
            else:
                return math.nan
        return price if math.isfinite(price) and price > 0 else math.nan
