"""Transport rows of ``obelisk bench``: a cached info call and a coalesced burst.

Both run against a local HTTP server on 127.0.0.1 started here, so the numbers
measure the client (cache lookup, coalescing, pooling), not the internet.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from obelisk.hyperliquid.transport import Transport, TransportConfig
from obelisk.perf.timing import BenchRow, timed_row

CACHED_CALLS = 20_000
BURST = 32
ALL_MIDS = {"type": "allMids"}
_ANSWER = json.dumps({"BTC": "113387.0", "ETH": "3601.5"}).encode()


class MidsHandler(BaseHTTPRequestHandler):
    """Answers every POST with the same ``allMids`` body."""

    protocol_version = "HTTP/1.1"
    # One buffered write per response, no Nagle: otherwise every round trip waits out
    # a ~40 ms delayed ACK between the header and body writes.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(_ANSWER)))
        self.end_headers()
        self.wfile.write(_ANSWER)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet."""


def serve_mids() -> tuple[ThreadingHTTPServer, str]:
    """A `MidsHandler` server on a free 127.0.0.1 port, in a daemon thread, and its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), MidsHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def post_all_mids(transport: Transport, calls: int) -> None:
    """`calls` ``allMids`` info requests, one after another."""
    post = transport.post_info
    for _ in range(calls):
        post(ALL_MIDS)


def transport_rows(repeat: int) -> list[BenchRow]:
    """`CACHED_CALLS` cache hits of ``allMids``, and `BURST` threads asking at once."""
    server, url = serve_mids()
    cached = Transport(url, TransportConfig(ttls={"allMids": 3600.0}))
    burst = Transport(url, TransportConfig(ttls={}, rate_limit=10**9))
    pool = ThreadPoolExecutor(BURST)
    try:
        cached.post_info(ALL_MIDS)

        def coalesced(transport: Transport) -> None:
            for future in [pool.submit(transport.post_info, ALL_MIDS) for _ in range(BURST)]:
                future.result()

        return [timed_row("Transport.post_info, cache hit", CACHED_CALLS,
                          lambda t: post_all_mids(t, CACHED_CALLS), lambda: cached, repeat),
                timed_row(f"Transport.post_info, burst of {BURST} threads (coalesced)", BURST,
                          coalesced, lambda: burst, repeat)]
    finally:
        pool.shutdown()
        cached.close()
        burst.close()
        server.shutdown()
        server.server_close()
