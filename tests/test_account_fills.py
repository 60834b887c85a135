"""account_fills, the compiled extraction of an account's fills from a book's fill tape,
against a plain per-fill reference: the same rows, fees, oids and completed orders; and
self_trade_cancels, the account's orders that self-trade prevention removed, against numpy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obelisk import FILL_DTYPE, ORDER_EVENT_DTYPE, POSITION_FILL_DTYPE, FeeRates, Instrument
from obelisk._core.codes import EVENT_CANCELLED, SELF_TRADE
from obelisk._core.position import account_fills, fill_fee, self_trade_cancels
from obelisk.errors import UnknownAssetError
from obelisk.instruments import InstrumentTable

ACCOUNT = 7
TABLE = InstrumentTable([Instrument("A", 3, 2, 50), Instrument("B", 0, 4, 20),
                         Instrument("C", 9, 0, 10)])
RATES = FeeRates(taker=0.00045, maker=-0.00002)


def reference(tape, assets, table, owner, rates):
    """One fill at a time, as the account sees it."""
    rows, fees, oids, done = [], [], [], []
    for fill in tape:
        taker = int(fill["taker_owner"]) == owner
        maker = int(fill["maker_owner"]) == owner and not taker
        if not (taker or maker):
            continue
        row = table.index(next(i.name for i in table
                               if i.asset == int(assets[fill["event_index"]])))
        size = int(fill["qty"]) * table.lot[row]
        buys = (int(fill["taker_side"]) == 0) != maker
        price = int(fill["price"]) * table.tick[row]
        rows.append((row, size if buys else -size, price, maker))
        fees.append(fill_fee(size, price, maker, rates.taker, rates.maker))
        oids.append(int(fill["maker_oid"] if maker else fill["taker_oid"]))
        if maker and fill["maker_done"]:
            done.append(int(fill["maker_oid"]))
    out = np.zeros(len(rows), POSITION_FILL_DTYPE)
    for k, (row, size, price, maker) in enumerate(rows):
        out[k]["asset"], out[k]["size"], out[k]["price"], out[k]["maker"] = row, size, price, maker
    return out, np.array(fees, np.float64), np.array(oids, np.int64), np.array(done, np.int64)


fills = st.lists(st.tuples(
    st.integers(0, 5),                       # event index into the batch
    st.sampled_from([ACCOUNT, 1, 2]),        # taker owner
    st.sampled_from([ACCOUNT, 1, 2]),        # maker owner
    st.integers(0, 1),                       # taker side
    st.integers(1, 10**9), st.integers(1, 10**9),       # price ticks, qty lots
    st.integers(1, 2**40), st.integers(1, 2**40),       # taker and maker oids
    st.booleans()), max_size=40)


@settings(max_examples=300, deadline=None)
@given(fills, st.lists(st.sampled_from([3, 0, 9]), min_size=6, max_size=6))
def test_the_account_fills_of_a_tape_match_the_reference(drawn, batch_assets):
    tape = np.zeros(len(drawn), FILL_DTYPE)
    for k, (index, taker, maker, side, price, qty, taker_oid, maker_oid, done) in \
            enumerate(drawn):
        tape[k] = (k, taker_oid, maker_oid, price, qty, taker, maker, index, side, done)
    assets = np.array(batch_assets, np.uint32)
    got = account_fills(tape, assets, TABLE.row_of_asset, TABLE.lot, TABLE.tick, ACCOUNT,
                        RATES.taker, RATES.maker)
    want = reference(tape, assets, TABLE, ACCOUNT, RATES)
    assert got[0].dtype == POSITION_FILL_DTYPE
    assert got[0].tobytes() == want[0].tobytes()
    for got_column, want_column in zip(got[1:], want[1:], strict=True):
        np.testing.assert_array_equal(got_column, want_column)


def test_a_fill_of_an_asset_without_a_row_raises_naming_it():
    tape = np.zeros(2, FILL_DTYPE)
    tape["taker_owner"], tape["qty"], tape["price"], tape["event_index"] = ACCOUNT, 1, 1, [0, 1]
    for assets in (np.array([3, 5], np.uint32), np.array([3], np.uint32)):
        with pytest.raises(UnknownAssetError, match=r"fill 1 \(event 1\)"):
            account_fills(tape, assets, TABLE.row_of_asset, TABLE.lot, TABLE.tick, ACCOUNT,
                          RATES.taker, RATES.maker)
    with pytest.raises(TypeError, match="FILL_DTYPE"):
        account_fills(np.zeros(2, POSITION_FILL_DTYPE), assets, TABLE.row_of_asset, TABLE.lot,
                      TABLE.tick, ACCOUNT, RATES.taker, RATES.maker)
    with pytest.raises(ValueError, match="one value per row"):
        account_fills(tape, assets, TABLE.row_of_asset, TABLE.lot[:2], TABLE.tick, ACCOUNT,
                      RATES.taker, RATES.maker)


def test_fee_rates_price_a_position_fill_array_as_fill_fee_prices_each_fill():
    fills = np.zeros(3, POSITION_FILL_DTYPE)
    fills["size"], fills["price"], fills["maker"] = [0.5, -2.0, 1e-4], [100.0, 3.5, 6e4], \
        [True, False, True]
    assert RATES.of_fills(fills).tolist() == [
        fill_fee(f["size"], f["price"], bool(f["maker"]), RATES.taker, RATES.maker)
        for f in fills]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5),                 # order-event kind
                          st.sampled_from([0, SELF_TRADE, 3]),  # reason
                          st.sampled_from([ACCOUNT, 1, 0]),     # owner
                          st.integers(1, 2**63 - 1)), max_size=40))
def test_self_trade_cancels_match_numpy(rows):
    tape = np.zeros(len(rows), ORDER_EVENT_DTYPE)
    for k, (kind, reason, owner, oid) in enumerate(rows):
        tape[k]["kind"], tape[k]["reason"], tape[k]["owner"], tape[k]["oid"] = \
            kind, reason, owner, oid
    expected = tape["oid"][(tape["kind"] == EVENT_CANCELLED) & (tape["reason"] == SELF_TRADE)
                           & (tape["owner"] == ACCOUNT)]
    assert self_trade_cancels(tape, ACCOUNT).tolist() == expected.tolist()


def test_self_trade_cancels_refuse_another_record_type():
    with pytest.raises(TypeError, match="ORDER_EVENT_DTYPE"):
        self_trade_cancels(np.zeros(3, FILL_DTYPE), ACCOUNT)
