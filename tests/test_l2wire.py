"""The compiled Hyperliquid l2Book frame reader against the JSON-library path, on the same bytes."""

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from obelisk import CrossedPolicy, Instrument, L2Book
from obelisk._core.l2 import apply_hyperliquid_l2_frame
from obelisk.hyperliquid.l2frames import apply_l2_json, apply_l2_message

BUY, SELL = 0, 1
DYDX = Instrument("DYDX", 4, 1, 50)       # prices with 4 decimals, sizes with 1
RECORDED = (Path(__file__).parent / "fixtures" / "l2book_dydx.json").read_bytes()


def outcome(apply, book, raw):
    """What applying `raw` did: the return value or the error, then the whole book."""
    try:
        result = ("ok", apply(book, raw))
    except Exception as exc:  # noqa: BLE001 - the two paths must fail alike
        result = ("error", type(exc).__name__, str(exc))
    return result, book_state(book)


def book_state(book):
    bids, asks = book.depth(BUY, 1_000), book.depth(SELL, 1_000)
    return bids[0].tolist(), bids[1].tolist(), asks[0].tolist(), asks[1].tolist(), \
        book.valid, book.last_time


def seeded_book(policy):
    book = L2Book(DYDX, crossed_policy=policy)
    assert apply_l2_message(book, RECORDED)
    return book


def test_the_recorded_frame_takes_the_fast_path():
    book = L2Book(DYDX)
    assert apply_hyperliquid_l2_frame(book, RECORDED) is True
    websocket = b'{"channel":"l2Book","data":' + RECORDED + b"}"
    assert apply_hyperliquid_l2_frame(book, websocket) is True   # same time is not older: applied
    older = RECORDED.replace(b'"time": 1689630203930', b'"time": 1689630203929')
    assert apply_hyperliquid_l2_frame(book, older) is False
    reference = L2Book(DYDX)
    apply_l2_json(reference, RECORDED)
    assert book_state(reference) == book_state(book)


def test_other_shapes_fall_back_to_the_json_library():
    book = seeded_book(CrossedPolicy.RAISE)
    message = json.loads(RECORDED)
    escaped = json.dumps(dict(message, coin="DYD\u0058"), ensure_ascii=True).replace("X", "\\u0058")
    for other in (escaped.encode(), json.dumps({**message, "extra": 1}).encode(),
                  json.dumps({"channel": "trades", "data": message}).encode(),
                  json.dumps(dict(message, coin="ETH")).encode(), RECORDED + b"\x00"):
        assert apply_hyperliquid_l2_frame(book, other) is None


# ------------------------------------------------------------- differential

# Integers at every edge of the scanner's reader: int64 and uint64 limits, past them, and
# raw tokens json.dumps never writes (leading zeros, "-0"), spliced in after dumping.
RAW = "\u0000raw:"
integer_edge = st.one_of(
    st.sampled_from([0, 1, 2**62 - 1, 2**62, 2**63 - 1, 2**63, 2**63 + 1, 2**64 - 1, 2**64,
                     22446744073709551616, 10**30, -1, -(2**63), -(2**63) - 1, -(2**64)]),
    st.integers(2**63 - 1000, 2**64 + 1000),
    st.sampled_from(["00", "01", "007", "01700000000001", "-0", "-00", "0" * 25 + "1"]
                    ).map(lambda token: RAW + token),
)
decimal_text = st.one_of(
    st.integers(1, 10**7).map(lambda ticks: f"{ticks / 10_000:.4f}"),
    st.integers(1, 10**7).map(lambda ticks: f"{ticks / 10_000:.6f}"),   # zeros past the grid
    st.integers(1, 10**5).map(str),
    st.sampled_from(["0", "0.0", "", ".", "1.", ".5", "-1", "1e3", "0.00001", "1,0", " 1",
                     "99999999999999999999", "0.30000000000000004"]),
)
level = st.fixed_dictionaries(
    {"px": decimal_text, "sz": decimal_text, "n": st.integers(0, 50)},
    optional={"extra": st.just(1)},
).flatmap(lambda d: st.permutations(list(d.items())).map(dict))
odd_level = st.one_of(
    level,
    st.fixed_dictionaries({"px": decimal_text}),
    st.fixed_dictionaries({"px": st.just(1.5), "sz": decimal_text, "n": st.just(1)}),
    st.fixed_dictionaries({"px": decimal_text, "sz": decimal_text,
                           "n": st.one_of(st.sampled_from([-1, 1.5, "3", None]), integer_edge)}))
