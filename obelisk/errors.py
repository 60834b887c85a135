"""Every exception obelisk raises on purpose, in one namespace.

Errors from bad input subclass :class:`ValueError` (or :class:`KeyError` for
unknown ids) as well, so generic handlers keep working.
"""

from obelisk._core.errors import (
    CrossedBookError,
    DuplicateOrderIdError,
    InvalidFillError,
    InvalidOrderError,
    MarginError,
    MarketDataError,
    ObeliskError,
    PoolExhaustedError,
    SnapshotError,
    StaleHandleError,
    UnknownAssetError,
    UnknownOrderError,
)


class InstrumentError(ObeliskError, ValueError):
    """A price or size cannot be represented on an instrument's grid."""


class InvalidPriceError(InstrumentError):
    """A price breaks the instrument's tick rules (decimals, significant figures, sign)."""


class InvalidSizeError(InstrumentError):
    """A size breaks the instrument's lot rules (decimals, sign)."""


__all__ = [
    "CrossedBookError",
    "DuplicateOrderIdError",
    "InstrumentError",
    "InvalidFillError",
    "InvalidOrderError",
    "InvalidPriceError",
    "InvalidSizeError",
    "MarginError",
    "MarketDataError",
    "ObeliskError",
    "PoolExhaustedError",
    "SnapshotError",
    "StaleHandleError",
    "UnknownAssetError",
    "UnknownOrderError",
]
