"""Exchange market-data messages into books: raw bytes in, updated book out.

Frames in the exchange's usual shape are read straight from their bytes by
the compiled scanner, which builds no Python objects; anything else (escapes,
extra keys, errors) goes through orjson, the fastest well-kept JSON library
for Python. Both paths convert decimal strings exactly and agree on every
input (tested differentially).
"""

from __future__ import annotations

import orjson

from obelisk._core.errors import MarketDataError
from obelisk._core.l2 import L2Book, apply_hyperliquid_l2_frame

_MAX_TIME = 2**63 - 1   # the book keeps times as int64


def apply_l2_message(book: L2Book, raw: bytes | bytearray | memoryview | str) -> bool:
    """Apply a Hyperliquid ``l2Book`` message to `book`; False if it is older than the book.

    Accepts the websocket frame ``{"channel": "l2Book", "data": {...}}`` and the
    REST ``/info`` response ``{"coin", "time", "levels"}``. A message for
    another coin, or a malformed one, raises MarketDataError and changes nothing.
    """
    if isinstance(raw, (bytes, bytearray)):
        applied = apply_hyperliquid_l2_frame(book, raw)
        if applied is not None:
            return bool(applied)
    return apply_l2_json(book, raw)


def apply_l2_json(book: L2Book, raw: bytes | bytearray | memoryview | str) -> bool:
    """`apply_l2_message` through the JSON library only: the general path."""
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MarketDataError(f"l2Book message is not JSON: {exc}") from None
    if isinstance(message, dict) and "channel" in message:
        if message["channel"] != "l2Book":
            raise MarketDataError(f"expected an l2Book message, got channel {message['channel']!r}")
        message = message.get("data")
    if not isinstance(message, dict) or "levels" not in message:
        raise MarketDataError("l2Book message has no levels")
    coin = message.get("coin")
    expected = getattr(book.instrument, "name", None)
    if expected is not None and coin != expected:
        raise MarketDataError(f"l2Book message is for {coin!r}, the book is for {expected!r}")
    time = message.get("time", 0)
    if not isinstance(time, int) or isinstance(time, bool) or not 0 <= time <= _MAX_TIME:
        raise MarketDataError(f"l2Book time must be an integer 0..2**63-1, got {time!r}")
    return bool(book.apply_levels(message["levels"], time=time))
