"""Exceptions raised by the compiled core.

They live beside the core (which imports nothing from the Python layer) and are
re-exported by :mod:`obelisk.errors`, the one place users import them from.
"""


class ObeliskError(Exception):
    """Base class of every error obelisk raises on purpose."""


class ConcurrentUseError(ObeliskError, RuntimeError):
    """A compiled object is in use by another caller (one user at a time)."""


class InvalidOrderError(ObeliskError, ValueError):
    """An order's side, kind, time in force, price or quantity is not allowed."""


class DuplicateOrderIdError(InvalidOrderError):
    """An order id is already resting on the book."""


class UnknownOrderError(ObeliskError, KeyError):
    """No resting order has this id."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "unknown order"


class PoolExhaustedError(ObeliskError, MemoryError):
    """A fixed-capacity order pool has no free slot left."""


class StaleHandleError(ObeliskError, LookupError):
    """A pool handle refers to an order that has since been released."""


class SnapshotError(ObeliskError, ValueError):
    """A book snapshot is malformed, truncated or of an unknown version."""


class MarketDataError(ObeliskError, ValueError):
    """A market-data update is malformed: bad side, price, size or decimal string."""


class CrossedBookError(MarketDataError):
    """An update would leave the best bid at or above the best ask."""


class UnknownAssetError(ObeliskError, KeyError):
    """No asset has this index or name."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown asset"


class InvalidFillError(ObeliskError, ValueError):
    """A fill's asset, size or price is not allowed."""


class MarginError(ObeliskError, ValueError):
    """Leverage, margin, a balance change or a margin input is not allowed."""


class InvalidFeeRateError(ObeliskError, ValueError):
    """A fee rate, or a fee-schedule input that selects one (volume, staking), is not allowed."""


class InvalidFundingError(ObeliskError, ValueError):
    """A funding rate, oracle price, premium input or impact notional is not allowed."""


class InvalidRiskLimitError(ObeliskError, ValueError):
    """A risk limit, or the equity the loss limits are measured from, is not allowed."""
