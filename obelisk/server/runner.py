"""Start and stop the local exchange: from the command line, in-process or as a subprocess.

The public app and the admin app share one event loop, and therefore one
thread, with the exchange: that single thread is what keeps the exchange free of
locks. `serve` runs that loop on a background thread (or in a child process)
and yields the base URL to point a client at::

    with serve(coins=("BTC", "ETH"), makers=2) as url:
        info = hyperliquid.info.Info(url, skip_ws=True)
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from obelisk.server.admin import create_admin_app
from obelisk.server.app import IP_WEIGHT_PER_MINUTE, WS_IDLE_TIMEOUT_S, create_app
from obelisk.server.clock import RealClock, SimClock
from obelisk.server.exchange import LocalExchange
from obelisk.server.state import load_state, save_state

log = logging.getLogger(__name__)

ADMIN_HOST = "127.0.0.1"
SHUTDOWN_TIMEOUT_S = 5.0
_READY_LINE = re.compile(r"obelisk serve: listening on (\S+) \(admin (\S+)\)")


@dataclass(frozen=True)
class ServerConfig:
    """Everything `obelisk serve` is started with.

    `port` and `admin_port` 0 pick free ports. `coins` and `makers` None leave the
    exchange's defaults. `accounts` maps addresses to the USDC they start with. `state`
    is a file the exchange is loaded from when it exists (the market options then do
    not apply) and saved to when the server stops.
    """

    host: str = "127.0.0.1"
    port: int = 3001
    admin_port: int = 0
    coins: tuple[str, ...] | None = None
    seed: int = 0
    makers: int | None = None
    accounts: Mapping[str, float] = field(default_factory=dict)
    clock: Literal["real", "sim"] = "real"
    ip_weight_per_minute: int = IP_WEIGHT_PER_MINUTE
    ws_idle_timeout: float = WS_IDLE_TIMEOUT_S
    state: str | None = None


class ServerURL(str):
    """The public base URL (a plain ``str`` for any client), carrying the admin URL too."""

    admin_url: str

    def __new__(cls, url: str, admin_url: str) -> ServerURL:
        self = super().__new__(cls, url)
        self.admin_url = admin_url
        return self


def load_accounts(path: str | Path) -> dict[str, float]:
    """Read an accounts file: a JSON object of address -> starting USDC."""
    accounts = json.loads(Path(path).read_text())
    if not isinstance(accounts, dict) or not all(
            isinstance(usdc, (int, float)) and not isinstance(usdc, bool)
            for usdc in accounts.values()):
        raise ValueError(f"{path}: expected a JSON object of address -> USDC amount")
    return {str(user): float(usdc) for user, usdc in accounts.items()}


def build_exchange(config: ServerConfig) -> LocalExchange:
    """The exchange `config` describes, with its accounts funded, or the one its state
    file holds."""
    if config.state is not None and Path(config.state).exists():
        exchange = load_state(config.state)
        log.info("exchange loaded from %s: %d accounts, %d open orders", config.state,
                 len(exchange.accounts), sum(len(a.orders) for a in exchange.accounts.values()))
        return exchange
    real = RealClock()
    # A simulated clock starts at the wall clock's now, so that nonces a client takes from
    # its own clock (the SDK's) fall in the exchange's nonce window until time is advanced.
    clock = SimClock(real.now_ms()) if config.clock == "sim" else real
    options: dict[str, Any] = {"seed": config.seed, "accounts": dict(config.accounts),
                               "clock": clock}
    if config.coins is not None:
        options["coins"] = list(config.coins)
    if config.makers is not None:
        options["makers"] = config.makers
    return LocalExchange(**options)


class RunningServer:
    """Both applications bound and serving on the current event loop."""

    def __init__(self, public: web.AppRunner, admin: web.AppRunner, url: ServerURL,
                 exchange: LocalExchange, state: str | None) -> None:
        self._runners = (public, admin)
        self.url = url
        self.exchange = exchange
        self._state = state

    @classmethod
    async def start(cls, config: ServerConfig) -> RunningServer:
        exchange = build_exchange(config)
        public = web.AppRunner(create_app(exchange,
                                          ip_weight_per_minute=config.ip_weight_per_minute,
                                          ws_idle_timeout=config.ws_idle_timeout),
                               access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        admin = web.AppRunner(create_admin_app(exchange), access_log=None,
                              shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await public.setup()
        await admin.setup()
        try:
            port = await _bind(public, config.host, config.port)
            admin_port = await _bind(admin, ADMIN_HOST, config.admin_port)
        except BaseException:
            await public.cleanup()
            await admin.cleanup()
            raise
        host = f"[{config.host}]" if ":" in config.host else config.host
        return cls(public, admin, ServerURL(f"http://{host}:{port}",
                                            f"http://{ADMIN_HOST}:{admin_port}"),
                   exchange, config.state)

    async def stop(self) -> None:
        """Graceful shutdown: stop listening, close sockets, let requests in flight finish;
        then save the exchange when it has a state file."""
        for runner in self._runners:
            await runner.cleanup()
        if self._state is not None:
            save_state(self.exchange, self._state)
            log.info("exchange saved to %s", self._state)


async def _bind(runner: web.AppRunner, host: str, port: int) -> int:
    await web.TCPSite(runner, host, port).start()
    return int(runner.addresses[0][1])         # the port actually bound when `port` is 0


def run_process(config: ServerConfig, ready: Callable[[ServerURL], None]) -> None:
    """`obelisk serve`'s main: serve until SIGINT or SIGTERM, on uvloop's event loop when it
    is installed (``obelisk[server]`` installs it where it exists): it spends about a
    seventh less CPU per request than asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(run_until_stopped(config, ready))
    else:
        uvloop.run(run_until_stopped(config, ready))


