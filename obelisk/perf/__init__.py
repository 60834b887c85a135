"""Measurement: ``obelisk bench`` (one rows module per component) and ``obelisk stress``."""
