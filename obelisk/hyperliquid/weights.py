"""Request weights (hyperliquid.md section 8), shared by the client's budget and
`obelisk serve`'s, so both sides count a request the same way.

2 for the cheap info types, 60 for userRole, 20 otherwise; some time-ranged types
cost one more per 20 items returned (candles: per 60); an exchange action costs
``1 + floor(batch_length / 40)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["exchange_weight", "info_extra_weight", "info_weight"]

_LIGHT_INFO = frozenset({"l2Book", "allMids", "clearinghouseState", "orderStatus",
                         "spotClearinghouseState", "exchangeStatus"})
_HEAVY_INFO = {"userRole": 60}
_DEFAULT_INFO_WEIGHT = 20
_LIGHT_INFO_WEIGHT = 2
_ITEMS_PER_EXTRA_WEIGHT = {
    "recentTrades": 20, "historicalOrders": 20, "userFills": 20, "userFillsByTime": 20,
    "fundingHistory": 20, "userFunding": 20, "nonUserFundingUpdates": 20, "twapHistory": 20,
    "userTwapSliceFills": 20, "userTwapSliceFillsByTime": 20, "delegatorHistory": 20,
    "delegatorRewards": 20, "validatorStats": 20, "candleSnapshot": 60,
}
_ORDERS_PER_EXCHANGE_WEIGHT = 40
_BATCH_KEYS = ("orders", "cancels", "modifies")


def info_weight(body: Mapping[str, Any]) -> int:
    """The weight an info request costs before its answer is known."""
    kind = body.get("type")
    if kind in _LIGHT_INFO:
        return _LIGHT_INFO_WEIGHT
    return _HEAVY_INFO.get(str(kind), _DEFAULT_INFO_WEIGHT)


def info_extra_weight(kind: str, answer: object) -> int:
    """The extra weight charged for the items an info answer returned."""
    per = _ITEMS_PER_EXTRA_WEIGHT.get(kind)
    if per is None or not isinstance(answer, list):
        return 0
    return len(answer) // per


def exchange_weight(action: Mapping[str, Any]) -> int:
    """``1 + floor(batch_length / 40)`` for an exchange action."""
    for key in _BATCH_KEYS:
        batch = action.get(key)
        if isinstance(batch, list):
            return 1 + len(batch) // _ORDERS_PER_EXCHANGE_WEIGHT
    return 1
