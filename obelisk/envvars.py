"""Settings a deployment may set in the environment, read by one rule.

A value given in code wins over the environment variable, which wins over the
default; an unset or blank variable counts as not set. Whatever its source, the
value is validated, and every error names the variable (and the argument, when
the value came from one).
"""

from __future__ import annotations

import math
import os

__all__ = ["check_int", "check_number", "env_int", "env_number"]


def env_int(variable: str, given: int | None = None, *, default: int, minimum: int,
            argument: str = "", error: type[ValueError] = ValueError) -> int:
    """`given`, else the integer in `variable`, else `default`; an int >= `minimum`."""
    if given is not None:
        return check_int(_source(variable, argument), given, minimum, error)
    raw = _raw(variable)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise error(f"{variable} must be an integer, got {raw!r}") from None
    return check_int(variable, value, minimum, error)


def env_number(variable: str, given: float | None = None, *, default: float, minimum: float,
               inclusive: bool = True, argument: str = "",
               error: type[ValueError] = ValueError) -> float:
    """`given`, else the number in `variable`, else `default`; finite and at least
    `minimum` (above it when not `inclusive`)."""
    if given is not None:
        return check_number(_source(variable, argument), given, minimum, inclusive, error)
    raw = _raw(variable)
    if raw is None:
        return float(default)
    try:
        value = float(raw)
    except ValueError:
        raise error(f"{variable} must be a number, got {raw!r}") from None
    return check_number(variable, value, minimum, inclusive, error)


def check_int(name: str, value: object, minimum: int,
              error: type[ValueError] = ValueError) -> int:
    """`value` if it is an int (not a bool) >= `minimum`, else `error` naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise error(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_number(name: str, value: object, minimum: float, inclusive: bool = True,
                 error: type[ValueError] = ValueError) -> float:
    """`value` as a float if it is a finite number >= `minimum` (> when not `inclusive`),
    else `error` naming `name`."""
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or value < minimum
            or (value == minimum and not inclusive)):
        relation = ">=" if inclusive else ">"
        raise error(f"{name} must be a finite number {relation} {minimum:g}, got {value!r}")
    return float(value)


def _raw(variable: str) -> str | None:
    raw = os.environ.get(variable, "").strip()
    return raw or None


def _source(variable: str, argument: str) -> str:
    return f"{argument} ({variable})" if argument else variable
