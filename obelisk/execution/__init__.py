"""The execution seam: what a venue is (`Venue`, `BatchVenue`), the engine that drives any
of them, the order ledger and position recovery. Imports nothing from `sim` or `hyperliquid`;
they implement these protocols."""