async def run_until_stopped(config: ServerConfig, ready: Callable[[ServerURL], None]) -> None:
    """Serve until SIGINT or SIGTERM (the CLI's main loop); `ready` gets the URL once bound."""
    server = await RunningServer.start(config)
    _tune_collector()
    loop = asyncio.get_running_loop()
    freezer = loop.create_task(keep_state_frozen())
    stopped = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):   # not on Windows
            loop.add_signal_handler(signum, stopped.set)
    try:
        ready(server.url)
        await stopped.wait()
    finally:
        freezer.cancel()
        await server.stop()


FREEZE_INTERVAL_S = 0.1


def _tune_collector() -> None:
    """Make the cyclic garbage collector rare in a server process. The exchange keeps its
    open orders and its recent orders, fills and status changes, none of them in a cycle; at
    the default thresholds the collector walks that state again and again (about a tenth of
    the order path).
    What exists once the server is up, less its garbage, is frozen out of its view for good
    (and `keep_state_frozen` freezes what comes later)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


async def keep_state_frozen(interval: float = FREEZE_INTERVAL_S) -> None:
    """Every `interval` seconds, collect the garbage cycles among what is new, then freeze
    the rest. Left to the collector, the state that accumulates (~2 tracked objects per
    order) is walked at each pass: at 20,000 orders/s, 18 ms every second in the youngest
    generation and 0.8 s once a minute in the next. Frozen, each pause is a few ms, and
    never grows. Objects frozen alive are still freed by their reference counts; only a
    cycle still alive at a freeze that dies later stays: measured, about 240 objects per
    closed connection and none per order (``obelisk stress --venue local``, 10,000 and
    200,000 orders)."""
    while True:
        await asyncio.sleep(interval)
        gc.collect(1)
        gc.freeze()


class _ServerThread:
    """The server's event loop on a daemon thread, for tests and notebooks."""

    def __init__(self, config: ServerConfig) -> None:
        self._config = config
        self._loop = asyncio.new_event_loop()
        self._bound = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._server: RunningServer | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="obelisk-serve", daemon=True)

    def start(self) -> ServerURL:
        self._thread.start()
        self._bound.wait()
        if self._server is None:
            raise RuntimeError("obelisk serve failed to start") from self._error
        return self._server.url

    def stop(self) -> None:
        if self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        try:
            self._stopped = asyncio.Event()
            self._server = await RunningServer.start(self._config)
        except BaseException as error:
            self._error = error
            return
        finally:
            self._bound.set()
        try:
            await self._stopped.wait()
        finally:
            await self._server.stop()


