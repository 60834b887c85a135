"""The compiled core: order pool, L3 order book and matching. Private: import from ``obelisk``."""
