"""Signing Hyperliquid actions: the L1 phantom-agent scheme and the user-signed transactions.

Both schemes are EIP-712 over one fixed, flat struct, so the domain separators and type hashes
are computed here once and each signature costs three Keccak-256 hashes and one libsecp256k1
signing (``coincurve``), with ``msgpack`` serialising L1 actions. Results equal the official
SDK's byte for byte (same names, argument order and ``{"r", "s", "v"}`` shape) at a small
fraction of its cost.

``wallet`` may be a :class:`~obelisk.hyperliquid.wallet.Wallet`, a hex private key, or any
object with a ``.key`` holding the raw key (an eth-account ``LocalAccount``). Each ``sign_*``
turns it into a Wallet before anything else and keeps no other reference to it, so a traceback
out of signing, whatever its cause, shows no key in any frame's locals.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Concatenate, ParamSpec

import msgpack
from coincurve import PublicKey
from sha3 import keccak_256

from obelisk.hyperliquid.wallet import Wallet, address_of
from obelisk.hyperliquid.wire import WireError

__all__ = [
    "APPROVE_AGENT_SIGN_TYPES", "APPROVE_BUILDER_FEE_SIGN_TYPES", "SEND_ASSET_SIGN_TYPES",
    "SPOT_TRANSFER_SIGN_TYPES", "USD_CLASS_TRANSFER_SIGN_TYPES", "USD_SEND_SIGN_TYPES",
    "WITHDRAW_SIGN_TYPES", "Signature", "action_hash", "as_wallet", "construct_phantom_agent",
    "keccak",
    "l1_action_digest", "recover_agent_or_user_from_l1_action", "recover_signer",
    "recover_user_from_user_signed_action", "sign_agent", "sign_approve_builder_fee",
    "sign_l1_action", "sign_send_asset_action", "sign_spot_transfer_action",
    "sign_usd_class_transfer_action", "sign_usd_transfer_action", "sign_user_signed_action",
    "sign_types", "sign_withdraw_from_bridge_action", "signature_of", "user_signed_action_digest",
]

Signature = dict[str, Any]        # {"r": "0x..", "s": "0x..", "v": 27 | 28}
SignTypes = Sequence[Mapping[str, str]]
SignerLike = Wallet | str | Any
P = ParamSpec("P")

# The chain id the SDK signs user actions on (Arbitrum Sepolia); any id is accepted.
SIGNATURE_CHAIN_ID = "0x66eee"


def sign_types(*pairs: str) -> tuple[dict[str, str], ...]:
    """EIP-712 struct fields from ``"name:type"`` pairs."""
    return tuple({"name": name, "type": type_}
                 for name, type_ in (pair.split(":") for pair in pairs))


USD_SEND_SIGN_TYPES = sign_types("hyperliquidChain:string", "destination:string", "amount:string",
                              "time:uint64")
SPOT_TRANSFER_SIGN_TYPES = sign_types("hyperliquidChain:string", "destination:string",
                                   "token:string", "amount:string", "time:uint64")
WITHDRAW_SIGN_TYPES = USD_SEND_SIGN_TYPES
USD_CLASS_TRANSFER_SIGN_TYPES = sign_types("hyperliquidChain:string", "amount:string",
                                        "toPerp:bool", "nonce:uint64")
SEND_ASSET_SIGN_TYPES = sign_types("hyperliquidChain:string", "destination:string",
                                "sourceDex:string", "destinationDex:string", "token:string",
                                "amount:string", "fromSubAccount:string", "nonce:uint64")
APPROVE_AGENT_SIGN_TYPES = sign_types("hyperliquidChain:string", "agentAddress:address",
                                   "agentName:string", "nonce:uint64")
APPROVE_BUILDER_FEE_SIGN_TYPES = sign_types("hyperliquidChain:string", "maxFeeRate:string",
                                         "builder:address", "nonce:uint64")


def keccak(data: bytes) -> bytes:
    """Keccak-256, the hash of every Hyperliquid digest (not NIST SHA3-256)."""
    return keccak_256(data).digest()


_DOMAIN_TYPEHASH = keccak(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")


def _domain_separator(name: str, chain_id: int) -> bytes:
    """EIP-712 domain hash for version "1" and the zero verifying contract."""
    return keccak(_DOMAIN_TYPEHASH + keccak(name.encode()) + keccak(b"1")
                   + chain_id.to_bytes(32, "big") + bytes(32))


_L1_DOMAIN = b"\x19\x01" + _domain_separator("Exchange", 1337)
_AGENT_TYPEHASH = keccak(b"Agent(string source,bytes32 connectionId)")
# The struct hash's first two words, by network: typehash ‖ keccak(source).
_AGENT_HEAD = {True: _AGENT_TYPEHASH + keccak(b"a"), False: _AGENT_TYPEHASH + keccak(b"b")}
_USER_DOMAINS: dict[int, bytes] = {}
_USER_DOMAINS_KEPT = 64
_TYPEHASHES: dict[tuple[str, tuple[tuple[str, str], ...]], bytes] = {}
_UINT64_LIMIT = 1 << 64


# ---------------------------------------------------------------- L1 actions (phantom agent)

_LEAVES = (str, int, bool, type(None), bytes)


def _reject_floats(value: Any) -> None:
    """Refuse a float anywhere in an action's values. A loop over a stack of containers,
    not a call per value: a 500-order action holds ~5,000 values, and this runs on every
    signature."""
    stack = [value]
    while stack:
        container = stack.pop()
        kind = type(container)
        if kind is dict:
            items = container.values()
        elif kind is list or kind is tuple:
            items = container
        else:
            if kind is float:
                raise WireError(f"float {container!r} in an action: prices and sizes are wire "
                                "strings, other numbers ints (a float hashes differently)")
            continue
        for item in items:
            if type(item) not in _LEAVES:
                stack.append(item)


def _uint64(value: int, what: str) -> bytes:
    if type(value) is not int or not 0 <= value < _UINT64_LIMIT:
        raise WireError(f"{what} must be an int in [0, 2**64), got {value!r}")
    return value.to_bytes(8, "big")


def _address_bytes(address: str, what: str) -> bytes:
    digits = address[2:] if address[:2] in ("0x", "0X") else address
    try:
        raw = bytes.fromhex(digits)
    except ValueError:
        raw = b""
    if len(raw) != 20:
        raise WireError(f"{what} {address!r} is not a 20-byte hex address")
    return raw


def action_hash(action: Any, vault_address: str | None, nonce: int,
                expires_after: int | None, *, check_floats: bool = True) -> bytes:
    """Keccak-256 of msgpack(action) ‖ nonce ‖ vault flag [‖ address] [‖ 0 ‖ expiresAfter].

    A signer refuses floats (they hash differently from the wire strings); a verifier
    hashes what it received, as received (``check_floats=False``)."""
    if check_floats:
        _reject_floats(action)
    data = msgpack.packb(action) + _uint64(nonce, "nonce")
    if vault_address is None:
        data += b"\x00"
    else:
        data += b"\x01" + _address_bytes(vault_address, "vault address")
    if expires_after is not None:
        data += b"\x00" + _uint64(expires_after, "expires_after")
    return keccak(data)


def construct_phantom_agent(hash: bytes, is_mainnet: bool) -> dict[str, Any]:
    """The ``Agent`` message that is actually signed for an L1 action."""
    return {"source": "a" if is_mainnet else "b", "connectionId": hash}


def _l1_digest(connection_id: bytes, is_mainnet: bool) -> bytes:
    return keccak(_L1_DOMAIN + keccak(_AGENT_HEAD[bool(is_mainnet)] + connection_id))


def l1_action_digest(action: Any, active_pool: str | None, nonce: int,
                     expires_after: int | None, is_mainnet: bool, *,
                     check_floats: bool = True) -> bytes:
    """The 32-byte EIP-712 digest an L1 action's signature is over."""
    return _l1_digest(action_hash(action, active_pool, nonce, expires_after,
                                  check_floats=check_floats), is_mainnet)


