"""Hyperliquid's wire format: number strings, client order ids, order wires and order actions.

Outputs equal the official SDK's (``hyperliquid.utils.signing``) for every valid input, because
the exchange hashes exactly these strings and dicts. Where the SDK lets a bad value through
(``-0``, NaN, infinities, a non-hex cloid) this module raises :class:`WireError` instead, as
the server would reject the order or recover a different signer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from math import copysign, isfinite
from typing import Any

from obelisk.errors import ObeliskError

__all__ = ["Cloid", "WireError", "batch_modify_action", "cancel_action",
           "cancel_by_cloid_action", "float_to_int_for_hashing", "float_to_usd_int",
           "float_to_wire", "order_request_to_order_wire", "order_type_to_wire",
           "order_wires_to_order_action", "slippage_price"]

OrderWire = dict[str, Any]
Action = dict[str, Any]
GROUPINGS = frozenset({"na", "normalTpsl", "positionTpsl"})
# The SDK strips zeros with Decimal.normalize(), which rounds to the default context's 28
# significant digits; only floats beyond 1e28 have that many, and they take the slow path.
_DECIMAL_DIGITS = 28
_HEX = frozenset("0123456789abcdef")


class WireError(ObeliskError, ValueError):
    """A value has no exact Hyperliquid wire form (rounding, -0, NaN, inf, malformed id)."""


def float_to_wire(x: float) -> str:
    """A price or size as the exchange hashes it: at most 8 decimals, no trailing zeros."""
    if not isfinite(x):
        raise WireError(f"{x!r} is not a finite number and cannot be sent")
    text = f"{x:.8f}"
    if abs(float(text) - x) >= 1e-12:
        raise WireError(f"{x!r} has more than 8 decimals: sending it would round it")
    text = text.rstrip("0").rstrip(".")
    if text == "-0":
        raise WireError(f"{x!r} would be sent as -0")
    if len(text) - text.startswith("-") - ("." in text) > _DECIMAL_DIGITS:
        text = format(Decimal(text).normalize(), "f")
    return text


def _float_to_int(x: float, power: int) -> int:
    if not isfinite(x):
        raise WireError(f"{x!r} is not a finite number and cannot be sent")
    if x == 0 and copysign(1.0, x) < 0:
        raise WireError("-0 cannot be sent as an amount")
    scaled = x * 10**power
    rounded = round(scaled)
    if abs(rounded - scaled) >= 1e-3:
        raise WireError(f"{x!r} has more than {power} decimals: sending it would round it")
    return rounded


def float_to_int_for_hashing(x: float) -> int:
    """``x`` in units of 1e-8, for integer fields hashed at 8 decimals."""
    return _float_to_int(x, 8)


def float_to_usd_int(x: float) -> int:
    """USDC in micro-units (1e-6), as in ``updateIsolatedMargin.ntli``."""
    return _float_to_int(x, 6)


class Cloid:
    """A client order id: ``0x`` and 32 lower-case hex digits (128 bits), hashed as that string."""

    __slots__ = ("_raw_cloid",)

    def __init__(self, raw_cloid: str) -> None:
        if not isinstance(raw_cloid, str):
            raise TypeError(f"a cloid is a string, not {type(raw_cloid).__name__}")
        if len(raw_cloid) != 34 or raw_cloid[:2] != "0x" or not _HEX.issuperset(raw_cloid[2:]):
            raise WireError(f"cloid {raw_cloid!r} is not 0x followed by 32 lower-case hex digits")
        self._raw_cloid = raw_cloid

    @staticmethod
    def from_int(cloid: int) -> Cloid:
        if not 0 <= cloid < 1 << 128:
            raise WireError(f"cloid {cloid} does not fit in 128 unsigned bits")
        return Cloid(f"{cloid:#034x}")

    @staticmethod
    def from_str(cloid: str) -> Cloid:
        return Cloid(cloid)

    def to_raw(self) -> str:
        return self._raw_cloid

    def __str__(self) -> str:
        return self._raw_cloid

    def __repr__(self) -> str:
        return self._raw_cloid

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cloid) and other._raw_cloid == self._raw_cloid

    def __hash__(self) -> int:
        return hash(self._raw_cloid)


def _raw_cloid(cloid: Cloid | str) -> str:
    return cloid.to_raw() if isinstance(cloid, Cloid) else Cloid(cloid).to_raw()


def order_type_to_wire(order_type: Mapping[str, Any]) -> dict[str, Any]:
    """``{"limit": {"tif": ...}}`` as given, or a trigger with its price as a wire string."""
    if "limit" in order_type:
        return {"limit": dict(order_type["limit"])}
    if "trigger" in order_type:
        trigger = order_type["trigger"]
        return {"trigger": {"isMarket": trigger["isMarket"],
                            "triggerPx": float_to_wire(trigger["triggerPx"]),
                            "tpsl": trigger["tpsl"]}}
    raise WireError(f"order type {dict(order_type)!r} has neither 'limit' nor 'trigger'")


def order_request_to_order_wire(order: Mapping[str, Any], asset: int) -> OrderWire:
    """An SDK-style order request (``is_buy``, ``sz``, ``limit_px``, ...) as an order wire."""
    wire: OrderWire = {
        "a": asset,
        "b": order["is_buy"],
        "p": float_to_wire(order["limit_px"]),
        "s": float_to_wire(order["sz"]),
        "r": order["reduce_only"],
        "t": order_type_to_wire(order["order_type"]),
    }
    cloid = order.get("cloid")
    if cloid is not None:
        wire["c"] = _raw_cloid(cloid)
    return wire


def order_wires_to_order_action(order_wires: list[OrderWire],
                                builder: Mapping[str, Any] | None = None,
                                grouping: str | Mapping[str, Any] = "na") -> Action:
    """The ``order`` action; a builder's address is lower-cased, as the SDK's exchange does."""
    if isinstance(grouping, str) and grouping not in GROUPINGS:
        raise WireError(f"grouping {grouping!r} is not one of {sorted(GROUPINGS)}")
    action: Action = {"type": "order", "orders": order_wires, "grouping": grouping}
    if builder:
        action["builder"] = {**builder, "b": builder["b"].lower()}
    return action


def cancel_action(cancels: Sequence[tuple[int, int]]) -> Action:
    """The ``cancel`` action for ``(asset, oid)`` pairs."""
    return {"type": "cancel", "cancels": [{"a": asset, "o": oid} for asset, oid in cancels]}


def cancel_by_cloid_action(cancels: Sequence[tuple[int, Cloid | str]]) -> Action:
    """The ``cancelByCloid`` action for ``(asset, cloid)`` pairs."""
    return {"type": "cancelByCloid",
            "cancels": [{"asset": asset, "cloid": _raw_cloid(cloid)} for asset, cloid in cancels]}


def batch_modify_action(modifies: Sequence[tuple[int | Cloid, OrderWire]]) -> Action:
    """The ``batchModify`` action for ``(oid or cloid of the resting order, new order wire)``."""
    return {"type": "batchModify",
            "modifies": [{"oid": oid.to_raw() if isinstance(oid, Cloid) else oid, "order": wire}
                         for oid, wire in modifies]}


def slippage_price(px: float, is_buy: bool, slippage: float, sz_decimals: int,
                   is_spot: bool) -> float:
    """The SDK's aggressive price for market orders: 5 significant figures, then
    6 (perps) or 8 (spot) minus the size decimals."""
    px *= (1 + slippage) if is_buy else (1 - slippage)
    return round(float(f"{px:.5g}"), (8 if is_spot else 6) - sz_decimals)
