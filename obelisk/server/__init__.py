"""A local Hyperliquid-compatible exchange: ``obelisk serve``.

`LocalExchange` is the exchange itself (accounts, books, orders, funding,
liquidation); the network layer serves it over Hyperliquid's HTTP and websocket
API so that the official SDK, obelisk's clients and any bot trade against it
unchanged on 127.0.0.1.
"""

from obelisk.server.clock import RealClock, SimClock
from obelisk.server.exchange import LocalExchange, Undecodable

__all__ = ["LocalExchange", "RealClock", "SimClock", "Undecodable"]
