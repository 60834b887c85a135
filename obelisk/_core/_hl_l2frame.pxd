# Hyperliquid l2Book frames read straight from bytes, without building Python objects.
#
# A JSON library spends most of a frame's time creating ~120 strings and 40
# dicts that are thrown away at once. This scanner accepts the exact shape the
# exchange sends (any whitespace, any key order) and writes ticks and lots into
# caller buffers; anything else (escapes, unknown or repeated keys, floats,
# off-grid decimals, a message for another channel) makes it answer FALLBACK so
# the caller decodes with the JSON library, which gives the precise error.
# Header-only: the cimporting module inlines it.

from libc.stdint cimport INT64_MAX, int32_t, int64_t
from libc.string cimport memcmp

from obelisk._core._types cimport MAX_PRICE, MAX_QTY


cdef enum:
    FRAME_OK = 0
    FRAME_FALLBACK = -1


cdef struct L2Frame:
    const char* coin        # the coin's bytes inside the input
    Py_ssize_t coin_length
    int64_t time            # 0 when the frame has none
    int32_t bids
    int32_t asks


cdef struct _Scan:
    const char* p
    const char* end
    int price_decimals
    int size_decimals
    int64_t* keys
    int64_t* sizes
    int32_t capacity


cdef inline int parse_decimal(const char* text, Py_ssize_t length, int decimals,
                              int64_t limit, int64_t* out) noexcept nogil:
    """Exact value of an unsigned decimal string in units of 10**-decimals.

    0 on success; -1 malformed, -2 more decimals than allowed, -3 above `limit`
    (0 <= limit <= INT64_MAX; checked before each multiplication, so nothing wraps).
    """
    cdef int64_t value = 0
    cdef int fraction = -1
    cdef int digits = 0
    cdef Py_ssize_t i
    cdef char c
    for i in range(length):
        c = text[i]
        if c >= 48 and c <= 57:
            digits += 1
            if fraction >= 0:
                if fraction == decimals:
                    if c != 48:
                        return -2
                    continue      # trailing zeros past the grid are harmless
                fraction += 1
            if value > (limit - (c - 48)) // 10:      # checked before it can overflow
                return -3
            value = value * 10 + (c - 48)
        elif c == 46 and fraction < 0:
            fraction = 0
        else:
            return -1
    if digits == 0:
        return -1
    if fraction < 0:
        fraction = 0
    while fraction < decimals:
        if value > limit // 10:
            return -3
        value *= 10
        fraction += 1
    out[0] = value
    return 0


cdef inline void _skip_space(_Scan* s) noexcept nogil:
    while s.p < s.end and (s.p[0] == 32 or s.p[0] == 10 or s.p[0] == 13 or s.p[0] == 9):
        s.p += 1


cdef inline bint _next(_Scan* s, char expected) noexcept nogil:
    """Skip whitespace and consume `expected`; False when the next byte is something else."""
    _skip_space(s)
    if s.p < s.end and s.p[0] == expected:
        s.p += 1
        return True
    return False


cdef inline bint _string(_Scan* s, const char** start, Py_ssize_t* length) noexcept nogil:
    """A string without escapes or control bytes; its span stays in the input."""
    if not _next(s, 34):
        return False
    start[0] = s.p
    while s.p < s.end and s.p[0] != 34:
        if s.p[0] == 92 or <unsigned char> s.p[0] < 32:
            return False
        s.p += 1
    if s.p >= s.end:
        return False
    length[0] = s.p - start[0]
    s.p += 1
    return True


cdef inline bint _key(_Scan* s, const char** start, Py_ssize_t* length) noexcept nogil:
    return _string(s, start, length) and _next(s, 58)


cdef inline bint _is(const char* text, Py_ssize_t length, const char* literal,
                     Py_ssize_t literal_length) noexcept nogil:
    return length == literal_length and memcmp(text, literal, <size_t> length) == 0


cdef inline bint _uint(_Scan* s, int64_t* out) noexcept nogil:
    """A JSON integer 0..2**63-1: digits only, no leading zero, then a delimiter.

    Overflow is checked before the value grows, so a longer number never wraps
    into range: it makes the caller fall back (the JSON path gives the error).
    """
    cdef int64_t value = 0
    cdef int digit
    cdef const char* first
    _skip_space(s)
    first = s.p
    while s.p < s.end and s.p[0] >= 48 and s.p[0] <= 57:
        digit = s.p[0] - 48
        if value > (INT64_MAX - digit) // 10:
            return False
        value = value * 10 + digit
        s.p += 1
    if s.p == first or (first[0] == 48 and s.p - first > 1):
        return False
    if s.p < s.end and (s.p[0] == 46 or s.p[0] == 101 or s.p[0] == 69):
        return False
    out[0] = value
    return True


