"""Replay the SDK suite's cassettes only: never record, never reach the network.

The suite itself (``info_test.py``, ``signing_test.py``, ``cassettes/``) is the official
SDK's, with only its ``hyperliquid...`` import lines pointed at ``obelisk.hyperliquid.sdk``.
"""

import importlib.util

import pytest

HAVE_RECORDING = importlib.util.find_spec("pytest_recording") is not None


@pytest.fixture(scope="module")
def vcr_config():
    return {"record_mode": "none"}


def pytest_collection_modifyitems(config, items):
    """Without pytest-recording the cassette tests would go to mainnet: skip them."""
    if HAVE_RECORDING:
        return
    skip = pytest.mark.skip(reason="needs pytest-recording (pip install obelisk[test])")
    for item in items:
        if item.get_closest_marker("vcr") is not None:
            item.add_marker(skip)