def as_wallet(signer: Any) -> Wallet:
    """A Wallet for a Wallet, a hex key or an account with a ``.key``; the key dies with
    this frame."""
    try:
        if isinstance(signer, Wallet):
            return signer
        if isinstance(signer, str):
            return Wallet(signer)
        if hasattr(signer, "key"):
            return Wallet(bytes(signer.key))
        raise TypeError(f"cannot sign with a {type(signer).__name__}: pass a Wallet, "
                        "a hex private key, or an account with a .key")
    finally:
        del signer


def _signs(sign: Callable[Concatenate[Wallet, P], Signature]
           ) -> Callable[Concatenate[SignerLike, P], Signature]:
    """`sign`, taking any signer: converted to a Wallet first, the original dropped at once."""
    @functools.wraps(sign)
    def with_wallet(wallet: SignerLike, *args: P.args, **kwargs: P.kwargs) -> Signature:
        try:
            signer = as_wallet(wallet)
        finally:
            del wallet
        return sign(signer, *args, **kwargs)
    return with_wallet


def signature_of(wallet: Wallet, digest: bytes) -> Signature:
    """The exchange's {r, s, v} form of `wallet`'s signature of `digest`."""
    raw = wallet.sign_digest(digest)
    return {"r": hex(int.from_bytes(raw[:32], "big")), "s": hex(int.from_bytes(raw[32:64], "big")),
            "v": 27 + raw[64]}


