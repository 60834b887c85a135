"""Errors the Hyperliquid HTTP transport and the info and exchange clients raise.

Messages carry the request type, the HTTP status and a short excerpt of what the
server answered; never a request body, a signature or a key.
"""

from __future__ import annotations

from obelisk.errors import ObeliskError

EXCERPT_CHARS = 200


def excerpt(content: bytes | str, limit: int = EXCERPT_CHARS) -> str:
    """The first `limit` characters of a response body, for error messages."""
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    return text if len(text) <= limit else text[:limit] + "..."


class HyperliquidError(ObeliskError):
    """Something went wrong talking to the Hyperliquid API."""


class HyperliquidHTTPError(HyperliquidError):
    """The server answered with a non-200 status.

    `body` is an excerpt of the response (at most 200 characters); `retry_after` is the
    server's Retry-After in seconds when it sent one, read into [0, 3600]: ``inf`` and
    ``nan`` read as 3600 (longer than any retry waits), a negative value as 0.
    """

    def __init__(self, status: int, body: str, *, request: str = "",
                 retry_after: float | None = None) -> None:
        self.status = status
        self.body = body
        self.request = request
        self.retry_after = retry_after
        where = f" for {request}" if request else ""
        super().__init__(f"HTTP {status}{where}: {body}")

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_http_error, (self.status, self.body, self.request, self.retry_after))


def _rebuild_http_error(status: int, body: str, request: str,
                        retry_after: float | None) -> HyperliquidHTTPError:
    return HyperliquidHTTPError(status, body, request=request, retry_after=retry_after)


class HyperliquidTimeoutError(HyperliquidError, TimeoutError):
    """No answer within the configured timeout (after any retries)."""


class HyperliquidConnectionError(HyperliquidError, ConnectionError):
    """The connection failed before any response arrived (after any retries)."""


class MalformedResponseError(HyperliquidError, ValueError):
    """A 200 response that is not JSON, or JSON that does not have the documented shape."""


class RateBudgetExceeded(HyperliquidError):
    """Sending now would exceed the per-IP request-weight budget.

    `weight` is what the request costs and `wait` how many seconds until the budget
    has room for it (``inf`` when the request alone is bigger than the budget).
    """

    def __init__(self, weight: int, wait: float, capacity: int) -> None:
        self.weight = weight
        self.wait = wait
        self.capacity = capacity
        super().__init__(f"request weight {weight} does not fit the budget of {capacity} "
                         f"per window; room in {wait:.3f}s")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.weight, self.wait, self.capacity))


class InvalidTransferError(ObeliskError, ValueError):
    """A transfer's amount or address cannot be sent as given; nothing was signed or sent."""


class InvalidAmountError(InvalidTransferError):
    """A transfer amount that is not finite, not above zero, or not representable (too many
    decimals for the asset, or too large for the exchange's integer units)."""


class InvalidAddressError(InvalidTransferError):
    """A destination or sub-account that is not ``0x`` and 40 hex digits."""


__all__ = [
    "HyperliquidConnectionError",
    "HyperliquidError",
    "HyperliquidHTTPError",
    "HyperliquidTimeoutError",
    "InvalidAddressError",
    "InvalidAmountError",
    "InvalidTransferError",
    "MalformedResponseError",
    "RateBudgetExceeded",
    "excerpt",
]


class ExchangeOutcomeUnknownError(HyperliquidConnectionError):
    """An exchange request failed after it may have reached the server.

    It may have been executed, so it is not resent (the answer to a resend
    would be a nonce error for an order that exists): look the order up with
    ``orderStatus`` by its cloid before sending anything again.

    Raised for every failure after the body may have been sent: a timeout while
    sending or waiting for the answer, a connection dropped or an answer cut short,
    an HTTP 5xx, a 200 that is not JSON. ``__cause__`` is what happened (an httpx
    error, :class:`HyperliquidHTTPError` with the status, or
    :class:`MalformedResponseError`). A 4xx is the server refusing the request and
    stays a :class:`HyperliquidHTTPError`.
    """
