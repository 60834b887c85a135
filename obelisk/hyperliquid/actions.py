"""Signed ``/exchange`` request bodies, and the exchange's answers as typed results.

No I/O here: :class:`ExchangeActions` turns a call such as "cancel oid 7 on
ETH" into the exact body the official SDK would post (same action, key order,
nonce, signature, ``vaultAddress`` and ``expiresAfter``), so the clients only
send bytes. Nonces come from one monotonic source per signer, shared by every
client, thread and task in the process: two actions signed at once never
share a nonce, and a retry resends the same body instead of signing anew.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from obelisk.hyperliquid.errors import (
    InvalidAddressError,
    InvalidAmountError,
    MalformedResponseError,
)
from obelisk.hyperliquid.signing import (
    sign_agent,
    sign_approve_builder_fee,
    sign_l1_action,
    sign_send_asset_action,
    sign_spot_transfer_action,
    sign_usd_class_transfer_action,
    sign_usd_transfer_action,
    sign_withdraw_from_bridge_action,
)
from obelisk.hyperliquid.wallet import Wallet
from obelisk.hyperliquid.wire import (
    Cloid,
    OrderWire,
    WireError,
    batch_modify_action,
    cancel_action,
    cancel_by_cloid_action,
    float_to_usd_int,
    order_request_to_order_wire,
    order_wires_to_order_action,
)

__all__ = ["ExchangeActions", "ExchangeResult", "NonceSource", "OrderOutcome",
           "nonce_source", "parse_exchange_response"]

Body = dict[str, Any]
_VAULTLESS = frozenset({"usdClassTransfer", "sendAsset"})   # they name the sub-account inside
# Decimals a transfer amount may carry: USDC moves in micro-units (as ``ntli`` and the
# vault/sub-account ``usd`` ints do), other tokens at the wire's 8 decimals at most.
_USDC_DECIMALS = 6
_TOKEN_DECIMALS = 8
_WEI_LIMIT = 1 << 64             # amounts are u64 counts of the smallest unit (``wei uint64``)
_HEX = frozenset("0123456789abcdefABCDEF")
# Clients refuse anything but a Wallet, after dropping it: it may be the key itself.
WALLET_REQUIRED = ("exchange clients sign with a Wallet: Wallet(key), Wallet.from_env(name) "
                   "or Wallet.from_file(path)")


def _transfer_amount(amount: float, decimals: int) -> str:
    """`amount` as the decimal string a transfer signs: ``str(amount)`` like the SDK
    (``"100.0"``), in plain notation where ``str`` would use an exponent.

    Raises :class:`InvalidAmountError` unless it is a finite number above 0 with at most
    `decimals` decimals that fits the exchange's u64 smallest units.
    """
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        raise InvalidAmountError(f"a transfer amount is a number, not {type(amount).__name__}")
    if not (math.isfinite(amount) and amount > 0):
        raise InvalidAmountError(f"a transfer amount must be finite and above 0, got {amount!r}")
    text = str(amount)
    units = Decimal(text).scaleb(decimals)
    if units != units.to_integral_value():
        raise InvalidAmountError(f"amount {amount!r} has more than {decimals} decimals")
    if units >= _WEI_LIMIT:
        raise InvalidAmountError(f"amount {amount!r} is too large: it must be below "
                                 f"{Decimal(_WEI_LIMIT).scaleb(-decimals):f}")
    return text if "e" not in text else format(Decimal(text), "f")


def _transfer_address(address: str, what: str = "destination") -> str:
    """`address` if it is ``0x`` and 40 hex digits, else :class:`InvalidAddressError`."""
    if not (isinstance(address, str) and len(address) == 42 and address[:2] == "0x"
            and _HEX.issuperset(address[2:])):
        raise InvalidAddressError(f"{what} {address!r} is not an address (0x and 40 hex digits)")
    return address


class NonceSource:
    """Millisecond nonces for one signer: the clock, but never equal to or below the last."""

    def __init__(self, clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000):
        self._clock_ms = clock_ms
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            self._last = max(self._clock_ms(), self._last + 1)
            return self._last


_SOURCES: dict[str, NonceSource] = {}
_SOURCES_LOCK = threading.Lock()


def nonce_source(address: str) -> NonceSource:
    """The process-wide nonce source of a signer address."""
    with _SOURCES_LOCK:
        return _SOURCES.setdefault(address.lower(), NonceSource())


class ExchangeActions:
    """Builds signed request bodies for one signer, exactly as the official SDK does.

    Parameters
    ----------
    wallet : Wallet
        The signer: the account itself or its approved agent (API wallet).
    asset_of : callable(coin) -> int
        Asset ids, from ``meta``/``spotMeta`` (:class:`obelisk.hyperliquid.info.Info`).
    vault_address : str, optional
        The vault or sub-account traded for.
    """

    def __init__(self, wallet: Wallet, asset_of: Callable[[str], int], *, is_mainnet: bool,
                 vault_address: str | None = None, expires_after: int | None = None,
                 nonces: NonceSource | None = None) -> None:
        if not isinstance(wallet, Wallet):
            del wallet
            raise TypeError(WALLET_REQUIRED)
        self.wallet = wallet
        self.asset_of = asset_of
        self.is_mainnet = is_mainnet
        self.vault_address = vault_address
        self.expires_after = expires_after
        self.nonces = nonces or nonce_source(wallet.address)

    # ------------------------------------------------------------- L1 actions

    def order(self, coin: str, is_buy: bool, sz: float, limit_px: float,
              order_type: Mapping[str, Any], reduce_only: bool = False,
              cloid: Cloid | None = None, builder: Mapping[str, Any] | None = None) -> Body:
        request: dict[str, Any] = {"coin": coin, "is_buy": is_buy, "sz": sz,
                                   "limit_px": limit_px, "order_type": order_type,
                                   "reduce_only": reduce_only}
        if cloid:
            request["cloid"] = cloid
        return self.bulk_orders([request], builder)

    def bulk_orders(self, requests: Sequence[Mapping[str, Any]],
                    builder: Mapping[str, Any] | None = None, grouping: str = "na") -> Body:
        return self.order_wires([order_request_to_order_wire(r, self.asset_of(r["coin"]))
                                 for r in requests], builder, grouping)

    def order_wires(self, wires: Sequence[OrderWire], builder: Mapping[str, Any] | None = None,
                    grouping: str = "na") -> Body:
        """An ``order`` action of order wires as they are."""
        if not wires:
            raise WireError("an order batch needs at least one order")
        return self._l1(order_wires_to_order_action(list(wires), builder, grouping))

    def bulk_modify(self, modifies: Sequence[Mapping[str, Any]]) -> Body:
        """``[{"oid": oid or Cloid, "order": order request}]`` as one ``batchModify``."""
        return self._l1(batch_modify_action([
            (m["oid"], order_request_to_order_wire(m["order"], self.asset_of(m["order"]["coin"])))
            for m in modifies]))

    def bulk_cancel(self, cancels: Sequence[tuple[str, int]]) -> Body:
        return self._l1(cancel_action([(self.asset_of(coin), oid) for coin, oid in cancels]))

    def bulk_cancel_by_cloid(self, cancels: Sequence[tuple[str, Cloid]]) -> Body:
        return self._l1(cancel_by_cloid_action([(self.asset_of(coin), cloid)
                                                for coin, cloid in cancels]))

    def schedule_cancel(self, at_ms: int | None) -> Body:
        action: dict[str, Any] = {"type": "scheduleCancel"}
        if at_ms is not None:
            action["time"] = at_ms
        return self._l1(action)

    def update_leverage(self, leverage: int, coin: str, is_cross: bool = True) -> Body:
        if isinstance(leverage, bool) or not isinstance(leverage, int) or leverage < 1:
            raise WireError(f"leverage must be a positive integer, got {leverage!r}")
        return self._l1({"type": "updateLeverage", "asset": self.asset_of(coin),
                         "isCross": is_cross, "leverage": leverage})

    def update_isolated_margin(self, amount: float, coin: str) -> Body:
        return self._l1({"type": "updateIsolatedMargin", "asset": self.asset_of(coin),
                         "isBuy": True, "ntli": float_to_usd_int(amount)})

    # ----------------------------------------------------- user-signed actions

    # Transfers check their amount and addresses before taking a nonce or signing.

    def usd_transfer(self, amount: float, destination: str) -> Body:
        text = _transfer_amount(amount, _USDC_DECIMALS)
        destination = _transfer_address(destination)
        nonce = self.nonces.next()
        action = {"destination": destination, "amount": text, "time": nonce,
                  "type": "usdSend"}
        return self._body(action, sign_usd_transfer_action(self.wallet, action, self.is_mainnet),
                          nonce)

    def spot_transfer(self, amount: float, destination: str, token: str) -> Body:
        text = _transfer_amount(amount, _TOKEN_DECIMALS)
        destination = _transfer_address(destination)
        nonce = self.nonces.next()
        action = {"destination": destination, "amount": text, "token": token,
                  "time": nonce, "type": "spotSend"}
        return self._body(action, sign_spot_transfer_action(self.wallet, action, self.is_mainnet),
                          nonce)

    def withdraw_from_bridge(self, amount: float, destination: str) -> Body:
        text = _transfer_amount(amount, _USDC_DECIMALS)
        destination = _transfer_address(destination)
        nonce = self.nonces.next()
        action = {"destination": destination, "amount": text, "time": nonce,
                  "type": "withdraw3"}
        return self._body(action, sign_withdraw_from_bridge_action(self.wallet, action,
                                                                   self.is_mainnet), nonce)

    def usd_class_transfer(self, amount: float, to_perp: bool) -> Body:
        text = _transfer_amount(amount, _USDC_DECIMALS)
        if self.vault_address:
            text += f" subaccount:{_transfer_address(self.vault_address, 'sub-account')}"
        nonce = self.nonces.next()
        action = {"type": "usdClassTransfer", "amount": text, "toPerp": to_perp, "nonce": nonce}
        return self._body(action, sign_usd_class_transfer_action(self.wallet, action,
                                                                 self.is_mainnet), nonce)

    def send_asset(self, destination: str, source_dex: str, destination_dex: str, token: str,
                   amount: float) -> Body:
        text = _transfer_amount(amount, _TOKEN_DECIMALS)
        destination = _transfer_address(destination)
        source = _transfer_address(self.vault_address, "sub-account") if self.vault_address else ""
        nonce = self.nonces.next()
        action = {"type": "sendAsset", "destination": destination, "sourceDex": source_dex,
                  "destinationDex": destination_dex, "token": token, "amount": text,
                  "fromSubAccount": source, "nonce": nonce}
        return self._body(action, sign_send_asset_action(self.wallet, action, self.is_mainnet),
                          nonce)

    def approve_agent(self, name: str | None = None) -> tuple[Body, Wallet]:
        """Approve a fresh agent key; the body, and the agent's Wallet (keep it secret),
        which knows the account it trades for as its ``owner``."""
        agent = Wallet("0x" + secrets.token_hex(32), owner=self.wallet.account)
        nonce = self.nonces.next()
        action = {"type": "approveAgent", "agentAddress": agent.address,
                  "agentName": name or "", "nonce": nonce}
        signature = sign_agent(self.wallet, action, self.is_mainnet)
        if name is None:
            del action["agentName"]
        return self._body(action, signature, nonce), agent

    def approve_builder_fee(self, builder: str, max_fee_rate: str) -> Body:
        nonce = self.nonces.next()
        action = {"maxFeeRate": max_fee_rate, "builder": builder, "nonce": nonce,
                  "type": "approveBuilderFee"}
        return self._body(action, sign_approve_builder_fee(self.wallet, action, self.is_mainnet),
                          nonce)

    # ---------------------------------------------------------------- shared

    def _l1(self, action: dict[str, Any]) -> Body:
        nonce = self.nonces.next()
        expires_after = self.expires_after      # read once: what is signed is what is sent
        signature = sign_l1_action(self.wallet, action, self.vault_address, nonce,
                                   expires_after, self.is_mainnet)
        return self._body(action, signature, nonce, expires_after)

    def _body(self, action: dict[str, Any], signature: Mapping[str, Any], nonce: int,
              expires_after: int | None = None) -> Body:
        """User-signed actions cannot expire, so only L1 bodies carry ``expiresAfter``."""
        return {"action": action, "nonce": nonce, "signature": signature,
                "vaultAddress": None if action["type"] in _VAULTLESS else self.vault_address,
                "expiresAfter": expires_after}


# ------------------------------------------------------------------ responses

@dataclass(frozen=True)
class OrderOutcome:
    """What the exchange did with one order, cancel or modify of a batch: resting,
    filled, an error, or a bare status string such as ``success``."""

    kind: str                      # "resting", "filled", "error", "success", "waitingForFill", ...
    oid: int | None = None
    cloid: str | None = None
    total_size: float | None = None
    average_price: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.kind != "error"


@dataclass(frozen=True)
class ExchangeResult:
    """The exchange's answer; ``statuses`` run parallel to the batch sent."""

    ok: bool
    kind: str                      # "order", "cancel", "default", ... or "error"
    statuses: tuple[OrderOutcome, ...] = ()
    error: str | None = None       # the whole request was refused