@_signs
def sign_l1_action(wallet: Wallet, action: Any, active_pool: str | None, nonce: int,
                   expires_after: int | None, is_mainnet: bool) -> Signature:
    """Sign an L1 action (order, cancel, modify, leverage, ...) as the account or its agent.

    ``active_pool`` is the vault or sub-account traded for (None for the signer's own
    account), ``nonce`` the ms timestamp posted with the action.
    """
    return signature_of(wallet, l1_action_digest(action, active_pool, nonce, expires_after,
                                               is_mainnet))


# ---------------------------------------------------------------- user-signed actions

def _typehash(primary_type: str, payload_types: SignTypes) -> bytes:
    shape = tuple((field["name"], field["type"]) for field in payload_types)
    key = (primary_type, shape)
    typehash = _TYPEHASHES.get(key)
    if typehash is None:
        members = ",".join(f"{type_} {name}" for name, type_ in shape)
        typehash = _TYPEHASHES[key] = keccak(f"{primary_type}({members})".encode())
    return typehash


def _encode_field(name: str, type_: str, value: Any) -> bytes:
    if type_ == "string":
        if not isinstance(value, str):
            raise WireError(f"field {name!r} must be a string, got {value!r}")
        return keccak(value.encode())
    if type_ == "address":
        if not isinstance(value, str):
            raise WireError(f"field {name!r} must be a hex address, got {value!r}")
        return bytes(12) + _address_bytes(value, f"field {name!r}")
    if type_ == "bool":
        if not isinstance(value, bool):
            raise WireError(f"field {name!r} must be a bool, got {value!r}")
        return value.to_bytes(32, "big")
    if type_ == "uint64":
        return bytes(24) + _uint64(value, f"field {name!r}")
    raise WireError(f"field {name!r} has unsupported EIP-712 type {type_!r}")


def user_signed_action_digest(action: Mapping[str, Any], payload_types: SignTypes,
                              primary_type: str) -> bytes:
    """The EIP-712 digest of a user-signed action, on its ``signatureChainId`` domain."""
    chain_id = int(action["signatureChainId"], 16)
    domain = _USER_DOMAINS.get(chain_id)
    if domain is None:
        domain = b"\x19\x01" + _domain_separator("HyperliquidSignTransaction", chain_id)
        if len(_USER_DOMAINS) < _USER_DOMAINS_KEPT:    # a few chains in practice; a server
            _USER_DOMAINS[chain_id] = domain           # must not keep every id it is sent
    try:
        words = [_encode_field(field["name"], field["type"], action[field["name"]])
                 for field in payload_types]
    except KeyError as missing:
        raise WireError(f"{primary_type} action has no field {missing}") from None
    struct_hash = keccak(_typehash(primary_type, payload_types) + b"".join(words))
    return keccak(domain + struct_hash)


def _sign_user_signed(wallet: Wallet, action: dict[str, Any], payload_types: SignTypes,
                      primary_type: str, is_mainnet: bool) -> Signature:
    action["signatureChainId"] = SIGNATURE_CHAIN_ID
    action["hyperliquidChain"] = "Mainnet" if is_mainnet else "Testnet"
    return signature_of(wallet, user_signed_action_digest(action, payload_types, primary_type))


@_signs
def sign_user_signed_action(wallet: Wallet, action: dict[str, Any], payload_types: SignTypes,
                            primary_type: str, is_mainnet: bool) -> Signature:
    """Sign a user-signed action with the main wallet.

    Like the SDK, this sets ``signatureChainId`` and ``hyperliquidChain`` on ``action``
    itself: both must be posted with it.
    """
    return _sign_user_signed(wallet, action, payload_types, primary_type, is_mainnet)


