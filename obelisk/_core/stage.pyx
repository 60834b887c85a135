"""The trading engine's per-batch bookkeeping, compiled: one pass each where numpy takes
a call per column or per condition, and a batch of a few orders paid ~0.5-1 us a call
(see obelisk.execution.engine)."""

import numpy as np

from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint32_t

from obelisk._core._buffers cimport column_of, const_data_of, data_of
from obelisk._core._types cimport (
    KIND_CANCEL,
    KIND_LIMIT,
    KIND_MARKET,
    SIDE_BUY,
    SIDE_SELL,
    STATUS_CANCELLED,
    STATUS_REJECTED,
    STATUS_RESTED,
    Event,
    Result,
)

from obelisk._core._records import as_records
from obelisk._core.book import EVENT_DTYPE as _EVENT_DTYPE
from obelisk._core.book import RESULT_DTYPE as _RESULT_DTYPE
from obelisk._core.book import as_event_array as _as_event_array

# The engine's status of an order that no venue answered (int16 trace column).
STATUS_NOT_SENT = -1    # refused, or never reached the venue
STATUS_UNKNOWN = -2     # sent, but the venue's answer was lost: it may have executed

_EVENT_COLUMNS = tuple((name, _EVENT_DTYPE.fields[name][0])          # (name, dtype)
                       for name in ("oid", "asset", "side", "kind", "tif", "price", "qty"))


# The checks of TradingEngine.submit_batch in the order it reports them: a cancel
# needs an id to cancel (when no oids are given), then each column's rule.
CANCEL_WITHOUT_ID, BAD_KIND, BAD_ROW, BAD_SIDE, BAD_TIF, BAD_QTY, BAD_PRICE, BAD_OID = range(8)


def int64_columns(kinds, rows, sides, tifs, qtys, prices, oids, reduce_only):
    """A batch's order columns as contiguous int64 arrays, for first_bad_order and
    queue_orders (`kinds` None: limit orders; `oids` and `reduce_only` None: zeros).
    ValueError when a column's length is not `rows`'."""
    n = len(rows)
    for name, column in (("kinds", kinds), ("sides", sides), ("tifs", tifs), ("qtys", qtys),
                         ("prices", prices), ("oids", oids), ("reduce_only", reduce_only)):
        if column is not None and len(column) != n:
            raise ValueError(f"{name} holds {len(column)} values for {n} rows")
    return [np.full(n, KIND_LIMIT, np.int64) if kinds is None
            else np.ascontiguousarray(kinds, dtype=np.int64),
            *(np.ascontiguousarray(column, dtype=np.int64)
              for column in (rows, sides, tifs, qtys, prices)),
            *(np.zeros(n, np.int64) if column is None
              else np.ascontiguousarray(column, dtype=np.int64)
              for column in (oids, reduce_only))]


# The int64_columns of a batch, as pointers.
cdef struct _Columns:
    const int64_t* kind
    const int64_t* row
    const int64_t* side
    const int64_t* tif
    const int64_t* qty
    const int64_t* price
    const int64_t* oid
    const int64_t* flag
    Py_ssize_t count


cdef _Columns _columns(list columns) except *:
    """The eight columns of :func:`int64_columns`, checked: contiguous int64 arrays of one
    length (TypeError or ValueError otherwise), as the C loops read them."""
    cdef _Columns c
    cdef const int64_t* data[8]
    cdef Py_ssize_t i, length
    if len(columns) != 8:
        raise ValueError(f"int64_columns gives 8 columns, not {len(columns)}")
    for i in range(8):
        data[i] = <const int64_t*> column_of(columns[i], b"i", 8, False, &length,
                                             f"column {i}")
        if i == 0:
            c.count = length
        elif length != c.count:
            raise ValueError(f"column {i} holds {length} values, column 0 {c.count}")
    c.kind, c.row, c.side, c.tif = data[0], data[1], data[2], data[3]
    c.qty, c.price, c.oid, c.flag = data[4], data[5], data[6], data[7]
    return c


