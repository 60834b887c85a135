"""Every exception obelisk raises on purpose, in one namespace.

Errors from bad input subclass :class:`ValueError` (or :class:`KeyError` for
unknown ids) as well, so generic handlers keep working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from obelisk._core.errors import (
    ConcurrentUseError,
    CrossedBookError,
    DuplicateOrderIdError,
    InvalidFeeRateError,
    InvalidFillError,
    InvalidFundingError,
    InvalidOrderError,
    InvalidRiskLimitError,
    MarginError,
    MarketDataError,
    ObeliskError,
    PoolExhaustedError,
    SnapshotError,
    StaleHandleError,
    UnknownAssetError,
    UnknownOrderError,
)

if TYPE_CHECKING:
    import numpy as np


class InstrumentError(ObeliskError, ValueError):
    """A price or size cannot be represented on an instrument's grid."""


class InvalidPriceError(InstrumentError):
    """A price breaks the instrument's tick rules (decimals, significant figures, sign)."""


class InvalidSizeError(InstrumentError):
    """A size breaks the instrument's lot rules (decimals, sign)."""


class DuplicateInstrumentError(InstrumentError):
    """Two instruments of one table share a coin name or an asset id."""


class OpenOrderUnderflowError(ObeliskError, ValueError):
    """An open-order count would go below zero: more orders closed than were open."""


class InsufficientLiquidityError(ObeliskError, ValueError):
    """A book is too thin to fill the size or notional asked of it."""


class CallbackError(ObeliskError):
    """A callback raised during a batch that a ``submit`` call sent on its way (the batch
    filled up). The call's orders were all queued, and some may have traded: `oids` are
    their ids, which the call could not return. The callback's exception is the cause."""

    def __init__(self, message: str, oids: np.ndarray) -> None:
        super().__init__(message)
        self.oids = oids


__all__ = [
    "CallbackError",
    "ConcurrentUseError",
    "CrossedBookError",
    "DuplicateInstrumentError",
    "DuplicateOrderIdError",
    "InstrumentError",
    "InsufficientLiquidityError",
    "InvalidFeeRateError",
    "InvalidFillError",
    "InvalidFundingError",
    "InvalidOrderError",
    "InvalidPriceError",
    "InvalidRiskLimitError",
    "InvalidSizeError",
    "MarginError",
    "MarketDataError",
    "ObeliskError",
    "OpenOrderUnderflowError",
    "PoolExhaustedError",
    "SnapshotError",
    "StaleHandleError",
    "UnknownAssetError",
    "UnknownOrderError",
    "describe",
]


def describe(exc: BaseException) -> str:
    """``Type: message``, how engine outcomes and recovery reports name a failure."""
    return f"{type(exc).__name__}: {exc}"
