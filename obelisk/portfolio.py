"""An account's positions by coin: fills, funding, marks, margin and liquidation prices.

A thin layer over the compiled :class:`PositionBook`, which holds one row per
asset; this module adds coin names, frozen snapshots, and the bridge to and
from Hyperliquid's ``clearinghouseState``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from obelisk._core.position import POSITION_DTYPE, POSITION_FILL_DTYPE, PositionBook
from obelisk.errors import MarginError, UnknownAssetError
from obelisk.fees import FeeRates
from obelisk.instruments import Instrument, InstrumentTable, Rounding
from obelisk.margin import MarginTiers, single_tier

__all__ = ["POSITION_DTYPE", "POSITION_FILL_DTYPE", "Difference", "Portfolio", "Position"]


@dataclass(frozen=True)
class Position:
    """One coin's position as of the last change, with what the marks imply."""

    coin: str
    size: float                   # signed: + long
    entry_px: float
    leverage: int
    isolated: bool
    margin: float                 # isolated collateral excluding uPnL; 0 for cross
    realized_pnl: float
    fees: float
    funding: float
    mark_px: float
    unrealized_pnl: float
    position_value: float
    initial_margin: float
    maintenance_margin: float
    liquidation_px: float | None  # None when no price liquidates it

    @property
    def margin_used(self) -> float:
        """Hyperliquid's ``marginUsed``: isolated margin plus uPnL, or the cross initial margin."""
        return self.margin + self.unrealized_pnl if self.isolated else self.initial_margin


@dataclass(frozen=True)
class Difference:
    """A field where the portfolio and the exchange disagree."""

    coin: str | None              # None for account-level fields
    field: str
    ours: object
    theirs: object


