"""Hyperliquid instruments: exact conversion between prices/sizes and integer ticks/lots.

The core stores prices as int64 ticks (1 tick = 10**-price_decimals) and sizes as
int64 lots (1 lot = 10**-sz_decimals). This module is the only place where user
numbers cross into that grid, so it converts exactly or raises: nothing is
silently rounded unless a ``round_*`` method is asked to round.

Accepted number inputs are ``int``, ``float``, ``str`` and ``Decimal`` (never
``bool``). A float means what its shortest ``repr`` says (``0.3`` is 0.3, while
``0.1 + 0.2`` is 0.30000000000000004 and is rejected as too precise). A string is
stripped of surrounding whitespace and must then be plain ASCII decimal notation:
optional sign, digits with at most one ``.``, optional exponent (``"2.5"``,
``" 2.5 "``, ``"1e-3"``, ``".5"``); ``"nan"``, ``"inf"``, ``"1_000"``, ``"0x10"``
and non-ASCII digits are rejected. Negative numbers and ``-0`` are always rejected.
"""

from __future__ import annotations

import numbers
import operator
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    ROUND_CEILING,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    Inexact,
    InvalidOperation,
    Overflow,
    Rounded,
)
from enum import Enum
from typing import TypeAlias, TypeVar, cast

import numpy as np

from obelisk.errors import (
    DuplicateInstrumentError,
    InstrumentError,
    InvalidPriceError,
    InvalidSizeError,
    UnknownAssetError,
)

Number: TypeAlias = int | float | str | Decimal
"""What the conversion methods accept as a price or size."""

_PERP_MAX_DECIMALS = 6
_SPOT_MAX_DECIMALS = 8
_MAX_SIGNIFICANT_FIGURES = 5
_SPOT_ASSET_BASE = 10_000  # spot asset id = 10000 + spot index
_BUILDER_PERP_ASSET_BASE = 100_000  # HIP-3 perp asset ids start here
_INT64_MAX = 2**63 - 1  # ticks and lots are int64 in the core (obelisk/_core/_types.pxd)
_INT64_DIGITS = len(str(_INT64_MAX))

# Enough precision and exponent range that every operation below is exact; the
# traps turn any accidental rounding into an exception instead of a wrong number.
_EXACT = Context(
    prec=MAX_PREC,
    Emax=MAX_EMAX,
    Emin=MIN_EMIN,
    traps=[InvalidOperation, Overflow, Inexact, Rounded],
)
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SHOWN_MAX_CHARS = 40

_T = TypeVar("_T")


class Rounding(str, Enum):
    """Direction for snapping a number onto an instrument's valid grid.

    ``NEAREST`` breaks ties half-even: of two equally near valid values it picks the one
    whose last kept digit is even, like Python's ``round()``, so ties do not bias prices.
    """

    UP = "up"
    DOWN = "down"
    NEAREST = "nearest"


_DECIMAL_ROUNDING = {
    Rounding.UP: ROUND_CEILING,
    Rounding.DOWN: ROUND_FLOOR,
    Rounding.NEAREST: ROUND_HALF_EVEN,
}


