"""Hyperliquid: wire format, signing, info and exchange clients, websocket."""
