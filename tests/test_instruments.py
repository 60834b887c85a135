"""Tests for obelisk/instruments.py: Hyperliquid tick/lot grids, exact conversion, rounding."""

from __future__ import annotations

import dataclasses
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obelisk.errors import (
    DuplicateInstrumentError,
    InstrumentError,
    InvalidPriceError,
    InvalidSizeError,
    UnknownAssetError,
)
from obelisk.instruments import Instrument, InstrumentTable, Rounding

# Real mainnet data recorded by the official SDK's tests: hyperliquid-python-sdk test
# cassettes (tests/cassettes/info_test), MIT license, Copyright (c) 2024 Hyperliquid Labs
# Pte. Ltd. Copied from /work/shared/fixtures/hyperliquid/recorded_info.json.
META = {  # {"type": "meta"}, first 13 universe entries
    "universe": [
        {"maxLeverage": 50, "name": "BTC", "szDecimals": 5},
        {"maxLeverage": 50, "name": "ETH", "szDecimals": 4},
        {"maxLeverage": 50, "name": "ATOM", "szDecimals": 2},
        {"maxLeverage": 50, "name": "MATIC", "szDecimals": 1},
        {"maxLeverage": 50, "name": "DYDX", "szDecimals": 1},
        {"maxLeverage": 50, "name": "SOL", "szDecimals": 2},
        {"maxLeverage": 50, "name": "AVAX", "szDecimals": 2},
        {"maxLeverage": 50, "name": "BNB", "szDecimals": 3},
        {"maxLeverage": 50, "name": "APE", "szDecimals": 1},
        {"maxLeverage": 50, "name": "OP", "szDecimals": 1},
        {"maxLeverage": 50, "name": "LTC", "szDecimals": 2},
        {"maxLeverage": 50, "name": "ARB", "szDecimals": 1},
        {"maxLeverage": 50, "name": "DOGE", "szDecimals": 0},
    ]
}
RECORDED_ORDERS = [  # (coin, px, sz) from l2Book DYDX, openOrders and userFills
    ("DYDX", "2.111", "134.4"),
    ("DYDX", "2.1105", "141.1"),
    ("DYDX", "2.1124", "352.3"),
    ("DYDX", "2.1128", "3798.0"),
    ("MATIC", "1.0357", "208.7"),
    ("ARB", "1.1795", "173.7"),
    ("BNB", "306.75", "0.303"),
    ("SOL", "19.704", "8.45"),
    ("DOGE", "0.078255", "45986.0"),
]
# The newer meta shape (reference/hyperliquid.md §3) carries extra keys.
BTC_NEW_SHAPE = {
    "name": "BTC",
    "szDecimals": 5,
    "maxLeverage": 40,
    "marginTableId": 56,
    "onlyIsolated": True,
}

BTC = Instrument("BTC", 0, 5, 40)
ETH = Instrument("ETH", 1, 4, 25)
DOGE = Instrument("DOGE", 12, 0, 20)
SPOT_SZ2 = Instrument("PURR/USDC", 10000, 2, is_spot=True)
SPOT_SZ0 = Instrument("SZ0/USDC", 10001, 0, is_spot=True)
INT64_MAX = 2**63 - 1


def perp(sz_decimals: int) -> Instrument:
    return Instrument(f"P{sz_decimals}", 3, sz_decimals, 10)


def spot(sz_decimals: int) -> Instrument:
    return Instrument(f"S{sz_decimals}/USDC", 10003, sz_decimals, is_spot=True)


# --- construction -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instrument", "price_decimals", "tick", "lot"),
    [
        (BTC, 1, "0.1", "0.00001"),
        (ETH, 2, "0.01", "0.0001"),
        (DOGE, 6, "0.000001", "1"),
        (SPOT_SZ2, 6, "0.000001", "0.01"),
        (SPOT_SZ0, 8, "0.00000001", "1"),
        (spot(8), 0, "1", "0.00000001"),
    ],
)
def test_grid_of_known_instruments(
    instrument: Instrument, price_decimals: int, tick: str, lot: str
) -> None:
    assert instrument.price_decimals == price_decimals
    assert instrument.tick_size == Decimal(tick)
    assert instrument.lot_size == Decimal(lot)


