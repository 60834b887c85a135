"""The live loop survives what kills or cuts a real process (issue 16, item 4), against a real
in-process `obelisk serve` on the wall clock, over loopback HTTP and websocket:

- the engine process is SIGKILLed mid-run and a new one takes over the account: recovery
  reconciles, no cloid was ever placed twice, every fill on the exchange is in the new
  ledger, and the ledger and the exchange agree;
- the websocket drops, and then the server's public endpoint goes away and comes back
  (through a loopback TCP proxy the test cuts): the loop halts, reconnects, resubscribes,
  reconciles, trades again, and its portfolio agrees with the exchange afterwards;
- the server process itself stops (its state saved with ``--state``) and starts again on
  the same port: the loop halts, reconnects, reconciles and trades on, nothing lost or
  placed twice.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("aiohttp")
requests = pytest.importorskip("requests")

from obelisk.hyperliquid import TransportConfig, Wallet  # noqa: E402
from obelisk.hyperliquid.batch_venue import oid_of_cloid  # noqa: E402
from obelisk.hyperliquid.live import LiveConfig, LiveLoop  # noqa: E402
from obelisk.risk import RiskLimits, TradingState  # noqa: E402
from obelisk.server.runner import serve  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from live_child import Churn  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CHILD = REPO / "tests" / "live_child.py"
ROOMY = 1_000_000
KEYS = (f"0x{i:064x}" for i in itertools.count(0x5EA7E0))
COINS = ("BTC", "ETH")
WAIT_S = 60.0            # generous: the machine may be busy; waits end as soon as they can


@pytest.fixture(scope="module")
def market():
    with serve(port=0, clock="real", makers=2, seed=11, coins=COINS,
               ip_weight_per_minute=ROOMY) as url:
        yield url


def admin(url, path, **body):
    answer = requests.post(url.admin_url + path, json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def info(url, kind, user, **extra):
    """A raw ``POST /info`` (no client cache in the way)."""
    answer = requests.post(url + "/info", json={"type": kind, "user": user, **extra},
                           timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def funded_wallet(url):
    key = next(KEYS)
    wallet = Wallet(key)
    admin(url, "/deposit", user=wallet.address, usdc=100_000.0)
    return key, wallet


def connect(url, strategy, wallet, session, ws_url=None, ttls=None):
    config = TransportConfig(rate_limit=ROOMY)
    if ttls is not None:
        config = TransportConfig(rate_limit=ROOMY, ttls=ttls)
    return LiveLoop.connect(strategy, wallet, url, COINS, ws_url=ws_url, session=session,
                            transport_config=config,
                            limits=RiskLimits(max_data_age_s=3_600),
                            config=LiveConfig(dead_man_s=30, renew_s=10, retry_s=0.5))


def wait_sync(condition, what, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


async def until(condition, what, timeout=WAIT_S, turn=None):
    """Wait for `condition`; with `turn` (a loop's), read it holding the turn, as whatever
    reads the engine, portfolio or risk must while the loop runs."""
    deadline = time.monotonic() + timeout
    while True:
        async with turn or contextlib.nullcontext():
            if condition():
                return
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def no_funding_paid(url, user):
    """The live loop does not follow hourly funding between reconciliations: a test that
    happened to straddle a funding time (the server's wall clock passed an hour) cannot
    compare balances, and must not wait for them to agree."""
    if info(url, "userFunding", user, startTime=0):
        pytest.skip("an hourly funding payment fell inside the test")


def assert_no_cloid_placed_twice(url, user):
    orders: dict[str, set[int]] = collections.defaultdict(set)
    for change in info(url, "historicalOrders", user):
        cloid = change["order"].get("cloid")
        if cloid is not None:
            orders[cloid].add(change["order"]["oid"])
    twice = {cloid: oids for cloid, oids in orders.items() if len(oids) > 1}
    assert not twice, f"cloids placed more than once: {twice}"
    return orders


def assert_fills_add_up(loop, fills):
    """Every fill on the exchange is in the ledger, and the positions are their sums."""
    unknown = [f["tid"] for f in fills if not loop.ledger.knows_fill(int(f["tid"]))]
    assert not unknown, f"fills the ledger never applied: {unknown}"
    for coin in COINS:
        total = sum(float(f["sz"]) * (1 if f["side"] == "B" else -1)
                    for f in fills if f["coin"] == coin)
        assert loop.portfolio.position(coin).size == pytest.approx(total, abs=1e-9)


class Idle:
    """A strategy that never trades: the new process only reconciles."""

    def on_book(self, coin, book, loop):
        pass

    def on_fills(self, report, loop):
        pass


# ------------------------------------------------------------------ 1. SIGKILL


def test_a_sigkilled_engine_is_taken_over_without_duplicates_or_lost_fills(market):
    key, wallet = funded_wallet(market)
    user = wallet.address.lower()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    child = subprocess.Popen([sys.executable, str(CHILD), market, key, "1"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             env=env, cwd=REPO)
    try:
        def trading():
            if child.poll() is not None:
                pytest.fail(f"the child exited ({child.returncode}): {child.stderr.read()}")
            return (len(info(market, "userFills", user)) >= 10
                    and info(market, "openOrders", user))

        wait_sync(trading, "the child to trade")
    finally:
        child.send_signal(signal.SIGKILL)          # mid-run: no clean stop, nothing flushed
        child.wait(timeout=30)
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    left_open = {o["oid"] for o in info(market, "openOrders", user)}
    assert left_open, "the child left resting orders (the dead man's switch has not fired)"
    placed = assert_no_cloid_placed_twice(market, user)
    assert placed and all(oid_of_cloid(cloid, 1) is not None for cloid in placed)

    async def main():
        loop = await connect(market, Idle(), wallet, session=2)   # engine oids restart at 1
        assert loop.risk.state == TradingState.HALTED
        report = await loop.start()
        try:
            assert report.passed and loop.risk.state == TradingState.ACTIVE
            # the dead process's orders are unknown to this one: cancelled as orphans
            cancelled = {a.payload.oid for a in report.executed if a.kind == "cancel_orphan"}
            still = {o["oid"] for o in info(market, "openOrders", user)}
            assert left_open - still <= cancelled
            assert still == set(loop.ledger.orders), "the exchange holds orders the loop " \
                                                     "does not know of"
            assert still == set()                    # nothing of ours: Idle never trades
            fills = info(market, "userFills", user)
            assert len(fills) >= 10
            assert_fills_add_up(loop, fills)
            no_funding_paid(market, user)
            state = info(market, "clearinghouseState", user)
            assert loop.portfolio.differences(state) == []
            assert loop.portfolio.position("BTC").size != 0 or fills
            after = assert_no_cloid_placed_twice(market, user)
            assert after.keys() == placed.keys()     # the new session placed nothing
        finally:
            await loop.stop()

    asyncio.run(main())
    assert info(market, "openOrders", user) == []


# ------------------------------------------------------------------ 2. the connection


class Proxy:
    """A loopback TCP proxy on its own thread that the test can cut: ``drop()`` aborts every
    connection through it, ``down()`` also stops listening until ``up()``."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server = None
        self._pipes: set[asyncio.Transport] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.up()

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    def up(self):
        async def listen():
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
            self.port = self._server.sockets[0].getsockname()[1]
        self._call(listen())

    def down(self):
        async def close():
            self._server.close()
            await self._server.wait_closed()
            self._abort()
        self._call(close())

    def drop(self):
        async def drop():
            self._abort()
        self._call(drop())

    def close(self):
        self.down()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _abort(self):
        for transport in list(self._pipes):
            transport.abort()
        self._pipes.clear()

    async def _handle(self, reader, writer):
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._pipes |= {writer.transport, up_writer.transport}

        async def pipe(source, sink):
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                sink.transport.abort()
                self._pipes.discard(sink.transport)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


class Counting(Churn):
    """Churn that can be paused and counts the books and fills it is told about."""

    def __init__(self):
        super().__init__()
        self.paused = False
        self.books = 0
        self.fills = 0

    def on_book(self, coin, book, loop):
        self.books += 1
        if not self.paused:
            super().on_book(coin, book, loop)

    def on_fills(self, report, loop):
        self.fills += len(report.fills)


def test_the_loop_reconnects_resubscribes_and_reconciles_after_drops(market):
    _, wallet = funded_wallet(market)
    user = wallet.address.lower()
    port = int(market.rsplit(":", 1)[1])
    http, ws = Proxy(port), Proxy(port)

    async def main():
        strategy = Counting()
        loop = await connect(f"http://127.0.0.1:{http.port}", strategy, wallet, session=3,
                             ws_url=f"ws://127.0.0.1:{ws.port}/ws")
        states = []
        set_state = loop.risk.set_state

        def spy(state):                 # record every transition, change nothing
            if not states or states[-1] != state:
                states.append(state)
            set_state(state)

        loop.risk.set_state = spy
        await loop.start()
        try:
            async def survives(cut, restore=None):
                await until(lambda: strategy.fills >= 4, "fills")
                connects, passes = loop.websocket.connects, len(loop.recovery.history)
                books, fills = strategy.books, strategy.fills
                del states[:]
                await asyncio.to_thread(cut)
                if restore is not None:
                    await until(lambda: loop.risk.state == TradingState.HALTED, "a halt",
                                turn=loop.turn())
                    await asyncio.sleep(1.0)          # the endpoint stays away a while
                    await asyncio.to_thread(restore)
                await until(lambda: loop.websocket.connects > connects and loop.trading
                            and len(loop.recovery.history) > passes, "reconnected, reconciled")
                assert states[0] == TradingState.HALTED and states[-1] == TradingState.ACTIVE
                assert loop.recovery.history[-1].passed
                # resubscribed: books and the account's own fills flow again
                await until(lambda: strategy.books > books and strategy.fills > fills,
                            "books and fills after the reconnect")
                strategy.paused = True
                await settle()
                strategy.paused = False
                strategy.fills = 0

            async def settle():
                def agrees():
                    # every fill the exchange lists has reached the ledger (a fill made just
                    # before the pause may still be on its way), and the portfolio agrees
                    no_funding_paid(market, user)       # else they cannot agree: skip
                    loop.engine.poll()
                    listed = info(market, "userFills", user)
                    return all(loop.ledger.knows_fill(int(f["tid"])) for f in listed) and \
                        not loop.portfolio.differences(info(market, "clearinghouseState", user))
                await until(agrees, "the ledger and the portfolio to agree with the exchange",
                            turn=loop.turn())

            await until(lambda: strategy.fills >= 4, "fills")
            strategy.paused = True
            await settle()
            strategy.paused = False
            await survives(ws.drop)                      # the websocket drops
            await survives(lambda: (http.down(), ws.down()),  # the endpoint restarts
                           lambda: (http.up(), ws.up()))
            strategy.paused = True
            await settle()
            no_funding_paid(market, user)
            async with loop.turn():
                assert loop.portfolio.differences(
                    info(market, "clearinghouseState", user)) == []
                assert_fills_add_up(loop, info(market, "userFills", user))
            assert_no_cloid_placed_twice(market, user)
        finally:
            await loop.stop()
        assert info(market, "openOrders", user) == []

    try:
        asyncio.run(main())
    finally:
        http.close()
        ws.close()


def test_the_loop_goes_on_through_a_restart_of_the_server_itself(tmp_path):
    """The exchange process stops (SIGTERM: its state is saved) and starts again on the
    same port from that state: the loop halts, reconnects, resubscribes, reconciles and
    trades on, and nothing is lost or placed twice."""
    options = dict(in_subprocess=True, clock="real", makers=2, seed=12, coins=COINS,
                   ip_weight_per_minute=ROOMY, state=tmp_path / "exchange.state")
    running = [serve(port=0, **options)]
    url = running[0].__enter__()
    port = int(url.rsplit(":", 1)[1])
    _, wallet = funded_wallet(url)
    user = wallet.address.lower()

    async def main():
        strategy = Counting()
        loop = await connect(url, strategy, wallet, session=5)
        states = []
        set_state = loop.risk.set_state

        def spy(state):
            if not states or states[-1] != state:
                states.append(state)
            set_state(state)

        loop.risk.set_state = spy
        await loop.start()
        try:
            await until(lambda: strategy.fills >= 4, "fills")
            connects, passes = loop.websocket.connects, len(loop.recovery.history)
            books, fills = strategy.books, strategy.fills
            del states[:]
            await asyncio.to_thread(running.pop().__exit__, None, None, None)
            assert options["state"].exists()          # saved with the loop's socket open
            await until(lambda: loop.risk.state == TradingState.HALTED, "a halt",
                        turn=loop.turn())
            running.append(serve(port=port, **options))
            await asyncio.to_thread(running[-1].__enter__)
            await until(lambda: loop.websocket.connects > connects and loop.trading
                        and len(loop.recovery.history) > passes, "reconnected, reconciled")
            assert states[0] == TradingState.HALTED and states[-1] == TradingState.ACTIVE
            assert loop.recovery.history[-1].passed
            await until(lambda: strategy.books > books and strategy.fills > fills,
                        "books and fills from the restarted server")
            strategy.paused = True

            def agrees():
                no_funding_paid(url, user)               # else they cannot agree: skip
                loop.engine.poll()
                listed = info(url, "userFills", user)
                return all(loop.ledger.knows_fill(int(f["tid"])) for f in listed) and \
                    not loop.portfolio.differences(info(url, "clearinghouseState", user))
            await until(agrees, "the ledger and the portfolio to agree with the exchange",
                        turn=loop.turn())
            no_funding_paid(url, user)
            async with loop.turn():
                assert_fills_add_up(loop, info(url, "userFills", user))
            assert_no_cloid_placed_twice(url, user)
        finally:
            await loop.stop()
        assert info(url, "openOrders", user) == []

    try:
        asyncio.run(main())
    finally:
        for server in running:
            server.__exit__(None, None, None)


def test_a_reconciliation_after_trading_does_not_resync_to_a_stale_state(market):
    """Recovery's reads are never cached: even with the account's state cached for 30 s
    (the race the default 1 s left open, made certain), a pass after trading resyncs to
    the exchange's present, not to a snapshot from before the fills."""
    _, wallet = funded_wallet(market)
    user = wallet.address.lower()

    async def main():
        strategy = Counting()
        loop = await connect(market, strategy, wallet, session=4,
                             ttls={**TransportConfig().ttls, "clearinghouseState": 30.0})
        await loop.start()                # its pass caches the state before any trade
        try:
            await until(lambda: strategy.fills >= 2, "fills")
            strategy.paused = True
            await until(lambda: not loop.portfolio.differences(
                info(market, "clearinghouseState", user)) or loop.engine.poll(),
                "the fills to be applied", turn=loop.turn())
            report = await loop.reconcile()          # e.g. after a reconnect
            assert report.passed
            state = info(market, "clearinghouseState", user)
            assert loop.portfolio.differences(state) == []
        finally:
            await loop.stop()

    asyncio.run(main())