@_signs
def sign_usd_transfer_action(wallet: Wallet, action: dict[str, Any],
                             is_mainnet: bool) -> Signature:
    """``usdSend``: USDC from the perp balance to another address."""
    return _sign_user_signed(wallet, action, USD_SEND_SIGN_TYPES,
                             "HyperliquidTransaction:UsdSend", is_mainnet)


@_signs
def sign_spot_transfer_action(wallet: Wallet, action: dict[str, Any],
                              is_mainnet: bool) -> Signature:
    """``spotSend``: a spot token to another address."""
    return _sign_user_signed(wallet, action, SPOT_TRANSFER_SIGN_TYPES,
                             "HyperliquidTransaction:SpotSend", is_mainnet)


@_signs
def sign_withdraw_from_bridge_action(wallet: Wallet, action: dict[str, Any],
                                     is_mainnet: bool) -> Signature:
    """``withdraw3``: USDC out through the bridge."""
    return _sign_user_signed(wallet, action, WITHDRAW_SIGN_TYPES,
                             "HyperliquidTransaction:Withdraw", is_mainnet)


@_signs
def sign_usd_class_transfer_action(wallet: Wallet, action: dict[str, Any],
                                   is_mainnet: bool) -> Signature:
    """``usdClassTransfer``: USDC between the spot and perp balances."""
    return _sign_user_signed(wallet, action, USD_CLASS_TRANSFER_SIGN_TYPES,
                             "HyperliquidTransaction:UsdClassTransfer", is_mainnet)


@_signs
def sign_send_asset_action(wallet: Wallet, action: dict[str, Any],
                           is_mainnet: bool) -> Signature:
    """``sendAsset``: a token between dexes, accounts or sub-accounts."""
    return _sign_user_signed(wallet, action, SEND_ASSET_SIGN_TYPES,
                             "HyperliquidTransaction:SendAsset", is_mainnet)


@_signs
def sign_agent(wallet: Wallet, action: dict[str, Any], is_mainnet: bool) -> Signature:
    """``approveAgent``: authorise an API wallet to sign L1 actions for this account."""
    return _sign_user_signed(wallet, action, APPROVE_AGENT_SIGN_TYPES,
                             "HyperliquidTransaction:ApproveAgent", is_mainnet)


@_signs
def sign_approve_builder_fee(wallet: Wallet, action: dict[str, Any],
                             is_mainnet: bool) -> Signature:
    """``approveBuilderFee``: allow a builder to charge up to ``maxFeeRate``."""
    return _sign_user_signed(wallet, action, APPROVE_BUILDER_FEE_SIGN_TYPES,
                             "HyperliquidTransaction:ApproveBuilderFee", is_mainnet)


# ---------------------------------------------------------------- recovery

def _as_int(value: int | str) -> int:
    return value if isinstance(value, int) else int(value, 16)


def recover_signer(digest: bytes, signature: Mapping[str, Any]) -> str:
    """The checksummed address whose key made ``signature`` (r, s as hex or int; v 27/28)."""
    v = signature["v"]
    recovery_id = v - 27 if v >= 27 else v
    if recovery_id not in (0, 1):
        raise WireError(f"signature v must be 27 or 28, got {v!r}")
    try:
        raw = (_as_int(signature["r"]).to_bytes(32, "big")
               + _as_int(signature["s"]).to_bytes(32, "big") + bytes((recovery_id,)))
        public_key = PublicKey.from_signature_and_message(raw, digest, hasher=None)
    except (ValueError, OverflowError) as exc:
        raise WireError(f"signature does not recover to a public key: {exc}") from None
    return address_of(public_key)


def recover_agent_or_user_from_l1_action(action: Any, signature: Mapping[str, Any],
                                         active_pool: str | None, nonce: int,
                                         expires_after: int | None, is_mainnet: bool) -> str:
    """The address (account or its agent) that signed an L1 action."""
    return recover_signer(l1_action_digest(action, active_pool, nonce, expires_after, is_mainnet),
                          signature)


def recover_user_from_user_signed_action(action: Mapping[str, Any], signature: Mapping[str, Any],
                                         payload_types: SignTypes, primary_type: str,
                                         is_mainnet: bool) -> str:
    """The address that signed a user-signed action on the given network (``action`` unchanged)."""
    on_network = {**action, "hyperliquidChain": "Mainnet" if is_mainnet else "Testnet"}
    return recover_signer(user_signed_action_digest(on_network, payload_types, primary_type),
                          signature)