def test_instrument_is_frozen_slotted_and_hashable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        BTC.sz_decimals = 3  # type: ignore[misc]
    assert not hasattr(BTC, "__dict__")
    assert Instrument("BTC", 0, 5, 40) == BTC
    assert len({BTC, Instrument("BTC", 0, 5, 40)}) == 1
    assert Instrument("X", 0, 2).max_leverage == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "non-empty str"),
        ({"name": "   "}, "non-empty str"),
        ({"name": 5}, "non-empty str"),
        ({"asset": -1}, "int >= 0"),
        ({"asset": True}, "int >= 0"),
        ({"asset": 10000}, "a spot id"),
        ({"asset": 3, "is_spot": True}, r"10000 \+ spot index"),
        ({"asset": 100000, "is_spot": True}, r"\(10000\.\.99999\), got 100000"),
        ({"sz_decimals": 7}, "0..6 for perps"),
        ({"sz_decimals": 9, "asset": 10000, "is_spot": True}, "0..8 for spot"),
        ({"sz_decimals": -1}, "0..6"),
        ({"sz_decimals": "5"}, "0..6"),
        ({"sz_decimals": 2.0}, "0..6"),
        ({"max_leverage": 0}, "int >= 1"),
        ({"max_leverage": True}, "int >= 1"),
        ({"is_spot": 1}, "must be a bool"),
    ],
)
def test_bad_construction_input_raises_instrument_error(
    kwargs: dict[str, object], message: str
) -> None:
    fields: dict[str, object] = {"name": "BTC", "asset": 0, "sz_decimals": 5, "max_leverage": 40}
    fields.update(kwargs)
    with pytest.raises(InstrumentError, match=message):
        Instrument(**fields)  # type: ignore[arg-type]


def test_builder_perp_asset_ids_are_accepted() -> None:
    assert Instrument("test:ABC", 110000, 2).asset == 110000


# --- from_meta ----------------------------------------------------------------------


def test_universe_from_recorded_meta() -> None:
    instruments = Instrument.universe_from_meta(META)
    assert [i.name for i in instruments[:3]] == ["BTC", "ETH", "ATOM"]
    assert [i.asset for i in instruments] == list(range(13))
    assert instruments[0] == Instrument("BTC", 0, 5, 50)
    doge = instruments[12]
    assert (doge.name, doge.asset, doge.sz_decimals, doge.price_decimals) == ("DOGE", 12, 0, 6)
    assert all(not i.is_spot and i.max_leverage == 50 for i in instruments)


@pytest.mark.parametrize(("coin", "px", "sz"), RECORDED_ORDERS)
def test_recorded_exchange_prices_and_sizes_are_valid(coin: str, px: str, sz: str) -> None:
    by_name = {i.name: i for i in Instrument.universe_from_meta(META)}
    instrument = by_name[coin]
    ticks = instrument.price_to_ticks(px)
    assert instrument.price_to_wire(ticks) == px
    assert instrument.size_to_wire(instrument.size_to_lots(sz)) == sz.removesuffix(".0")


def test_from_meta_ignores_extra_keys() -> None:
    assert Instrument.from_meta(BTC_NEW_SHAPE, 0) == Instrument("BTC", 0, 5, 40)


def test_from_meta_spot_defaults_leverage_to_one() -> None:
    purr = Instrument.from_meta({"name": "PURR/USDC", "szDecimals": 0}, 10000, is_spot=True)
    assert (purr.is_spot, purr.max_leverage, purr.price_decimals) == (True, 1, 8)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"szDecimals": 5, "maxLeverage": 40}, "missing key 'name'"),
        ({"name": "BTC", "maxLeverage": 40}, "missing key 'szDecimals'"),
        ({"name": "BTC", "szDecimals": 5}, "missing key 'maxLeverage'"),
        ({"name": 7, "szDecimals": 5, "maxLeverage": 40}, "key 'name' must be str"),
        ({"name": "BTC", "szDecimals": "5", "maxLeverage": 40}, "key 'szDecimals' must be int"),
        ({"name": "BTC", "szDecimals": True, "maxLeverage": 40}, "key 'szDecimals' must be int"),
        ({"name": "BTC", "szDecimals": 5, "maxLeverage": 40.0}, "key 'maxLeverage' must be int"),
        ({"name": "BTC", "szDecimals": 7, "maxLeverage": 40}, "szDecimals for BTC must be"),
        (["BTC", 5, 40], "must be a mapping"),
    ],
)
def test_from_meta_rejects_bad_entries(entry: object, message: str) -> None:
    with pytest.raises(InstrumentError, match=message):
        Instrument.from_meta(entry, 0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ([], "must be a mapping"),
        ({}, "missing key 'universe'"),
        ({"universe": "BTC"}, "must be a list"),
        ({"universe": [BTC_NEW_SHAPE, None]}, "asset 1 must be a mapping"),
    ],
)
def test_universe_from_meta_rejects_bad_responses(meta: object, message: str) -> None:
    with pytest.raises(InstrumentError, match=message):
        Instrument.universe_from_meta(meta)  # type: ignore[arg-type]