cdef inline bint _level(_Scan* s, int32_t slot, bint ask) noexcept nogil:
    """One {"px", "sz", "n"} object into keys/sizes[slot]; asks are stored negated."""
    cdef const char* key
    cdef const char* text
    cdef Py_ssize_t key_length, length
    cdef int64_t orders
    cdef int seen = 0
    if not _next(s, 123):
        return False
    while True:
        if not _key(s, &key, &key_length):
            return False
        if _is(key, key_length, "px", 2) and not seen & 1:
            if not _string(s, &text, &length) or parse_decimal(
                    text, length, s.price_decimals, MAX_PRICE, &s.keys[slot]) != 0:
                return False
            if ask:
                s.keys[slot] = -s.keys[slot]
            seen |= 1
        elif _is(key, key_length, "sz", 2) and not seen & 2:
            if not _string(s, &text, &length) or parse_decimal(
                    text, length, s.size_decimals, MAX_QTY, &s.sizes[slot]) != 0:
                return False
            seen |= 2
        elif _is(key, key_length, "n", 1) and not seen & 4:
            if not _uint(s, &orders):
                return False
            seen |= 4
        else:
            return False
        if _next(s, 125):
            return seen == 7
        if not _next(s, 44):
            return False


cdef inline int32_t _side(_Scan* s, int32_t first, bint ask) noexcept nogil:
    """A list of levels written from slot `first`; how many, or -1."""
    cdef int32_t slot = first
    if not _next(s, 91):
        return -1
    if _next(s, 93):
        return 0
    while True:
        if slot >= s.capacity or not _level(s, slot, ask):
            return -1
        slot += 1
        if _next(s, 93):
            return slot - first
        if not _next(s, 44):
            return -1


cdef inline bint _data(_Scan* s, L2Frame* frame) noexcept nogil:
    """The body after the object's opening brace: "coin", "time" and "levels", once each."""
    cdef const char* key
    cdef Py_ssize_t key_length
    cdef int seen = 0
    while True:
        if not _key(s, &key, &key_length):
            return False
        if _is(key, key_length, "coin", 4) and not seen & 1:
            if not _string(s, &frame.coin, &frame.coin_length):
                return False
            seen |= 1
        elif _is(key, key_length, "time", 4) and not seen & 2:
            if not _uint(s, &frame.time):
                return False
            seen |= 2
        elif _is(key, key_length, "levels", 6) and not seen & 4:
            if not _next(s, 91):
                return False
            frame.bids = _side(s, 0, False)
            if frame.bids < 0 or not _next(s, 44):
                return False
            frame.asks = _side(s, frame.bids, True)
            if frame.asks < 0 or not _next(s, 93):
                return False
            seen |= 4
        else:
            return False
        if _next(s, 125):
            return seen & 5 == 5          # coin and levels are required; time is not
        if not _next(s, 44):
            return False


cdef inline int scan_l2book(const char* text, Py_ssize_t length, int price_decimals,
                            int size_decimals, int64_t* keys, int64_t* sizes,
                            int32_t capacity, L2Frame* frame) noexcept nogil:
    """Read a websocket frame {"channel": "l2Book", "data": {...}} or a REST body {...}.

    Bids land in keys/sizes[0:bids], asks (keys negated) after them; at most
    `capacity` levels in all. FRAME_OK, or FRAME_FALLBACK for anything unusual.
    """
    cdef _Scan s
    cdef const char* key
    cdef Py_ssize_t key_length
    cdef const char* channel = NULL
    cdef Py_ssize_t channel_length = 0
    s.p = text
    s.end = text + length
    s.price_decimals = price_decimals
    s.size_decimals = size_decimals
    s.keys = keys
    s.sizes = sizes
    s.capacity = capacity
    frame.time = 0
    if not _next(&s, 123):
        return FRAME_FALLBACK
    if not _key(&s, &key, &key_length):
        return FRAME_FALLBACK
    if _is(key, key_length, "channel", 7):
        if not _string(&s, &channel, &channel_length) or not _is(
                channel, channel_length, "l2Book", 6):
            return FRAME_FALLBACK
        if not _next(&s, 44) or not _key(&s, &key, &key_length) \
                or not _is(key, key_length, "data", 4) or not _next(&s, 123) \
                or not _data(&s, frame) or not _next(&s, 125):
            return FRAME_FALLBACK
    else:
        s.p = text
        _next(&s, 123)
        if not _data(&s, frame):
            return FRAME_FALLBACK
    _skip_space(&s)
    return FRAME_OK if s.p == s.end else FRAME_FALLBACK
