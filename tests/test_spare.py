"""Spare memory blocks (obelisk/_core/spare.pyx): the large blocks books free, kept warm
for the next book. Reused memory holds an earlier book's bytes, so every output of a book
on reused blocks is checked bit for bit against the same book on new memory."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from obelisk import EVENT_DTYPE, EventKind, OrderBook
from obelisk._core import spare
from obelisk.testing.workload import deep_mix


@pytest.fixture(scope="module")
def streams() -> tuple[np.ndarray, np.ndarray]:
    return deep_mix(60_000, resting=8_000, seed=3).events, deep_mix(60_000, seed=4).events


def outputs(events: np.ndarray) -> tuple[bytes, ...]:
    book = OrderBook()
    out = book.process(events)
    return (out.results.tobytes(), out.fills.tobytes(), out.order_events.tobytes(),
            book.orders().tobytes(), book.snapshot())


def test_a_book_on_an_earlier_books_blocks_writes_what_it_writes_on_new_memory(streams):
    first, second = streams
    spare.release_spare_memory()
    on_new_memory = outputs(second)
    spare.release_spare_memory()
    outputs(first)                          # frees its tapes, id index, pool and results
    kept = spare.spare_bytes()
    assert kept >= spare.SPARE_MIN_BYTES
    assert outputs(second) == on_new_memory
    assert spare.spare_bytes() <= spare.SPARE_MAX_BYTES


def test_a_second_fresh_book_takes_the_first_books_blocks(streams):
    _, events = streams
    spare.release_spare_memory()
    book = OrderBook()
    out = book.process(events)
    assert spare.spare_bytes() == 0             # all still in use
    del book, out
    kept = spare.spare_bytes()
    assert kept > 0
    book = OrderBook()
    out = book.process(events)
    assert spare.spare_bytes() < kept           # taken again, not allocated anew
    del book, out


def test_the_kept_blocks_stay_within_their_bounds_and_release_gives_them_back():
    spare.release_spare_memory()
    held = []
    for records in range(20_000, 400_000, 20_000):      # many sizes, all above the minimum
        held.append(OrderBook().process(_resting(records)))
    held.clear()
    assert 0 < spare.spare_bytes() <= spare.SPARE_MAX_BYTES
    released = spare.release_spare_memory()
    assert released > 0 and spare.spare_bytes() == 0
    assert spare.release_spare_memory() == 0


def test_books_in_threads_share_the_blocks_safely(streams):
    first, second = streams
    expected = {0: outputs(first), 1: outputs(second)}
    failures: list[int] = []

    def run(which: int) -> None:
        for _ in range(4):
            if outputs(streams[which]) != expected[which]:
                failures.append(which)

    threads = [threading.Thread(target=run, args=(k % 2,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert spare.spare_bytes() <= spare.SPARE_MAX_BYTES


# Forks five children while a thread churns books (each fork lands amid takes and gives);
# each child runs a book on the blocks it inherited. Exits 0 when every child's book wrote
# what the parent's did; a deadlock on the spare lock is caught by the caller's timeout.
FORK_SCRIPT = """
import os, threading, sys
import numpy as np
from obelisk import OrderBook
from obelisk.testing.workload import deep_mix
events = deep_mix(60_000, resting=8_000, seed=3).events
def outputs():
    out = OrderBook().process(events)
    return out.results.tobytes(), out.fills.tobytes(), out.order_events.tobytes()
expected = outputs()
stop = threading.Event()
def churn():
    while not stop.is_set():
        outputs()
worker = threading.Thread(target=churn)
worker.start()
failures = 0
for _ in range(5):
    pid = os.fork()
    if pid == 0:
        os._exit(0 if outputs() == expected else 1)
    failures += os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0
stop.set()
worker.join()
sys.exit(failures)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_children_forked_while_books_work_in_threads_get_a_whole_free_list():
    done = subprocess.run([sys.executable, "-W", "ignore::DeprecationWarning", "-c",
                           FORK_SCRIPT], timeout=180, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _resting(n: int) -> np.ndarray:
    """`n` buy orders that all rest (one order event each, no fills)."""
    events = np.zeros(n, EVENT_DTYPE)
    events["oid"] = np.arange(1, n + 1)
    events["price"], events["qty"], events["kind"] = 100 + np.arange(n) % 50, 1, EventKind.LIMIT
    return events