# --- price rules --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instrument", "px", "valid"),
    [
        # examples from reference/hyperliquid.md §6.1 (Hyperliquid docs, tick and lot size)
        (perp(0), "1234.5", True),
        (perp(0), "1234.56", False),
        (perp(0), "0.001234", True),
        (perp(0), "0.0012345", False),
        (perp(1), "0.01234", True),
        (perp(1), "0.012345", False),
        (spot(0), "0.0001234", True),
        (spot(1), "0.0001234", True),
        (spot(2), "0.0001234", False),
        # integers are valid whatever their significant figures
        (BTC, "123456", True),
        (BTC, "12345.6", False),
        (BTC, "123456.0", True),
        (ETH, "987654321", True),
        (spot(8), "123456789", True),
        (spot(8), "1.5", False),
        (BTC, "0.1", True),
        (BTC, "0.05", False),
        (ETH, "2500.000000", True),
    ],
)
def test_price_rule_examples(instrument: Instrument, px: str, valid: bool) -> None:
    assert instrument.is_valid_price(px) is valid
    assert instrument.is_valid_price(Decimal(px)) is valid
    if valid:
        assert instrument.ticks_to_price(instrument.price_to_ticks(px)) == Decimal(px)
    else:
        with pytest.raises(InvalidPriceError):
            instrument.price_to_ticks(px)


def test_decimals_message_states_value_and_rule() -> None:
    with pytest.raises(InvalidPriceError) as caught:
        ETH.price_to_ticks(0.123456)
    assert str(caught.value) == (
        "price 0.123456 for ETH has 6 decimals; at most 2 allowed (6 - szDecimals 4)"
    )
    with pytest.raises(InvalidPriceError, match=r"at most 6 allowed \(8 - szDecimals 2\)"):
        SPOT_SZ2.price_to_ticks("0.0000001")


def test_significant_figures_message() -> None:
    with pytest.raises(InvalidPriceError) as caught:
        ETH.price_to_ticks("1234.56")
    assert str(caught.value) == (
        "price '1234.56' for ETH has 6 significant figures; "
        "at most 5 allowed unless the price is an integer"
    )


def test_float_drift_is_rejected_not_rounded() -> None:
    drift = 0.1 + 0.2
    assert repr(drift) == "0.30000000000000004"
    with pytest.raises(InvalidPriceError, match=r"0\.30000000000000004 for ETH has 17 decimals"):
        ETH.price_to_ticks(drift)
    with pytest.raises(InvalidSizeError, match="has 17 decimals; at most 4 allowed"):
        ETH.size_to_lots(drift)
    with pytest.raises(InvalidSizeError):
        ETH.size_to_lots(1.1 * 3)  # 3.3000000000000003
    assert ETH.price_to_ticks(0.3) == 30
    assert ETH.size_to_lots(0.3) == 3000
    assert DOGE.price_to_ticks(0.078255) == 78255
    assert ETH.round_price(drift, Rounding.NEAREST) == Decimal("0.3")


@pytest.mark.parametrize(
    "px",
    [
        2500,
        2500.0,
        "2500",
        "2500.00",
        " 2500 ",
        "2.5e3",
        "+2500",
        Decimal("2500.000"),
        Decimal("2.5E+3"),
    ],
)
def test_price_input_types_are_equivalent(px: object) -> None:
    assert ETH.price_to_ticks(px) == 250000  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "sz", [3, 3.0, "3", "3.0000", "\t3\n", "3e0", "0.003e3", Decimal("3.00"), Decimal("3E0")]
)
def test_size_input_types_are_equivalent(sz: object) -> None:
    assert ETH.size_to_lots(sz) == 30000  # type: ignore[arg-type]


def test_accepted_string_forms() -> None:
    assert BTC.size_to_lots("1e-3") == 100
    assert BTC.size_to_lots("  2.5 ") == 250000
    assert BTC.size_to_lots(".5") == 50000
    assert BTC.size_to_lots("5.") == 500000


