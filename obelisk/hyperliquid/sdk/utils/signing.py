"""The SDK's ``hyperliquid.utils.signing``: every public name, signed by obelisk.

Where :mod:`obelisk.hyperliquid.signing` or :mod:`obelisk.hyperliquid.wire` has the
function it is used as is (libsecp256k1 signing, precomputed EIP-712 hashes). The rest
(multi-sig, the newer user-signed actions, ``sign_inner`` over a whole typed-data dict)
is built here on :func:`_typed_data_digest`, a small EIP-712 encoder for the flat
structs Hyperliquid signs.

``wallet`` may be an eth-account ``LocalAccount``, an obelisk
:class:`~obelisk.hyperliquid.wallet.Wallet` or a hex private key.

Differences from the SDK, on values the exchange would refuse anyway: an action holding
a float, and ``float_to_wire`` of NaN, an infinity or a value that writes as ``-0``,
raise :class:`~obelisk.hyperliquid.wire.WireError` (a ``ValueError``) instead of
hashing or sending something no server accepts.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict

from obelisk.hyperliquid import signing as _signing
from obelisk.hyperliquid import wire as _wire
from obelisk.hyperliquid.sdk.utils.types import Cloid, NotRequired

__all__ = [
    "CONVERT_TO_MULTI_SIG_USER_SIGN_TYPES", "MULTI_SIG_ENVELOPE_SIGN_TYPES",
    "SEND_ASSET_SIGN_TYPES", "SPOT_TRANSFER_SIGN_TYPES", "TOKEN_DELEGATE_TYPES",
    "USD_CLASS_TRANSFER_SIGN_TYPES", "USD_SEND_SIGN_TYPES", "USER_DEX_ABSTRACTION_SIGN_TYPES",
    "USER_SET_ABSTRACTION_SIGN_TYPES", "WITHDRAW_SIGN_TYPES", "CancelByCloidRequest",
    "CancelRequest", "Grouping", "LimitOrderType", "ModifyRequest", "ModifyWire", "OidOrCloid",
    "Order", "OrderRequest", "OrderType", "OrderTypeWire", "OrderWire", "PriorityGrouping",
    "ScheduleCancelAction", "Tif", "Tpsl", "TriggerOrderType", "TriggerOrderTypeWire",
    "action_hash", "add_multi_sig_fields", "add_multi_sig_types", "address_to_bytes",
    "construct_phantom_agent", "float_to_int", "float_to_int_for_hashing", "float_to_usd_int",
    "float_to_wire", "get_timestamp_ms", "l1_payload", "order_request_to_order_wire",
    "order_type_to_wire", "order_wires_to_order_action",
    "recover_agent_or_user_from_l1_action", "recover_user_from_user_signed_action",
    "sign_agent", "sign_approve_builder_fee", "sign_convert_to_multi_sig_user_action",
    "sign_inner", "sign_l1_action", "sign_multi_sig_action", "sign_multi_sig_l1_action_payload",
    "sign_multi_sig_user_signed_action_payload", "sign_send_asset_action",
    "sign_spot_transfer_action", "sign_token_delegate_action",
    "sign_usd_class_transfer_action", "sign_usd_transfer_action",
    "sign_user_dex_abstraction_action", "sign_user_set_abstraction_action",
    "sign_user_signed_action", "sign_withdraw_from_bridge_action",
]

# ------------------------------------------------------------------ request and wire types

Tif = Literal["Alo", "Ioc", "Gtc"]
Tpsl = Literal["tp", "sl"]


class LimitOrderType(TypedDict):
    tif: Tif


class TriggerOrderType(TypedDict):
    triggerPx: float
    isMarket: bool
    tpsl: Tpsl


class TriggerOrderTypeWire(TypedDict):
    triggerPx: str
    isMarket: bool
    tpsl: Tpsl


class OrderType(TypedDict, total=False):
    limit: LimitOrderType
    trigger: TriggerOrderType


class OrderTypeWire(TypedDict, total=False):
    limit: LimitOrderType
    trigger: TriggerOrderTypeWire


class OrderRequest(TypedDict, total=False):
    coin: str
    is_buy: bool
    sz: float
    limit_px: float
    order_type: OrderType
    reduce_only: bool
    cloid: NotRequired[Cloid | None]


OidOrCloid = int | Cloid


class ModifyRequest(TypedDict, total=False):
    oid: OidOrCloid
    order: OrderRequest


class CancelRequest(TypedDict):
    coin: str
    oid: int


class CancelByCloidRequest(TypedDict):
    coin: str
    cloid: Cloid


class PriorityGrouping(TypedDict):
    p: int


Grouping = Literal["na", "normalTpsl", "positionTpsl"] | PriorityGrouping


class Order(TypedDict):
    asset: int
    isBuy: bool
    limitPx: float
    sz: float
    reduceOnly: bool
    cloid: Cloid | None


class OrderWire(TypedDict):
    a: int
    b: bool
    p: str
    s: str
    r: bool
    t: OrderTypeWire
    c: NotRequired[str | None]


class ModifyWire(TypedDict):
    oid: int
    order: OrderWire


class ScheduleCancelAction(TypedDict):
    type: Literal["scheduleCancel"]
    time: NotRequired[int | None]


# ------------------------------------------------------------------ EIP-712 field lists


def _fields(*pairs: str) -> list[dict[str, str]]:
    """``"name:type"`` pairs as the SDK's ``[{"name": ..., "type": ...}]`` lists."""
    return _listed(_signing.sign_types(*pairs))