@dataclass(frozen=True, slots=True)
class Instrument:
    """A Hyperliquid perp or spot market and its price/size grid.

    ``asset`` is the id used in exchange actions: the ``meta`` universe index for perps
    (100000 and up for builder-deployed perps), 10000 + spot index for spot.
    """

    name: str
    asset: int
    sz_decimals: int
    max_leverage: int = 1
    is_spot: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InstrumentError(f"instrument name must be a non-empty str, got {self.name!r}")
        if not isinstance(self.is_spot, bool):
            raise InstrumentError(f"is_spot for {self.name} must be a bool, got {self.is_spot!r}")
        if not _is_int(self.asset) or self.asset < 0:
            raise InstrumentError(
                f"asset id for {self.name} must be an int >= 0, got {self.asset!r}"
            )
        is_spot_id = _SPOT_ASSET_BASE <= self.asset < _BUILDER_PERP_ASSET_BASE
        if self.is_spot and not is_spot_id:
            raise InstrumentError(
                f"spot asset id for {self.name} must be 10000 + spot index "
                f"({_SPOT_ASSET_BASE}..{_BUILDER_PERP_ASSET_BASE - 1}), got {self.asset}"
            )
        if not self.is_spot and is_spot_id:
            raise InstrumentError(
                f"perp asset id for {self.name} must be a meta index below "
                f"{_SPOT_ASSET_BASE} or a builder perp id from {_BUILDER_PERP_ASSET_BASE}, "
                f"got {self.asset} (a spot id)"
            )
        if not _is_int(self.sz_decimals) or not 0 <= self.sz_decimals <= self._max_decimals:
            raise InstrumentError(
                f"szDecimals for {self.name} must be an int in 0..{self._max_decimals} "
                f"for {'spot' if self.is_spot else 'perps'}, got {self.sz_decimals!r}"
            )
        if not _is_int(self.max_leverage) or self.max_leverage < 1:
            raise InstrumentError(
                f"max_leverage for {self.name} must be an int >= 1, got {self.max_leverage!r}"
            )

    @classmethod
    def from_meta(
        cls, entry: Mapping[str, object], asset: int, *, is_spot: bool = False
    ) -> Instrument:
        """Build from one ``meta`` universe entry (``name``, ``szDecimals``, ``maxLeverage``).

        Extra keys are ignored. ``maxLeverage`` may be absent for spot (then 1).
        """
        if not isinstance(entry, Mapping):
            raise InstrumentError(
                f"meta entry for asset {asset} must be a mapping, got {type(entry).__name__}"
            )
        name = _meta_field(entry, "name", str, asset)
        sz_decimals = _meta_field(entry, "szDecimals", int, asset)
        if is_spot and "maxLeverage" not in entry:
            max_leverage = 1
        else:
            max_leverage = _meta_field(entry, "maxLeverage", int, asset)
        return cls(name, asset, sz_decimals, max_leverage, is_spot)

    @classmethod
    def universe_from_meta(cls, meta: Mapping[str, object]) -> list[Instrument]:
        """Build every perp of a ``meta`` response; the asset id is the universe index."""
        if not isinstance(meta, Mapping):
            raise InstrumentError(f"meta response must be a mapping, got {type(meta).__name__}")
        if "universe" not in meta:
            raise InstrumentError("meta response is missing key 'universe'")
        universe = meta["universe"]
        if not isinstance(universe, Sequence) or isinstance(universe, str | bytes):
            raise InstrumentError(
                f"meta key 'universe' must be a list, got {type(universe).__name__}"
            )
        return [cls.from_meta(entry, index) for index, entry in enumerate(universe)]

    # --- the grid -------------------------------------------------------------------

    @property
    def _max_decimals(self) -> int:
        return _SPOT_MAX_DECIMALS if self.is_spot else _PERP_MAX_DECIMALS

    @property
    def price_decimals(self) -> int:
        """Most decimals a price may have: (6 for perps, 8 for spot) - szDecimals."""
        return self._max_decimals - self.sz_decimals

    @property
    def tick_size(self) -> Decimal:
        """Price of one tick, 10**-price_decimals."""
        return Decimal((0, (1,), -self.price_decimals))

    @property
    def lot_size(self) -> Decimal:
        """Size of one lot, 10**-sz_decimals."""
        return Decimal((0, (1,), -self.sz_decimals))

    @property
    def _price_rule(self) -> str:
        return f"{self._max_decimals} - szDecimals {self.sz_decimals}"

    # --- prices ---------------------------------------------------------------------

    def price_to_ticks(self, px: Number) -> int:
        """Exact tick count of a valid price; raises InvalidPriceError instead of rounding."""
        number, shown = self._parse(px, "price", InvalidPriceError, allow_zero=False)
        ticks = self._to_units(number, shown, "price", InvalidPriceError, self.price_decimals)
        if not self._obeys_significant_figures(ticks):
            raise InvalidPriceError(
                f"price {shown} for {self.name} has {_significant_figures(ticks)} significant "
                f"figures; at most {_MAX_SIGNIFICANT_FIGURES} allowed unless the price is an "
                "integer"
            )
        return ticks

    def ticks_to_price(self, ticks: int) -> Decimal:
        """Price of a positive tick count, with exponent -price_decimals.

        This is grid arithmetic only: it does not apply the 5-significant-figure rule
        (see ``is_valid_ticks``; ``price_to_wire`` enforces it).
        """
        ticks = self._check_count(ticks, "ticks", InvalidPriceError, allow_zero=False)
        return Decimal(ticks).scaleb(-self.price_decimals, _EXACT)

    def is_valid_price(self, px: Number) -> bool:
        """Whether ``price_to_ticks`` would accept ``px`` (False for any bad input)."""
        try:
            self.price_to_ticks(px)
        except InvalidPriceError:
            return False
        return True

    def is_valid_ticks(self, ticks: int) -> bool:
        """Whether a tick count is a price Hyperliquid accepts."""
        return _is_int(ticks) and 0 < ticks <= _INT64_MAX and self._obeys_significant_figures(ticks)

    def round_price_to_ticks(self, px: Number, direction: Rounding | str) -> int:
        """Tick count of the nearest valid price in ``direction`` (exact if already valid).

        Valid prices are integers plus numbers with at most 5 significant figures on the
        tick grid, so inside each power-of-ten band they are evenly spaced; rounding
        happens on that band's spacing. The result is never 0: below one tick, NEAREST
        gives one tick and DOWN raises InvalidPriceError.
        """
        rounding = Rounding(direction)
        number, shown = self._parse(px, "price", InvalidPriceError, allow_zero=False)
        self._check_magnitude(number, shown, "price", InvalidPriceError, self.price_decimals)
        decimals = self.price_decimals
        # Spacing of valid prices in this band is 10**step_exponent ticks: one unit in
        # the 5th significant digit, at least one tick, at most 1 (integers are valid).
        fifth_digit_exponent = number.adjusted() - _MAX_SIGNIFICANT_FIGURES + 1
        step_exponent = min(max(fifth_digit_exponent + decimals, 0), decimals)
        steps = number.scaleb(decimals - step_exponent, _EXACT).to_integral_value(
            rounding=_DECIMAL_ROUNDING[rounding], context=_EXACT
        )
        ticks: int = int(steps) * 10**step_exponent
        if ticks == 0:
            if rounding is Rounding.DOWN:
                raise InvalidPriceError(
                    f"price {shown} for {self.name} is below the smallest price "
                    f"{self.tick_size:f}; it cannot be rounded down"
                )
            ticks = 1
        self._check_count(
            ticks, "ticks", InvalidPriceError, allow_zero=False, source=f"price {shown}"
        )
        return ticks

    def round_price(self, px: Number, direction: Rounding | str) -> Decimal:
        """Nearest valid price in ``direction``; see ``round_price_to_ticks``."""
        return self.ticks_to_price(self.round_price_to_ticks(px, direction))

    def price_to_wire(self, ticks: int) -> str:
        """Hyperliquid wire string of a valid tick count: plain decimal, no trailing zeros."""
        ticks = self._check_count(ticks, "ticks", InvalidPriceError, allow_zero=False)
        if not self._obeys_significant_figures(ticks):
            raise InvalidPriceError(
                f"ticks {ticks} for {self.name} is price {self.ticks_to_price(ticks):f} with "
                f"{_significant_figures(ticks)} significant figures; at most "
                f"{_MAX_SIGNIFICANT_FIGURES} allowed unless the price is an integer"
            )
        return _units_to_wire(ticks, self.price_decimals)

    # --- sizes ----------------------------------------------------------------------

    def size_to_lots(self, sz: Number, *, allow_zero: bool = False) -> int:
        """Exact lot count of a size; raises InvalidSizeError instead of rounding.

        Order sizes must be > 0, so 0 is rejected unless ``allow_zero`` is set.
        """
        number, shown = self._parse(sz, "size", InvalidSizeError, allow_zero=allow_zero)
        return self._to_units(number, shown, "size", InvalidSizeError, self.sz_decimals)

    def lots_to_size(self, lots: int, *, allow_zero: bool = False) -> Decimal:
        """Size of a lot count, with exponent -sz_decimals."""
        lots = self._check_count(lots, "lots", InvalidSizeError, allow_zero=allow_zero)
        return Decimal(lots).scaleb(-self.sz_decimals, _EXACT)

    def is_valid_size(self, sz: Number, *, allow_zero: bool = False) -> bool:
        """Whether ``size_to_lots`` would accept ``sz`` (False for any bad input)."""
        try:
            self.size_to_lots(sz, allow_zero=allow_zero)
        except InvalidSizeError:
            return False
        return True

    def round_size_to_lots(
        self, sz: Number, direction: Rounding | str, *, allow_zero: bool = False
    ) -> int:
        """Lot count of ``sz`` rounded onto the lot grid; a result of 0 lots raises
        InvalidSizeError unless ``allow_zero`` is set."""
        rounding = Rounding(direction)
        number, shown = self._parse(sz, "size", InvalidSizeError, allow_zero=allow_zero)
        self._check_magnitude(number, shown, "size", InvalidSizeError, self.sz_decimals)
        lots = int(
            number.scaleb(self.sz_decimals, _EXACT).to_integral_value(
                rounding=_DECIMAL_ROUNDING[rounding], context=_EXACT
            )
        )
        if lots == 0 and not allow_zero:
            raise InvalidSizeError(
                f"size {shown} for {self.name} gives 0 lots when rounded {rounding.value}; "
                f"the smallest size is {self.lot_size:f} (pass allow_zero=True to accept 0)"
            )
        self._check_count(lots, "lots", InvalidSizeError, allow_zero=True, source=f"size {shown}")
        return lots

    def round_size(
        self, sz: Number, direction: Rounding | str, *, allow_zero: bool = False
    ) -> Decimal:
        """``sz`` rounded onto the lot grid; see ``round_size_to_lots``."""
        lots = self.round_size_to_lots(sz, direction, allow_zero=allow_zero)
        return self.lots_to_size(lots, allow_zero=allow_zero)

    def size_to_wire(self, lots: int, *, allow_zero: bool = False) -> str:
        """Hyperliquid wire string of a lot count: plain decimal, no trailing zeros."""
        lots = self._check_count(lots, "lots", InvalidSizeError, allow_zero=allow_zero)
        return _units_to_wire(lots, self.sz_decimals)

    # --- helpers --------------------------------------------------------------------

    def _obeys_significant_figures(self, ticks: int) -> bool:
        return (
            ticks % 10**self.price_decimals == 0
            or _significant_figures(ticks) <= _MAX_SIGNIFICANT_FIGURES
        )

    def _parse(
        self, value: object, kind: str, error: type[InstrumentError], *, allow_zero: bool
    ) -> tuple[Decimal, str]:
        """The exact Decimal a user number stands for, and how to show it in messages."""
        if isinstance(value, float):
            shown = float.__repr__(value)  # float.__repr__: numpy scalars repr differently
            number = Decimal(shown)
        elif isinstance(value, str):
            shown = _shorten(repr(value))
            text = value.strip()
            if not _DECIMAL_TEXT.fullmatch(text):
                raise error(
                    f"{kind} {shown} for {self.name} is not a decimal number "
                    "(digits with an optional '.', sign and exponent, e.g. '2.5' or '1e-3')"
                )
            try:
                number = Decimal(text)
            except InvalidOperation:
                raise error(
                    f"{kind} {shown} for {self.name} has an exponent out of range"
                ) from None
        elif isinstance(value, Decimal) or _is_int(value):
            number = Decimal(cast(int | Decimal, value))
            shown = _shorten(str(number))
        else:
            raise error(
                f"{kind} {_describe(value)} for {self.name} has type "
                f"{type(value).__name__}; use int, float, str or Decimal"
            )
        if not number.is_finite():
            raise error(f"{kind} {shown} for {self.name} must be a finite number")
        if number.is_signed() or (not number and not allow_zero):
            hint = (
                " (pass allow_zero=True to accept 0)" if kind == "size" and not allow_zero else ""
            )
            bound = ">= 0" if allow_zero else "> 0"
            raise error(f"{kind} {shown} for {self.name} must be {bound}{hint}")
        return number, shown

    def _to_units(
        self,
        number: Decimal,
        shown: str,
        kind: str,
        error: type[InstrumentError],
        decimals: int,
    ) -> int:
        """Exact count of 10**-decimals units in ``number``, or ``error``."""
        self._check_magnitude(number, shown, kind, error, decimals)
        exponent = cast(int, number.normalize(_EXACT).as_tuple().exponent)
        if -exponent > decimals:
            rule = self._price_rule if kind == "price" else f"szDecimals {self.sz_decimals}"
            raise error(
                f"{kind} {shown} for {self.name} has {-exponent} decimals; "
                f"at most {decimals} allowed ({rule})"
            )
        units = int(number.scaleb(decimals, _EXACT))
        unit = "ticks" if kind == "price" else "lots"
        self._check_count(units, unit, error, allow_zero=True, source=f"{kind} {shown}")
        return units

    def _check_magnitude(
        self,
        number: Decimal,
        shown: str,
        kind: str,
        error: type[InstrumentError],
        decimals: int,
    ) -> None:
        """Reject numbers far beyond int64 units before expanding them to integers."""
        if number and number.adjusted() + decimals >= _INT64_DIGITS:
            unit = "ticks" if kind == "price" else "lots"
            raise error(
                f"{kind} {shown} for {self.name} is too large: more than {_INT64_MAX} {unit}"
            )

    def _check_count(
        self,
        count: object,
        unit: str,
        error: type[InstrumentError],
        *,
        allow_zero: bool,
        source: str | None = None,
    ) -> int:
        """Check a tick/lot count is an integer the core can store (int64, > 0 unless allowed).

        numpy integers (what the core's arrays hold) are accepted and returned as int.

        ``source`` names the user input the count was computed from, for the message.
        """
        if not _is_int(count):
            raise error(f"{unit} for {self.name} must be an int, got {type(count).__name__}")
        count = operator.index(cast(int, count))
        lowest = 0 if allow_zero else 1
        if not lowest <= count <= _INT64_MAX:
            shown = _describe(count)
            if source is None:
                raise error(
                    f"{unit} {shown} for {self.name} is out of range; "
                    f"allowed {lowest}..{_INT64_MAX}"
                )
            raise error(f"{source} for {self.name} is {shown} {unit}; at most {_INT64_MAX} fit")
        return count