BAD_NUMBERS = [
    (True, "has type bool"),
    (False, "has type bool"),
    (None, "has type NoneType"),
    ([1], "has type list"),
    (b"1", "has type bytes"),
    ("abc", "is not a decimal number"),
    ("", "is not a decimal number"),
    ("1.2.3", "is not a decimal number"),
    ("1_000", "is not a decimal number"),
    ("0x10", "is not a decimal number"),
    ("\u0661", "is not a decimal number"),  # ARABIC-INDIC DIGIT ONE, which Decimal() accepts
    ("nan", "is not a decimal number"),
    ("inf", "is not a decimal number"),
    ("1e99999999999999999999999", "exponent out of range"),
    (float("nan"), "must be a finite number"),
    (float("inf"), "must be a finite number"),
    (float("-inf"), "must be a finite number"),
    (Decimal("NaN"), "must be a finite number"),
    (Decimal("sNaN"), "must be a finite number"),
    (Decimal("Infinity"), "must be a finite number"),
    (-1, "must be > 0"),
    (-0.0, "-0.0 for ETH must be > 0"),
    ("-0", "must be > 0"),
    (Decimal("-0"), "must be > 0"),
    ("-2.5", "must be > 0"),
    (0, "must be > 0"),
    (0.0, "must be > 0"),
    ("1e30", "too large"),
    ("1e999999999999999999", "too large"),
    pytest.param(10**5000, "too large", id="10**5000"),
]


@pytest.mark.parametrize(("px", "message"), BAD_NUMBERS)
def test_bad_prices_raise_invalid_price_error(px: object, message: str) -> None:
    with pytest.raises(InvalidPriceError, match=message) as caught:
        ETH.price_to_ticks(px)  # type: ignore[arg-type]
    assert isinstance(caught.value, ValueError)
    assert "for ETH" in str(caught.value)
    assert len(str(caught.value)) < 200
    assert not ETH.is_valid_price(px)  # type: ignore[arg-type]
    with pytest.raises(InvalidPriceError):
        ETH.round_price(px, Rounding.NEAREST)  # type: ignore[arg-type]


@pytest.mark.parametrize(("sz", "message"), BAD_NUMBERS)
def test_bad_sizes_raise_invalid_size_error(sz: object, message: str) -> None:
    with pytest.raises(InvalidSizeError, match=message) as caught:
        ETH.size_to_lots(sz)  # type: ignore[arg-type]
    assert "for ETH" in str(caught.value)
    assert not ETH.is_valid_size(sz)  # type: ignore[arg-type]
    with pytest.raises(InvalidSizeError):
        ETH.round_size(sz, Rounding.NEAREST)  # type: ignore[arg-type]


def test_just_over_int64_is_rejected_after_exact_conversion() -> None:
    with pytest.raises(InvalidPriceError) as caught:
        ETH.price_to_ticks("9.3e16")
    assert str(caught.value) == (
        "price '9.3e16' for ETH is 9300000000000000000 ticks; at most 9223372036854775807 fit"
    )
    with pytest.raises(InvalidSizeError, match="is 9300000000000000000 lots; at most"):
        ETH.size_to_lots(9.3e14)
    assert ETH.price_to_ticks(92233720368547758) == 9223372036854775800


def test_tiny_price_is_rejected_without_expanding_it() -> None:
    with pytest.raises(InvalidPriceError, match="has 999999999999999999 decimals"):
        ETH.price_to_ticks("1e-999999999999999999")
    assert ETH.round_price("1e-999999999999999999", Rounding.UP) == Decimal("0.01")


def test_ambient_decimal_context_does_not_change_results() -> None:
    with localcontext() as context:
        context.prec = 3
        assert ETH.price_to_ticks("987654321") == 98765432100
        assert not ETH.is_valid_price("1.0000000000000000000000000000001")
        assert ETH.round_price("1234.5678", Rounding.DOWN) == Decimal("1234.5")


# --- tick counts and wire strings ---------------------------------------------------


def test_ticks_to_price_keeps_the_tick_exponent() -> None:
    assert str(BTC.ticks_to_price(10)) == "1.0"
    assert str(ETH.ticks_to_price(250000)) == "2500.00"
    assert BTC.ticks_to_price(1234567) == Decimal("123456.7")  # grid only; see is_valid_ticks
    assert not BTC.is_valid_ticks(1234567)
    assert BTC.is_valid_ticks(1234560)
    assert str(BTC.lots_to_size(1)) == "0.00001"


@pytest.mark.parametrize("ticks", [0, -1, INT64_MAX + 1, pytest.param(10**5000, id="10**5000")])
def test_tick_counts_out_of_range(ticks: int) -> None:
    with pytest.raises(InvalidPriceError, match=r"out of range; allowed 1\.\."):
        ETH.ticks_to_price(ticks)
    with pytest.raises(InvalidPriceError, match="out of range"):
        ETH.price_to_wire(ticks)
    assert not ETH.is_valid_ticks(ticks)


