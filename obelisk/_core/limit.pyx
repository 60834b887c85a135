"""The physical limit of ``obelisk bench``: a minimal price-time matcher over one known stream.

A measuring stick, not an order book to use. It knows its whole stream before
the first event: the price range (so the ladder is a dense array indexed by
price - lowest price), the number of limit orders (so the order slots are one
array that never grows), the largest order id (so the id index is a dense
array) and a bound on the fills (so the fill tape never grows). Everything is
allocated and touched in ``__init__``, before any timing; ``run`` is the bare
matching loop without the GIL. It does the work ``OrderBook.process`` must do
on the same stream, and no more: one result record per event (status, filled
quantity), one fill record per trade (maker, taker, price, quantity), the same
price-time priority, so the two write the same fill tape.

It takes only what the benchmark streams hold: GTC limit orders, market orders
without a protection price and cancels, with no owner (no self-trade
prevention) and dense order ids. It keeps no level totals, order events,
sequence numbers or snapshot, and cannot grow.

``L2LimitLoop`` is the same stick for depth: a size per tick of the stream's
price range on each side, and the best level of each, which moves by a scan
only when the best is deleted.

``RecomputeLimitLoop`` is the stick for a position book's mark and recompute: every
number and every margin tier a column (_limit_recompute.h), nothing checked or kept.
"""

import numpy as np

cimport cython
from libc.stdint cimport int32_t, int64_t, uint8_t
from libc.stdlib cimport free, malloc
from libc.math cimport NAN
from libc.string cimport memset

from obelisk._core._buffers cimport const_data_of, data_of
from obelisk._core._memory cimport huge_pages
from obelisk._core.book cimport _records
from obelisk._core.l2 cimport L2Delta, L2Top
from obelisk._core.position cimport PositionBook, PositionColumns, columns_in
from obelisk._core._types cimport (
    Event,
    KIND_CANCEL,
    KIND_LIMIT,
    KIND_MARKET,
    MAX_PRICE,
    MAX_QTY,
    NO_SLOT,
    SIDE_BUY,
    SIDE_SELL,
    STATUS_CANCELLED,
    STATUS_FILLED,
    STATUS_REJECTED,
    STATUS_RESTED,
    TIF_GTC,
    oid_t,
    price_t,
    qty_t,
    slot_t,
)

from obelisk._core._records import as_records, struct_dtype
from obelisk._core.book import as_event_array
from obelisk._core.l2 import L2_DELTA_DTYPE as _L2_DELTA_DTYPE
from obelisk._core.l2 import L2_TOP_DTYPE as _L2_TOP_DTYPE

# The widest price range (in ticks) and the sparsest ids the dense arrays accept.
cdef int64_t MAX_PRICE_SPAN = 1 << 22
cdef int64_t IDS_PER_EVENT = 4


# The outcome of one event (LIMIT_RESULT_DTYPE, 16 bytes); status is an OrderStatus code.
cdef struct LimitResult:
    qty_t filled_qty
    uint8_t status
    uint8_t _pad[7]

# One trade, at the maker's price (LIMIT_FILL_DTYPE, 32 bytes).
cdef struct LimitFill:
    oid_t maker_oid
    oid_t taker_oid
    price_t price
    qty_t qty

# A resting order (32 bytes): a link in its level's FIFO, or in the free list through `next`.
cdef struct Slot:
    oid_t oid
    qty_t qty
    slot_t prev
    slot_t next
    int32_t level
    uint8_t side
    uint8_t _pad[3]

# One price level: the FIFO of its resting orders, oldest first.
cdef struct Fifo:
    slot_t head
    slot_t tail


cdef LimitResult _result
cdef LimitFill _fill

LIMIT_RESULT_DTYPE = struct_dtype(<LimitResult[:1]> &_result)
LIMIT_FILL_DTYPE = struct_dtype(<LimitFill[:1]> &_fill)


cdef void* _touched(int64_t count, size_t size, int byte) except NULL:
    """`count` records of `size` bytes set to `byte`, so no page faults are left for the run."""
    cdef void* memory = malloc(<size_t> (count if count > 0 else 1) * size)
    if memory == NULL:
        raise MemoryError(f"cannot allocate {count} records of {size} bytes")
    huge_pages(memory, <size_t> (count if count > 0 else 1) * size)     # as OrderBook's
    memset(memory, byte, <size_t> (count if count > 0 else 1) * size)
    return memory


