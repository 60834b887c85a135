"""Simulated venues on the compiled core: the sharded `MatchingEngine`, `SimBatchVenue` for
the trading engine and `SimVenue` for recovery."""
