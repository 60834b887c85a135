"""The SDK's ``hyperliquid.utils``: constants, types, errors and signing helpers."""