@cython.final
@cython.auto_pickle(False)
cdef class LimitLoop:
    """A minimal price-time matcher, sized and allocated for one stream; runs it once.

    Parameters
    ----------
    events : numpy array of EVENT_DTYPE
        The stream: GTC limit orders, market orders (price 0) and cancels,
        owner 0, order ids between 0 and 4 x the number of events, prices
        within 4,194,304 ticks of each other.

    Raises
    ------
    ValueError
        For an event outside that subset.
    """

    cdef object stream             # the contiguous EVENT_DTYPE array `events` points into
    cdef const Event* events
    cdef int64_t n
    cdef price_t min_price
    cdef int32_t span              # price levels per side
    cdef Fifo* ladders[2]          # per side, indexed by price - min_price
    cdef int32_t best[2]           # best level per side; -1 (bids) or span (asks) when empty
    cdef Slot* slots
    cdef slot_t free_head
    cdef slot_t* index             # order id -> slot of the resting order, or NO_SLOT
    cdef LimitResult* results
    cdef LimitFill* fills
    cdef int64_t fill_count
    cdef qty_t filled_qty
    cdef int64_t resting_count
    cdef bint ran

    def __init__(self, events) -> None:
        if self.ladders[0] != NULL:
            raise RuntimeError("LimitLoop.__init__ must not be called twice")
        stream = as_event_array(events).copy()     # its own copy: checked once, never changed
        kind, price, qty = stream["kind"], stream["price"], stream["qty"]
        limits, markets = kind == KIND_LIMIT, kind == KIND_MARKET
        orders = limits | markets
        if not np.all(orders | (kind == KIND_CANCEL)):
            raise ValueError("a LimitLoop takes limit, market and cancel events only")
        if np.any(stream["owner"] != 0) or np.any(orders & (stream["side"] > SIDE_SELL)) \
                or np.any(limits & (stream["tif"] != TIF_GTC)) or np.any(markets & (price != 0)):
            raise ValueError("a LimitLoop takes owner 0, sides 0 and 1, GTC limit orders and "
                             "market orders without a protection price")
        if np.any(orders & ((qty <= 0) | (qty > MAX_QTY))) \
                or np.any(limits & ((price <= 0) | (price > MAX_PRICE))):
            raise ValueError("order prices and quantities must be positive and in range")
        n = len(stream)
        max_oid = int(stream["oid"].max(initial=0))
        if int(stream["oid"].min(initial=0)) < 0 or max_oid > IDS_PER_EVENT * n:
            raise ValueError(f"order ids must be dense: 0 to {IDS_PER_EVENT} x the events")
        prices = price[limits]
        low, high = int(prices.min(initial=1)), int(prices.max(initial=1))
        if high - low >= MAX_PRICE_SPAN:
            raise ValueError(f"limit prices must lie within {MAX_PRICE_SPAN} ticks")
        adds, takers = int(limits.sum()), int(orders.sum())
        self.n = n
        self.min_price = low
        self.span = <int32_t> (high - low + 1)
        # Each fill either empties a resting order (at most one per limit order) or
        # completes an incoming one (at most one per order): the tape never overflows.
        self._allocate(adds, adds + takers, max_oid + 1)
        if n:
            self.events = <const Event*> const_data_of(stream)
        self.stream = stream            # last: a loop that failed to allocate cannot run

    cdef int _allocate(self, int64_t adds, int64_t fills, int64_t ids) except -1:
        cdef int64_t i
        cdef int side
        for side in range(2):
            self.ladders[side] = <Fifo*> _touched(self.span, sizeof(Fifo), 0xFF)
        self.best[SIDE_BUY] = -1
        self.best[SIDE_SELL] = self.span
        self.slots = <Slot*> _touched(adds, sizeof(Slot), 0)
        for i in range(adds):
            self.slots[i].next = <slot_t> (i + 1) if i + 1 < adds else NO_SLOT
        self.free_head = 0 if adds else NO_SLOT
        self.index = <slot_t*> _touched(ids, sizeof(slot_t), 0xFF)
        self.results = <LimitResult*> _touched(self.n, sizeof(LimitResult), 0)
        self.fills = <LimitFill*> _touched(fills, sizeof(LimitFill), 0)
        return 0

    def __dealloc__(self):
        free(self.ladders[0])
        free(self.ladders[1])
        free(self.slots)
        free(self.index)
        free(self.results)
        free(self.fills)

    def run(self) -> tuple:
        """Match the whole stream without the GIL; (fills written, total quantity filled)."""
        if self.stream is None:
            raise RuntimeError("LimitLoop was not initialised")
        if self.ran:
            raise RuntimeError("a LimitLoop runs its stream once; make a new one to run again")
        self.ran = True
        with nogil:
            self._run()
        return self.fill_count, self.filled_qty

    @property
    def results(self):
        """One LIMIT_RESULT_DTYPE record per event (zeros before ``run``)."""
        return _records(self.results, self.n, LIMIT_RESULT_DTYPE)

    @property
    def fills(self):
        """The fill tape of the run, LIMIT_FILL_DTYPE, in order."""
        return _records(self.fills, self.fill_count, LIMIT_FILL_DTYPE)

    @property
    def resting(self) -> int:
        """Orders resting in the book now."""
        return self.resting_count

    # ------------------------------------------------------------------ the loop

    cdef void _run(self) noexcept nogil:
        cdef int64_t i
        cdef const Event* ev
        for i in range(self.n):
            ev = &self.events[i]
            self.results[i].filled_qty = 0
            if ev.kind == KIND_CANCEL:
                self.results[i].status = self._cancel(ev.oid)
            else:
                self.results[i].status = self._place(ev, &self.results[i])

    cdef uint8_t _place(self, const Event* ev, LimitResult* res) noexcept nogil:
        """Match an incoming order, then rest a limit order's remainder."""
        cdef int32_t limit
        cdef qty_t remaining
        if self.index[ev.oid] != NO_SLOT:
            return STATUS_REJECTED              # the id of a resting order
        if ev.kind == KIND_LIMIT:
            limit = <int32_t> (ev.price - self.min_price)
        else:
            limit = self.span - 1 if ev.side == SIDE_BUY else 0
        remaining = self._match(ev.side, limit, ev.oid, ev.qty)
        res.filled_qty = ev.qty - remaining
        if remaining == 0:
            return STATUS_FILLED
        if ev.kind == KIND_MARKET:
            return STATUS_CANCELLED
        self._rest(ev.oid, ev.side, limit, remaining)
        return STATUS_RESTED

    cdef qty_t _match(self, uint8_t side, int32_t limit, oid_t taker,
                      qty_t qty) noexcept nogil:
        """Trade with the opposite side's best levels, oldest order first; what is left."""
        cdef uint8_t maker_side = 1 - side
        cdef Fifo* ladder = self.ladders[maker_side]
        cdef int32_t level = self.best[maker_side]
        cdef qty_t remaining = qty
        cdef qty_t traded
        cdef slot_t slot, next_slot
        cdef Slot* maker
        cdef LimitFill* fill
        while remaining > 0 and (level <= limit if side == SIDE_BUY else level >= limit):
            slot = ladder[level].head
            while slot != NO_SLOT and remaining > 0:
                maker = &self.slots[slot]
                traded = remaining if remaining < maker.qty else maker.qty
                fill = &self.fills[self.fill_count]
                self.fill_count += 1
                fill.maker_oid = maker.oid
                fill.taker_oid = taker
                fill.price = self.min_price + level
                fill.qty = traded
                remaining -= traded
                maker.qty -= traded
                if maker.qty:
                    break
                next_slot = maker.next
                self.index[maker.oid] = NO_SLOT
                self._free(slot)
                slot = next_slot
            ladder[level].head = slot
            if slot != NO_SLOT:
                self.slots[slot].prev = NO_SLOT
                break
            ladder[level].tail = NO_SLOT
            level = self._next_level(maker_side, level)
        self.best[maker_side] = level
        self.filled_qty += qty - remaining
        return remaining

    cdef void _rest(self, oid_t oid, uint8_t side, int32_t level, qty_t qty) noexcept nogil:
        """Append an order at the tail of its level (the pool was sized to never run out)."""
        cdef Fifo* fifo = &self.ladders[side][level]
        cdef slot_t slot = self.free_head
        cdef Slot* order = &self.slots[slot]
        self.free_head = order.next
        order.oid = oid
        order.qty = qty
        order.level = level
        order.side = side
        order.next = NO_SLOT
        order.prev = fifo.tail
        if fifo.tail != NO_SLOT:
            self.slots[fifo.tail].next = slot
        else:
            fifo.head = slot
        fifo.tail = slot
        self.index[oid] = slot
        self.resting_count += 1
        if side == SIDE_BUY and level > self.best[SIDE_BUY]:
            self.best[SIDE_BUY] = level
        elif side == SIDE_SELL and level < self.best[SIDE_SELL]:
            self.best[SIDE_SELL] = level

    cdef uint8_t _cancel(self, oid_t oid) noexcept nogil:
        """Unlink a resting order by id; REJECTED when none rests under it."""
        cdef slot_t slot = self.index[oid]
        cdef Slot* order
        cdef Fifo* fifo
        if slot == NO_SLOT:
            return STATUS_REJECTED
        order = &self.slots[slot]
        fifo = &self.ladders[order.side][order.level]
        if order.prev != NO_SLOT:
            self.slots[order.prev].next = order.next
        else:
            fifo.head = order.next
        if order.next != NO_SLOT:
            self.slots[order.next].prev = order.prev
        else:
            fifo.tail = order.prev
        if fifo.head == NO_SLOT and order.level == self.best[order.side]:
            self.best[order.side] = self._next_level(order.side, order.level)
        self.index[oid] = NO_SLOT
        self._free(slot)
        return STATUS_CANCELLED

    cdef int32_t _next_level(self, uint8_t side, int32_t level) noexcept nogil:
        """The next non-empty level behind `level`; -1 (bids) or span (asks) when none."""
        cdef Fifo* ladder = self.ladders[side]
        if side == SIDE_BUY:
            level -= 1
            while level >= 0 and ladder[level].head == NO_SLOT:
                level -= 1
        else:
            level += 1
            while level < self.span and ladder[level].head == NO_SLOT:
                level += 1
        return level

    cdef inline void _free(self, slot_t slot) noexcept nogil:
        self.slots[slot].next = self.free_head
        self.free_head = slot
        self.resting_count -= 1


