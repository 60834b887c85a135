"""``python -m obelisk.perf.serve``: `obelisk serve` under load, judged against issue 15's goals.

Three measurements, each printed next to its goal:

1. Signed orders accepted per second over HTTP: single-order ``order`` actions and
   bulk actions of 100, with 1 and with 8 concurrent clients. The server runs in a
   child process and every client in this one (one aiohttp connection each), so the
   two do not share a GIL. Every body is signed before the clock starts; each client
   trades from its own funded account, so nonces never collide.
2. Where one request's time goes: JSON parsing, signer recovery, the exchange's work
   (decoding, checks, matching and settlement) and the JSON answer, timed in-process
   on a `LocalExchange` with ``perf_counter`` around each phase.
3. Websocket latency from a match to the ``userFills`` frame of the taker's socket,
   as the client sees it (server and client are different processes).

The order flow is a seeded mix around each coin's mid: GTC limits resting near the
touch, and IOC orders that cross the makers' ladders and the clients' resting orders.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from obelisk.hyperliquid.signing import sign_l1_action
from obelisk.hyperliquid.wallet import Wallet
from obelisk.instruments import Instrument, Rounding
from obelisk.server.auth import Signers
from obelisk.server.clock import RealClock
from obelisk.server.exchange import LocalExchange
from obelisk.server.market import listings
from obelisk.server.runner import ServerURL, serve

# Goals of issue 15, item 9 (2 cores).
BULK_ORDERS_PER_S_GOAL = 20_000.0
SINGLE_ACTIONS_PER_S_GOAL = 1_500.0
FILL_FRAME_P99_GOAL_MS = 2.0

BENCH_IP_WEIGHT = 1_000_000_000          # per minute: far above what the run spends
DEPOSIT_USDC = 1e9                       # margin never refuses a benchmark order
BULK_SIZE = 100
JSON_HEADERS = {"Content-Type": "application/json"}
_PATTERN = (("Gtc", True), ("Gtc", False)) * 3 + (("Ioc", True), ("Ioc", False))
_PHASES = ("parse", "recover", "exchange", "answer")


@dataclass(frozen=True)
class ServeBenchConfig:
    """Sizes of one run; the defaults are the full benchmark, `QUICK` a smoke run."""

    single_actions: int = 6_000          # single-order actions per throughput row
    bulk_actions: int = 400              # bulk actions (of BULK_SIZE orders) per row
    clients: tuple[int, ...] = (1, 8)
    split_requests: int = 3_000          # single-order requests of the in-process time split
    split_bulk_requests: int = 200       # bulk requests of the in-process time split
    latency_samples: int = 500
    warmup: int = 200                    # untimed requests before the rows
    coins: tuple[str, ...] = ("BTC", "ETH", "SOL")
    makers: int = 2
    seed: int = 7


QUICK = ServeBenchConfig(single_actions=240, bulk_actions=16, split_requests=200,
                         split_bulk_requests=10, latency_samples=40, warmup=40)


@dataclass(frozen=True)
class ThroughputRow:
    """One HTTP row: pre-signed actions sent by `clients` clients, each sequentially."""

    name: str
    clients: int
    actions: int
    orders: int
    accepted: int                        # resting or (partly) filled
    refused: int                         # per-order errors and refused actions
    seconds: float
    actions_per_second: float
    orders_per_second: float             # accepted orders per second
    server_cpu: float | None             # server process CPU seconds per wall second
    client_cpu: float                    # this process's CPU seconds per wall second
    refusals: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SplitRow:
    """Mean microseconds per request in each phase, measured in-process."""

    name: str
    requests: int
    orders_per_request: int
    parse_us: float
    recover_us: float
    exchange_us: float
    answer_us: float
    book_us: float                       # of exchange_us: inside the compiled OrderBook

    @property
    def total_us(self) -> float:
        return self.parse_us + self.recover_us + self.exchange_us + self.answer_us

    def share(self, phase: str) -> float:
        return getattr(self, f"{phase}_us") / self.total_us


@dataclass(frozen=True)
class LatencyRow:
    name: str
    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass(frozen=True)
class Goal:
    name: str
    target: str
    value: str
    met: bool


@dataclass
class ServeBenchReport:
    config: ServeBenchConfig
    machine: dict[str, Any]
    throughput: list[ThroughputRow]
    split: list[SplitRow]
    latency: list[LatencyRow]
    goals: list[Goal] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for row, data in zip(self.split, out["split"], strict=True):
            data["total_us"] = row.total_us
            data["shares"] = {phase: row.share(phase) for phase in _PHASES}
        return out


# ---------------------------------------------------------------- signed order flow

def bench_wallet(seed: int, name: str) -> Wallet:
    """A deterministic key per (seed, role): runs are repeatable, accounts never shared."""
    return Wallet(hashlib.sha256(f"obelisk-perf-serve/{seed}/{name}".encode()).hexdigest())


class OrderFlow:
    """Seeded order wires around each coin's mid: three GTC bids and three GTC asks
    resting near the touch for every IOC buy and IOC sell that crosses the spread."""

    def __init__(self, instruments: Sequence[Instrument], mids: Sequence[float],
                 seed: int) -> None:
        self._instruments = list(instruments)
        self._mids = list(mids)
        self._rng = random.Random(seed)
        self._count = 0

    def order(self, tif: str | None = None, is_buy: bool | None = None) -> dict[str, Any]:
        pattern_tif, pattern_buy = _PATTERN[self._count % len(_PATTERN)]
        self._count += 1
        tif = pattern_tif if tif is None else tif
        is_buy = pattern_buy if is_buy is None else is_buy
        at = self._rng.randrange(len(self._instruments))
        instrument, mid = self._instruments[at], self._mids[at]
        if tif == "Ioc":               # through the makers' first levels
            price, rounding = mid * (1.004 if is_buy else 0.996), Rounding.DOWN
        else:                          # 3 to 20 bp behind the mid: among the makers' levels
            away = self._rng.uniform(3e-4, 2e-3)
            price = mid * (1 - away if is_buy else 1 + away)
            rounding = Rounding.DOWN if is_buy else Rounding.UP
        ticks = instrument.round_price_to_ticks(price, rounding)
        lots = instrument.round_size_to_lots(self._rng.uniform(15.0, 60.0) / mid, Rounding.UP)
        return {"a": instrument.asset, "b": is_buy, "p": instrument.price_to_wire(ticks),
                "s": instrument.size_to_wire(lots), "r": False, "t": {"limit": {"tif": tif}}}


class Signer:
    """One account's signed bodies, with strictly increasing nonces."""

    def __init__(self, wallet: Wallet) -> None:
        self.wallet = wallet
        self.address = wallet.address
        self._nonce = int(time.time() * 1000)

    def body(self, orders: list[dict[str, Any]]) -> bytes:
        action = {"type": "order", "orders": orders, "grouping": "na"}
        self._nonce += 1
        signature = sign_l1_action(self.wallet, action, None, self._nonce, None, False)
        return orjson.dumps({"action": action, "nonce": self._nonce, "signature": signature})