class Portfolio:
    """Positions of one account in the given instruments, and its cross balance.

    Fills, funding and deposits change it; ``mark(prices)`` moves the mark
    prices. Derived values (uPnL, margins, liquidation prices, account value,
    withdrawable) follow Hyperliquid's documented rules and are recomputed
    lazily when read. Bad input raises and changes nothing.
    """

    def __init__(self, instruments: Sequence[Instrument] | InstrumentTable, *,
                 balance: float = 0.0,
                 fees: FeeRates | None = None,
                 margin_tiers: Mapping[str, MarginTiers] | None = None,
                 default_leverage: int = 20, legacy_liquidation: bool = False) -> None:
        self.instruments = instruments if isinstance(instruments, InstrumentTable) \
            else InstrumentTable(instruments)
        self.coins = self.instruments.coins
        tiers = dict(margin_tiers or {})
        unknown = set(tiers) - set(self.coins)
        if unknown:
            raise UnknownAssetError(f"margin tiers for coins not in the portfolio: "
                                    f"{sorted(unknown)}")
        fees = fees or FeeRates()
        self.book = PositionBook(
            [tiers.get(i.name, single_tier(i.max_leverage)) for i in self.instruments],
            balance=balance, taker_rate=fees.taker, maker_rate=fees.maker,
            default_leverage=default_leverage, legacy_liquidation=legacy_liquidation,
            lots=self.instruments.lot)

    def index(self, coin: str) -> int:
        """The row of `coin`, which ``apply_fills`` and the numpy views use."""
        return self.instruments.index(coin)

    # ------------------------------------------------------------ changes

    def apply_fill(self, coin: str, size: float, price: float, *, maker: bool = False) -> float:
        """Apply one fill (signed size, + buys); its realized PnL in USDC, before fees."""
        return self.book.apply_fill(self.index(coin), size, price, maker)

    def apply_fills(self, fills: np.ndarray) -> float:
        """Apply a POSITION_FILL_DTYPE array (``asset`` is ``index(coin)``); the balance change."""
        return self.book.apply_fills(fills)

    def apply_funding(self, rates: Mapping[str, float],
                      oracle_prices: Mapping[str, float]) -> float:
        """Pay one hour of funding at these rates and oracle prices; the total paid (+ = paid)."""
        return self.book.apply_funding(self._per_coin(rates),
                                       self._per_coin(oracle_prices))

    def mark(self, prices: Mapping[str, float]) -> None:
        """Move the mark prices of the coins given; the others keep theirs."""
        self.book.mark(self._per_coin(prices))

    def set_leverage(self, coin: str, leverage: int, *, isolated: bool | None = None) -> None:
        self.book.set_leverage(self.index(coin), leverage, isolated=isolated)

    def update_isolated_margin(self, coin: str, amount: float) -> None:
        self.book.update_isolated_margin(self.index(coin), amount)

    def deposit(self, amount: float) -> None:
        self.book.deposit(amount)

    def withdraw(self, amount: float) -> None:
        self.book.withdraw(amount)

    def set_balance(self, amount: float) -> None:
        """Take the exchange's cross balance as this account's (reconciliation only)."""
        self.book.set_balance(amount)

    def set_fees(self, fees: FeeRates) -> None:
        self.book.set_fee_rates(fees.taker, fees.maker)

    # ------------------------------------------------------------ queries

    def position(self, coin: str) -> Position:
        row = self.book.row(self.index(coin))
        liquidation = float(row["liquidation_px"])
        return Position(
            coin=coin, size=float(row["size"]), entry_px=float(row["entry_px"]),
            leverage=int(row["leverage"]), isolated=bool(row["isolated"]),
            margin=float(row["margin"]), realized_pnl=float(row["realized_pnl"]),
            fees=float(row["fees"]), funding=float(row["funding"]), mark_px=float(row["mark_px"]),
            unrealized_pnl=float(row["unrealized_pnl"]),
            position_value=float(row["position_value"]),
            initial_margin=float(row["initial_margin"]),
            maintenance_margin=float(row["maintenance_margin"]),
            liquidation_px=None if math.isnan(liquidation) else liquidation)

    def open_positions(self) -> list[Position]:
        sizes = self.book.positions["size"]
        return [self.position(coin) for coin, size in zip(self.coins, sizes, strict=True) if size]

    def reducible_lots(self, row: int, is_buy: bool) -> int:
        """Lots an order on this side can close of the row's position (0 if it would not
        reduce it): the one reduce-only rule, which the engine and the simulator both clip to."""
        size = float(self.book.row(row)["size"])
        if not size or (size < 0) != is_buy:
            return 0
        return self.instruments[row].round_size_to_lots(abs(size), Rounding.NEAREST,
                                                        allow_zero=True)

    @property
    def marks(self) -> np.ndarray:
        """Every row's mark price (NaN before the first mark or fill), read-only."""
        return self.book.positions["mark_px"]

    @property
    def positions(self) -> np.ndarray:
        """Every row as a read-only POSITION_DTYPE array, in ``coins`` order."""
        return self.book.positions

    @property
    def version(self) -> int:
        """Changes whenever a fill, mark, funding, leverage or transfer changes the account."""
        return self.book.version

    @property
    def balance(self) -> float:
        return self.book.balance

    @property
    def account_value(self) -> float:
        return self.book.account_value

    @property
    def cross_account_value(self) -> float:
        return self.book.cross_account_value

    @property
    def cross_maintenance_margin(self) -> float:
        return self.book.cross_maintenance_margin

    @property
    def withdrawable(self) -> float:
        return self.book.withdrawable

    @property
    def transfer_margin_required(self) -> float:
        return self.book.transfer_margin_required

    def _per_coin(self, values: Mapping[str, float]) -> np.ndarray:
        array = np.full(len(self.coins), np.nan)
        for coin, value in values.items():
            array[self.index(coin)] = value
        return array

    # ------------------------------------------------- exchange state bridge

    @classmethod
    def from_clearinghouse_state(cls, state: Mapping[str, Any],
                                 instruments: Sequence[Instrument], **options: Any) -> Portfolio:
        """The portfolio a ``clearinghouseState`` response describes, marked at its prices.

        The cross balance is the account value less isolated margins and cross uPnL;
        marks are each position's value over its size. `options` go to the constructor.
        """
        entries = _asset_positions(state)
        portfolio = cls(instruments, balance=_cross_balance(state, entries), **options)
        for entry in entries:
            portfolio.book.set_position(portfolio.index(entry.coin), entry.size, entry.entry_px,
                                        leverage=entry.leverage, isolated=entry.isolated,
                                        margin=entry.margin)
        portfolio.mark({entry.coin: entry.mark_px for entry in entries})
        return portfolio

    def differences(self, state: Mapping[str, Any], *, rel_tol: float = 1e-6,
                    abs_tol: float = 1e-9) -> list[Difference]:
        """Where this portfolio's positions and balance disagree with a ``clearinghouseState``.

        Compares size, entry price, leverage, margin mode and isolated margin per
        coin, and the cross balance; empty when they agree within the tolerances.
        """
        entries = _asset_positions(state)
        theirs = {entry.coin: entry for entry in entries}
        found: list[Difference] = []

        def differ(a: float, b: float) -> bool:
            return not math.isclose(a, b, rel_tol=rel_tol, abs_tol=abs_tol)

        for coin in sorted(set(theirs) | {p.coin for p in self.open_positions()}):
            if coin not in self.instruments.coins:
                found.append(Difference(coin, "coin", None, "open on the exchange"))
                continue
            ours = self.position(coin)
            entry = theirs.get(coin)
            their_size = entry.size if entry else 0.0
            if differ(ours.size, their_size):
                found.append(Difference(coin, "size", ours.size, their_size))
            if entry is None or not ours.size:
                continue
            if differ(ours.entry_px, entry.entry_px):
                found.append(Difference(coin, "entry_px", ours.entry_px, entry.entry_px))
            if ours.leverage != entry.leverage:
                found.append(Difference(coin, "leverage", ours.leverage, entry.leverage))
            if ours.isolated != entry.isolated:
                found.append(Difference(coin, "isolated", ours.isolated, entry.isolated))
            elif entry.isolated and differ(ours.margin, entry.margin):
                found.append(Difference(coin, "margin", ours.margin, entry.margin))
        balance = _cross_balance(state, entries)
        if differ(self.balance, balance):
            found.append(Difference(None, "balance", self.balance, balance))
        return found


