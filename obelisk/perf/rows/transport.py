"""Transport rows of ``obelisk bench``: a cached info call and a coalesced burst.

Both run against a local HTTP server on 127.0.0.1 started here, so the numbers
measure the client (cache lookup, coalescing, pooling), not the internet.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from obelisk.hyperliquid.transport import Transport, TransportConfig

Timer = Callable[[Callable[[Any], object], Callable[[], Any], int], list[float]]
CACHED_CALLS = 20_000
BURST = 32
_ANSWER = json.dumps({"BTC": "113387.0", "ETH": "3601.5"}).encode()


class _Mids(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(_ANSWER)))
        self.end_headers()
        self.wfile.write(_ANSWER)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet."""


def transport_rows(repeat: int, time_runs: Timer,
                   make_row: Callable[[str, int, list[float]], object]) -> list:
    """`CACHED_CALLS` cache hits of ``allMids``, and `BURST` threads asking at once."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Mids)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    cached = Transport(url, TransportConfig(ttls={"allMids": 3600.0}))
    burst = Transport(url, TransportConfig(ttls={}, rate_limit=10**9))
    pool = ThreadPoolExecutor(BURST)
    body = {"type": "allMids"}
    try:
        cached.post_info(body)

        def hits(transport: Transport) -> None:
            post = transport.post_info
            for _ in range(CACHED_CALLS):
                post(body)

        def coalesced(transport: Transport) -> None:
            for future in [pool.submit(transport.post_info, body) for _ in range(BURST)]:
                future.result()

        return [make_row("Transport.post_info, cache hit", CACHED_CALLS,
                         time_runs(hits, lambda: cached, repeat)),
                make_row(f"Transport.post_info, burst of {BURST} threads (coalesced)", BURST,
                         time_runs(coalesced, lambda: burst, repeat))]
    finally:
        pool.shutdown()
        cached.close()
        burst.close()
        server.shutdown()
        server.server_close()