def parse_exchange_response(response: Any, batch_size: int = 1) -> ExchangeResult:
    """A typed result; a single error for a whole batch is repeated for each entry."""
    if not isinstance(response, Mapping) or response.get("status") not in ("ok", "err"):
        raise MalformedResponseError(f"exchange answered {str(response)[:200]!r}")
    if response["status"] == "err":
        message = str(response.get("response"))
        return ExchangeResult(False, "error", tuple(OrderOutcome("error", error=message)
                                                    for _ in range(batch_size)), message)
    body = response.get("response")
    if not isinstance(body, Mapping) or "type" not in body:
        raise MalformedResponseError(f"exchange answered {str(response)[:200]!r}")
    data = body.get("data")
    raw = data.get("statuses") if isinstance(data, Mapping) else None
    if raw is None:
        return ExchangeResult(True, str(body["type"]))
    statuses = tuple(_outcome(entry) for entry in raw)
    if len(statuses) == 1 and batch_size > 1 and statuses[0].kind == "error":
        statuses = statuses * batch_size
    return ExchangeResult(all(s.ok for s in statuses), str(body["type"]), statuses)


_ABSENT = object()


def _outcome(entry: Any) -> OrderOutcome:
    if isinstance(entry, str):
        return OrderOutcome(entry)
    if (type(entry) is dict or isinstance(entry, Mapping)) and len(entry) == 1:  # JSON: dict
        ((kind, value),) = entry.items()
        if kind == "error":
            return OrderOutcome("error", error=str(value))
        if type(value) is dict or isinstance(value, Mapping):
            oid = value.get("oid", _ABSENT)
            size, price = value.get("totalSz", _ABSENT), value.get("avgPx", _ABSENT)
            try:
                return OrderOutcome(kind, None if oid is _ABSENT else int(oid),
                                    value.get("cloid"), None if size is _ABSENT else float(size),
                                    None if price is _ABSENT else float(price))
            except (TypeError, ValueError) as exc:
                raise MalformedResponseError(f"order status {entry!r}: {exc}") from None
    raise MalformedResponseError(f"unexpected order status {entry!r}")