@cython.final
@cython.auto_pickle(False)
cdef class L2LimitLoop:
    """A minimal depth book, sized and allocated for one stream; runs it once.

    It writes the best bid and ask after each delta, as
    ``L2Book.apply_batch(deltas, top)`` does, and does no more: no sequence
    numbers or times, no check for a crossed book, no growth.

    Parameters
    ----------
    bid_prices, bid_sizes, ask_prices, ask_sizes : the snapshot the deltas follow
        (int64 ticks and lots, sizes positive).
    deltas : numpy array of L2_DELTA_DTYPE
        Sides 0 and 1, positive prices, sizes >= 0 (0 deletes); every price of
        the snapshot and the deltas within 4,194,304 ticks of each other.

    Raises
    ------
    ValueError
        For a snapshot or a delta outside that.
    """

    cdef object stream             # the contiguous L2_DELTA_DTYPE array `deltas` points into
    cdef const L2Delta* deltas
    cdef int64_t n
    cdef int64_t min_price
    cdef int32_t span              # ticks per side
    cdef int64_t* sizes[2]         # per side, indexed by price - min_price; 0 for no level
    cdef int32_t best[2]           # best level per side; -1 (bids) or span (asks) when empty
    cdef L2Top* tops
    cdef bint ran

    def __init__(self, bid_prices, bid_sizes, ask_prices, ask_sizes, deltas) -> None:
        if self.sizes[0] != NULL:
            raise RuntimeError("L2LimitLoop.__init__ must not be called twice")
        stream = as_records(deltas, _L2_DELTA_DTYPE, "deltas", "obelisk.L2_DELTA_DTYPE").copy()
        snapshot = (bid_prices, bid_sizes, ask_prices, ask_sizes)
        book = [np.asarray(a, dtype=np.int64) for a in snapshot]
        if book[0].shape != book[1].shape or book[2].shape != book[3].shape \
                or any(a.ndim != 1 for a in book):
            raise ValueError("each side of the snapshot needs one size per price")
        if np.any(stream["side"] > SIDE_SELL):
            raise ValueError("delta sides must be 0 (bid) or 1 (ask)")
        resting, changes = np.concatenate([book[1], book[3]]), stream["size"]
        if np.any((resting <= 0) | (resting > MAX_QTY)) \
                or np.any((changes < 0) | (changes > MAX_QTY)):
            raise ValueError("snapshot sizes must be positive and delta sizes >= 0, in range")
        prices = np.concatenate([book[0], book[2], stream["price"]])
        low, high = int(prices.min(initial=1)), int(prices.max(initial=1))
        if low <= 0 or high > MAX_PRICE:
            raise ValueError(f"prices must be 1..{MAX_PRICE} ticks")
        if high - low >= MAX_PRICE_SPAN:
            raise ValueError(f"prices must lie within {MAX_PRICE_SPAN} ticks")
        self.n = len(stream)
        self.min_price = low
        self.span = <int32_t> (high - low + 1)
        self._allocate()
        cdef int side
        for side, (level_prices, level_sizes) in enumerate(((book[0], book[1]),
                                                            (book[2], book[3]))):
            for price, size in zip(level_prices.tolist(), level_sizes.tolist()):
                self.sizes[side][price - low] = size
        self.best[SIDE_BUY] = int(book[0].max(initial=low - 1)) - low
        self.best[SIDE_SELL] = int(book[2].min(initial=low + self.span)) - low
        if self.n:
            self.deltas = <const L2Delta*> const_data_of(stream)
        self.stream = stream            # last: a loop that failed to allocate cannot run

    cdef int _allocate(self) except -1:
        cdef int side
        for side in range(2):
            self.sizes[side] = <int64_t*> _touched(self.span, sizeof(int64_t), 0)
        self.tops = <L2Top*> _touched(self.n, sizeof(L2Top), 0)
        return 0

    def __dealloc__(self):
        free(self.sizes[0])
        free(self.sizes[1])
        free(self.tops)

    def run(self) -> int:
        """Apply every delta without the GIL, the top after each; how many were applied."""
        if self.stream is None:
            raise RuntimeError("L2LimitLoop was not initialised")
        if self.ran:
            raise RuntimeError("an L2LimitLoop runs its stream once; make a new one to run again")
        self.ran = True
        with nogil:
            self._run()
        return self.n

    @property
    def tops(self):
        """The best bid and ask after each delta, L2_TOP_DTYPE (zeros before ``run``)."""
        return _records(self.tops, self.n, _L2_TOP_DTYPE)

    cdef void _run(self) noexcept nogil:
        cdef int64_t* bids = self.sizes[SIDE_BUY]
        cdef int64_t* asks = self.sizes[SIDE_SELL]
        cdef int32_t bid = self.best[SIDE_BUY]
        cdef int32_t ask = self.best[SIDE_SELL]
        cdef int32_t span = self.span
        cdef int64_t low = self.min_price
        cdef int64_t i
        cdef int32_t level
        cdef const L2Delta* d
        cdef L2Top* top
        for i in range(self.n):
            d = &self.deltas[i]
            level = <int32_t> (d.price - low)
            if d.side == SIDE_BUY:
                bids[level] = d.size
                if d.size:
                    if level > bid:
                        bid = level
                elif level == bid:
                    while bid >= 0 and bids[bid] == 0:
                        bid -= 1
            else:
                asks[level] = d.size
                if d.size:
                    if level < ask:
                        ask = level
                elif level == ask:
                    while ask < span and asks[ask] == 0:
                        ask += 1
            top = &self.tops[i]
            top.bid_price = bid + low if bid >= 0 else 0
            top.bid_size = bids[bid] if bid >= 0 else 0
            top.ask_price = ask + low if ask < span else 0
            top.ask_size = asks[ask] if ask < span else 0
        self.best[SIDE_BUY] = bid
        self.best[SIDE_SELL] = ask