def first_bad_order(list columns, bint no_oids, int64_t assets, int64_t tif_max):
    """The first check a batch of orders fails and the order that fails it, as
    (check, index), or None: every column's rule in one pass each, where numpy takes
    two or three calls per rule. `columns` are :func:`int64_columns`' (`no_oids`:
    the caller gave none); `assets` rows exist and time-in-force codes are 0..`tif_max`."""
    cdef _Columns c = _columns(columns)
    cdef Py_ssize_t n = c.count, i
    cdef int check
    for check in range(8):
        for i in range(n):
            if _fails(check, c.kind[i], c.row[i], c.side[i], c.tif[i], c.qty[i], c.price[i],
                      c.oid[i], no_oids, assets, tif_max):
                return check, i
    return None


def queue_orders(list columns, Py_ssize_t start, Py_ssize_t count, events, rows_out,
                 flags_out, born_out, Py_ssize_t at, ids, assets, int64_t next_oid,
                 uint32_t owner, int64_t born):
    """Write orders start..start+count of checked :func:`int64_columns` into the engine's
    queue at `at` (EVENT_DTYPE events of `assets[row]`, int32 rows, uint8 flags, int64
    birth times), each new order taking the next id; every order's id into int64 `ids`.
    Returns the next unused id."""
    cdef _Columns c = _columns(columns)
    cdef Py_ssize_t queue, rows_room, flags_room, born_room, ids_room, assets_count, k, i
    cdef Event* ev
    cdef int32_t* row_out = <int32_t*> column_of(rows_out, b"i", 4, True, &rows_room,
                                                 "rows_out")
    cdef uint8_t* flag_out = <uint8_t*> column_of(flags_out, b"u", 1, True, &flags_room,
                                                  "flags_out")
    cdef int64_t* born_at = <int64_t*> column_of(born_out, b"i", 8, True, &born_room,
                                                 "born_out")
    cdef int64_t* id_out = <int64_t*> column_of(ids, b"i", 8, True, &ids_room, "ids")
    cdef const uint32_t* asset_of = <const uint32_t*> column_of(assets, b"u", 4, False,
                                                                &assets_count, "assets")
    if not isinstance(events, np.ndarray) \
            or not (events.dtype is _EVENT_DTYPE or events.dtype == _EVENT_DTYPE):
        raise TypeError("events must be an array of obelisk.EVENT_DTYPE")
    ev = <Event*> data_of(events)
    queue = len(events)
    # Each bound as a difference of lengths, which cannot overflow as a sum can.
    if start < 0 or count < 0 or at < 0 or start > c.count or count > c.count - start \
            or count > ids_room - start or at > queue or count > queue - at \
            or count > rows_room - at or count > flags_room - at or count > born_room - at:
        raise IndexError("queue_orders: a range outside its arrays")
    for i in range(start, start + count):      # before anything is written
        if c.row[i] < 0 or c.row[i] >= assets_count:
            raise IndexError(f"row {c.row[i]} of order {i} is outside the "
                             f"{assets_count} assets")
    ev += at
    row_out += at
    flag_out += at
    born_at += at
    for k in range(count):
        i = start + k
        if c.kind[i] == KIND_CANCEL:
            id_out[i] = c.oid[i]
        else:
            id_out[i] = next_oid
            next_oid += 1
        ev[k].oid, ev[k].price, ev[k].qty, ev[k].owner = id_out[i], c.price[i], c.qty[i], owner
        ev[k].asset, ev[k].kind = asset_of[c.row[i]], <uint8_t> c.kind[i]
        ev[k].side, ev[k].tif = <uint8_t> c.side[i], <uint8_t> c.tif[i]
        # a cancel carries no order flags: reduce-only would have it judged as an order
        row_out[k], born_at[k] = <int32_t> c.row[i], born
        flag_out[k] = 0 if c.kind[i] == KIND_CANCEL else <uint8_t> c.flag[i]
    return next_oid


cdef inline bint _fails(int check, int64_t kind, int64_t row, int64_t side, int64_t tif,
                        int64_t qty, int64_t price, int64_t oid, bint no_oids,
                        int64_t assets, int64_t tif_max) noexcept:
    cdef bint order = kind != KIND_CANCEL
    if check == CANCEL_WITHOUT_ID:
        return no_oids and not order
    if check == BAD_KIND:
        return order and kind != KIND_LIMIT and kind != KIND_MARKET
    if check == BAD_ROW:
        return row < 0 or row >= assets
    if check == BAD_SIDE:
        return order and side != SIDE_BUY and side != SIDE_SELL
    if check == BAD_TIF:
        return order and (tif < 0 or tif > tif_max)
    if check == BAD_QTY:
        return order and qty <= 0
    if check == BAD_PRICE:       # a market order's 0 is no protection price
        return (order and price < 0) or (kind == KIND_LIMIT and price == 0)
    return not no_oids and not order and oid < 1


