"""A drop-in for the official ``hyperliquid-python-sdk`` (0.24.0), run on obelisk.

Change ``from hyperliquid.X import Y`` to ``from obelisk.hyperliquid.sdk.X import Y``:
the modules (``info``, ``exchange``, ``api``, ``websocket_manager``, ``utils.signing``,
``utils.constants``, ``utils.types``, ``utils.error``), constructors, methods, arguments,
plain JSON results and exceptions are the SDK's. Underneath, requests go through
obelisk's :class:`~obelisk.hyperliquid.transport.Transport` (pooled, coalesced, cached,
rate-budgeted, retried, behind a circuit breaker) and are signed by
:mod:`obelisk.hyperliquid.signing`. The SDK itself is never imported.

This package imports nothing on its own; each module loads what it needs.
"""