def presign(signer: Signer, flow: OrderFlow, actions: int, per_action: int) -> list[bytes]:
    return [signer.body([flow.order() for _ in range(per_action)]) for _ in range(actions)]


# ---------------------------------------------------------------- HTTP throughput

def _server_pid() -> int | None:
    """The pid of the `obelisk serve` child (Linux /proc), for its CPU time."""
    me = os.getpid()
    try:
        children = Path(f"/proc/{me}/task/{me}/children").read_text().split()
        for pid in children:
            if b"serve" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return int(pid)
    except OSError:
        pass
    return None


def _cpu_seconds(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _deposit(session: Any, url: ServerURL, address: str) -> None:
    async with session.post(url.admin_url + "/deposit",
                            json={"user": address, "usdc": DEPOSIT_USDC}) as response:
        if response.status != 200:
            raise RuntimeError(f"deposit failed: {response.status} {await response.text()}")


async def _mids(session: Any, url: str, coins: Sequence[str]) -> list[float]:
    async with session.post(url + "/info", json={"type": "allMids"}) as response:
        mids = await response.json()
    return [float(mids[coin]) for coin in coins]


def _tally(answers: list[bytes], orders: int) -> tuple[int, int, dict[str, int]]:
    """Accepted and refused orders in the answers, and the refusal texts counted."""
    accepted, refused = 0, 0
    texts: dict[str, int] = {}
    for raw in answers:
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError:
            answer = {"status": "err", "response": raw[:80].decode(errors="replace")}
        if not isinstance(answer, dict) or answer.get("status") != "ok":
            text = str(answer.get("response") if isinstance(answer, dict) else answer)
            texts[text[:60]] = texts.get(text[:60], 0) + 1
            refused += orders
            continue
        for status in answer["response"]["data"]["statuses"]:
            if "error" in status:
                refused += 1
                text = status["error"].split(" asset=")[0][:60]
                texts[text] = texts.get(text, 0) + 1
            else:
                accepted += 1
    return accepted, refused, texts


async def _throughput_row(aiohttp: Any, url: ServerURL, config: ServeBenchConfig,
                          name: str, clients: int, actions: int, per_action: int,
                          mids: list[float], instruments: list[Instrument],
                          server_pid: int | None) -> ThroughputRow:
    signers = [Signer(bench_wallet(config.seed, f"{name}/{clients}/{i}"))
               for i in range(clients)]
    per_client = max(1, actions // clients)
    bodies = [presign(signer, OrderFlow(instruments, mids, config.seed * 1000 + i),
                      per_client, per_action) for i, signer in enumerate(signers)]
    sessions = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))
                for _ in range(clients)]
    try:
        for signer, session in zip(signers, sessions, strict=True):
            await _deposit(session, url, signer.address)   # also opens each connection
        exchange_url = url + "/exchange"

        async def client(session: Any, mine: list[bytes]) -> list[bytes]:
            answers = []
            for body in mine:
                async with session.post(exchange_url, data=body,
                                        headers=JSON_HEADERS) as response:
                    answers.append(await response.read())
            return answers

        server_before, client_before = _cpu_seconds(server_pid), time.process_time()
        start = time.perf_counter()
        answers = await asyncio.gather(*(client(session, mine)
                                         for session, mine in zip(sessions, bodies, strict=True)))
        seconds = time.perf_counter() - start
        client_cpu = (time.process_time() - client_before) / seconds
        server_after = _cpu_seconds(server_pid)
    finally:
        for session in sessions:
            await session.close()
    sent = per_client * clients
    accepted, refused, texts = _tally([a for mine in answers for a in mine], per_action)
    server_cpu = None if server_before is None or server_after is None \
        else (server_after - server_before) / seconds
    return ThroughputRow(name, clients, sent, sent * per_action, accepted, refused, seconds,
                         sent / seconds, accepted / seconds, server_cpu, client_cpu, texts)


