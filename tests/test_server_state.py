"""`obelisk serve --state FILE`: a server stopped and started again is the same exchange.

Real processes on loopback: the official SDK trades against a server, the server is
stopped (SIGTERM) and started again from its state file, and everything the account
had (balance, position, resting orders, fills, spent nonces) is there; the market
goes on from where it was.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("aiohttp")
requests = pytest.importorskip("requests")
eth_account = pytest.importorskip("eth_account")
websocket = pytest.importorskip("websocket")
from hyperliquid.exchange import Exchange as SdkExchange  # noqa: E402
from hyperliquid.info import Info as SdkInfo  # noqa: E402

from obelisk.server.runner import serve  # noqa: E402
from obelisk.server.state import HEADER  # noqa: E402

ROOMY = 1_000_000


def post(url, body):
    return requests.post(url + "/info", json=body, timeout=5).json()


def account_view(url, user):
    """What the exchange says of `user`, with the fields that move with the market left out."""
    state = post(url, {"type": "clearinghouseState", "user": user})
    positions = [{k: p["position"][k] for k in ("coin", "szi", "entryPx")}
                 for p in state["assetPositions"]]
    orders = sorted((o["oid"], o["coin"], o["limitPx"], o["sz"])
                    for o in post(url, {"type": "openOrders", "user": user}))
    fills = [(f["tid"], f["px"], f["sz"]) for f in post(url, {"type": "userFills", "user": user})]
    return positions, orders, fills, state["crossMarginSummary"]["totalRawUsd"]


def test_a_restarted_server_is_the_same_exchange(tmp_path):
    state = tmp_path / "exchange.state"
    wallet = eth_account.Account.from_key("0x" + "5a" * 32)
    with serve(port=0, in_subprocess=True, makers=2, seed=3, coins=("BTC", "ETH"),
               ip_weight_per_minute=ROOMY, state=state) as url:
        requests.post(url.admin_url + "/deposit", json={"user": wallet.address, "usdc": 50_000},
                      timeout=5).raise_for_status()
        watcher = websocket.create_connection(url.replace("http", "ws", 1) + "/ws", timeout=5)
        watcher.send(json.dumps({"method": "subscribe",
                                 "subscription": {"type": "l2Book", "coin": "BTC"}}))
        exchange = SdkExchange(wallet, url)
        sent = []
        post_as_sdk = exchange.post
        exchange.post = lambda path, body: (sent.append(body), post_as_sdk(path, body))[1]
        mid = float(SdkInfo(url, skip_ws=True).all_mids()["BTC"])
        assert exchange.market_open("BTC", True, 0.01)["status"] == "ok"
        resting = exchange.order("BTC", True, 0.01, round(mid * 0.9), {"limit": {"tif": "Gtc"}})
        oid = resting["response"]["data"]["statuses"][0]["resting"]["oid"]
        before = account_view(url, wallet.address)
        # a subscriber still connected when the server stops: its socket is not state
    watcher.close()
    assert state.read_bytes().startswith(HEADER)
    with serve(port=0, in_subprocess=True, ip_weight_per_minute=ROOMY, state=state) as url:
        after = account_view(url, wallet.address)
        assert after == before and oid in [o[0] for o in after[1]]
        replayed = requests.post(url + "/exchange", json=sent[-1], timeout=5).json()
        assert replayed["status"] == "err" and "nonce" in replayed["response"].lower()
        assert account_view(url, wallet.address) == before      # the replay changed nothing
        exchange = SdkExchange(wallet, url)
        cancelled = exchange.cancel("BTC", oid)           # the order is live, not a copy
        assert cancelled["response"]["data"]["statuses"] == ["success"]
        assert exchange.market_close("BTC")["status"] == "ok"
        positions, orders, fills, _ = account_view(url, wallet.address)
        assert positions == [] and orders == [] and len(fills) > len(before[2])


def test_a_file_that_is_not_a_state_is_one_line_and_exit_2(tmp_path):
    bogus = tmp_path / "exchange.state"
    bogus.write_text("{}\n")
    done = subprocess.run([sys.executable, "-m", "obelisk", "serve", "--port", "0",
                           "--state", str(bogus)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("obelisk serve: error: argument --state: ")
    assert "is not an obelisk serve state file" in done.stderr
