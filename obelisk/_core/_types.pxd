# Shared C types of the compiled core: fixed-width typedefs, the codes that
# cross the batch interface, and the structs the numpy dtypes in
# obelisk/_core/book.pyx are read from (obelisk/_core/_records.py).

from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t

ctypedef int64_t price_t     # price in instrument ticks
ctypedef int64_t qty_t       # size in instrument lots
ctypedef int64_t oid_t       # order id, unique among resting orders of a book
ctypedef uint32_t owner_t    # account for self-trade prevention and cancels/modifies; 0 = none
ctypedef int32_t slot_t      # index into an order pool; -1 = none

cdef enum:
    NO_SLOT = -1

# Largest price or quantity the core accepts: 2**53 keeps every value exact as
# a float64, so conversions at the edge can never round.
cdef extern from *:
    """
    #define OBELISK_MAX_PRICE ((int64_t)9007199254740992LL)
    #define OBELISK_MAX_QTY ((int64_t)9007199254740992LL)
    """
    const int64_t MAX_PRICE "OBELISK_MAX_PRICE"
    const int64_t MAX_QTY "OBELISK_MAX_QTY"

# Codes that cross the batch interface. Python sees them as IntEnums built
# from these values in obelisk/_core/book.pyx, so each is defined once.
cdef enum:
    SIDE_BUY = 0
    SIDE_SELL = 1

cdef enum:
    KIND_LIMIT = 1
    KIND_MARKET = 2
    KIND_CANCEL = 3
    KIND_MODIFY = 4

cdef enum:
    TIF_GTC = 0
    TIF_IOC = 1
    TIF_FOK = 2
    TIF_ALO = 3

cdef enum:
    STP_CANCEL_RESTING = 0
    STP_CANCEL_INCOMING = 1
    STP_CANCEL_BOTH = 2
    STP_ALLOW = 3

cdef enum:
    STATUS_REJECTED = 0
    STATUS_RESTED = 1
    STATUS_FILLED = 2
    STATUS_CANCELLED = 3
    STATUS_MODIFIED = 4

cdef enum:
    OEV_RESTED = 1
    OEV_CANCELLED = 2
    OEV_REJECTED = 3
    OEV_MODIFIED = 4

cdef enum:
    REASON_NONE = 0
    REASON_INVALID_KIND = 1
    REASON_INVALID_SIDE = 2
    REASON_INVALID_TIF = 3
    REASON_INVALID_PRICE = 4
    REASON_INVALID_QTY = 5
    REASON_DUPLICATE_OID = 6
    REASON_UNKNOWN_OID = 7
    REASON_ALO_WOULD_CROSS = 8
    REASON_FOK_UNFILLABLE = 9
    REASON_SELF_TRADE = 10
    REASON_IOC_REMAINDER = 11
    REASON_USER_CANCEL = 12
    REASON_POOL_FULL = 13
    REASON_LEVEL_OVERFLOW = 14
    REASON_UNKNOWN_ASSET = 15
    REASON_OUT_OF_MEMORY = 16

# An order resting in the pool (40 bytes; its price is its level's). Free
# slots reuse `next` as the free-list link. `generation` and `live` serve
# OrderPool's handles: `generation` grows each time OrderPool releases the
# slot; the book, which hands out no handles, keeps neither.
cdef struct Order:
    oid_t oid
    qty_t qty
    slot_t prev
    slot_t next
    int32_t level
    owner_t owner
    uint32_t generation
    uint8_t side
    uint8_t tif
    uint8_t live
    uint8_t _pad

# One input event of the batch interface (EVENT_DTYPE, 40 bytes).
cdef struct Event:
    oid_t oid
    price_t price
    qty_t qty
    owner_t owner
    uint32_t asset
    uint8_t kind
    uint8_t side
    uint8_t tif
    uint8_t _pad[5]

# The outcome of one input event (RESULT_DTYPE, 24 bytes).
cdef struct Result:
    qty_t filled_qty
    qty_t resting_qty
    uint32_t fill_count
    uint8_t status
    uint8_t reason
    uint8_t _pad[2]

# One trade between an incoming (taker) and a resting (maker) order
# (FILL_DTYPE, 56 bytes). Trades print at the maker's price.
cdef struct Fill:
    int64_t seq
    oid_t taker_oid
    oid_t maker_oid
    price_t price
    qty_t qty
    owner_t taker_owner
    owner_t maker_owner
    int32_t event_index
    uint8_t taker_side
    uint8_t maker_done
    uint8_t _pad[2]

# A change in an order's life other than a fill (ORDER_EVENT_DTYPE, 48 bytes).
cdef struct OrderEvent:
    int64_t seq
    oid_t oid
    price_t price
    qty_t qty
    owner_t owner
    int32_t event_index
    uint8_t kind
    uint8_t reason
    uint8_t side
    uint8_t _pad[5]

# A resting order as exported and snapshotted (ORDER_DTYPE, 40 bytes).
cdef struct RestingOrder:
    oid_t oid
    price_t price
    qty_t qty
    owner_t owner
    uint8_t side
    uint8_t tif
    uint8_t _pad[2]
    int64_t queue_ahead