sides = st.lists(st.one_of(level, level, level, odd_level), max_size=6)
time = st.one_of(st.integers(1_700_000_000_000 - 5, 1_700_000_000_000 + 5),
                 st.sampled_from([0, -1, 1.5, "1", None, True]), integer_edge)
body = st.fixed_dictionaries(
    {"coin": st.sampled_from(["DYDX", "DYDX", "DYDX", "ETH", "DYD", "DYDX\u00e9", 7]),
     "levels": st.tuples(sides, sides).map(list)},
    optional={"time": time, "extra": st.just([1, {"a": "b"}])},
).flatmap(lambda d: st.permutations(list(d.items())).map(dict))
on_grid = st.integers(1, 10**7).map(lambda ticks: f"{ticks / 10_000:.4f}")
usual_level = st.fixed_dictionaries({"px": on_grid, "sz": on_grid.map(lambda t: t[:-3]),
                                     "n": st.integers(0, 50)})
usual_body = st.fixed_dictionaries({
    "coin": st.just("DYDX"), "time": st.integers(1_700_000_000_000 - 5, 1_700_000_000_000 + 5),
    "levels": st.tuples(st.lists(usual_level, max_size=6),
                        st.lists(usual_level, max_size=6)).map(list)})
message = st.one_of(
    usual_body,
    usual_body.map(lambda b: {"channel": "l2Book", "data": b}),
    body,
    body.map(lambda b: {"channel": "l2Book", "data": b}),
    body.map(lambda b: {"data": b, "channel": "l2Book"}),
    body.map(lambda b: {"channel": "bbo", "data": b}),
)
layout = st.sampled_from([
    {"separators": (",", ":")},
    {"separators": (", ", ": ")},
    {"indent": 2},
    {"separators": (",", ":"), "ensure_ascii": False},
])
splice = st.tuples(st.integers(0, 10_000), st.sampled_from(
    [b"", b" ", b"\x00", b"}", b",", b'"', b"\\", b"0", b"\n\t"]))
damage = st.one_of(st.none(), st.none(), st.none(), splice)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message, layout, damage, st.sampled_from(list(CrossedPolicy)))
@example({"coin": "DYDX", "time": 22446744073709551616, "levels": [[], []]}, {}, None, 0)
@example({"coin": "DYDX", "time": 2**64 - 1, "levels": [[], []]}, {}, None, 0)
@example({"coin": "DYDX", "time": 2**63, "levels": [[], []]}, {}, None, 0)
@example({"coin": "DYDX", "time": RAW + "0" * 25 + "1", "levels": [[], []]}, {}, None, 0)
def test_scanner_and_json_library_agree(data, style, broken, policy):
    raw = re.sub(rb'"\\u0000raw:([-0-9]*)"', rb"\1", json.dumps(data, **style).encode())
    if broken is not None:                  # cut the text and splice in one token
        at, token = broken
        at %= len(raw) + 1
        raw = raw[:at] + token + raw[at + len(token):]
    try:
        fast = apply_hyperliquid_l2_frame(seeded_book(policy), raw) is not None
        event("fast path" if fast else "fallback")
    except Exception:  # noqa: BLE001 - an error the general path must give too
        event("fast path")
    fast = outcome(apply_l2_message, seeded_book(policy), raw)
    general = outcome(apply_l2_json, seeded_book(policy), raw)
    assert fast == general


@pytest.mark.parametrize("raw", [
    b'{"coin":"DYDX","time":1700000000001,"levels":[[],[]]}',
    b'  {"coin" : "DYDX" ,"levels":[ [ ] , [ ] ] }\n',
    b'{"channel":"l2Book","data":{"levels":[[{"n":1,"sz":"2.0","px":"1.2345"}],[]],'
    b'"coin":"DYDX","time":1700000000001}}',
])
def test_unusual_but_valid_frames_take_the_fast_path(raw):
    fast = seeded_book(CrossedPolicy.RAISE)
    assert apply_hyperliquid_l2_frame(fast, raw) is not None
    general = seeded_book(CrossedPolicy.RAISE)
    apply_l2_json(general, raw)
    assert book_state(general) == book_state(fast)
