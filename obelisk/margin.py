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


def margin_tables_from_meta(meta: Mapping[str, Any]) -> dict[int, MarginTiers]:
    """The tier tables of a ``meta`` response (``marginTables``), by table id; none in
    responses from before the tables existed."""
    try:
        return {
            int(table_id): tuple((float(tier["lowerBound"]), int(tier["maxLeverage"]))
                                 for tier in body["marginTiers"])
            for table_id, body in meta.get("marginTables", [])
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise MarginError(f"meta has no usable marginTables: {exc!r}") from None


def tiers_of(coin: str, table_id: int | None, max_leverage: int,
             tables: Mapping[int, MarginTiers]) -> MarginTiers:
    """The table an asset's ``marginTableId`` selects: a listed table, or below 50 one tier
    at that leverage; without an id, one tier at the asset's ``maxLeverage``."""
    if table_id is None:
        return single_tier(max_leverage)
    if table_id in tables:
        return tables[table_id]
    if isinstance(table_id, int) and table_id < _SINGLE_TIER_IDS:
        return single_tier(table_id)
    raise MarginError(f"{coin} uses margin table {table_id!r}, which meta does not list")


def margin_tiers_from_meta(meta: Mapping[str, Any]) -> dict[str, MarginTiers]:
    """Each perp's tier table, by coin, from a ``meta`` response."""
    tables = margin_tables_from_meta(meta)
    try:
        chosen = [(asset["name"], asset.get("marginTableId"), int(asset["maxLeverage"]))
                  for asset in meta["universe"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise MarginError(f"meta has no usable universe: {exc!r}") from None
    return {coin: tiers_of(coin, table_id, leverage, tables)
            for coin, table_id, leverage in chosen}