def _is_int(value: object) -> bool:
    """An integer (int or numpy's) that is not a bool, which is never a count here."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _significant_figures(units: int) -> int:
    return len(str(units).rstrip("0"))


def _units_to_wire(units: int, decimals: int) -> str:
    """Plain decimal text of units * 10**-decimals, as Hyperliquid hashes it ("0.1", "2500")."""
    whole, fraction = divmod(units, 10**decimals)
    if fraction == 0:
        return str(whole)
    return f"{whole}.{fraction:0{decimals}d}".rstrip("0")


def _describe(value: object) -> str:
    """A value as error messages show it (str() of huge ints raises, so go via Decimal)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return _shorten(str(Decimal(value)))
    return _shorten(repr(value))


def _shorten(text: str) -> str:
    """Keep error messages readable when the offending input is enormous."""
    if len(text) <= _SHOWN_MAX_CHARS:
        return text
    return f"{text[:20]}...{text[-10:]}"


def _meta_field(entry: Mapping[str, object], key: str, kind: type[_T], asset: int) -> _T:
    """A required, correctly typed key of a meta universe entry."""
    if key not in entry:
        raise InstrumentError(f"meta entry for asset {asset} is missing key {key!r}")
    value = entry[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InstrumentError(
            f"meta entry for asset {asset}: key {key!r} must be {kind.__name__}, "
            f"got {type(value).__name__} {_describe(value)}"
        )
    return value


class InstrumentTable:
    """The instruments an account trades, by row: the one owner of row <-> coin <-> asset id
    and of each row's tick and lot, which the engine, the portfolio and venues share.

    Rows are the order given. ``tick`` and ``lot`` (float64 per row) turn the core's
    ticks and lots into prices and sizes in one numpy multiplication; ``row_of_asset``
    (int32 per asset id up to the largest, -1 for ids not traded) is what :meth:`rows`
    looks up, for compiled loops that map asset ids themselves.
    """

    __slots__ = ("_by_coin", "assets", "coins", "instruments", "lot", "row_of_asset", "tick")

    def __init__(self, instruments: Sequence[Instrument]) -> None:
        items = tuple(instruments)
        if not items or not all(isinstance(i, Instrument) for i in items):
            raise InstrumentError("an InstrumentTable needs one or more Instrument objects, got "
                                  f"{[type(i).__name__ for i in items] or 'none'}")
        coins = tuple(i.name for i in items)
        for what, keys in (("coin", coins), ("asset id", tuple(i.asset for i in items))):
            repeated = sorted({str(k) for k in keys if keys.count(k) > 1})
            if repeated:
                raise DuplicateInstrumentError(f"instruments repeat a {what}: "
                                               f"{', '.join(repeated)}")
        self.instruments = items
        self.coins = coins
        self._by_coin = {coin: row for row, coin in enumerate(coins)}
        self.assets = _frozen(np.array([i.asset for i in items], dtype=np.uint32))
        row_of_asset = np.full(int(self.assets.max()) + 1, -1, dtype=np.int32)
        row_of_asset[self.assets] = np.arange(len(items), dtype=np.int32)
        self.row_of_asset = _frozen(row_of_asset)
        self.tick = _frozen(np.array([float(i.tick_size) for i in items]))
        self.lot = _frozen(np.array([float(i.lot_size) for i in items]))

    def __len__(self) -> int:
        return len(self.instruments)

    def __iter__(self) -> Iterator[Instrument]:
        return iter(self.instruments)

    def __getitem__(self, row: int) -> Instrument:
        return self.instruments[row]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, InstrumentTable):
            return NotImplemented
        return self.instruments == other.instruments

    def __hash__(self) -> int:
        return hash(self.instruments)

    def __repr__(self) -> str:
        return f"InstrumentTable({', '.join(self.coins)})"

    def index(self, coin: str) -> int:
        """The row of `coin`."""
        try:
            return self._by_coin[coin]
        except KeyError:
            raise UnknownAssetError(f"{coin!r} is not traded here ({', '.join(self.coins)})"
                                    ) from None

    def of(self, coin: str) -> Instrument:
        """The instrument of `coin`."""
        return self.instruments[self.index(coin)]

    def rows(self, assets: np.ndarray) -> np.ndarray:
        """The row (int32) of each asset id; UnknownAssetError names any id not in the table."""
        assets = np.asarray(assets)
        inside = assets < len(self.row_of_asset)
        rows = self.row_of_asset[np.where(inside, assets, 0)]
        unknown = ~inside | (rows < 0)
        if unknown.any():
            raise UnknownAssetError(f"asset ids {sorted(set(assets[unknown].tolist()))[:10]} are "
                                    f"not traded here (assets {self.assets.tolist()})")
        return rows


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


__all__ = ["Instrument", "InstrumentTable", "Number", "Rounding"]