@pytest.mark.parametrize("count", [True, 1.0, "1", Decimal(1), None])
def test_counts_must_be_int(count: object) -> None:
    with pytest.raises(InvalidPriceError, match="ticks for ETH must be an int"):
        ETH.ticks_to_price(count)  # type: ignore[arg-type]
    with pytest.raises(InvalidSizeError, match="lots for ETH must be an int"):
        ETH.lots_to_size(count)  # type: ignore[arg-type]
    with pytest.raises(InvalidSizeError):
        ETH.size_to_wire(count)  # type: ignore[arg-type]
    assert not ETH.is_valid_ticks(count)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("instrument", "ticks", "wire"),
    [
        (BTC, 1000000, "100000"),
        (BTC, 1234560, "123456"),
        (BTC, 16701, "1670.1"),
        (ETH, 250000, "2500"),
        (ETH, 10, "0.1"),
        (ETH, 1, "0.01"),
        (SPOT_SZ0, 1, "0.00000001"),
        (DOGE, 78255, "0.078255"),
        (spot(8), 123456789, "123456789"),
        (BTC, INT64_MAX - 7, "922337203685477580"),
    ],
)
def test_price_to_wire(instrument: Instrument, ticks: int, wire: str) -> None:
    assert instrument.price_to_wire(ticks) == wire


def test_price_to_wire_rejects_too_many_significant_figures() -> None:
    with pytest.raises(InvalidPriceError, match=r"is price 123456\.7 with 7 significant figures"):
        BTC.price_to_wire(1234567)


def test_size_to_wire() -> None:
    assert BTC.size_to_wire(1) == "0.00001"
    assert BTC.size_to_wire(100000) == "1"
    assert ETH.size_to_wire(12345) == "1.2345"
    assert DOGE.size_to_wire(45986) == "45986"
    assert BTC.size_to_wire(0, allow_zero=True) == "0"
    with pytest.raises(InvalidSizeError, match=r"lots 0 for BTC is out of range; allowed 1\.\."):
        BTC.size_to_wire(0)
    with pytest.raises(InvalidSizeError, match="out of range"):
        BTC.size_to_wire(-1, allow_zero=True)


# --- sizes --------------------------------------------------------------------------


