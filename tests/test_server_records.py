"""The local exchange's number text against a plain Decimal reference."""

from decimal import Decimal

from hypothesis import example, given
from hypothesis import strategies as st

from obelisk.server.records import num


def reference_num(value: float, decimals: int = 8) -> str:
    """Round to `decimals`, print the float's shortest text without an exponent."""
    text = format(Decimal(repr(round(value, decimals) + 0.0)).normalize(), "f")
    return text if "." in text else text + ".0"


@given(st.floats(allow_nan=False, allow_infinity=False)
       | st.floats(min_value=-1e8, max_value=1e8)
       | st.builds(lambda units, places: units / 10 ** places,
                   st.integers(-10 ** 12, 10 ** 12), st.integers(0, 12)))
@example(-0.0)
@example(-4e-9)                   # rounds to -0.0: printed "0.0"
@example(5e-9)                    # rounds up to 1e-08: printed without an exponent
@example(9_999_999.999999996)     # rounds across the fast path's bound
@example(1e7)
@example(-1e7)
@example(123_456_789.123456789)   # beyond 15 digits: the float's shortest text
def test_a_float_prints_as_its_value_rounded_to_8_decimals(value):
    assert num(value) == reference_num(value)


@given(st.floats(min_value=-1e8, max_value=1e8)
       | st.builds(lambda units, places: units / 10 ** places,
                   st.integers(-10 ** 12, 10 ** 12), st.integers(0, 12)),
       st.integers(0, 8))
@example(2.5, 0)                  # half to even, as round()
@example(20.0, 0)                 # no decimals: trailing zeros of the integer stay
@example(-0.4, 0)
@example(0.125, 2)
@example(-0.004, 2)               # rounds to -0.0: printed "0.0"
def test_a_float_prints_rounded_to_fewer_decimals_as_round_then_print(value, decimals):
    assert num(value, decimals) == reference_num(value, decimals)


def test_integers_and_decimals_print_with_one_decimal_at_least():
    assert (num(3), num(Decimal("2.50")), num(Decimal("1E+2"))) == ("3.0", "2.5", "100.0")