def tally_outcomes(results, events, sent):
    """How the sent events ended: (traded, rested, cancelled, rejected), in one pass.

    RESULT_DTYPE `results` answer EVENT_DTYPE `events[sent]` in order. An order
    that traded counts as traded only; a cancel counts as cancelled when it
    removed its order. The rest (IOC or market orders that met nothing, ...)
    is ``len(sent)`` less the four.
    """
    results, events, rows = _answered(results, events, sent)
    cdef Py_ssize_t n = len(rows), k
    if n == 0:
        return 0, 0, 0, 0
    cdef const int64_t* row = <const int64_t*> const_data_of(rows)
    cdef const Result* res = <const Result*> const_data_of(results)
    cdef const Event* ev = <const Event*> const_data_of(events)
    cdef int64_t traded = 0, rested = 0, cancelled = 0, rejected = 0
    cdef bint filled
    for k in range(n):
        filled = res[k].filled_qty > 0
        traded += filled
        rested += not filled and res[k].status == STATUS_RESTED
        cancelled += not filled and res[k].status == STATUS_CANCELLED \
            and ev[row[k]].kind == KIND_CANCEL
        rejected += not filled and res[k].status == STATUS_REJECTED
    return traded, rested, cancelled, rejected


def allowed_orders(reasons, flags, int flag):
    """The orders the risk checks allowed (reason 0) as int64 indices, and whether any of
    them carries `flag` in its uint8 flags: one pass where numpy took five calls."""
    cdef Py_ssize_t n, flag_count, i, k = 0
    cdef const uint8_t* reason = <const uint8_t*> column_of(np.ascontiguousarray(reasons),
                                                            b"u", 1, False, &n, "reasons")
    cdef const uint8_t* flag_of = <const uint8_t*> column_of(np.ascontiguousarray(flags),
                                                             b"u", 1, False, &flag_count,
                                                             "flags")
    if flag_count != n:
        raise ValueError(f"{flag_count} flags for {n} risk reasons")
    for i in range(n):
        k += reason[i] == 0
    allowed = np.empty(k, dtype=np.int64)
    cdef int64_t* index = <int64_t*> data_of(allowed) if k else NULL
    cdef bint flagged = False
    k = 0
    for i in range(n):
        if reason[i] == 0:
            index[k] = i
            k += 1
            flagged |= (flag_of[i] & flag) != 0
    return allowed, flagged


def any_flagged(flags, int flag):
    """Whether any of the uint8 `flags` carries `flag` (numpy took three calls, ~1.8 us)."""
    cdef Py_ssize_t n, i
    cdef const uint8_t* flag_of = <const uint8_t*> column_of(np.ascontiguousarray(flags),
                                                             b"u", 1, False, &n, "flags")
    for i in range(n):
        if flag_of[i] & flag:
            return True
    return False


def open_order_changes(results, events, sent):
    """What the sent events did to the account's open orders: (the ids of those that now
    rest, the ids a cancel closed), two lists, in one pass where numpy took ten calls.

    RESULT_DTYPE `results` answer EVENT_DTYPE `events[sent]` in order. An order
    rests when its status is RESTED (partly filled or not); a cancel closes its
    order when its status is CANCELLED.
    """
    results, events, rows = _answered(results, events, sent)
    cdef Py_ssize_t n = len(rows), k
    rested, closed = [], []
    if n == 0:
        return rested, closed
    cdef const int64_t* row = <const int64_t*> const_data_of(rows)
    cdef const Result* res = <const Result*> const_data_of(results)
    cdef const Event* ev = <const Event*> const_data_of(events)
    for k in range(n):
        if res[k].status == STATUS_RESTED:
            rested.append(ev[row[k]].oid)
        elif res[k].status == STATUS_CANCELLED and ev[row[k]].kind == KIND_CANCEL:
            closed.append(ev[row[k]].oid)
    return rested, closed