def test_size_rules() -> None:
    sz3 = perp(3)
    assert sz3.size_to_lots("1.001") == 1001  # reference/hyperliquid.md §6.2
    with pytest.raises(InvalidSizeError) as caught:
        sz3.size_to_lots("1.0001")
    assert str(caught.value) == (
        "size '1.0001' for P3 has 4 decimals; at most 3 allowed (szDecimals 3)"
    )
    assert DOGE.size_to_lots(45986.0) == 45986
    assert not DOGE.is_valid_size(0.5)
    assert BTC.size_to_lots("0.00001") == 1
    assert BTC.size_to_lots(INT64_MAX // 10**5) == INT64_MAX // 10**5 * 10**5


def test_zero_size_needs_allow_zero() -> None:
    with pytest.raises(InvalidSizeError, match=r"must be > 0 \(pass allow_zero=True"):
        BTC.size_to_lots(0)
    assert BTC.size_to_lots(0, allow_zero=True) == 0
    assert BTC.size_to_lots("0.000", allow_zero=True) == 0
    assert BTC.is_valid_size(0, allow_zero=True)
    assert not BTC.is_valid_size(0)
    with pytest.raises(InvalidSizeError, match="must be >= 0"):
        BTC.size_to_lots("-0", allow_zero=True)
    with pytest.raises(InvalidSizeError, match="out of range"):
        BTC.lots_to_size(0)
    assert BTC.lots_to_size(0, allow_zero=True) == 0


@pytest.mark.parametrize(
    ("sz", "up", "down", "nearest"),
    [
        ("1.234567", "1.23457", "1.23456", "1.23457"),
        ("0.000015", "0.00002", "0.00001", "0.00002"),  # tie -> even last digit
        ("0.000025", "0.00003", "0.00002", "0.00002"),  # tie -> even last digit
        ("2", "2", "2", "2"),
        (0.1 + 0.2, "0.30001", "0.3", "0.3"),  # the float is 0.30000000000000004
    ],
)
def test_round_size(sz: object, up: str, down: str, nearest: str) -> None:
    assert BTC.round_size(sz, Rounding.UP) == Decimal(up)  # type: ignore[arg-type]
    assert BTC.round_size(sz, Rounding.DOWN) == Decimal(down)  # type: ignore[arg-type]
    assert BTC.round_size(sz, Rounding.NEAREST) == Decimal(nearest)  # type: ignore[arg-type]
    assert BTC.round_size_to_lots(sz, "up") == BTC.size_to_lots(up)  # type: ignore[arg-type]


def test_round_size_to_zero_needs_allow_zero() -> None:
    with pytest.raises(InvalidSizeError, match="gives 0 lots when rounded down"):
        BTC.round_size("0.000004", Rounding.DOWN)
    with pytest.raises(InvalidSizeError, match=r"the smallest size is 0\.00001"):
        BTC.round_size("0.000004", Rounding.NEAREST)
    assert BTC.round_size("0.000004", Rounding.UP) == Decimal("0.00001")
    assert BTC.round_size("0.000004", Rounding.DOWN, allow_zero=True) == 0
    assert BTC.round_size_to_lots(0, Rounding.UP, allow_zero=True) == 0


# --- price rounding -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("instrument", "px", "up", "down", "nearest"),
    [
        (BTC, "123456.7", "123457", "123456", "123457"),
        (BTC, "100000.5", "100001", "100000", "100000"),  # tie -> even
        (BTC, "100001.5", "100002", "100001", "100002"),  # tie -> even
        (BTC, "99999.95", "100000", "99999", "100000"),  # crosses a power of ten
        (BTC, "12345.67", "12346", "12345", "12346"),
        (BTC, "1234.567", "1234.6", "1234.5", "1234.6"),
        (ETH, "1234.55", "1234.6", "1234.5", "1234.6"),  # tie -> even
        (ETH, "1234.65", "1234.7", "1234.6", "1234.6"),  # tie -> even
        (ETH, "9.99995", "10", "9.99", "10"),
        (ETH, "0.0123", "0.02", "0.01", "0.01"),
        (DOGE, "0.0782554", "0.078256", "0.078255", "0.078255"),
        (DOGE, "0.12345678", "0.12346", "0.12345", "0.12346"),
        (SPOT_SZ0, "0.000123456", "0.00012346", "0.00012345", "0.00012346"),
        (spot(8), "2.5", "3", "2", "2"),  # pd 0: tie -> even
        (ETH, "2500", "2500", "2500", "2500"),
    ],
)
def test_round_price_examples(
    instrument: Instrument, px: str, up: str, down: str, nearest: str
) -> None:
    assert instrument.round_price(px, Rounding.UP) == Decimal(up)
    assert instrument.round_price(px, Rounding.DOWN) == Decimal(down)
    assert instrument.round_price(px, Rounding.NEAREST) == Decimal(nearest)
    assert instrument.round_price_to_ticks(px, "down") == instrument.price_to_ticks(down)


def test_round_price_below_one_tick() -> None:
    with pytest.raises(InvalidPriceError, match=r"below the smallest price 0\.1; it cannot be"):
        BTC.round_price("0.04", Rounding.DOWN)
    assert BTC.round_price("0.04", Rounding.NEAREST) == Decimal("0.1")
    assert BTC.round_price("0.04", Rounding.UP) == Decimal("0.1")


def test_round_price_too_large() -> None:
    with pytest.raises(InvalidPriceError, match="is 9223372036854775810 ticks; at most"):
        BTC.round_price("922337203685477580.95", Rounding.UP)
    assert BTC.round_price_to_ticks("922337203685477580.95", Rounding.DOWN) == INT64_MAX - 7


def test_rounding_directions() -> None:
    assert Rounding("up") is Rounding.UP
    assert BTC.round_price("1234.567", "nearest") == Decimal("1234.6")
    with pytest.raises(ValueError, match="is not a valid Rounding"):
        BTC.round_price("1", "sideways")


# --- properties ---------------------------------------------------------------------

instruments = st.one_of(
    st.integers(0, 6).map(perp),
    st.integers(0, 8).map(spot),
)


def positive_decimals(max_adjusted: int) -> st.SearchStrategy[Decimal]:
    """Positive Decimals of up to 12 digits, from about 1e-16 to below 10**(max_adjusted + 1)."""
    return st.integers(1, 10**12 - 1).flatmap(
        lambda digits: st.integers(-16, max_adjusted - len(str(digits)) + 1).map(
            lambda exponent: Decimal(digits).scaleb(exponent)
        )
    )


def prices_in_range(instrument: Instrument) -> st.SearchStrategy[Decimal]:
    """Positive prices whose tick counts fit in int64."""
    return positive_decimals(17 - instrument.price_decimals)


