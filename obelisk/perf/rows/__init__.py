"""The benchmark rows of ``obelisk bench``, one module per component."""