async def _latency_rows(aiohttp: Any, url: ServerURL, config: ServeBenchConfig,
                        mids: list[float], instruments: list[Instrument]) -> list[LatencyRow]:
    """IOC orders one at a time from a taker whose ``userFills`` socket is open."""
    taker = Signer(bench_wallet(config.seed, "latency/taker"))
    flow = OrderFlow(instruments, mids, config.seed + 99)
    warmup = 20
    total = config.latency_samples + warmup
    bodies = [taker.body([flow.order("Ioc", i % 2 == 0)]) for i in range(total)]
    sent, answered, framed = [], [], []
    # The socket has a session of its own: it holds its connection for the whole run.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session, \
            aiohttp.ClientSession() as socket_session:
        await _deposit(session, url, taker.address)
        async with socket_session.ws_connect(url + "/ws") as ws:
            await ws.receive()                                  # the greeting
            await ws.send_str(json.dumps({"method": "subscribe", "subscription": {
                "type": "userFills", "user": taker.address}}))
            frames: asyncio.Queue[tuple[float, Any]] = asyncio.Queue()

            async def read() -> None:
                async for message in ws:
                    at = time.perf_counter()
                    data = orjson.loads(message.data)
                    if data.get("channel") == "userFills" and not data["data"].get("isSnapshot"):
                        await frames.put((at, data["data"]))

            reader = asyncio.get_running_loop().create_task(read())
            await asyncio.sleep(0.2)                            # response and snapshot read
            try:
                for body in bodies:
                    start = time.perf_counter()
                    async with session.post(url + "/exchange", data=body,
                                            headers=JSON_HEADERS) as response:
                        raw = await response.read()
                    answer_at = time.perf_counter()
                    status = orjson.loads(raw)["response"]["data"]["statuses"][0]
                    if "filled" not in status:
                        raise RuntimeError(f"a latency IOC did not fill: {status}")
                    oid = status["filled"]["oid"]
                    while True:             # skip a previous order's later fill frames
                        frame_at, data = await asyncio.wait_for(frames.get(), 5.0)
                        if any(fill["oid"] == oid for fill in data["fills"]):
                            break
                    sent.append(start)
                    answered.append(answer_at)
                    framed.append(frame_at)
            finally:
                reader.cancel()
    keep = slice(warmup, None)
    return [
        _latency("request sent -> fill frame", sent[keep], framed[keep]),
        _latency("HTTP answer -> fill frame", answered[keep], framed[keep]),
        _latency("request sent -> HTTP answer", sent[keep], answered[keep]),
    ]


