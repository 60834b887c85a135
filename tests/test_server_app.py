"""`obelisk serve` over HTTP: the official SDK against it, the admin door, limits and a fuzz.

Every test talks to a real server on 127.0.0.1 (a thread, or a child process for
the command line); nothing is mocked.
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import signal
import subprocess
import sys
import weakref

import pytest

pytest.importorskip("aiohttp")
requests = pytest.importorskip("requests")
eth_account = pytest.importorskip("eth_account")
hl_exchange = pytest.importorskip("hyperliquid.exchange")
from hyperliquid.info import Info  # noqa: E402
from hyperliquid.utils.error import ClientError  # noqa: E402
from hyperliquid.utils.signing import get_timestamp_ms, sign_l1_action  # noqa: E402

from obelisk.server.app import (  # noqa: E402
    RATE_LIMITED_TEXT,
    TOO_LARGE_TEXT,
    UNDECODABLE_TEXT,
    WeightBudget,
)
from obelisk.server.runner import ServerURL, keep_state_frozen, serve  # noqa: E402

TRADER = eth_account.Account.from_key("0x" + "11" * 32)
STRANGER = eth_account.Account.from_key("0x" + "22" * 32)
ROOMY = 1_000_000          # weight budget for tests that are not about the budget


def deposit(url: ServerURL, user: str, usdc: float) -> None:
    answer = requests.post(url.admin_url + "/deposit", json={"user": user, "usdc": usdc},
                           timeout=5)
    assert answer.status_code == 200, answer.text


def post(url: str, path: str, body: bytes) -> requests.Response:
    return requests.post(url + path, data=body, timeout=10,
                         headers={"Content-Type": "application/json"})


def account_state(url: str, user: str) -> tuple[object, object]:
    info = Info(url, skip_ws=True, meta={"universe": []}, spot_meta={"universe": [],
                                                                     "tokens": []})
    return info.user_state(user), info.open_orders(user)


@pytest.fixture(scope="module")
def market():
    """A sim-clock market with makers and one funded trader; nothing moves unless advanced."""
    with serve(port=0, clock="sim", makers=2, seed=7, ip_weight_per_minute=ROOMY) as url:
        deposit(url, TRADER.address, 100_000.0)
        yield url


# -- the budget itself ---------------------------------------------------------------------

def test_weight_budget_refills_at_its_rate_per_minute():
    now = [0.0]
    budget = WeightBudget(1200, now=lambda: now[0])
    budget.charge("a", 1200)
    assert not budget.admits("a") and budget.admits("b")
    assert budget.seconds_until_admitted("a") == 1
    now[0] = 30.0
    assert budget.remaining("a") == pytest.approx(600)
    now[0] = 600.0
    assert budget.remaining("a") == 1200      # never above capacity


# -- the official SDK ------------------------------------------------------------------------

def test_sdk_info_constructs_and_reads_the_market(market):
    info = Info(market, skip_ws=True)
    names = [asset["name"] for asset in info.meta()["universe"]]
    mids = info.all_mids()
    assert names and set(names) <= set(mids)
    book = info.l2_snapshot(names[0])
    assert book["coin"] == names[0] and book["levels"][0] and book["levels"][1]


def test_sdk_base_url_with_trailing_slash_posts_double_slash_paths(market):
    info = Info(market + "/", skip_ws=True)
    assert info.all_mids()


def test_sdk_places_cancels_and_market_opens_against_the_makers(market):
    exchange = hl_exchange.Exchange(TRADER, market)
    mid = float(exchange.info.all_mids()["ETH"])
    bid = round(mid * 0.9, 1)
    placed = exchange.order("ETH", True, 0.1, bid, {"limit": {"tif": "Gtc"}})
    assert placed["status"] == "ok", placed
    oid = placed["response"]["data"]["statuses"][0]["resting"]["oid"]
    assert [order["oid"] for order in exchange.info.open_orders(TRADER.address)] == [oid]
    cancelled = exchange.cancel("ETH", oid)
    assert cancelled["response"]["data"]["statuses"] == ["success"]
    assert exchange.info.open_orders(TRADER.address) == []

    opened = exchange.market_open("ETH", True, 0.1)
    filled = opened["response"]["data"]["statuses"][0]["filled"]
    assert float(filled["totalSz"]) == pytest.approx(0.1)
    positions = exchange.info.user_state(TRADER.address)["assetPositions"]
    assert [(p["position"]["coin"], float(p["position"]["szi"])) for p in positions] \
        == [("ETH", pytest.approx(0.1))]
    closed = exchange.market_close("ETH")
    assert closed["status"] == "ok", closed
    assert exchange.info.user_state(TRADER.address)["assetPositions"] == []


# -- malformed requests ----------------------------------------------------------------------

@pytest.mark.parametrize("body", [b"garbage", b'{"type": "noSuchThing"}', b"[1, 2]", b"",
                                  b'{"type": "l2Book"', b"null"])
def test_undecodable_info_bodies_get_422_plain_text(market, body):
    answer = post(market, "/info", body)
    assert (answer.status_code, answer.text) == (422, UNDECODABLE_TEXT)
    assert answer.headers["Content-Type"].startswith("text/plain")


def test_undecodable_action_bodies_get_422_and_the_sdk_raises_client_error(market):
    answer = post(market, "/exchange", b'{"action": {"type": "launchRockets"}, "nonce": 1}')
    assert (answer.status_code, answer.text) == (422, UNDECODABLE_TEXT)
    info = Info(market, skip_ws=True)
    with pytest.raises(ClientError) as raised:
        info.post("/info", {"type": "noSuchThing"})
    assert raised.value.status_code == 422 and raised.value.error_message == UNDECODABLE_TEXT


@pytest.mark.parametrize("path", ["/info", "/exchange"])
def test_bodies_over_one_mebibyte_get_413(market, path):
    huge = b'{"type": "meta", "pad": "' + b"x" * (1 << 20) + b'"}'
    answer = post(market, path, huge)
    assert (answer.status_code, answer.text) == (413, TOO_LARGE_TEXT)
    assert post(market, "/info", b'{"type": "allMids"}').status_code == 200


def test_a_client_over_its_ip_weight_gets_429_until_the_budget_refills():
    with serve(port=0, clock="sim") as url:
        statuses = [post(url, "/info", b'{"type": "meta"}').status_code for _ in range(62)]
        first_refusal = statuses.index(429)
        assert first_refusal in (60, 61)            # meta weighs 20: 1200 buys 60, +refill
        assert set(statuses[first_refusal:]) == {429}
        answer = post(url, "/exchange", b"{}")
        assert (answer.status_code, answer.text) == (429, RATE_LIMITED_TEXT)
        assert int(answer.headers["Retry-After"]) >= 1
        with pytest.raises(ClientError) as raised:
            Info(url, skip_ws=True)
        assert raised.value.status_code == 429


# -- the admin door --------------------------------------------------------------------------

def test_admin_routes_are_only_on_the_admin_listener():
    with serve(port=0, clock="sim") as url:
        assert post(url, "/deposit", json.dumps(
            {"user": TRADER.address, "usdc": 5}).encode()).status_code == 404
        assert requests.post(url.admin_url + "/exchange", json={}, timeout=5).status_code == 404
        assert url.admin_url.startswith("http://127.0.0.1:")
        health = requests.get(url.admin_url + "/health", timeout=5).json()
        assert health["status"] == "ok" and health["clock"] == "sim"
        advanced = requests.post(url.admin_url + "/advance", json={"ms": 60_000}, timeout=5)
        assert advanced.json()["time"] == health["time"] + 60_000
        refused = requests.post(url.admin_url + "/deposit", json={"user": "bob", "usdc": 1},
                                timeout=5)
        assert refused.status_code == 400


def test_advance_is_refused_on_the_real_clock():
    with serve(port=0) as url:
        answer = requests.post(url.admin_url + "/advance", json={"ms": 1000}, timeout=5)
        assert answer.status_code == 409


# -- robustness ----------------------------------------------------------------------------

def _signed_order(wallet, price: float, nonce: int) -> dict:
    action = {"type": "order", "orders": [{"a": 1, "b": True, "p": str(price), "s": "0.1",
                                           "r": False, "t": {"limit": {"tif": "Gtc"}}}],
              "grouping": "na"}
    signature = sign_l1_action(wallet, action, None, nonce, None, False)
    return {"action": action, "nonce": nonce, "signature": signature, "vaultAddress": None,
            "expiresAfter": None}


def _fuzz_bodies(valid: dict, rng: random.Random) -> list[bytes]:
    text = json.dumps(valid).encode()
    tampered = json.loads(text)
    tampered["action"]["orders"][0]["s"] = "0.2"         # signed for 0.1: another signer
    replay_nonce = dict(valid)
    foreign = _signed_order(STRANGER, 1000.0, valid["nonce"] + 1)
    zero_signature = dict(valid, signature={"r": "0x0", "s": "0x0", "v": 27})
    bodies = [text[:cut] for cut in sorted(rng.sample(range(1, len(text)), 25))]
    bodies += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
               for _ in range(25)]
    bodies += [json.dumps(body).encode() for body in (
        tampered, replay_nonce, foreign, zero_signature, {"action": None},
        {"action": {"type": "order", "orders": "x"}, "nonce": 1},
        {"action": valid["action"], "nonce": -1, "signature": valid["signature"]},
        {"action": valid["action"], "nonce": 2 ** 70, "signature": valid["signature"]},
        {"action": valid["action"], "nonce": valid["nonce"], "signature": "0xdead"},
        {"type": "clearinghouseState", "user": 5})]
    bodies += [b'{"a": ' * 5000, b"x" * (2 << 20), "\u2603".encode() * 1000]
    return bodies


def test_fuzzed_bodies_are_answered_and_change_nothing():
    rng = random.Random(15)
    with serve(port=0, clock="sim", makers=2, seed=3, ip_weight_per_minute=ROOMY) as url:
        deposit(url, TRADER.address, 50_000.0)
        valid = _signed_order(TRADER, 1000.0, get_timestamp_ms())
        first = post(url, "/exchange", json.dumps(valid).encode())
        assert first.json()["status"] == "ok", first.text
        before = account_state(url, TRADER.address), account_state(url, STRANGER.address)
        for body in _fuzz_bodies(valid, rng):
            for path in ("/exchange", "/info", "//exchange"):
                answer = post(url, path, body)
                assert answer.status_code in (200, 413, 422), (path, body[:80], answer.text)
                if answer.status_code == 200 and path != "/info":
                    assert answer.json()["status"] == "err", (body[:80], answer.text)
        after = account_state(url, TRADER.address), account_state(url, STRANGER.address)
        assert after == before
        assert Info(url, skip_ws=True).all_mids()


def test_cli_serves_until_sigterm_and_exits_cleanly(tmp_path):
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps({TRADER.address: 2500}))
    process = subprocess.Popen(
        [sys.executable, "-m", "obelisk", "serve", "--port", "0", "--clock", "sim",
         "--coins", "BTC,ETH", "--makers", "1", "--seed", "4", "--accounts", str(accounts)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        ready = process.stdout.readline()
        assert ready.startswith("obelisk serve: listening on http://127.0.0.1:"), ready
        url = ready.split()[4]
        info = Info(url, skip_ws=True)
        assert [asset["name"] for asset in info.meta()["universe"]] == ["BTC", "ETH"]
        assert float(info.user_state(TRADER.address)["marginSummary"]["accountValue"]) == 2500
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()


def test_serve_in_a_subprocess_funds_accounts_from_a_mapping():
    with serve(port=0, clock="sim", accounts={TRADER.address: 1234.5},
               in_subprocess=True) as url:
        state = Info(url, skip_ws=True).user_state(TRADER.address)
        assert float(state["marginSummary"]["accountValue"]) == pytest.approx(1234.5)


def test_the_server_process_collects_new_cycles_then_freezes_what_lives():
    """What `obelisk serve` does to its collector every few ms: a cycle that died is
    collected before the freeze (not kept forever), state that lives leaves the collector's
    passes."""
    class Node:
        pass

    async def scenario():
        freezer = asyncio.get_running_loop().create_task(keep_state_frozen(interval=0.01))
        state = [[] for _ in range(1_000)]               # lives: frozen at the next tick
        node = Node()
        node.me = node                                    # a cycle, then garbage
        dead = weakref.ref(node)
        del node
        await asyncio.sleep(0.05)
        freezer.cancel()
        return dead() is None, gc.get_freeze_count(), len(state)

    try:
        collected, frozen, live = asyncio.run(scenario())
    finally:
        gc.unfreeze()
    assert collected and frozen >= live