def valid_ticks(instrument: Instrument) -> st.SearchStrategy[int]:
    """Tick counts of valid prices: up to 5 significant figures, or integer prices."""
    five_figures = st.builds(
        lambda digits, shift: digits * 10**shift, st.integers(1, 99999), st.integers(0, 12)
    )
    largest_whole = min(10**15, 10 ** (18 - instrument.price_decimals))  # exact as floats
    integers = st.integers(1, largest_whole).map(
        lambda whole: whole * 10**instrument.price_decimals
    )
    return st.one_of(five_figures, integers)


def oracle_down(instrument: Instrument, px: Decimal) -> Decimal | None:
    """Largest valid price <= px by the textbook recipe: the better of floor(px) and px
    truncated to 5 significant figures, then to price_decimals."""
    with localcontext() as context:
        context.prec = 200
        five = px.quantize(Decimal(1).scaleb(px.adjusted() - 4), rounding=ROUND_FLOOR)
        on_grid = five.quantize(instrument.tick_size, rounding=ROUND_FLOOR)
        best = max(px.to_integral_value(rounding=ROUND_FLOOR), on_grid)
    return best if best > 0 else None


def oracle_up(instrument: Instrument, px: Decimal) -> Decimal:
    """Smallest valid price >= px, mirroring ``oracle_down``."""
    with localcontext() as context:
        context.prec = 200
        five = px.quantize(Decimal(1).scaleb(px.adjusted() - 4), rounding=ROUND_CEILING)
        on_grid = five.quantize(instrument.tick_size, rounding=ROUND_CEILING)
        return min(px.to_integral_value(rounding=ROUND_CEILING), on_grid)


@settings(max_examples=300, deadline=None)
@given(instrument=instruments, data=st.data())
def test_round_price_matches_oracle_and_is_valid(
    instrument: Instrument, data: st.DataObject
) -> None:
    px = data.draw(prices_in_range(instrument))
    up = instrument.round_price(px, Rounding.UP)
    assert up >= px
    assert up == oracle_up(instrument, px)
    assert instrument.is_valid_price(up)

    expected_down = oracle_down(instrument, px)
    if expected_down is None:
        with pytest.raises(InvalidPriceError, match="cannot be rounded down"):
            instrument.round_price(px, Rounding.DOWN)
        assert instrument.round_price(px, Rounding.NEAREST) == instrument.tick_size
        return
    down = instrument.round_price(px, Rounding.DOWN)
    assert down <= px
    assert down == expected_down
    assert instrument.is_valid_price(down)

    nearest = instrument.round_price(px, Rounding.NEAREST)
    assert nearest in (down, up)
    with localcontext() as context:
        context.prec = 100
        assert abs(nearest - px) <= min(px - down, up - px)
    assert instrument.is_valid_price(nearest)


@settings(max_examples=200, deadline=None)
@given(instrument=instruments, data=st.data())
def test_round_price_is_idempotent(instrument: Instrument, data: st.DataObject) -> None:
    px = data.draw(prices_in_range(instrument))
    first = instrument.round_price(px, data.draw(st.sampled_from([Rounding.UP, Rounding.NEAREST])))
    for direction in Rounding:
        assert instrument.round_price(first, direction) == first
        assert instrument.round_price_to_ticks(first, direction) == instrument.price_to_ticks(first)


@settings(max_examples=200, deadline=None)
@given(instrument=instruments, data=st.data())
def test_valid_ticks_round_trip(instrument: Instrument, data: st.DataObject) -> None:
    ticks = data.draw(valid_ticks(instrument))
    assert instrument.is_valid_ticks(ticks)
    price = instrument.ticks_to_price(ticks)
    wire = instrument.price_to_wire(ticks)
    assert instrument.price_to_ticks(price) == ticks
    assert instrument.price_to_ticks(str(price)) == ticks
    assert instrument.price_to_ticks(wire) == ticks
    assert instrument.price_to_ticks(float(price)) == ticks
    for direction in Rounding:
        assert instrument.round_price_to_ticks(price, direction) == ticks
    # The SDK's float_to_wire recipe (8-decimal text, then normalized) gives the same string.
    assert f"{Decimal(f'{float(price):.8f}').normalize():f}" == wire