def _latency(name: str, starts: list[float], ends: list[float]) -> LatencyRow:
    ms = sorted((end - start) * 1e3 for start, end in zip(starts, ends, strict=True))
    return LatencyRow(name, len(ms), _percentile(ms, 0.50), _percentile(ms, 0.99), ms[-1])


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _over_http(config: ServeBenchConfig, url: ServerURL
                     ) -> tuple[list[ThroughputRow], list[LatencyRow]]:
    import aiohttp

    instruments = [x.instrument for x in listings(list(config.coins))]
    server_pid = _server_pid()
    async with aiohttp.ClientSession() as session:
        mids = await _mids(session, url, config.coins)
    rows: list[ThroughputRow] = []
    await _throughput_row(aiohttp, url, config, "warm-up", 2, config.warmup, 1, mids,
                          instruments, None)
    for name, actions, per_action in (
            ("single-order actions", config.single_actions, 1),
            (f"bulk actions of {BULK_SIZE}", config.bulk_actions, BULK_SIZE)):
        for clients in config.clients:
            rows.append(await _throughput_row(aiohttp, url, config, name, clients, actions,
                                              per_action, mids, instruments, server_pid))
    latency = await _latency_rows(aiohttp, url, config, mids, instruments)
    return rows, latency


# ---------------------------------------------------------------- in-process time split

class _TimedSigners(Signers):
    """Signers whose recovery was timed outside `act`: answers the address recovered then,
    so `act` is timed without it."""

    recovered = ""

    def l1_signer(self, body: Any) -> str:
        return self.recovered


class _TimedBook:
    """An OrderBook whose every call adds its time to `seconds` (the compiled share)."""

    def __init__(self, book: Any, clock: list[float]) -> None:
        self._book = book
        self._clock = clock

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._book, name)
        if not callable(value):
            return value
        clock = self._clock

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return value(*args, **kwargs)
            finally:
                clock[0] += time.perf_counter() - start
        return timed

    def __contains__(self, oid: object) -> bool:
        start = time.perf_counter()
        try:
            return oid in self._book
        finally:
            self._clock[0] += time.perf_counter() - start


def _split_row(config: ServeBenchConfig, name: str, requests: int, per_action: int,
               time_book: bool) -> SplitRow:
    signer = Signer(bench_wallet(config.seed, f"split/{name}"))
    exchange = LocalExchange(list(config.coins), seed=config.seed, makers=config.makers,
                             clock=RealClock())
    exchange.signers = signers = _TimedSigners()
    exchange.deposit(signer.address, DEPOSIT_USDC)
    book_seconds = [0.0]
    if time_book:
        exchange.books = {coin: _TimedBook(book, book_seconds)   # type: ignore[misc]
                          for coin, book in exchange.books.items()}
    mids = [float(exchange.oracle.prices[coin]) for coin in config.coins]
    instruments = list(exchange.instruments)
    bodies = presign(signer, OrderFlow(instruments, mids, config.seed), requests, per_action)
    perf = time.perf_counter
    phases = dict.fromkeys(_PHASES, 0.0)
    for raw in bodies:
        t0 = perf()
        body = orjson.loads(raw)
        t1 = perf()
        signers.recovered = Signers.l1_signer(signers, body)
        t2 = perf()
        answer = exchange.act(body)
        t3 = perf()
        orjson.dumps(answer)
        t4 = perf()
        phases["parse"] += t1 - t0
        phases["recover"] += t2 - t1
        phases["exchange"] += t3 - t2
        phases["answer"] += t4 - t3
        if answer.get("status") != "ok":
            raise RuntimeError(f"the time split's action was refused: {answer}")
    us = {phase: seconds / requests * 1e6 for phase, seconds in phases.items()}
    return SplitRow(name, requests, per_action, us["parse"], us["recover"], us["exchange"],
                    us["answer"], book_seconds[0] / requests * 1e6)


