"""``python -m obelisk.perf.sdk_dropin``: the SDK drop-in against the official SDK.

Two measurements, each printed next to its goal (issue 17):

1. Import time of ``obelisk.hyperliquid.sdk.exchange`` and of ``hyperliquid.exchange``,
   each in fresh interpreters (best and median of ``--runs``), and the same with one
   ``Exchange`` constructed (no network: ``meta`` and ``spot_meta`` given). Each also
   in a "minimal" environment without the optional packages httpx and httpcore load
   when present (trio, anyio, click, pygments, rich). Goal: a third or less of the
   SDK's import time.
2. ``sign_l1_action`` per second for an order action, in this process, for the SDK
   (eth-account) and for ``obelisk.hyperliquid.sdk.utils.signing`` given an eth-account
   ``LocalAccount`` (converted on every call) and an obelisk ``Wallet`` (what
   ``Exchange`` signs with).

Not a timed test: run it by hand, on a quiet machine.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

KEY = "0x" + "1f" * 32
OURS = "obelisk.hyperliquid.sdk.exchange"
THEIRS = "hyperliquid.exchange"
_CONSTRUCT = """
M = {{"universe": [{{"name": "BTC", "szDecimals": 5}}]}}
S = {{"universe": [], "tokens": []}}
wallet = {wallet}
{module}.Exchange(wallet, "http://127.0.0.1:9", M, spot_meta=S)
"""


# Packages httpx and httpcore import when they happen to be installed (its CLI, trio
# support); "minimal" runs pretend they are not, as in an environment holding only
# obelisk's own dependencies.
OPTIONAL = ("trio", "anyio", "click", "pygments", "rich")


def _fresh_seconds(module: str, construct: bool, minimal: bool, env: dict[str, str]) -> float:
    """Seconds a fresh interpreter takes to import `module` (and build one Exchange)."""
    code = "import sys, time\n"
    if minimal:
        code += f"sys.modules.update(dict.fromkeys({OPTIONAL!r}))\n"
    code += f"t = time.perf_counter()\nimport {module}\n"
    if construct:
        wallet = (f"{KEY!r}" if module == OURS
                  else f"__import__('eth_account').Account.from_key({KEY!r})")
        code += _CONSTRUCT.format(wallet=wallet, module=module)
    code += "print(time.perf_counter() - t)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env=env)
    return float(done.stdout)


def import_times(runs: int) -> dict[tuple[str, bool, bool], list[float]]:
    """Interleaved fresh-interpreter timings, so drift hits both sides alike.

    Bytecode is cached (in a temporary ``PYTHONPYCACHEPREFIX``) and warmed first, as
    after ``pip install``, even where ``PYTHONDONTWRITEBYTECODE`` is set: otherwise
    obelisk's modules would be compiled on every run and the SDK's not.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    times: dict[tuple[str, bool, bool], list[float]] = {}
    with tempfile.TemporaryDirectory() as cache:
        env["PYTHONPYCACHEPREFIX"] = cache
        for module in (OURS, THEIRS):
            _fresh_seconds(module, True, False, env)
        for _ in range(runs):
            for key in itertools.product((OURS, THEIRS), (False, True), (False, True)):
                times.setdefault(key, []).append(_fresh_seconds(*key, env))
    return times


def _rate(sign: Callable[[int], object], seconds: float) -> float:
    """Calls of `sign(nonce)` per second over about `seconds`, best of three rounds."""
    best = 0.0
    for _ in range(3):
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / 3:
            for nonce in range(count, count + 50):
                sign(nonce)
            count += 50
        best = max(best, count / elapsed)
    return best


def signing_rates(seconds: float) -> dict[str, float]:
    import eth_account
    from hyperliquid.utils import signing as sdk_signing

    from obelisk.hyperliquid.sdk.utils import signing as our_signing
    from obelisk.hyperliquid.wallet import Wallet

    order: our_signing.OrderRequest = {
        "coin": "ETH", "is_buy": True, "sz": 0.0147, "limit_px": 1670.1, "reduce_only": False,
        "order_type": {"limit": {"tif": "Gtc"}}}
    action = our_signing.order_wires_to_order_action(
        [our_signing.order_request_to_order_wire(order, 4)])
    account, wallet = eth_account.Account.from_key(KEY), Wallet(KEY)
    assert sdk_signing.sign_l1_action(account, action, None, 7, None, True) == \
        our_signing.sign_l1_action(wallet, action, None, 7, None, True)
    return {
        "sdk (eth-account)": _rate(
            lambda n: sdk_signing.sign_l1_action(account, action, None, n, None, True), seconds),
        "obelisk, LocalAccount": _rate(
            lambda n: our_signing.sign_l1_action(account, action, None, n, None, True), seconds),
        "obelisk, Wallet": _rate(
            lambda n: our_signing.sign_l1_action(wallet, action, None, n, None, True), seconds),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh interpreters per timing")
    parser.add_argument("--seconds", type=float, default=3.0, help="signing time per row")
    options = parser.parse_args(argv)

    times = import_times(options.runs)
    print(f"import time, fresh interpreters, ms (best / median of {options.runs}):")
    for minimal, construct in itertools.product((False, True), (False, True)):
        label = ("import + one Exchange" if construct else "import") + \
            (", minimal env" if minimal else "")
        ours, theirs = times[(OURS, construct, minimal)], times[(THEIRS, construct, minimal)]
        ratio = min(ours) / min(theirs)
        print(f"  {label:35} obelisk {min(ours) * 1e3:5.0f} / {statistics.median(ours) * 1e3:5.0f}"
              f"   sdk {min(theirs) * 1e3:5.0f} / {statistics.median(theirs) * 1e3:5.0f}"
              f"   ratio {ratio:.2f} (goal <= 0.33: {'met' if ratio <= 1 / 3 else 'not met'})")

    rates = signing_rates(options.seconds)
    sdk_rate = rates["sdk (eth-account)"]
    print("sign_l1_action per second (an order action), this process:")
    for name, rate in rates.items():
        print(f"  {name:22} {rate:10,.0f}/s   x{rate / sdk_rate:5.1f}")


if __name__ == "__main__":
    main()
