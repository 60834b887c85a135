"""A sweep's grid: parameter name -> the values to try, expanded into every combination.

Checked here, before any cluster starts, so a typo costs a message rather than a
cluster's start-up time.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

__all__ = ["GridError", "expand"]


class GridError(ValueError):
    """A grid that cannot be expanded: not a mapping, an empty axis, a bad name."""


def expand(grid: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, in grid order (the last name varies fastest,
    as ``itertools.product``); each a dict of name -> value, ready for ``fn(**params)``."""
    if not isinstance(grid, Mapping):
        raise GridError(f"a grid is a mapping of parameter name -> list of values, "
                        f"not {type(grid).__name__}")
    if not grid:
        raise GridError("the grid is empty; give at least one parameter and its values")
    axes: list[list[Any]] = []
    for name, values in grid.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise GridError(f"parameter name {name!r} is not a Python identifier; the "
                            "function is called as fn(**params)")
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise GridError(f"parameter {name!r}: give a list of values, not "
                            f"{type(values).__name__} {values!r}")
        if isinstance(values, (set, frozenset, Mapping)):
            raise GridError(f"parameter {name!r}: give a list of values; a "
                            f"{type(values).__name__} has no order to keep")
        axis = list(values)
        if not axis:
            raise GridError(f"parameter {name!r} has no values; give at least one")
        axes.append(axis)
    names = list(grid)
    return [dict(zip(names, combination, strict=True))
            for combination in itertools.product(*axes)]
