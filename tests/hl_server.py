"""A small local Hyperliquid HTTP server for tests: documented answers, scripted faults.

Bound to 127.0.0.1 on a free port, it records every hit. ``/info`` answers by the
body's ``type`` from `answers`; ``/exchange`` answers ``{"status": "ok", ...}``.
Queued :class:`Reply` objects (per info type, or ``"exchange"``) are used first, once
each, to script errors, slow answers, garbage and dropped connections. While `gate`
is cleared every handler waits for it, so tests can hold requests in flight.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

USER = "0x5e9ee1089755c3435139848e47e6635505d5a13a"

META = {
    "universe": [
        {"name": "BTC", "szDecimals": 5, "maxLeverage": 40, "marginTableId": 56},
        {"name": "ETH", "szDecimals": 4, "maxLeverage": 25, "marginTableId": 55},
        {"name": "OLD", "szDecimals": 0, "maxLeverage": 3, "isDelisted": True,
         "onlyIsolated": True, "marginMode": "strictIsolated", "newField": 1},
    ],
    "marginTables": [
        [55, {"description": "tiered 25x", "marginTiers": [
            {"lowerBound": "0.0", "maxLeverage": 25},
            {"lowerBound": "100000000.0", "maxLeverage": 15}]}],
        [56, {"description": "tiered 40x", "marginTiers": [
            {"lowerBound": "0.0", "maxLeverage": 40},
            {"lowerBound": "150000000.0", "maxLeverage": 20}]}],
    ],
}
SPOT_META = {
    "tokens": [
        {"name": "USDC", "szDecimals": 8, "weiDecimals": 8, "index": 0,
         "tokenId": "0x6d1e7cde53ba9467b783cb7c530ce054", "isCanonical": True,
         "evmContract": None, "fullName": None},
        {"name": "PURR", "szDecimals": 0, "weiDecimals": 5, "index": 1,
         "tokenId": "0xc1fb593aeffbeb02f85e0308e9956a90", "isCanonical": True,
         "evmContract": None, "fullName": None},
        {"name": "HYPE", "szDecimals": 2, "weiDecimals": 8, "index": 150,
         "tokenId": "0x0d01dc56dcaaca66ad901c959b4011ec", "isCanonical": False,
         "evmContract": None, "fullName": "Hyperliquid"},
    ],
    "universe": [
        {"name": "PURR/USDC", "tokens": [1, 0], "index": 0, "isCanonical": True},
        {"name": "@107", "tokens": [150, 0], "index": 107, "isCanonical": False},
    ],
}
PERP_CTX = {"dayNtlVlm": "1169046.29406", "funding": "0.0000125",
            "impactPxs": ["14.3047", "14.3444"], "markPx": "14.3161", "midPx": "14.314",
            "openInterest": "688.11", "oraclePx": "14.32", "premium": "0.00031774",
            "prevDayPx": "15.322", "dayBaseVlm": "81234.5"}
EMPTY_CTX = {"dayNtlVlm": "0.0", "funding": "0.0", "impactPxs": None, "markPx": "1.0",
             "midPx": None, "openInterest": "0.0", "oraclePx": "1.0", "premium": None,
             "prevDayPx": "1.0"}
SPOT_CTX = {"dayNtlVlm": "8906.0", "markPx": "0.14", "midPx": "0.14", "prevDayPx": "0.13",
            "circulatingSupply": "598000000.0", "coin": "PURR/USDC",
            "totalSupply": "600000000.0", "dayBaseVlm": "64000.0"}
ORDER = {"coin": "ETH", "side": "B", "limitPx": "2412.7", "sz": "0.0", "oid": 77738308,
         "timestamp": 1724361546645, "triggerCondition": "N/A", "isTrigger": False,
         "triggerPx": "0.0", "children": [], "isPositionTpsl": False, "reduceOnly": True,
         "orderType": "Market", "origSz": "0.0076", "tif": "FrontendMarket",
         "cloid": "0x00000000000000000000000000000001"}

ANSWERS: dict[str, Any] = {
    "meta": META,
    "spotMeta": SPOT_META,
    "metaAndAssetCtxs": [META, [PERP_CTX, PERP_CTX, EMPTY_CTX]],
    "spotMetaAndAssetCtxs": [SPOT_META, [SPOT_CTX, dict(SPOT_CTX, coin="@107")]],
    "allMids": {"BTC": "113387.0", "ETH": "3601.5", "@107": "38.2", "PURR/USDC": "0.14"},
    "l2Book": {"coin": "BTC", "time": 1754450974231, "levels": [
        [{"px": "113377.0", "sz": "7.6699", "n": 17}],
        [{"px": "113397.0", "sz": "0.11543", "n": 3}]]},
    "clearinghouseState": {
        "assetPositions": [{"type": "oneWay", "position": {
            "coin": "ETH", "szi": "0.0335", "entryPx": "2986.3", "positionValue": "100.02765",
            "unrealizedPnl": "-0.0134", "returnOnEquity": "-0.0026789",
            "liquidationPx": "2866.26936529", "marginUsed": "4.967826", "maxLeverage": 50,
            "leverage": {"type": "isolated", "value": 20, "rawUsd": "-95.059824"},
            "cumFunding": {"allTime": "514.085417", "sinceOpen": "0.0",
                           "sinceChange": "0.0"}}}],
        "marginSummary": {"accountValue": "13109.482328", "totalNtlPos": "100.02765",
                          "totalRawUsd": "13009.454678", "totalMarginUsed": "4.967826"},
        "crossMarginSummary": {"accountValue": "13104.514502", "totalNtlPos": "0.0",
                               "totalRawUsd": "13104.514502", "totalMarginUsed": "0.0"},
        "crossMaintenanceMarginUsed": "0.0", "withdrawable": "13104.514502",
        "time": 1708622398623},
    "spotClearinghouseState": {"balances": [
        {"coin": "USDC", "token": 0, "total": "14.625485", "hold": "0.0", "entryNtl": "0.0"},
        {"coin": "PURR", "token": 1, "total": "2000", "hold": "0", "entryNtl": "234.56"}]},
    "openOrders": [{"coin": "BTC", "limitPx": "29792.0", "oid": 91490942, "side": "A",
                    "sz": "0.0", "timestamp": 1681247412573}],
    "frontendOpenOrders": [ORDER],
    "orderStatus": {"status": "order", "order": {"order": ORDER, "status": "filled",
                                                 "statusTimestamp": 1724361546645}},
    "userRateLimit": {"cumVlm": "2854574.593578", "nRequestsUsed": 2890,
                      "nRequestsCap": 2864574, "nRequestsSurplus": 0},
    "userFees": {"dailyUserVlm": [], "feeSchedule": {"cross": "0.00045", "add": "0.00015"},
                 "userCrossRate": "0.000315", "userAddRate": "0.000105",
                 "userSpotCrossRate": "0.00049", "userSpotAddRate": "0.00028",
                 "activeReferralDiscount": "0.0",
                 "activeStakingDiscount": {"bpsOfMaxSupply": "0.0001", "discount": "0.3"}},
    "predictedFundings": [["BTC", [["BinPerp", {"fundingRate": "0.0001",
                                                "nextFundingTime": 1733961600000}],
                                   ["HlPerp", {"fundingRate": "0.0000125",
                                               "nextFundingTime": 1733958000000,
                                               "fundingIntervalHours": 1}],
                                   ["BybitPerp", None]]]],
    "activeAssetData": {"user": USER, "coin": "BTC", "leverage": {"type": "cross", "value": 20},
                        "maxTradeSzs": ["0.5", "0.4"], "availableToTrade": ["1000.0", "900.0"],
                        "markPx": "113387.0"},
    "perpsAtOpenInterestCap": ["BADGER", "CANTO"],
    "maxBuilderFee": 10,
    "perpDexs": [None, {"name": "test", "full_name": "test dex"}],
    "userRole": {"role": "user"},
    "historicalOrders": [{"order": ORDER, "status": "filled", "statusTimestamp": 1724361546645}],
    "userFills": [], "userFillsByTime": [], "fundingHistory": [], "userFunding": [],
    "userNonFundingLedgerUpdates": [], "candleSnapshot": [], "portfolio": [],
    "userVaultEquities": [], "extraAgents": [], "delegatorHistory": [],
    "userTwapSliceFills": [],
}


@dataclass
class Reply:
    """One scripted answer: a status and body (JSON-encoded unless bytes), extra headers,
    or `drop` to close the connection without answering."""

    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    hold: threading.Event | None = None  # wait for this event (max 5 s) before answering


@dataclass(frozen=True)
class Hit:
    path: str
    raw: bytes

    @property
    def body(self) -> Any:
        return json.loads(self.raw)


class HLServer:
    """Context manager running the server in a thread; `url` is its base URL."""

    def __init__(self, answers: dict[str, Any] | None = None) -> None:
        self.answers = dict(ANSWERS if answers is None else answers)
        self.hits: list[Hit] = []
        self.gate = threading.Event()
        self.gate.set()
        self.pages: dict[str, Any] = {}
        self._queued: dict[str, deque[Reply]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,),
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def queue(self, kind: str, *replies: Reply) -> None:
        """Answer the next requests of `kind` (an info type or ``"exchange"``) with `replies`."""
        with self._lock:
            self._queued[kind].extend(replies)

    def hits_for(self, kind: str) -> list[Hit]:
        """Hits of one info type (or ``"exchange"``)."""
        with self._lock:
            return [hit for hit in self.hits
                    if (hit.path == "/exchange" and kind == "exchange")
                    or (hit.path == "/info" and hit.body.get("type") == kind)]

    def __enter__(self) -> HLServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.gate.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def reply_for(self, path: str, raw: bytes) -> Reply:
        with self._lock:
            self.hits.append(Hit(path, raw))
            if path == "/exchange":
                kind = "exchange"
            else:
                try:
                    kind = json.loads(raw)["type"]
                except (ValueError, KeyError, TypeError):
                    return Reply({"error": "bad request"}, status=422)
            if self._queued[kind]:
                return self._queued[kind].popleft()
        if kind == "exchange":
            return Reply({"status": "ok", "response": {"type": "default"}})
        pager = self.pages.get(kind)
        if pager is not None:
            return Reply(pager(json.loads(raw)))
        if kind not in self.answers:
            return Reply({"error": f"unknown type {kind}"}, status=422)
        return Reply(self.answers[kind])


def _handler_for(server: HLServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (http.server naming)
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            reply = server.reply_for(self.path, raw)
            server.gate.wait(5)
            if reply.hold is not None:
                reply.hold.wait(5)
            if reply.drop:
                self.close_connection = True
                self.connection.shutdown(2)
                return
            body = reply.body if isinstance(reply.body, bytes) else json.dumps(
                reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Keep test output quiet."""

    return Handler
