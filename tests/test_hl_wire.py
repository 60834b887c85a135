"""obelisk.hyperliquid.wire: number strings, cloids, order wires and actions equal the SDK's."""

import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obelisk.errors import ObeliskError
from obelisk.hyperliquid.wire import (
    Cloid,
    WireError,
    batch_modify_action,
    cancel_action,
    cancel_by_cloid_action,
    float_to_int_for_hashing,
    float_to_usd_int,
    float_to_wire,
    order_request_to_order_wire,
    order_type_to_wire,
    order_wires_to_order_action,
)

sdk = pytest.importorskip("hyperliquid.utils.signing")
sdk_types = pytest.importorskip("hyperliquid.utils.types")

# Floats as a client would hold prices and sizes (at most 8 decimals), and arbitrary ones.
wire_floats = st.one_of(
    st.decimals(min_value=-10**9, max_value=10**9, places=8, allow_nan=False,
                allow_infinity=False).map(float),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-10**12, 10**12).map(float),
    st.sampled_from([0.1 + 0.2, 1e21, 2.0**100, -(2.0**100), 1e-13, 1e300, 5e-324]),
)
cloids = st.integers(0, 2**128 - 1)
order_types = st.one_of(
    st.builds(lambda tif: {"limit": {"tif": tif}}, st.sampled_from(["Alo", "Ioc", "Gtc"])),
    st.builds(lambda px, market, tpsl: {"trigger": {"triggerPx": px, "isMarket": market,
                                                    "tpsl": tpsl}},
              st.decimals(min_value=0, max_value=10**6, places=4).map(float), st.booleans(),
              st.sampled_from(["tp", "sl"])),
)


@st.composite
def order_requests(draw):
    """An order request for the SDK (its Cloid) and the same one for obelisk (ours)."""
    request = {
        "coin": "X",
        "is_buy": draw(st.booleans()),
        "sz": float(draw(st.decimals(min_value=0, max_value=10**6, places=5))),
        "limit_px": float(draw(st.decimals(min_value=0, max_value=10**6, places=6))),
        "reduce_only": draw(st.booleans()),
        "order_type": draw(order_types),
    }
    cloid = draw(st.none() | cloids)
    theirs = dict(request, cloid=None if cloid is None else sdk_types.Cloid.from_int(cloid))
    ours = dict(request, cloid=None if cloid is None else Cloid.from_int(cloid))
    return theirs, ours


def sdk_float_to_wire(x):
    try:
        return sdk.float_to_wire(x)
    except ValueError:
        return ValueError


@settings(max_examples=400, deadline=None)
@given(wire_floats)
def test_float_to_wire_matches_sdk(x):
    expected = sdk_float_to_wire(x)
    if expected is ValueError or expected == "-0":
        with pytest.raises(WireError):
            float_to_wire(x)
    else:
        assert float_to_wire(x) == expected


@pytest.mark.parametrize(("x", "text"), [
    (1670.1, "1670.1"), (100, "100"), (100.0, "100"), (0.1 + 0.2, "0.3"), (1e-08, "0.00000001"),
    (1e21, "1000000000000000000000"), (1e-13, "0"), (0.0, "0"), (-1.5, "-1.5"),
    (2.0**100, "1267650600228229401496703205000"),   # the SDK's 28-digit Decimal rounding
])
def test_float_to_wire_examples(x, text):
    assert float_to_wire(x) == text


@pytest.mark.parametrize("x", [1e-09, 1 / 3, 0.123456789])
def test_float_to_wire_refuses_to_round(x):
    with pytest.raises(WireError, match="more than 8 decimals"):
        float_to_wire(x)


@pytest.mark.parametrize("x", [-0.0, -1e-13, math.nan, math.inf, -math.inf])
def test_float_to_wire_rejects_negative_zero_nan_inf(x):
    with pytest.raises(WireError) as caught:
        float_to_wire(x)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, ObeliskError)


@pytest.mark.parametrize("convert", [float_to_int_for_hashing, float_to_usd_int])
@pytest.mark.parametrize("x", [-0.0, math.nan, math.inf, -math.inf])
def test_float_to_int_rejects_negative_zero_nan_inf(convert, x):
    with pytest.raises(WireError):
        convert(x)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.floats(-1e9, 1e9, allow_nan=False),
                 st.decimals(-10**6, 10**6, places=8).map(float)))
def test_float_to_int_matches_sdk(x):
    for ours, theirs in [(float_to_int_for_hashing, sdk.float_to_int_for_hashing),
                         (float_to_usd_int, sdk.float_to_usd_int)]:
        try:
            expected = theirs(x)
        except ValueError:
            expected = ValueError
        if expected is ValueError or (x == 0 and math.copysign(1, x) < 0):
            with pytest.raises(WireError):
                ours(x)
        else:
            assert ours(x) == expected
            assert type(ours(x)) is int


def test_float_to_int_examples():
    assert float_to_int_for_hashing(123123123123) == 12312312312300000000
    assert float_to_int_for_hashing(0.00001231) == 1231
    assert float_to_usd_int(1.5) == 1_500_000
    assert float_to_usd_int(-2.25) == -2_250_000
    with pytest.raises(WireError):
        float_to_int_for_hashing(0.000012312312)


