"""A secp256k1 signing key that never shows itself: only its address is printable.

The key lives in a slot as a libsecp256k1 handle (``coincurve``). ``repr``/``str`` show the
address, pickling is refused, and errors about a bad key describe the problem without
echoing any of the key's text. Nor do their tracebacks: the frames that see the key's text
drop it before anything is raised, so reporters that record frame locals (Sentry) find none.
"""

from __future__ import annotations

import os
from pathlib import Path

from coincurve import PrivateKey, PublicKey
from sha3 import keccak_256

from obelisk.errors import ObeliskError

__all__ = ["Wallet", "WalletError", "address_of", "to_checksum_address"]

_HEX = frozenset("0123456789abcdefABCDEF")
# secp256k1 group order: valid private keys are 1 .. N-1.
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class WalletError(ObeliskError, ValueError):
    """A private key is missing or malformed (the message never contains the key)."""


def to_checksum_address(address: str) -> str:
    """EIP-55 mixed-case form of a 20-byte hex address (with or without ``0x``)."""
    digits = address[2:] if address[:2] in ("0x", "0X") else address
    if len(digits) != 40 or not _HEX.issuperset(digits):
        raise WalletError(f"{address!r} is not a 20-byte hex address")
    digits = digits.lower()
    nibbles = keccak_256(digits.encode()).hexdigest()
    return "0x" + "".join(c.upper() if n >= "8" else c
                          for c, n in zip(digits, nibbles[:40], strict=True))


def address_of(public_key: PublicKey) -> str:
    """The checksummed Ethereum address of a public key."""
    digest = keccak_256(public_key.format(compressed=False)[1:]).hexdigest()
    return to_checksum_address(digest[-40:])


def _parse_key(secret: object) -> PrivateKey | str:
    """The key in `secret`, or why it is not one (a reason that never quotes it).

    It never raises, so the frames that hold the key's text can drop it before anything is
    raised: error reporters that record the locals of each frame then find no key.
    """
    if isinstance(secret, str):
        digits = secret.strip()
        if digits[:2] in ("0x", "0X"):
            digits = digits[2:]
        if len(digits) != 64 or not _HEX.issuperset(digits):
            return (f"a private key is 64 hex digits (optionally after 0x); got {len(digits)} "
                    "characters" + ("" if _HEX.issuperset(digits) else ", not all hex"))
        raw = bytes.fromhex(digits)
    elif isinstance(secret, bytes | bytearray):
        if len(secret) != 32:
            return f"a private key is 32 bytes; got {len(secret)}"
        raw = bytes(secret)
    else:
        return f"a private key is a hex string or 32 bytes, not {type(secret).__name__}"
    if not 0 < int.from_bytes(raw, "big") < _N:
        return "the private key is outside the secp256k1 range 1 .. n-1"
    return PrivateKey(raw)


class Wallet:
    """A private key for signing Hyperliquid actions, and its checksummed address.

    Parameters
    ----------
    secret : str or bytes
        The key as 64 hex digits (``0x`` optional) or 32 raw bytes.
    owner : str, optional
        For an agent (API wallet) key: the address of the account it was approved by and
        trades for. :meth:`ExchangeActions.approve_agent
        <obelisk.hyperliquid.actions.ExchangeActions.approve_agent>` sets it.

    Raises
    ------
    WalletError
        If the key is not 32 bytes of hex, or is not a valid secp256k1 scalar, or `owner`
        is not an address. No frame of the traceback holds the key's text.
    """

    __slots__ = ("_address", "_owner", "_private_key")

    def __init__(self, secret: str | bytes, *, owner: str | None = None) -> None:
        key = _parse_key(secret)
        del secret
        if isinstance(key, str):
            raise WalletError(key)
        self._owner = None if owner is None else to_checksum_address(owner)
        self._address: str | None = None
        self._private_key = key

    @classmethod
    def from_env(cls, name: str, *, owner: str | None = None) -> Wallet:
        """The key held in environment variable ``name``."""
        if not os.environ.get(name):
            raise WalletError(f"environment variable {name!r} is not set or empty")
        try:
            return cls(os.environ.get(name, ""), owner=owner)
        except WalletError as exc:
            raise WalletError(f"environment variable {name!r}: {exc}") from None

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, owner: str | None = None) -> Wallet:
        """The key stored as hex text in the file at ``path`` (surrounding whitespace ignored)."""
        try:
            # latin-1 decodes any byte, so no decoding error carries the file's bytes
            return cls(Path(path).read_bytes().decode("latin-1"), owner=owner)
        except OSError as exc:
            raise WalletError(f"cannot read a private key from {os.fspath(path)!r}: "
                              f"{type(exc).__name__}") from None
        except WalletError as exc:
            raise WalletError(f"file {os.fspath(path)!r}: {exc}") from None

    @property
    def address(self) -> str:
        """The checksummed (EIP-55) address that signatures by this key recover to."""
        if self._address is None:
            self._address = address_of(self._private_key.public_key)
        return self._address

    @property
    def owner(self) -> str | None:
        """The account this agent key trades for, when known (checksummed)."""
        return self._owner

    @property
    def account(self) -> str:
        """The account this key acts for: its owner if it is a known agent, else itself."""
        return self._owner or self.address

    def sign_digest(self, digest: bytes) -> bytes:
        """Deterministic (RFC 6979, low-s) signature of a 32-byte digest: r ‖ s ‖ recovery id."""
        return self._private_key.sign_recoverable(digest, hasher=None)

    def __repr__(self) -> str:
        try:
            address = self.address
        except AttributeError:          # __init__ raised before the key was set
            return "Wallet(<no key>)"
        if self._owner is None:
            return f"Wallet(address={address!r})"
        return f"Wallet(address={address!r}, owner={self._owner!r})"

    def __str__(self) -> str:
        try:
            return self.address
        except AttributeError:
            return repr(self)

    def __reduce__(self) -> tuple:
        raise TypeError("a Wallet cannot be pickled or copied: it would write out the key")