def _time_split(config: ServeBenchConfig) -> list[SplitRow]:
    """Each row twice: phases timed without the book probe, the book's share with it."""
    rows = []
    for name, requests, per_action in (
            ("single-order action", config.split_requests, 1),
            (f"bulk action of {BULK_SIZE}", config.split_bulk_requests, BULK_SIZE)):
        plain = _split_row(config, name, requests, per_action, time_book=False)
        probed = _split_row(config, name, requests, per_action, time_book=True)
        book_share = probed.book_us / probed.exchange_us
        rows.append(SplitRow(plain.name, requests, per_action, plain.parse_us,
                             plain.recover_us, plain.exchange_us, plain.answer_us,
                             book_share * plain.exchange_us))
    return rows


# ---------------------------------------------------------------- the run

def _goals(report: ServeBenchReport) -> list[Goal]:
    goals = []
    for row in report.throughput:
        if row.name.startswith("bulk"):
            goals.append(Goal(f"bulk orders/s, {row.clients} client(s)",
                              f">= {BULK_ORDERS_PER_S_GOAL:,.0f} orders/s",
                              f"{row.orders_per_second:,.0f}",
                              row.orders_per_second >= BULK_ORDERS_PER_S_GOAL))
        else:
            goals.append(Goal(f"single-order actions/s, {row.clients} client(s)",
                              f">= {SINGLE_ACTIONS_PER_S_GOAL:,.0f} actions/s",
                              f"{row.actions_per_second:,.0f}",
                              row.actions_per_second >= SINGLE_ACTIONS_PER_S_GOAL))
    upper = report.latency[0]
    goals.append(Goal("fill frame p99 (sent -> frame, an upper bound)",
                      f"< {FILL_FRAME_P99_GOAL_MS:g} ms", f"{upper.p99_ms:.2f} ms",
                      upper.p99_ms < FILL_FRAME_P99_GOAL_MS))
    for split in report.split:
        # matching is the compiled book's part of the exchange phase; the rest of that phase
        # is the Python exchange layer (decoding, checks, settlement, events)
        parts = {"parse": split.parse_us, "recover": split.recover_us,
                 "exchange layer": split.exchange_us - split.book_us,
                 "matching": split.book_us, "answer": split.answer_us}
        largest = max(parts, key=parts.__getitem__)
        goals.append(Goal(f"matching not the bottleneck ({split.name})",
                          "not the largest part",
                          f"matching {split.book_us / split.total_us:.0%}, largest: {largest} "
                          f"{parts[largest] / split.total_us:.0%}", largest != "matching"))
    return goals


def run_serve_bench(config: ServeBenchConfig,
                    progress: Callable[[str], None] | None = None) -> ServeBenchReport:
    """Start a server subprocess, run every measurement, judge the goals."""
    say = progress or (lambda _: None)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None   # before we add ours
    say("in-process time split")
    split = _time_split(config)
    say("server subprocess: HTTP throughput and websocket latency")
    with serve(port=0, coins=config.coins, seed=config.seed, makers=config.makers,
               ip_weight_per_minute=BENCH_IP_WEIGHT, in_subprocess=True) as url:
        throughput, latency = asyncio.run(_over_http(config, url))
    machine = {"python": platform.python_version(), "platform": platform.platform(),
               "cpus": os.cpu_count(), "ip_weight_per_minute": BENCH_IP_WEIGHT,
               "load_average_1m": load}
    report = ServeBenchReport(config, machine, throughput, split, latency)
    report.goals = _goals(report)
    return report


