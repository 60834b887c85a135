"""RiskChecks.check_events, which judges an EVENT_DTYPE batch in C, against check_batch of
the orders built from the same events in numpy (the engine's way before it): the same
reasons for every event, on two managers in the same state."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obelisk import EVENT_DTYPE, Instrument, Portfolio
from obelisk.risk import (
    RISK_ORDER_DTYPE,
    AssetLimits,
    OrderFlags,
    RiskLimits,
    RiskManager,
    RiskReason,
)

TABLE = [Instrument("BTC", 0, 5, 40), Instrument("ETH", 1, 4, 25), Instrument("SOL", 2, 2, 20)]
LIMITS = RiskLimits(default=AssetLimits(max_order_notional=60_000, price_band=0.05,
                                        max_position_size=8.0),
                    per_coin={"SOL": AssetLimits(max_order_notional=60_000, price_band=0.05)},
                    max_leverage=4, max_open_orders=2, max_data_age_s=3_600)
LIMIT, MARKET, CANCEL = 1, 2, 3
GTC, IOC, FOK, ALO = 0, 1, 2, 3


def manager(marked):
    """A funded manager; `marked` says which rows have a mark (the others stay NaN)."""
    portfolio = Portfolio(TABLE, balance=50_000.0, fees=None)
    risk = RiskManager(portfolio, LIMITS)
    for instrument, mark, has in zip(TABLE, MIDS, marked, strict=True):
        if has:
            risk.update_market(instrument.name, mark)
    portfolio.apply_fill("ETH", 2.0, 3_000.0)
    return risk, portfolio


def reference(risk, portfolio, events, rows, flags):
    """The reasons as the engine computed them with numpy before check_events."""
    reasons = np.zeros(len(events), np.uint8)
    reduce_only = (flags & int(OrderFlags.REDUCE_ONLY)).astype(bool)
    checked = np.flatnonzero((events["kind"] != CANCEL) & ~reduce_only)
    if len(checked):
        chosen, chosen_rows = events[checked], rows[checked]
        table = portfolio.instruments
        valid = (chosen_rows >= 0) & (chosen_rows < len(TABLE))
        safe = np.where(valid, chosen_rows, 0)
        tick = table.tick[safe]
        orders = np.zeros(len(chosen), RISK_ORDER_DTYPE)
        orders["asset"] = chosen_rows
        orders["side"] = 1 - 2 * chosen["side"].astype(np.int8)
        orders["size"] = np.where(valid, np.maximum(chosen["qty"], 1) * table.lot[safe], 1.0)
        marks = portfolio.marks[safe]
        orders["price"] = np.where(valid, np.where(chosen["price"] > 0, chosen["price"] * tick,
                                                   np.where(np.isnan(marks), tick, marks)), 1.0)
        resting = (chosen["kind"] == LIMIT) & ((chosen["tif"] == GTC) | (chosen["tif"] == ALO))
        orders["flags"] = np.where(resting, 0, int(OrderFlags.IMMEDIATE))
        reasons[checked] = risk.check_batch(orders)
    return reasons


MIDS = (60_000.0, 3_000.0, 150.0)
event = st.tuples(st.sampled_from([LIMIT] * 3 + [MARKET, CANCEL]), st.integers(-1, 3),
                  st.sampled_from([0, 1] * 5 + [2]),                    # side
                  st.sampled_from([GTC, IOC, FOK, ALO]),
                  st.sampled_from([0.0, 0.9, 0.97, 1.0, 1.02, 1.2]),   # price / mid (0: none)
                  st.integers(0, 200_000),                              # lots
                  st.sampled_from([False] * 5 + [True]))                # reduce-only


def ticks(row, fraction):
    """A price `fraction` of the row's mid, in its ticks (any price on a row not traded)."""
    if not 0 <= row < len(TABLE):
        return 12_345
    return round(MIDS[row] * fraction * 10 ** (6 - TABLE[row].sz_decimals))


@settings(max_examples=300, deadline=None)
@given(st.lists(event, max_size=60), st.tuples(st.booleans(), st.booleans(), st.booleans()))
def test_check_events_judges_every_event_as_check_batch_judges_its_order(drawn, marked):
    events = np.zeros(len(drawn), EVENT_DTYPE)
    rows = np.zeros(len(drawn), np.int32)
    flags = np.zeros(len(drawn), np.uint8)
    for k, (kind, row, side, tif, fraction, qty, reduce_only) in enumerate(drawn):
        events[k]["kind"], events[k]["side"], events[k]["tif"] = kind, side, tif
        events[k]["price"], events[k]["qty"], events[k]["oid"] = ticks(row, fraction), qty, k + 1
        rows[k], flags[k] = row, int(OrderFlags.REDUCE_ONLY) * reduce_only
    (ours, _), (theirs, their_portfolio) = manager(marked), manager(marked)
    got = ours.check_events(events, rows, flags)
    want = reference(theirs, their_portfolio, events, rows, flags)
    assert got.tolist() == want.tolist()


def test_check_events_refuses_columns_of_the_wrong_length_and_changes_nothing():
    risk, _ = manager((True, True, True))
    events = np.zeros(2, EVENT_DTYPE)
    with pytest.raises(ValueError, match="one value per event"):
        risk.check_events(events, np.zeros(1, np.int32), np.zeros(2, np.uint8))
    with pytest.raises(ValueError, match="one value per asset"):
        risk.checks.check_events(events, np.zeros(2, np.int32), np.zeros(2, np.uint8),
                                 np.ones(2), np.ones(3))
    with pytest.raises(TypeError, match="EVENT_DTYPE"):
        risk.check_events(np.zeros(2, RISK_ORDER_DTYPE), np.zeros(2, np.int32),
                          np.zeros(2, np.uint8))
    assert risk.open_orders == 0


def test_an_event_whose_side_is_neither_buy_nor_sell_is_an_invalid_order():
    # A side byte of 128 was judged as a buy (1 - 2 x 128 wrapped to +1 in an int8).
    risk, _ = manager((True, True, True))
    events = np.zeros(3, EVENT_DTYPE)
    events["kind"], events["qty"], events["price"] = LIMIT, 1, 300_000   # BTC 0.00001 at 3,000
    events["side"] = [0, 128, 2]
    reasons = risk.check_events(events, np.zeros(3, np.int32), np.zeros(3, np.uint8))
    assert reasons[0] != RiskReason.INVALID_ORDER
    assert reasons[1:].tolist() == [RiskReason.INVALID_ORDER] * 2
