"""Signing rows of ``obelisk bench``: build and sign one order action, obelisk vs the official SDK.

Each run builds the order wire and action from the same order request and signs it as an L1
action with a fresh nonce. The SDK row appears only when ``hyperliquid-python-sdk`` is
installed. It signs through eth-account/eth-keys, which use pure-Python secp256k1 as the SDK
installs them (about 5 ms a signature) but switch to libsecp256k1 whenever ``coincurve`` is
importable, as it is next to obelisk: this row then times the SDK at its fastest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from obelisk.hyperliquid.signing import sign_l1_action
from obelisk.hyperliquid.wallet import Wallet
from obelisk.hyperliquid.wire import (
    Cloid,
    order_request_to_order_wire,
    order_wires_to_order_action,
)
from obelisk.perf.timing import BenchRow, timed_row

KEY = "0x" + "0123456789" * 6 + "0123"
NONCE = 1_700_000_000_000
ORDER = {"coin": "ETH", "is_buy": True, "sz": 0.0147, "limit_px": 1670.1, "reduce_only": False,
         "order_type": {"limit": {"tif": "Gtc"}}}
CLOID = 0x1234


def sign_orders(sign: Callable[..., object], to_wire: Callable[..., Any],
                to_action: Callable[..., Any], signer: object, order: dict,
                signatures: int) -> None:
    """`signatures` times: build the order's wire and action, and sign it with a fresh nonce."""
    for nonce in range(NONCE, NONCE + signatures):
        action = to_action([to_wire(order, 4)])
        sign(signer, action, None, nonce, None, True)


def _sdk_rows(signatures: int, repeat: int) -> list[BenchRow]:
    try:
        from eth_account import Account
        from hyperliquid.utils import signing as sdk
        from hyperliquid.utils.types import Cloid as SdkCloid
    except ImportError:
        return []
    order = dict(ORDER, cloid=SdkCloid.from_int(CLOID))

    def run(account: Any) -> None:
        sign_orders(sdk.sign_l1_action, sdk.order_request_to_order_wire,
                    sdk.order_wires_to_order_action, account, order, signatures)

    return [timed_row("official SDK: build + sign one order action", signatures, run,
                      lambda: Account.from_key(KEY), repeat)]


def signing_rows(repeat: int, signatures: int = 2_000) -> list[BenchRow]:
    """Rows for obelisk and, if it is installed, the official SDK."""
    order = dict(ORDER, cloid=Cloid.from_int(CLOID))

    def run(wallet: Wallet) -> None:
        sign_orders(sign_l1_action, order_request_to_order_wire, order_wires_to_order_action,
                    wallet, order, signatures)

    return [timed_row("obelisk: build + sign one order action", signatures, run,
                      lambda: Wallet(KEY), repeat),
            *_sdk_rows(signatures, repeat)]
