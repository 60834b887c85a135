"""Decoding ``/exchange`` bodies: every field checked before anything changes.

A body that is not a request the exchange understands (a missing key, a wrong
type, an unknown grouping) raises `Undecodable`, which the server answers with
HTTP 422 and the exchange's text. Values that are well-formed but refused
(an off-grid price) are judged later, per order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, NamedTuple

from obelisk.server.auth import Rejected
from obelisk.server.records import Trigger, Wire

TIFS = ("Gtc", "Ioc", "Alo")
_CLOID = re.compile("0x[0-9a-fA-F]{32}")


class Undecodable(Exception):
    """The body is not a request the exchange understands: HTTP 422."""

    TEXT = "Failed to deserialize the JSON body into the target type"

    def __init__(self, why: str = "") -> None:
        super().__init__(why or self.TEXT)


class OrderSpec(NamedTuple):               # a tuple: one is made per order received
    asset: int
    is_buy: bool
    price: str
    size: str
    reduce_only: bool
    tif: str
    trigger: Trigger | None
    cloid: str | None


def parse_address(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 42 or value[:2] not in ("0x", "0X"):
        raise ValueError(f"not an address: {value!r}")
    try:
        int(value[2:], 16)
    except ValueError:
        raise ValueError(f"not an address: {value!r}") from None
    return value.lower()


def _need(condition: bool) -> None:
    if not condition:
        raise Undecodable()


def _int(value: Any) -> int:
    _need(type(value) is int)
    return int(value)


def _str(value: Any) -> str:
    _need(isinstance(value, str))
    return str(value)


def _bool(value: Any) -> bool:
    _need(type(value) is bool)
    return bool(value)


def _nonempty_list(value: Any) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise Undecodable()
    return value


def _cloid(value: Any) -> str:
    """A client order id: 16 bytes in hex after "0x" (``int(text, 16)`` would also take
    signs, spaces and underscores)."""
    if not isinstance(value, str) or _CLOID.fullmatch(value) is None:
        raise Undecodable()
    return str(value).lower()


def envelope(body: Any) -> tuple[Wire, int]:
    _need(isinstance(body, dict) and isinstance(body.get("action"), dict))
    action = body["action"]
    _need(isinstance(action.get("type"), str))
    nonce = _int(body.get("nonce"))
    signature = body.get("signature")
    _need(isinstance(signature, dict) and {"r", "s", "v"} <= set(signature))
    vault, expires = body.get("vaultAddress"), body.get("expiresAfter")
    _need(vault is None or isinstance(vault, str))
    _need(expires is None or type(expires) is int)
    return action, nonce


def _decode_order(wire: Any) -> OrderSpec:
    # checks inlined: this runs once per order, the busiest decoding there is
    if not isinstance(wire, dict):
        raise Undecodable()
    order_type = wire.get("t")
    if not isinstance(order_type, dict) or len(order_type) != 1:
        raise Undecodable()
    trigger = None
    if "limit" in order_type:
        limit = order_type["limit"]
        tif = limit.get("tif") if isinstance(limit, dict) else None
        if tif not in TIFS:            # JSON values: only the strings themselves are equal
            raise Undecodable()
    else:
        tif = "Gtc"
        raw = order_type.get("trigger")
        if not isinstance(raw, dict):
            raise Undecodable()
        tpsl = _str(raw.get("tpsl"))
        _need(tpsl in ("tp", "sl"))
        trigger = Trigger(_str(raw.get("triggerPx")), _bool(raw.get("isMarket")), tpsl)
    cloid = _cloid(wire["c"]) if "c" in wire else None
    asset, is_buy, price, size, reduce_only = (wire.get("a"), wire.get("b"), wire.get("p"),
                                               wire.get("s"), wire.get("r"))
    if not (type(asset) is int and type(is_buy) is bool and isinstance(price, str)
            and isinstance(size, str) and type(reduce_only) is bool):
        raise Undecodable()
    return OrderSpec(asset, is_buy, str(price), str(size), reduce_only, tif, trigger, cloid)


def _decode_orders(action: Wire) -> tuple[list[OrderSpec], str]:
    orders = _nonempty_list(action.get("orders"))
    grouping = _str(action.get("grouping", "na"))
    _need(grouping in ("na", "normalTpsl", "positionTpsl"))
    return [_decode_order(o) for o in orders], grouping


def _decode_cancels(action: Wire) -> list[tuple[int, int]]:
    cancels = _nonempty_list(action.get("cancels"))
    out = []
    for c in cancels:
        _need(isinstance(c, dict))
        out.append((_int(c.get("a")), _int(c.get("o"))))
    return out


def _decode_cancels_by_cloid(action: Wire) -> list[tuple[int, str]]:
    cancels = _nonempty_list(action.get("cancels"))
    out = []
    for c in cancels:
        _need(isinstance(c, dict))
        out.append((_int(c.get("asset")), _cloid(c.get("cloid"))))
    return out


def _order_ref(value: Any) -> int | str:
    return value if type(value) is int else _cloid(value)


def _decode_modifies(action: Wire) -> list[tuple[int | str, OrderSpec]]:
    if action["type"] == "modify":
        return [(_order_ref(action.get("oid")), _decode_order(action.get("order")))]
    modifies = _nonempty_list(action.get("modifies"))
    out = []
    for m in modifies:
        _need(isinstance(m, dict))
        out.append((_order_ref(m.get("oid")), _decode_order(m.get("order"))))
    return out


def _decode_leverage(action: Wire) -> tuple[int, bool, int]:
    return _int(action.get("asset")), _bool(action.get("isCross")), _int(action.get("leverage"))


def _decode_isolated_margin(action: Wire) -> tuple[int, int]:
    _bool(action.get("isBuy"))
    return _int(action.get("asset")), _int(action.get("ntli"))


def _decode_schedule_cancel(action: Wire) -> int | None:
    return None if action.get("time") is None else _int(action["time"])


DECODERS: dict[str, Callable[[Wire], Any]] = {
    "order": _decode_orders, "cancel": _decode_cancels,
    "cancelByCloid": _decode_cancels_by_cloid, "batchModify": _decode_modifies,
    "modify": _decode_modifies, "updateLeverage": _decode_leverage,
    "updateIsolatedMargin": _decode_isolated_margin,
    "scheduleCancel": _decode_schedule_cancel, "noop": lambda action: None,
}


def decode_user_signed(action: Wire, nonce: int) -> None:
    kind = action["type"]
    _str(action.get("hyperliquidChain"))
    _str(action.get("signatureChainId"))
    stamp = action.get("time" if kind == "usdSend" else "nonce")
    _need(stamp == nonce)
    if kind == "approveAgent":
        try:
            parse_address(action.get("agentAddress"))
        except ValueError:
            raise Undecodable() from None
        _need(action.get("agentName") is None or isinstance(action.get("agentName"), str))
    elif kind == "usdClassTransfer":
        _str(action.get("amount"))
        _bool(action.get("toPerp"))
    else:
        _str(action.get("amount"))
        try:
            parse_address(action.get("destination"))
        except ValueError:
            raise Undecodable() from None


def usdc_amount(text: str) -> float:
    if " subaccount:" in text:
        raise Rejected("Sub-accounts are not supported by the local exchange")
    try:
        amount = float(Decimal(text))
    except (ArithmeticError, ValueError):     # float(Decimal("sNaN")) is a ValueError
        raise Rejected(f"Invalid amount {json.dumps(text)}") from None
    if not 0 < amount < 1e15:
        raise Rejected(f"Invalid amount {json.dumps(text)}")
    return amount
