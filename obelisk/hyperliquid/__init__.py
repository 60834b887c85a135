"""Hyperliquid: wire format, signing, info and exchange clients, websocket.

Requests and signatures are byte-for-byte those of the official Python SDK,
signed with libsecp256k1; the transport coalesces, caches, budgets, retries
and breaks the circuit; the websocket reconnects and resubscribes.
"""

from obelisk.hyperliquid.actions import ExchangeActions, ExchangeResult, OrderOutcome
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

__all__ = ["MAINNET_URL", "TESTNET_URL", "AssetDirectory", "AsyncExchange", "AsyncInfo",
           "AsyncTransport", "Cloid", "Exchange", "ExchangeActions", "ExchangeResult",
           "HyperliquidVenue", "Info",
           "OrderOutcome", "Transport", "TransportConfig", "Wallet", "WebsocketClient"]