cdef extern from "_limit_recompute.h":
    ctypedef struct LimitPositions "obelisk_limit_positions":
        const double* size
        const double* entry_px
        const double* leverage
        const double* margin
        const double* isolated
        PositionColumns derived
        const double* lower
        const double* mmr
        const double* deduction
        const double* low_bound
        const double* high_bound
        int64_t padded
        int32_t depth

    void limit_recompute "obelisk_limit_recompute"(
        const LimitPositions* p, const double* marks, double balance, double* cross_upnl,
        double* cross_maintenance) noexcept nogil


_DERIVED = ("mark_px", "unrealized_pnl", "position_value", "initial_margin",
            "maintenance_margin", "liquidation_px")


@cython.final
cdef class RecomputeLimitLoop:
    """A position book's mark and recompute at its bare minimum, for one book's rows.

    Parameters
    ----------
    book : PositionBook
        Its rows' sizes, entries, leverages, margins and modes, its margin tables
        (one column per tier per row) and its cross balance are taken as they are.

    ``run(marks)`` takes `padded` marks (the rows rounded up to even; a last odd
    row's partner is flat: ``padded_marks`` adds it) and derives every row from
    them without the GIL.
    """

    cdef LimitPositions columns
    cdef object arrays              # owns every column
    cdef readonly int64_t count
    cdef readonly int64_t padded
    cdef readonly double balance
    cdef readonly double cross_unrealized_pnl
    cdef readonly double cross_maintenance_margin

    def __init__(self, PositionBook book not None) -> None:
        if self.arrays is not None:
            raise RuntimeError("RecomputeLimitLoop.__init__ must not be called twice")
        cdef Py_ssize_t n = book.asset_count
        cdef int32_t depth = book.margin_tables.depth
        self.count = n
        self.padded = n + n % 2
        rows = book.positions
        inputs = np.zeros((5, self.padded))
        for column, name in enumerate(("size", "entry_px", "leverage", "margin", "isolated")):
            inputs[column, :n] = rows[name]
        inputs[2, n:] = 1.0             # a flat partner's leverage
        first_tier = np.zeros(self.padded, dtype=np.int64)    # a flat partner: table 0
        cdef Py_ssize_t i
        for i in range(n):
            first_tier[i] = book.rows[i].tiers
        tables = book.margin_tables_array.reshape(5, -1)
        tiers = np.ascontiguousarray(tables[:, first_tier[None, :] + np.arange(depth)[:, None]])
        self.arrays = (inputs, np.full((6, self.padded), NAN), tiers)
        self._point(depth)
        self.balance = book.balance

    cdef int _point(self, int32_t depth) except -1:
        inputs, outputs, tiers = self.arrays
        cdef double* column = <double*> data_of(inputs)
        cdef int64_t n = self.padded
        self.columns.size = column
        self.columns.entry_px = column + n
        self.columns.leverage = column + 2 * n
        self.columns.margin = column + 3 * n
        self.columns.isolated = column + 4 * n
        self.columns.derived = columns_in(<double*> data_of(outputs), n)
        column = <double*> data_of(tiers)
        self.columns.lower = column
        self.columns.mmr = column + depth * n
        self.columns.deduction = column + 2 * depth * n
        self.columns.low_bound = column + 3 * depth * n
        self.columns.high_bound = column + 4 * depth * n
        self.columns.padded = n
        self.columns.depth = depth
        return 0

    def run(self, marks) -> None:
        """Derive every row at `marks` (`padded` finite, positive float64 values)."""
        if self.arrays is None:
            raise RuntimeError("RecomputeLimitLoop was not initialised")
        # a pointer, not a typed memoryview: its ~1 us would be most of a small run
        if marks.dtype != np.float64 or len(marks) != self.padded:
            raise ValueError(f"run takes {self.padded} float64 marks, got {len(marks)} "
                             f"{marks.dtype}")
        cdef const double* given = <const double*> const_data_of(marks)
        with nogil:
            limit_recompute(&self.columns, given, self.balance,
                            &self.cross_unrealized_pnl, &self.cross_maintenance_margin)

    def padded_marks(self, marks):
        """`marks`, one per row, as ``run`` takes them: float64, the flat partner's added."""
        return np.concatenate([np.asarray(marks, dtype=np.float64),
                               np.ones(self.padded - self.count)])

    @property
    def derived(self) -> dict:
        """Each derived column by its POSITION_DTYPE name, a copy of the rows' own."""
        outputs = self.arrays[1]
        return {name: outputs[column, :self.count].copy() for column, name in enumerate(_DERIVED)}
