"""pytest-benchmark: build and sign one order action, obelisk vs the official SDK.

Run with --benchmark-enable to time them; by default each body runs once as a test and
its assertion (both sign the same bytes into the same signature) still applies.
"""

import pytest

from obelisk.hyperliquid.signing import recover_agent_or_user_from_l1_action, sign_l1_action
from obelisk.hyperliquid.wallet import Wallet
from obelisk.hyperliquid.wire import Cloid, order_request_to_order_wire, order_wires_to_order_action
from obelisk.perf.rows.signing import CLOID, KEY, NONCE, ORDER

sdk = pytest.importorskip("hyperliquid.utils.signing")
sdk_types = pytest.importorskip("hyperliquid.utils.types")
eth_account = pytest.importorskip("eth_account")


def our_action() -> dict:
    return order_wires_to_order_action(
        [order_request_to_order_wire(dict(ORDER, cloid=Cloid.from_int(CLOID)), 4)])


def ours() -> dict:
    return sign_l1_action(WALLET, our_action(), None, NONCE, None, True)


def theirs() -> dict:
    action = sdk.order_wires_to_order_action(
        [sdk.order_request_to_order_wire(dict(ORDER, cloid=sdk_types.Cloid.from_int(CLOID)), 4)])
    return sdk.sign_l1_action(ACCOUNT, action, None, NONCE, None, True)


WALLET = Wallet(KEY)
ACCOUNT = eth_account.Account.from_key(KEY)


@pytest.mark.benchmark(group="sign order")
def test_obelisk_build_and_sign(benchmark):
    signature = benchmark(ours)
    assert recover_agent_or_user_from_l1_action(our_action(), signature, None, NONCE, None,
                                                True) == ACCOUNT.address


@pytest.mark.benchmark(group="sign order")
def test_sdk_build_and_sign(benchmark):
    assert benchmark(theirs) == ours()
