"""The bounded, id-ordered queue between callers and the writer thread, with group commit.

Callers append rows and get an id at once; the writer takes the oldest rows as a
batch when there are `batch_size` of them, when the oldest has waited `flush_s`,
or when a caller waits for one of them. Rows leave the queue only after their
batch committed, or once the writer gave up on the database and handed them to
the fallback file: a failed write is retried with a doubling wait until the
write deadline, and the queue then stops for good. A writer that must show it is
alive (a PostgreSQL store renewing its writer lease) also gets an empty batch
when nothing was written for `heartbeat_s`, and may limit how long ids are issued
without one (:meth:`TraceQueue.use_ids`).
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections import deque
from itertools import islice
from time import time_ns
from typing import Literal

from obelisk.breaker.backoff import backoff_delay
from obelisk.store.errors import TraceQueueFullError, TraceStoreError
from obelisk.store.ids import IdSource, next_id

log = logging.getLogger(__name__)

__all__ = ["MAX_RETRY_S", "OnFull", "Row", "TraceQueue"]

OnFull = Literal["block", "raise"]
# (id, ts, kind, asset, order_id, cloid, codec, payload): the column order of an insert
Row = tuple[int, int, str, str | None, int | None, str | None, int, bytes]

MAX_RETRY_S = 4.0               # the cap on the doubling wait between write attempts
NO_LIMIT_MS = 1 << 62           # ids may be issued until this ms since the epoch: always


class TraceQueue:
    """Rows accepted but not yet committed, oldest first, and the waits around them."""

    def __init__(self, *, capacity: int, batch_size: int, flush_s: float, on_full: OnFull,
                 block_timeout: float | None, retry_s: float, deadline_s: float,
                 last_id: int, heartbeat_s: float | None = None) -> None:
        self.capacity = capacity
        self.batch_size = batch_size
        self.flush_s = flush_s
        self.on_full = on_full
        self.block_timeout = block_timeout
        self.retry_s = retry_s
        self.deadline_s = deadline_s
        self.heartbeat_s = heartbeat_s
        self._next_id: IdSource = next_id          # a writer may swap it (use_ids)
        self._ids_until_ms = NO_LIMIT_MS
        self._rows: deque[Row] = deque()
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._space = threading.Condition(self._lock)
        self._done = threading.Condition(self._lock)
        self._last_id = last_id
        self._committed_id = last_id
        self._flush_to = 0
        self._error: BaseException | None = None
        self._final: TraceStoreError | None = None     # why the queue stopped for good
        self._failing_since: float | None = None
        self._attempts = 0
        self._retry_at = 0.0
        self._batch_started: float | None = None
        self._last_ok = time.monotonic()
        self._writer_waiting = False
        self._closing = False
        self._stopped = False

    @property
    def last_id(self) -> int:
        """The id most recently issued."""
        return self._last_id

    @property
    def committed_id(self) -> int:
        """Every id up to this one is committed."""
        return self._committed_id

    @property
    def drained(self) -> bool:
        """Every row put was committed, and the queue never gave up on the database."""
        return self._final is None and not self._rows and self._committed_id == self._last_id

    @property
    def closing(self) -> bool:
        return self._closing

    def __len__(self) -> int:
        return len(self._rows)

    def put(self, ts: int | None, kind: str, asset: str | None, order_id: int | None,
            cloid: str | None, payload: bytes) -> int:
        """Append a row and return its id; waits or raises per `on_full` when full."""
        with self._lock:
            if self._error is not None or self._closing:
                self._raise_unusable()
            rows = self._rows
            queued = len(rows)
            if queued >= self.capacity:
                self._wait_for_space()
                queued = len(rows)
            now_ms = time_ns() // 1_000_000
            if now_ms > self._ids_until_ms:
                raise TraceStoreError("the trace store may not issue ids until its writer "
                                      "reaches the database again")
            self._last_id = trace_id = self._next_id(self._last_id, now_ms)
            rows.append((trace_id, now_ms if ts is None else ts, kind, asset, order_id, cloid,
                         0, payload))
            if self._writer_waiting and (queued == 0 or queued + 1 >= self.batch_size
                                         or queued + 1 >= self.capacity):
                self._work.notify()     # a full queue must not wait for the age trigger
        return trace_id

    def wait(self, trace_id: int, timeout: float | None = None) -> bool:
        """Commit every row up to `trace_id` now and wait for it; False if `timeout` ran out."""
        with self._lock:
            if trace_id > self._last_id:
                raise ValueError(f"trace id {trace_id} was never issued by this store")
            if trace_id <= self._committed_id:
                return True
            self._flush_to = max(self._flush_to, trace_id)
            if self._writer_waiting:
                self._work.notify()
            deadline = None if timeout is None else time.monotonic() + timeout
            while self._committed_id < trace_id:
                if self._error is not None or self._stopped:
                    self._raise_unusable()
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._done.wait(remaining)
            return True

    def flush(self, timeout: float | None = None) -> bool:
        """Commit everything put so far; False if `timeout` ran out first."""
        return self.wait(self._last_id, timeout)

    def close(self) -> None:
        """Refuse new rows and let the writer drain the queue, then stop."""
        with self._lock:
            self._closing = True
            self._work.notify_all()
            self._space.notify_all()

    def use_ids(self, id_source: IdSource | None = None, *, until_ms: int | None = None) -> None:
        """Issue the next ids from `id_source` (still above every id issued so far), and
        only until the wall clock reaches `until_ms` (None: leave either as it is)."""
        with self._lock:
            if id_source is not None:
                self._next_id = id_source
            if until_ms is not None:
                self._ids_until_ms = until_ms

    def raise_if_failed(self) -> None:
        """Raise TraceStoreError if rows did not all reach the database (after the writer ended)."""
        with self._lock:
            if self._final is not None or self._error is not None or self._rows:
                self._raise_unusable()

    # The writer's side.

    def next_batch(self) -> list[Row] | None:
        """The oldest rows (at most `batch_size`) once a batch is due, no rows when a
        heartbeat is due, and None once closed and done."""
        with self._lock:
            while True:
                if not self._rows and self._closing or self._stopped:
                    self._stopped = True
                    self._done.notify_all()
                    return None
                wait_s = self._due_in()
                if wait_s is not None and wait_s <= 0:
                    return list(islice(self._rows, self.batch_size))
                beat_s = self._beat_in()
                if beat_s is not None:
                    if beat_s <= 0:
                        return []
                    wait_s = beat_s if wait_s is None else min(wait_s, beat_s)
                self._writer_waiting = True
                self._work.wait(wait_s)
                self._writer_waiting = False

    def committed(self, count: int) -> None:
        """The writer committed the `count` oldest rows (0: a heartbeat went through)."""
        with self._lock:
            rows = self._rows
            if count:
                for _ in range(count - 1):
                    rows.popleft()
                self._committed_id = rows.popleft()[0]
                self._batch_started = time.monotonic() if rows else None
            self._error = None
            self._failing_since = None
            self._attempts = 0
            self._retry_at = 0.0
            self._last_ok = time.monotonic()
            self._done.notify_all()
            self._space.notify_all()

    def failed(self, error: BaseException) -> bool:
        """The last batch did not commit: report `error` to callers and schedule a retry.

        The wait doubles from `retry_s` up to MAX_RETRY_S, and is cut so that one
        attempt falls on the write deadline (`deadline_s` after the first failure in
        a row). Returns True once that deadline has passed: the writer should give
        the queued rows to the fallback file.
        """
        with self._lock:
            now = time.monotonic()
            if self._failing_since is None:
                self._failing_since = now
            give_up_at = self._failing_since + self.deadline_s
            delay = backoff_delay(self._attempts, self.retry_s, max(self.retry_s, MAX_RETRY_S),
                                  2.0, 0.0, 0.0)
            self._attempts += 1
            self._retry_at = now + delay if now >= give_up_at else min(now + delay, give_up_at)
            self._error = error
            self._done.notify_all()
            self._space.notify_all()
            return now >= give_up_at

    def report(self, error: BaseException) -> None:
        """Tell callers about `error` instead of the last one; the rows stay queued."""
        with self._lock:
            self._error = error
            self._done.notify_all()
            self._space.notify_all()

    def freeze(self, error: BaseException) -> list[Row]:
        """Refuse new rows, failing them with `error`; a copy of the queued ones, oldest first."""
        with self._lock:
            self._error = self._error or error
            return list(self._rows)

    def give_up(self, count: int, error: TraceStoreError) -> None:
        """The `count` oldest rows went elsewhere than the database; stop for good with `error`."""
        with self._lock:
            for _ in range(count):
                self._rows.popleft()
            self._final = error
            self._error = error.__cause__ or error
            self._stopped = True
            self._work.notify_all()
            self._done.notify_all()
            self._space.notify_all()

    def _due_in(self) -> float | None:
        """Seconds until the next batch is due (<= 0: now), or None while the queue is empty."""
        rows = self._rows
        if not rows:
            return None
        now = time.monotonic()
        if self._retry_at > now:
            return self._retry_at - now
        if (len(rows) >= self.batch_size or len(rows) >= self.capacity or self._closing
                or self._flush_to >= rows[0][0]):
            return 0.0
        if self._batch_started is None:
            self._batch_started = now
        return self._batch_started + self.flush_s - now

    def _beat_in(self) -> float | None:
        """Seconds until the next heartbeat is due (retries keep their wait), or None."""
        if self.heartbeat_s is None:
            return None
        return max(self._last_ok + self.heartbeat_s, self._retry_at) - time.monotonic()

    def _wait_for_space(self) -> None:
        """Block until the writer makes room (lock held), or raise TraceQueueFullError."""
        log.warning("the trace queue is full (%d traces waiting): %s", len(self._rows),
                    "refusing the trace" if self.on_full == "raise" else "the caller waits")
        if self.on_full == "raise":
            raise TraceQueueFullError(f"{len(self._rows)} traces are waiting to be written "
                                      f"(queue_size={self.capacity})")
        if self._writer_waiting:
            self._work.notify()
        deadline = None if self.block_timeout is None else time.monotonic() + self.block_timeout
        while len(self._rows) >= self.capacity:
            if self._error is not None or self._closing:
                self._raise_unusable()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TraceQueueFullError(
                    f"no room in the trace queue (queue_size={self.capacity}) "
                    f"after {self.block_timeout} s")
            self._space.wait(remaining)

    def _raise_unusable(self) -> None:
        if self._final is not None:
            raise copy.copy(self._final) from self._final.__cause__
        if self._error is not None:
            raise TraceStoreError(f"writing traces failed; {len(self._rows)} traces are still "
                                  f"queued and retried: {self._error!r}") from self._error
        if self._rows:
            raise TraceStoreError(f"the trace writer stopped with {len(self._rows)} traces "
                                  f"queued")
        raise TraceStoreError("the trace store is closed")
