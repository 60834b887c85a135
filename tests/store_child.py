"""Crash-test child: records traces forever and prints what the store acknowledged.

Every 50th trace is recorded with ``durable=True`` and printed as ``durable <id>``
once ``record`` returns; every 500th, after ``flush()``, it prints
``flushed <id> <count>``: the last id and how many traces it recorded so far. The
parent kills this process with SIGKILL and checks the acknowledged traces.
"""

import sys

from obelisk.store import TraceStore


def main(path: str) -> None:
    with TraceStore(path, batch_size=1_000, batch_flush_ms=60_000) as store:
        count = 0
        while True:
            durable = count % 50 == 0
            trace_id = store.record("order", {"n": count, "px": "64321.5", "sz": "0.01"},
                                    asset="BTC", order_id=count, durable=durable)
            count += 1
            if durable:
                print("durable", trace_id, flush=True)
            if count % 500 == 0:
                store.flush()
                print("flushed", trace_id, count, flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
