"""Hyperliquid: wire format, signing, info and exchange clients, websocket.

Requests and signatures are byte-for-byte those of the official Python SDK,
signed with libsecp256k1; the transport coalesces, caches, budgets, retries
and breaks the circuit; the websocket reconnects and resubscribes.

The names below are imported on first use, so ``import obelisk`` (which reads
l2Book frames through ``obelisk.hyperliquid.l2frames``) loads no HTTP or
websocket client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from obelisk.hyperliquid.actions import ExchangeActions, ExchangeResult, OrderOutcome
    from obelisk.hyperliquid.batch_venue import HyperliquidBatchVenue
    from obelisk.hyperliquid.exchange import AsyncExchange, Exchange
    from obelisk.hyperliquid.info import AssetDirectory, AsyncInfo, Info
    from obelisk.hyperliquid.transport import (
        MAINNET_URL,
        TESTNET_URL,
        AsyncTransport,
        Transport,
        TransportConfig,
    )
    from obelisk.hyperliquid.venue import HyperliquidVenue
    from obelisk.hyperliquid.wallet import Wallet
    from obelisk.hyperliquid.wire import Cloid
    from obelisk.hyperliquid.ws import WebsocketClient
    from obelisk.server.runner import serve

_MODULE_OF = {
    "ExchangeActions": "actions", "ExchangeResult": "actions", "OrderOutcome": "actions",
    "AsyncExchange": "exchange", "Exchange": "exchange", "HyperliquidBatchVenue": "batch_venue",
    "AssetDirectory": "info", "AsyncInfo": "info", "Info": "info",
    "MAINNET_URL": "transport", "TESTNET_URL": "transport", "AsyncTransport": "transport",
    "Transport": "transport", "TransportConfig": "transport",
    "HyperliquidVenue": "venue", "Wallet": "wallet", "Cloid": "wire", "WebsocketClient": "ws",
    "LiveLoop": "live",
    "serve": "obelisk.server.runner",      # the local exchange (pip install "obelisk[server]")
}


def __getattr__(name: str) -> object:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'obelisk.hyperliquid' has no attribute {name!r}")
    path = module if "." in module else f"obelisk.hyperliquid.{module}"
    value = getattr(importlib.import_module(path), name)
    globals()[name] = value
    return value


__all__ = ["MAINNET_URL", "TESTNET_URL", "AssetDirectory", "AsyncExchange", "AsyncInfo",
           "AsyncTransport", "Cloid", "Exchange", "ExchangeActions", "ExchangeResult",
           "HyperliquidBatchVenue", "HyperliquidVenue", "Info", "OrderOutcome", "Transport",
           "TransportConfig", "Wallet", "WebsocketClient", "serve"]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