@settings(max_examples=200, deadline=None)
@given(instrument=instruments, lots=st.integers(0, 10**15 - 1))
def test_lots_round_trip(instrument: Instrument, lots: int) -> None:
    size = instrument.lots_to_size(lots, allow_zero=True)
    wire = instrument.size_to_wire(lots, allow_zero=True)
    assert instrument.size_to_lots(size, allow_zero=True) == lots
    assert instrument.size_to_lots(wire, allow_zero=True) == lots
    assert instrument.size_to_lots(float(size), allow_zero=True) == lots
    assert "e" not in wire.lower()
    if "." in wire:
        assert not wire.endswith(("0", "."))


@settings(max_examples=200, deadline=None)
@given(instrument=instruments, data=st.data())
def test_round_size_brackets_input(instrument: Instrument, data: st.DataObject) -> None:
    sz = data.draw(positive_decimals(17 - instrument.sz_decimals))
    up = instrument.round_size(sz, Rounding.UP)
    down = instrument.round_size(sz, Rounding.DOWN, allow_zero=True)
    nearest = instrument.round_size(sz, Rounding.NEAREST, allow_zero=True)
    assert down <= sz <= up
    assert nearest in (down, up)
    with localcontext() as context:
        context.prec = 100
        assert up - down in (0, instrument.lot_size)
        assert abs(nearest - sz) <= min(sz - down, up - sz)
    assert instrument.is_valid_size(up)


@settings(max_examples=200, deadline=None)
@given(
    instrument=instruments,
    px=st.floats(min_value=1e-9, max_value=1e12, allow_nan=False, allow_infinity=False),
)
def test_float_inputs_mean_their_shortest_repr(instrument: Instrument, px: float) -> None:
    as_decimal = Decimal(repr(px))
    assert instrument.is_valid_price(px) == instrument.is_valid_price(as_decimal)
    assert instrument.is_valid_price(px) == instrument.is_valid_price(repr(px))
    for direction in Rounding:
        try:
            expected = instrument.round_price(as_decimal, direction)
        except InvalidPriceError:
            with pytest.raises(InvalidPriceError):
                instrument.round_price(px, direction)
        else:
            assert instrument.round_price(px, direction) == expected


def test_numpy_integers_from_the_core_convert_back():
    import numpy as np

    eth = Instrument.from_meta({"name": "ETH", "szDecimals": 4, "maxLeverage": 25}, asset=1)
    assert eth.ticks_to_price(np.int64(312050)) == Decimal("3120.50")
    assert eth.lots_to_size(np.int64(5000)) == Decimal("0.5000")
    assert eth.price_to_wire(np.int64(312050)) == "3120.5"
    with pytest.raises(InvalidPriceError):
        eth.ticks_to_price(np.bool_(True))


# --- InstrumentTable --------------------------------------------------------------


def test_instrument_table_maps_rows_coins_and_asset_ids_both_ways() -> None:
    btc, eth, sol = Instrument("BTC", 0, 5, 40), Instrument("ETH", 1, 4, 25), \
        Instrument("SOL", 7, 2, 20)
    table = InstrumentTable([eth, sol, btc])
    assert table.coins == ("ETH", "SOL", "BTC") and len(table) == 3 and table[1] is sol
    assert [table.index(c) for c in ("BTC", "ETH", "SOL")] == [2, 0, 1]
    assert table.rows(np.array([7, 0, 1, 7], dtype=np.uint32)).tolist() == [1, 2, 0, 1]
    assert table.assets[table.rows(table.assets)].tolist() == table.assets.tolist()
    assert table.tick.tolist() == [float(i.tick_size) for i in (eth, sol, btc)]
    assert table.lot.tolist() == [0.0001, 0.01, 0.00001]
    assert table == InstrumentTable([eth, sol, btc]) != InstrumentTable([btc, eth, sol])


def test_instrument_table_refuses_unknown_ids_repeats_and_writes() -> None:
    eth, sol = Instrument("ETH", 1, 4, 25), Instrument("SOL", 7, 2, 20)
    table = InstrumentTable([eth, sol])
    for unknown in ([3], [8], [2**31]):
        with pytest.raises(UnknownAssetError, match=str(unknown[0])):
            table.rows(np.array(unknown, dtype=np.uint32))
    with pytest.raises(UnknownAssetError, match="'BTC'"):
        table.index("BTC")
    with pytest.raises(DuplicateInstrumentError, match="coin: ETH"):
        InstrumentTable([eth, Instrument("ETH", 2, 4, 25)])
    with pytest.raises(DuplicateInstrumentError, match="asset id: 1"):
        InstrumentTable([eth, Instrument("ETH2", 1, 4, 25)])
    with pytest.raises(InstrumentError):
        InstrumentTable([])
    with pytest.raises(ValueError, match="read-only"):
        table.tick[0] = 1.0