def trace_columns(events, reasons, sent, unknown, results=None):
    """A batch's trace as contiguous columns: the events' fields, their risk reasons, and
    each one's status and filled quantity (RESULT_DTYPE `results` answer `events[sent]`;
    STATUS_UNKNOWN at `unknown`, STATUS_NOT_SENT elsewhere; without `results`, none was
    answered)."""
    if results is not None:
        results, events, rows = _answered(results, events, sent)
    else:
        events, rows = _as_event_array(events), np.empty(0, dtype=np.int64)
    cdef Py_ssize_t n = len(events), k
    risk = np.ascontiguousarray(reasons)
    cdef Py_ssize_t risk_count
    column_of(risk, b"u", 1, False, &risk_count, "reasons")
    if risk_count != n:
        raise ValueError(f"{risk_count} risk reasons for {n} events")
    lost = _row_numbers(unknown, "unknown")
    columns = {name: np.empty(n, dtype=dtype) for name, dtype in _EVENT_COLUMNS}
    status = np.empty(n, dtype=np.int16)
    filled = np.zeros(n, dtype=np.int64)
    _check_rows(lost, n, "unknown")
    columns["risk_reason"], columns["status"], columns["filled_qty"] = risk, status, filled
    if n == 0:
        return columns
    cdef const Event* ev = <const Event*> const_data_of(events)
    cdef int64_t* oid = <int64_t*> data_of(columns["oid"])
    cdef uint32_t* asset = <uint32_t*> data_of(columns["asset"])
    cdef uint8_t* side = <uint8_t*> data_of(columns["side"])
    cdef uint8_t* kind = <uint8_t*> data_of(columns["kind"])
    cdef uint8_t* tif = <uint8_t*> data_of(columns["tif"])
    cdef int64_t* price = <int64_t*> data_of(columns["price"])
    cdef int64_t* qty = <int64_t*> data_of(columns["qty"])
    cdef int16_t* out_status = <int16_t*> data_of(status)
    cdef int64_t* out_filled = <int64_t*> data_of(filled)
    for k in range(n):
        oid[k], asset[k], side[k] = ev[k].oid, ev[k].asset, ev[k].side
        kind[k], tif[k], price[k], qty[k] = ev[k].kind, ev[k].tif, ev[k].price, ev[k].qty
        out_status[k] = STATUS_NOT_SENT
    cdef const int64_t* row = <const int64_t*> const_data_of(lost) if len(lost) else NULL
    for k in range(len(lost)):
        out_status[row[k]] = STATUS_UNKNOWN
    cdef const Result* res
    if len(rows):
        row = <const int64_t*> const_data_of(rows)
        res = <const Result*> const_data_of(results)
        for k in range(len(rows)):
            out_status[row[k]] = res[k].status
            out_filled[row[k]] = res[k].filled_qty
    return columns


cdef tuple _answered(results, events, sent):
    """`results`, `events` and `sent` checked: records, as many results as rows, in range."""
    results = as_records(results, _RESULT_DTYPE, "results", "obelisk.RESULT_DTYPE")
    events = _as_event_array(events)
    rows = _row_numbers(sent, "sent")
    if len(results) != len(rows):
        raise ValueError(f"{len(results)} results for {len(rows)} sent events")
    _check_rows(rows, len(events), "sent")
    return results, events, rows


cdef object _row_numbers(numbers, str what):
    """`numbers` as a contiguous int64 array, refused (TypeError) unless they are integers:
    a cast would turn 1.9 into 1 and True into 1 without a word."""
    rows = np.asarray(numbers)
    if rows.dtype.kind not in "iu" and rows.size:
        raise TypeError(f"{what} must hold integer event numbers, not {rows.dtype}")
    return np.ascontiguousarray(rows, dtype=np.int64)


cdef int _check_rows(rows, Py_ssize_t count, str what) except -1:
    cdef const int64_t* row = <const int64_t*> const_data_of(rows) if len(rows) else NULL
    cdef Py_ssize_t k
    for k in range(len(rows)):
        if row[k] < 0 or row[k] >= count:
            raise IndexError(f"{what} event {row[k]} is outside the batch of {count}")
    return 0
