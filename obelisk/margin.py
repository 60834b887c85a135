"""Margin tiers of Hyperliquid's assets, read from the exchange's ``meta``.

A tier table is ``((lower_bound_usd, max_leverage), ...)`` from 0 upwards; a
position's maintenance margin uses the tier of its notional.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

from obelisk.errors import MarginError

MarginTiers: TypeAlias = tuple[tuple[float, int], ...]

_SINGLE_TIER_IDS = 50  # marginTableId below this means one tier whose max leverage is the id


def single_tier(max_leverage: int) -> MarginTiers:
    """The table of an asset whose maintenance rate never changes with size."""
    return ((0.0, max_leverage),)


def margin_tiers_from_meta(meta: Mapping[str, Any]) -> dict[str, MarginTiers]:
    """Each perp's tier table, by coin, from a ``meta`` response.

    ``universe[i].marginTableId`` selects a table of ``marginTables``; older
    responses have no tables, and every asset then has one tier at its
    ``maxLeverage``.
    """
    try:
        tables = {
            int(table_id): tuple((float(tier["lowerBound"]), int(tier["maxLeverage"]))
                                 for tier in body["marginTiers"])
            for table_id, body in meta.get("marginTables", [])
        }
        chosen = {asset["name"]: (asset.get("marginTableId"), int(asset["maxLeverage"]))
                  for asset in meta["universe"]}
    except (KeyError, TypeError, ValueError) as exc:
        raise MarginError(f"meta has no usable universe or marginTables: {exc!r}") from None
    tiers: dict[str, MarginTiers] = {}
    for coin, (table_id, max_leverage) in chosen.items():
        if table_id is None:
            tiers[coin] = single_tier(max_leverage)
        elif table_id in tables:
            tiers[coin] = tables[table_id]
        elif isinstance(table_id, int) and table_id < _SINGLE_TIER_IDS:
            tiers[coin] = single_tier(table_id)
        else:
            raise MarginError(f"{coin} uses margin table {table_id!r}, which meta does not list")
    return tiers