@settings(max_examples=200, deadline=None)
@given(cloids)
def test_cloid_from_int_matches_sdk(n):
    ours, theirs = Cloid.from_int(n), sdk_types.Cloid.from_int(n)
    assert ours.to_raw() == theirs.to_raw() == str(ours) == repr(ours)
    assert Cloid.from_str(theirs.to_raw()) == ours
    assert hash(Cloid(ours.to_raw())) == hash(ours)


@pytest.mark.parametrize("raw", [
    "0x0000000000000000000000000000000A",     # upper case hashes differently from lower
    "0x000000000000000000000000000000zz",
    "00000000000000000000000000000000aa",
    "0x0000000000000000000000000000001",
    "0x000000000000000000000000000000001",
])
def test_cloid_rejects_malformed(raw):
    with pytest.raises(WireError):
        Cloid(raw)


def test_cloid_rejects_out_of_range_and_non_strings():
    for n in (-1, 2**128):
        with pytest.raises(WireError):
            Cloid.from_int(n)
    with pytest.raises(TypeError):
        Cloid(1)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(order_requests(), st.integers(0, 200_000))
def test_order_wire_matches_sdk(requests, asset):
    theirs, ours = requests
    try:
        expected = sdk.order_request_to_order_wire(theirs, asset)
    except ValueError:
        with pytest.raises(WireError):
            order_request_to_order_wire(ours, asset)
        return
    wire = order_request_to_order_wire(ours, asset)
    assert wire == expected
    assert list(wire) == list(expected)
    if "trigger" in wire["t"]:
        assert list(wire["t"]["trigger"]) == ["isMarket", "triggerPx", "tpsl"]


def test_order_wire_accepts_cloid_string_and_omits_absent_cloid():
    request = {"is_buy": False, "sz": 1.0, "limit_px": 2.5, "reduce_only": True,
               "order_type": {"limit": {"tif": "Alo"}}}
    assert "c" not in order_request_to_order_wire(request, 3)
    assert "c" not in order_request_to_order_wire(dict(request, cloid=None), 3)
    raw = "0x" + "ab" * 16
    assert order_request_to_order_wire(dict(request, cloid=raw), 3)["c"] == raw


def test_order_type_copies_limit_and_rejects_unknown():
    limit = {"tif": "Gtc"}
    wire = order_type_to_wire({"limit": limit})
    limit["tif"] = "Ioc"
    assert wire == {"limit": {"tif": "Gtc"}}
    with pytest.raises(WireError):
        order_type_to_wire({"market": {}})


@settings(max_examples=100, deadline=None)
@given(st.lists(order_requests(), min_size=1, max_size=4),
       st.sampled_from(["na", "normalTpsl", "positionTpsl"]),
       st.none() | st.tuples(st.binary(min_size=20, max_size=20), st.integers(0, 100)))
def test_order_action_matches_sdk(requests, grouping, builder):
    try:
        theirs = [sdk.order_request_to_order_wire(t, 0) for t, _ in requests]
    except ValueError:
        return
    ours = [order_request_to_order_wire(o, 0) for _, o in requests]
    theirs_builder = ours_builder = None
    if builder is not None:
        address = "0x" + builder[0].hex()
        theirs_builder = {"b": address, "f": builder[1]}    # the SDK's exchange lower-cases b
        ours_builder = {"b": "0x" + builder[0].hex().upper(), "f": builder[1]}
    given_builder = None if ours_builder is None else dict(ours_builder)
    action = order_wires_to_order_action(ours, ours_builder, grouping)
    expected = sdk.order_wires_to_order_action(theirs, theirs_builder, grouping)
    assert action == expected
    assert list(action) == list(expected)
    assert ours_builder == given_builder               # the caller's builder is not modified


def test_order_action_rejects_unknown_grouping():
    with pytest.raises(WireError):
        order_wires_to_order_action([], None, "tpsl")


def test_cancel_and_modify_actions_have_the_exchange_shapes():
    cloid = Cloid.from_int(7)
    wire = order_request_to_order_wire({"is_buy": True, "sz": 1.0, "limit_px": 10.0,
                                        "reduce_only": False,
                                        "order_type": {"limit": {"tif": "Gtc"}}}, 2)
    assert cancel_action([(1, 99), (2, 2**40)]) == {
        "type": "cancel", "cancels": [{"a": 1, "o": 99}, {"a": 2, "o": 2**40}]}
    assert cancel_by_cloid_action([(1, cloid), (3, cloid.to_raw())]) == {
        "type": "cancelByCloid", "cancels": [{"asset": 1, "cloid": cloid.to_raw()},
                                             {"asset": 3, "cloid": cloid.to_raw()}]}
    assert batch_modify_action([(5, wire), (cloid, wire)]) == {
        "type": "batchModify", "modifies": [{"oid": 5, "order": wire},
                                            {"oid": cloid.to_raw(), "order": wire}]}


def test_decimal_slow_path_only_beyond_28_digits():
    x = 123456789012345678901234567.0          # 27 digits: exact, no Decimal rounding
    assert float_to_wire(x) == f"{Decimal(x):f}"
