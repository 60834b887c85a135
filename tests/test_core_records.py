"""Unit tests of obelisk._core._records: dtypes read from the C structs, and record coercion."""

import numpy as np
import pytest

from obelisk._core._records import as_records
from obelisk._core.book import (
    EVENT_DTYPE,
    FILL_DTYPE,
    ORDER_DTYPE,
    ORDER_EVENT_DTYPE,
    RESULT_DTYPE,
)
from obelisk._core.l2 import L2_DELTA_DTYPE, L2_TOP_DTYPE
from obelisk._core.position import POSITION_DTYPE, POSITION_FILL_DTYPE
from obelisk._core.risk import RISK_ORDER_DTYPE

# The bytes each struct takes (a change to a struct must show up here on purpose), and the
# field order that tuples assigned to a record follow.
LAYOUTS = {
    "EVENT_DTYPE": (EVENT_DTYPE, 40, "oid price qty owner asset kind side tif"),
    "RESULT_DTYPE": (RESULT_DTYPE, 24, "filled_qty resting_qty fill_count status reason"),
    "FILL_DTYPE": (FILL_DTYPE, 56, "seq taker_oid maker_oid price qty taker_owner maker_owner "
                                   "event_index taker_side maker_done"),
    "ORDER_EVENT_DTYPE": (ORDER_EVENT_DTYPE, 48,
                          "seq oid price qty owner event_index kind reason side"),
    "ORDER_DTYPE": (ORDER_DTYPE, 40, "oid price qty owner side tif queue_ahead"),
    "L2_DELTA_DTYPE": (L2_DELTA_DTYPE, 40, "price size seq time side"),
    "L2_TOP_DTYPE": (L2_TOP_DTYPE, 32, "bid_price bid_size ask_price ask_size"),
    "POSITION_DTYPE": (POSITION_DTYPE, 112,
                       "size entry_px leverage margin realized_pnl fees funding mark_px "
                       "unrealized_pnl position_value initial_margin maintenance_margin "
                       "liquidation_px isolated"),
    "POSITION_FILL_DTYPE": (POSITION_FILL_DTYPE, 24, "size price asset maker"),
    "RISK_ORDER_DTYPE": (RISK_ORDER_DTYPE, 32, "asset side flags size price trigger_price"),
}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_record_dtypes_are_their_structs_without_padding(name):
    dtype, itemsize, fields = LAYOUTS[name]
    assert dtype.itemsize == itemsize
    assert dtype.names == tuple(fields.split())
    spans = sorted((offset, offset + sub.itemsize) for sub, offset in dtype.fields.values())
    assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:], strict=False))
    assert spans[-1][1] <= itemsize
    for sub, offset in dtype.fields.values():       # every field naturally aligned, as C lays it
        assert offset % sub.alignment == 0


def test_records_in_the_right_layout_come_back_as_they_are():
    events = np.zeros(3, dtype=EVENT_DTYPE)
    assert as_records(events, EVENT_DTYPE, "events", "EVENT_DTYPE") is events
    strided = np.zeros(6, dtype=EVENT_DTYPE)[::2]
    assert as_records(strided, EVENT_DTYPE, "events", "EVENT_DTYPE").flags.c_contiguous


def test_the_same_fields_in_another_layout_are_copied_by_name():
    packed = np.dtype([(name, RISK_ORDER_DTYPE.fields[name][0])
                       for name in reversed(RISK_ORDER_DTYPE.names)])
    orders = np.zeros(2, dtype=packed)
    orders["asset"], orders["side"], orders["size"] = [3, 4], [1, -1], [0.5, 2.0]
    out = as_records(orders, RISK_ORDER_DTYPE, "orders", "RISK_ORDER_DTYPE")
    assert out.dtype == RISK_ORDER_DTYPE
    assert out[["asset", "side", "size"]].tolist() == [(3, 1, 0.5), (4, -1, 2.0)]
    assert not out.view(np.uint8).reshape(2, -1)[:, 6:8].any()   # padding is zeroed


@pytest.mark.parametrize(("records", "message"), [
    ([(1, 2.0, 3.0, 1)], "one-dimensional numpy array of POSITION_FILL_DTYPE"),
    (np.zeros((2, 2), dtype=POSITION_FILL_DTYPE), "one-dimensional"),
    (np.zeros(2, dtype=np.float64), "fields of POSITION_FILL_DTYPE"),
    (np.zeros(2, dtype=[("size", "f8"), ("price", "f8")]), "fields"),
    (np.zeros(2, dtype=[("size", "f4"), ("price", "f8"), ("asset", "i4"), ("maker", "u1")]),
     "fields"),
])
def test_anything_else_is_a_type_error(records, message):
    with pytest.raises(TypeError, match=message):
        as_records(records, POSITION_FILL_DTYPE, "fills", "POSITION_FILL_DTYPE")