@dataclass(frozen=True)
class _StatePosition:
    coin: str
    size: float
    entry_px: float
    leverage: int
    isolated: bool
    margin: float
    mark_px: float
    unrealized_pnl: float
    margin_used: float


def _cross_balance(state: Mapping[str, Any], entries: list[_StatePosition]) -> float:
    """The cross balance a state implies: account value less isolated margin and cross uPnL."""
    try:
        account_value = float(state["marginSummary"]["accountValue"])
    except (KeyError, TypeError, ValueError):
        raise MarginError("clearinghouseState has no marginSummary.accountValue") from None
    return account_value - sum(e.margin_used for e in entries if e.isolated) \
        - sum(e.unrealized_pnl for e in entries if not e.isolated)


def _asset_positions(state: Mapping[str, Any]) -> list[_StatePosition]:
    """The open positions of a ``clearinghouseState``, as numbers."""
    try:
        raw = [entry["position"] for entry in state["assetPositions"]]
        out = []
        for p in raw:
            size = float(p["szi"])
            if size == 0:
                continue
            leverage = p["leverage"]
            isolated = leverage["type"] == "isolated"
            entry_px = float(p["entryPx"])
            # rawUsd is the isolated position's USD balance: margin less the entry notional
            margin = float(leverage["rawUsd"]) + size * entry_px if isolated else 0.0
            out.append(_StatePosition(
                coin=p["coin"], size=size, entry_px=entry_px, leverage=int(leverage["value"]),
                isolated=isolated, margin=margin,
                mark_px=float(p["positionValue"]) / abs(size),
                unrealized_pnl=float(p["unrealizedPnl"]), margin_used=float(p["marginUsed"])))
    except (KeyError, TypeError, ValueError) as exc:
        raise MarginError(f"clearinghouseState position is malformed: {exc!r}") from None
    return out
