"""Child processes of the store's subprocess tests.

``store_child.py <db> crash``: records traces forever and prints what the store
acknowledged. Every 50th trace is recorded with ``durable=True`` and printed as
``durable <id>`` once ``record`` returns; every 500th, after ``flush()``, it prints
``flushed <id> <count>``: the last id and how many traces it recorded so far. The
parent kills this process with SIGKILL and checks the acknowledged traces.

``store_child.py <db> exit``: records one durable trace and five queued ones,
prints ``queued <id> ...``, then reads one command from stdin and exits without
closing the store, so the queued traces are written by the store's exit hook:
``unlink`` deletes the database file first; ``exit`` just exits (the parent holds
the write lock, so the last write fails). The write deadline comes from
``TRACE_WRITE_DEADLINE_MS``.

``store_child.py <db> burst <process> <count>``: opens the store, prints ``ready``
and waits for a line on stdin, then records `count` traces ``{"p": <process>,
"n": <i>}`` (every 100th with ``durable=True``), closes the store and prints
``acked <id> ...``: every id ``record`` returned. Several run at once against one
PostgreSQL database.

`<db>` is a SQLite path or a ``postgresql://`` URL; a PostgreSQL store's fallback
file goes to the working directory.
"""

import os
import sys

from obelisk.store import TraceStore

STORES: list[TraceStore] = []       # open at exit, so the exit hook writes the queue


def crash(path: str) -> None:
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


def exit_with_traces_queued(path: str) -> None:
    store = TraceStore(path, batch_size=10_000, batch_flush_ms=3_600_000, busy_timeout_ms=0,
                       retry_ms=10)
    STORES.append(store)
    store.record("order", {"n": -1}, durable=True)
    queued = [store.record("fill", {"n": n}, asset="BTC", order_id=n) for n in range(5)]
    print("queued", *queued, flush=True)
    if sys.stdin.readline().strip() == "unlink":
        os.unlink(path)


def burst(path: str, process: str, count: str) -> None:
    with TraceStore(path, batch_size=100, batch_flush_ms=50) as store:
        print("ready", flush=True)
        sys.stdin.readline()
        acked = [store.record("order", {"p": int(process), "n": n}, order_id=n,
                              durable=n % 100 == 0) for n in range(int(count))]
    print("acked", *acked, flush=True)


if __name__ == "__main__":
    {"crash": crash, "exit": exit_with_traces_queued, "burst": burst}[sys.argv[2]](
        sys.argv[1], *sys.argv[3:])