def _listed(types: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """obelisk's field tuples as the SDK's lists, which its users extend in place."""
    return [dict(field) for field in types]


USD_SEND_SIGN_TYPES = _listed(_signing.USD_SEND_SIGN_TYPES)
SPOT_TRANSFER_SIGN_TYPES = _listed(_signing.SPOT_TRANSFER_SIGN_TYPES)
WITHDRAW_SIGN_TYPES = _listed(_signing.WITHDRAW_SIGN_TYPES)
USD_CLASS_TRANSFER_SIGN_TYPES = _listed(_signing.USD_CLASS_TRANSFER_SIGN_TYPES)
SEND_ASSET_SIGN_TYPES = _listed(_signing.SEND_ASSET_SIGN_TYPES)
USER_DEX_ABSTRACTION_SIGN_TYPES = _fields("hyperliquidChain:string", "user:address",
                                          "enabled:bool", "nonce:uint64")
USER_SET_ABSTRACTION_SIGN_TYPES = _fields("hyperliquidChain:string", "user:address",
                                          "abstraction:string", "nonce:uint64")
TOKEN_DELEGATE_TYPES = _fields("hyperliquidChain:string", "validator:address", "wei:uint64",
                               "isUndelegate:bool", "nonce:uint64")
CONVERT_TO_MULTI_SIG_USER_SIGN_TYPES = _fields("hyperliquidChain:string", "signers:string",
                                               "nonce:uint64")
MULTI_SIG_ENVELOPE_SIGN_TYPES = _fields("hyperliquidChain:string", "multiSigActionHash:bytes32",
                                        "nonce:uint64")
_AGENT_SIGN_TYPES = _listed(_signing.APPROVE_AGENT_SIGN_TYPES)
_BUILDER_FEE_SIGN_TYPES = _listed(_signing.APPROVE_BUILDER_FEE_SIGN_TYPES)
_EIP712_DOMAIN = _fields("name:string", "version:string", "chainId:uint256",
                         "verifyingContract:address")
# the EIP-712 types obelisk's precomputed user-signed digest encodes
_FLAT_TYPES = frozenset({"string", "address", "bool", "uint64"})
_ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"

# ------------------------------------------------------------------ wire helpers


def float_to_wire(x: float) -> str:
    """A price or size as the exchange hashes it (at most 8 decimals, no trailing zeros)."""
    return _wire.float_to_wire(x)


def float_to_int_for_hashing(x: float) -> int:
    return _wire.float_to_int_for_hashing(x)


def float_to_usd_int(x: float) -> int:
    return _wire.float_to_usd_int(x)


def float_to_int(x: float, power: int) -> int:
    """``x * 10**power`` as an int; ValueError if that rounds by 1e-3 or more."""
    scaled = x * 10**power
    rounded = round(scaled)
    if abs(rounded - scaled) >= 1e-3:
        raise ValueError("float_to_int causes rounding", x)
    return int(rounded)


def get_timestamp_ms() -> int:
    """Milliseconds since the epoch: the nonce of an action."""
    return int(time.time() * 1000)


def order_type_to_wire(order_type: OrderType) -> OrderTypeWire:
    return _wire.order_type_to_wire(order_type)  # type: ignore[return-value]


def order_request_to_order_wire(order: OrderRequest, asset: int) -> OrderWire:
    return _wire.order_request_to_order_wire(order, asset)  # type: ignore[return-value]


def order_wires_to_order_action(order_wires: list[OrderWire], builder: Any = None,
                                grouping: Grouping = "na") -> Any:
    """The ``order`` action as given (``Exchange.bulk_orders`` lower-cases the builder)."""
    action: dict[str, Any] = {"type": "order", "orders": order_wires, "grouping": grouping}
    if builder:
        action["builder"] = builder
    return action


def address_to_bytes(address: str) -> bytes:
    return bytes.fromhex(address[2:] if address.startswith("0x") else address)


# ------------------------------------------------------------------ EIP-712


def _encode_value(type_: str, value: Any) -> bytes:
    """One 32-byte word of a flat EIP-712 struct."""
    if type_ == "string":
        return _signing.keccak(value.encode())
    if type_ == "bytes":
        return _signing.keccak(value if isinstance(value, bytes) else address_to_bytes(value))
    if type_ == "address":
        return address_to_bytes(value).rjust(32, b"\x00")
    if type_ == "bool":
        return int(bool(value)).to_bytes(32, "big")
    if type_ == "bytes32":
        raw = value if isinstance(value, bytes | bytearray) else address_to_bytes(value)
        return bytes(raw).ljust(32, b"\x00")
    if type_.startswith("uint"):
        return int(value).to_bytes(32, "big")
    if type_.startswith("int"):
        return int(value).to_bytes(32, "big", signed=True)
    raise ValueError(f"EIP-712 type {type_!r} is not supported here")


def _hash_struct(name: str, fields: Sequence[Mapping[str, str]],
                 values: Mapping[str, Any]) -> bytes:
    members = ",".join(f"{f['type']} {f['name']}" for f in fields)
    words = [_signing.keccak(f"{name}({members})".encode())]
    words += [_encode_value(f["type"], values[f["name"]]) for f in fields]
    return _signing.keccak(b"".join(words))


def _typed_data_digest(data: Mapping[str, Any]) -> bytes:
    """The EIP-712 digest of a typed-data dict whose structs hold only atomic types."""
    types = data["types"]
    domain = _hash_struct("EIP712Domain", types["EIP712Domain"], data["domain"])
    primary = data["primaryType"]
    message = _hash_struct(primary, types[primary], data["message"])
    return _signing.keccak(b"\x19\x01" + domain + message)


def l1_payload(phantom_agent: dict[str, Any]) -> dict[str, Any]:
    """The typed data an L1 action's signature is over."""
    return {
        "domain": {"chainId": 1337, "name": "Exchange", "verifyingContract": _ZERO_ADDRESS,
                   "version": "1"},
        "types": {"Agent": _fields("source:string", "connectionId:bytes32"),
                  "EIP712Domain": _fields("name:string", "version:string", "chainId:uint256",
                                          "verifyingContract:address")},
        "primaryType": "Agent",
        "message": phantom_agent,
    }


def user_signed_payload(primary_type: str, payload_types: list[dict[str, str]],
                        action: dict[str, Any]) -> dict[str, Any]:
    """The typed data a user-signed action's signature is over."""
    return {
        "domain": {"name": "HyperliquidSignTransaction", "version": "1",
                   "chainId": int(action["signatureChainId"], 16),
                   "verifyingContract": _ZERO_ADDRESS},
        "types": {primary_type: payload_types,
                  "EIP712Domain": _fields("name:string", "version:string", "chainId:uint256",
                                          "verifyingContract:address")},
        "primaryType": primary_type,
        "message": action,
    }


def sign_inner(wallet: Any, data: dict[str, Any]) -> dict[str, Any]:
    """Sign a typed-data dict (``l1_payload`` or ``user_signed_payload``)."""
    return _signing.signature_of(_signing.as_wallet(wallet), _typed_data_digest(data))


# ------------------------------------------------------------------ L1 actions

action_hash = _signing.action_hash
construct_phantom_agent = _signing.construct_phantom_agent


def sign_l1_action(wallet: Any, action: Any, active_pool: str | None, nonce: int,
                   expires_after: int | None, is_mainnet: bool) -> dict[str, Any]:
    """Sign an L1 action as the account or its agent (``active_pool``: vault or None)."""
    return _signing.sign_l1_action(wallet, action, active_pool, nonce, expires_after,
                                   is_mainnet)


def recover_agent_or_user_from_l1_action(action: Any, signature: Mapping[str, Any],
                                         active_pool: str | None, nonce: int,
                                         expires_after: int | None, is_mainnet: bool) -> str:
    return _signing.recover_agent_or_user_from_l1_action(action, signature, active_pool, nonce,
                                                         expires_after, is_mainnet)


# ------------------------------------------------------------------ user-signed actions


def sign_user_signed_action(wallet: Any, action: dict[str, Any],
                            payload_types: list[dict[str, str]], primary_type: str,
                            is_mainnet: bool) -> dict[str, Any]:
    """Sign a user-signed action; sets ``signatureChainId`` and ``hyperliquidChain`` on it."""
    if all(field["type"] in _FLAT_TYPES for field in payload_types):
        return _signing.sign_user_signed_action(wallet, action, payload_types, primary_type,
                                                is_mainnet)
    action["signatureChainId"] = _signing.SIGNATURE_CHAIN_ID
    action["hyperliquidChain"] = "Mainnet" if is_mainnet else "Testnet"
    return sign_inner(wallet, user_signed_payload(primary_type, payload_types, action))


def recover_user_from_user_signed_action(action: dict[str, Any], signature: Mapping[str, Any],
                                         payload_types: list[dict[str, str]],
                                         primary_type: str, is_mainnet: bool) -> str:
    """The signer of a user-signed action; sets ``hyperliquidChain`` on it, as the SDK does."""
    action["hyperliquidChain"] = "Mainnet" if is_mainnet else "Testnet"
    digest = _typed_data_digest(user_signed_payload(primary_type, payload_types, action))
    return _signing.recover_signer(digest, signature)


def sign_usd_transfer_action(wallet: Any, action: dict[str, Any],
                             is_mainnet: bool) -> dict[str, Any]:
    return _signing.sign_usd_transfer_action(wallet, action, is_mainnet)


def sign_spot_transfer_action(wallet: Any, action: dict[str, Any],
                              is_mainnet: bool) -> dict[str, Any]:
    return _signing.sign_spot_transfer_action(wallet, action, is_mainnet)


def sign_withdraw_from_bridge_action(wallet: Any, action: dict[str, Any],
                                     is_mainnet: bool) -> dict[str, Any]:
    return _signing.sign_withdraw_from_bridge_action(wallet, action, is_mainnet)


def sign_usd_class_transfer_action(wallet: Any, action: dict[str, Any],
                                   is_mainnet: bool) -> dict[str, Any]:
    return _signing.sign_usd_class_transfer_action(wallet, action, is_mainnet)


def sign_send_asset_action(wallet: Any, action: dict[str, Any],
                           is_mainnet: bool) -> dict[str, Any]:
    return _signing.sign_send_asset_action(wallet, action, is_mainnet)


def sign_agent(wallet: Any, action: dict[str, Any], is_mainnet: bool) -> dict[str, Any]:
    return _signing.sign_agent(wallet, action, is_mainnet)


def sign_approve_builder_fee(wallet: Any, action: dict[str, Any],
                             is_mainnet: bool) -> dict[str, Any]:
    return _signing.sign_approve_builder_fee(wallet, action, is_mainnet)


def sign_user_dex_abstraction_action(wallet: Any, action: dict[str, Any],
                                     is_mainnet: bool) -> dict[str, Any]:
    return sign_user_signed_action(wallet, action, USER_DEX_ABSTRACTION_SIGN_TYPES,
                                   "HyperliquidTransaction:UserDexAbstraction", is_mainnet)


def sign_user_set_abstraction_action(wallet: Any, action: dict[str, Any],
                                     is_mainnet: bool) -> dict[str, Any]:
    return sign_user_signed_action(wallet, action, USER_SET_ABSTRACTION_SIGN_TYPES,
                                   "HyperliquidTransaction:UserSetAbstraction", is_mainnet)


def sign_convert_to_multi_sig_user_action(wallet: Any, action: dict[str, Any],
                                          is_mainnet: bool) -> dict[str, Any]:
    return sign_user_signed_action(wallet, action, CONVERT_TO_MULTI_SIG_USER_SIGN_TYPES,
                                   "HyperliquidTransaction:ConvertToMultiSigUser", is_mainnet)


def sign_token_delegate_action(wallet: Any, action: dict[str, Any],
                               is_mainnet: bool) -> dict[str, Any]:
    return sign_user_signed_action(wallet, action, TOKEN_DELEGATE_TYPES,
                                   "HyperliquidTransaction:TokenDelegate", is_mainnet)


# ------------------------------------------------------------------ multi-sig


def add_multi_sig_types(sign_types: list[dict[str, str]]) -> list[dict[str, str]]:
    """`sign_types` with ``payloadMultiSigUser`` and ``outerSigner`` after ``hyperliquidChain``."""
    enriched: list[dict[str, str]] = []
    found = False
    for sign_type in sign_types:
        enriched.append(sign_type)
        if sign_type["name"] == "hyperliquidChain":
            found = True
            enriched += _fields("payloadMultiSigUser:address", "outerSigner:address")
    if not found:
        print('"hyperliquidChain" missing from sign_types. '
              "sign_types was not enriched with multi-sig signing types")
    return enriched


def add_multi_sig_fields(action: dict[str, Any], payload_multi_sig_user: str,
                         outer_signer: str) -> dict[str, Any]:
    """A copy of `action` naming the multi-sig user and the outer signer (lower-case)."""
    return {**action, "payloadMultiSigUser": payload_multi_sig_user.lower(),
            "outerSigner": outer_signer.lower()}


def sign_multi_sig_user_signed_action_payload(wallet: Any, action: dict[str, Any],
                                              is_mainnet: bool,
                                              sign_types: list[dict[str, str]], tx_type: str,
                                              payload_multi_sig_user: str,
                                              outer_signer: str) -> dict[str, Any]:
    """One signer's signature of a user-signed action made on behalf of a multi-sig user."""
    envelope = add_multi_sig_fields(action, payload_multi_sig_user, outer_signer)
    return sign_user_signed_action(wallet, envelope, add_multi_sig_types(sign_types), tx_type,
                                   is_mainnet)


def sign_multi_sig_l1_action_payload(wallet: Any, action: Any, is_mainnet: bool,
                                     vault_address: str | None, timestamp: int,
                                     expires_after: int | None, payload_multi_sig_user: str,
                                     outer_signer: str) -> dict[str, Any]:
    """One signer's signature of an L1 action made on behalf of a multi-sig user."""
    envelope = [payload_multi_sig_user.lower(), outer_signer.lower(), action]
    return sign_l1_action(wallet, envelope, vault_address, timestamp, expires_after, is_mainnet)


def sign_multi_sig_action(wallet: Any, action: dict[str, Any], is_mainnet: bool,
                          vault_address: str | None, nonce: int,
                          expires_after: int | None) -> dict[str, Any]:
    """The outer signer's signature of a ``multiSig`` action (its hash, without ``type``)."""
    untagged = {key: value for key, value in action.items() if key != "type"}
    envelope = {"multiSigActionHash": action_hash(untagged, vault_address, nonce, expires_after),
                "nonce": nonce}
    return sign_user_signed_action(wallet, envelope, MULTI_SIG_ENVELOPE_SIGN_TYPES,
                                   "HyperliquidTransaction:SendMultiSig", is_mainnet)