def format_serve_bench(report: ServeBenchReport) -> str:
    m = report.machine
    lines = [
        f"obelisk serve benchmark: {m['cpus']} CPUs, Python {m['python']}, {m['platform']}, "
        f"load average {m.get('load_average_1m') or 0:.2f} before the run "
        "(other processes on these cores)",
        "Server in a subprocess (real clock, makers quoting, stepper running); clients in this "
        "process, one aiohttp connection each, every body signed before timing.",
        f"The server's IP weight budget is raised to {m['ip_weight_per_minute']:,}/min "
        "(default 1,200) so that it does not throttle the benchmark.",
        "",
        "1. Signed orders accepted over HTTP POST /exchange",
        f"{'':<24}{'clients':>8}{'actions':>9}{'orders':>9}{'accepted':>10}{'refused':>9}"
        f"{'seconds':>9}{'actions/s':>11}{'orders/s':>10}{'server CPU':>12}{'client CPU':>12}",
    ]
    for row in report.throughput:
        server = "n/a" if row.server_cpu is None else f"{row.server_cpu:.0%}"
        lines.append(
            f"{row.name:<24}{row.clients:>8}{row.actions:>9,}{row.orders:>9,}{row.accepted:>10,}"
            f"{row.refused:>9,}{row.seconds:>9.2f}{row.actions_per_second:>11,.0f}"
            f"{row.orders_per_second:>10,.0f}{server:>12}{row.client_cpu:>12.0%}")
    lines.append("  orders/s counts accepted orders (resting or filled); CPU is seconds per "
                 "wall second (100% = one core busy).")
    refusals: dict[str, int] = {}
    for row in report.throughput:
        for text, count in row.refusals.items():
            refusals[text] = refusals.get(text, 0) + count
    for text, count in sorted(refusals.items(), key=lambda item: -item[1]):
        lines.append(f"  refused {count:,}x: {text}")
    lines += [
        "",
        "2. Time split of one request, in-process LocalExchange (mean us per request)",
        f"{'':<24}{'requests':>9}{'parse':>9}{'recover':>9}{'exchange':>10}{'answer':>9}"
        f"{'total':>9}{'us/order':>10}   shares parse/recover/exchange/answer",
    ]
    for split in report.split:
        shares = " / ".join(f"{split.share(phase):.0%}" for phase in _PHASES)
        lines.append(
            f"{split.name:<24}{split.requests:>9,}{split.parse_us:>9.1f}{split.recover_us:>9.1f}"
            f"{split.exchange_us:>10.1f}{split.answer_us:>9.1f}{split.total_us:>9.1f}"
            f"{split.total_us / split.orders_per_request:>10.1f}   {shares}")
    for split in report.split:
        lines.append(f"  {split.name}: {split.book_us:.1f} us of the exchange phase "
                     f"({split.book_us / split.exchange_us:.0%}) is inside the compiled OrderBook; "
                     "the rest is the Python exchange layer.")
    lines += [
        "  parse = orjson.loads of the body; recover = Signers.l1_signer (keccak + secp256k1 "
        "recovery);",
        "  exchange = LocalExchange.act without recovery (decoding, nonce and margin checks, "
        "matching, settlement, events);",
        "  answer = orjson.dumps of the answer (what app.py uses). aiohttp's own request "
        "handling is not in these columns.",
        "",
        f"3. Websocket userFills frame latency ({report.latency[0].samples} IOC orders, one at "
        "a time, client-observed)",
        f"{'':<32}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}",
    ]
    for latency in report.latency:
        lines.append(f"{latency.name:<32}{latency.p50_ms:>9.3f}{latency.p99_ms:>9.3f}"
                     f"{latency.max_ms:>9.3f}")
    lines += [
        "  The match happens inside the server between 'request sent' and 'HTTP answer', and "
        "server and client",
        "  clocks are different processes, so the match itself is not observable: 'request sent "
        "-> fill frame' is",
        "  an upper bound on match -> frame (it adds request transit, parsing and recovery); "
        "'HTTP answer -> fill frame'",
        "  is how long after the order's own answer its fill frame arrives (both leave the "
        "server after the match).",
        "",
        "Goals (issue 15, item 9)",
    ]
    for goal in report.goals:
        lines.append(f"  {goal.name:<52}{goal.target:<33}{goal.value:<52}"
                     f"{'met' if goal.met else 'NOT MET'}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m obelisk.perf.serve",
        description="Benchmark `obelisk serve`: HTTP order throughput, the time split of a "
                    "request, websocket fill latency; judged against issue 15's goals.")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else ServeBenchConfig()
    report = run_serve_bench(config, None if args.json else
                             lambda step: print(f"... {step}", file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(format_serve_bench(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