@contextlib.contextmanager
def _in_process(config: ServerConfig) -> Iterator[ServerURL]:
    thread = _ServerThread(config)
    url = thread.start()
    try:
        yield url
    finally:
        thread.stop()


@contextlib.contextmanager
def _as_subprocess(config: ServerConfig) -> Iterator[ServerURL]:
    with tempfile.TemporaryDirectory() as scratch:
        command = [sys.executable, "-m", "obelisk", "serve", "--host", config.host,
                   "--port", str(config.port), "--admin-port", str(config.admin_port),
                   "--seed", str(config.seed), "--clock", config.clock,
                   "--ip-weight", str(config.ip_weight_per_minute)]
        if config.coins is not None:
            command += ["--coins", ",".join(config.coins)]
        if config.makers is not None:
            command += ["--makers", str(config.makers)]
        if config.state is not None:
            command += ["--state", config.state]
        if config.accounts:
            accounts = Path(scratch, "accounts.json")
            accounts.write_text(json.dumps(dict(config.accounts)))
            command += ["--accounts", str(accounts)]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        try:
            url = _await_ready_line(process)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=SHUTDOWN_TIMEOUT_S + 5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()


def _await_ready_line(process: subprocess.Popen[str]) -> ServerURL:
    assert process.stdout is not None
    for line in process.stdout:
        match = _READY_LINE.search(line)
        if match:
            return ServerURL(match.group(1), match.group(2))
    raise RuntimeError(f"obelisk serve exited ({process.wait()}) before listening")


def ready_line(url: ServerURL) -> str:
    """What the CLI prints once bound; `serve(in_subprocess=True)` waits for it."""
    return f"obelisk serve: listening on {url} (admin {url.admin_url})"


def serve(*, host: str = "127.0.0.1", port: int = 3001, admin_port: int = 0,
          coins: tuple[str, ...] | list[str] | None = None, seed: int = 0,
          makers: int | None = None, accounts: Mapping[str, float] | str | Path | None = None,
          clock: Literal["real", "sim"] = "real",
          ip_weight_per_minute: int = IP_WEIGHT_PER_MINUTE,
          ws_idle_timeout: float = WS_IDLE_TIMEOUT_S, in_subprocess: bool = False,
          state: str | Path | None = None) -> contextlib.AbstractContextManager[ServerURL]:
    """Run the local exchange for the duration of a ``with`` block; yields its base URL.

    Parameters
    ----------
    host, port
        Where the public API listens (port 0 picks a free port).
    admin_port
        The loopback-only admin port (0 picks a free port); see ``url.admin_url``.
    coins, seed, makers
        The market: listed coins, the seed of its random walk and makers, and how
        many seeded market makers quote (None: the exchange's defaults).
    accounts
        Address -> starting USDC, or the path of a JSON file holding that mapping.
    clock
        "real" steps the market every 100 ms; "sim" only when ``POST /advance`` is called.
    ip_weight_per_minute
        The per-IP request weight budget (Hyperliquid's is 1200).
    ws_idle_timeout
        Seconds a silent websocket is kept open (Hyperliquid: 60); in-process only.
    in_subprocess
        Run ``python -m obelisk serve`` in a child process instead of a thread.
    state
        A file the exchange is loaded from when it exists (the market options above
        then do not apply) and saved to when the server stops: a server started again
        with it is the same exchange (accounts, orders, fills, nonces).
    """
    if accounts is None:
        funded: Mapping[str, float] = {}
    elif isinstance(accounts, (str, Path)):
        funded = load_accounts(accounts)
    else:
        funded = accounts
    config = ServerConfig(host=host, port=port, admin_port=admin_port,
                          coins=tuple(coins) if coins is not None else None, seed=seed,
                          makers=makers, accounts=dict(funded), clock=clock,
                          ip_weight_per_minute=ip_weight_per_minute,
                          ws_idle_timeout=ws_idle_timeout,
                          state=None if state is None else str(state))
    return _as_subprocess(config) if in_subprocess else _in_process(config)
