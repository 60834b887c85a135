"""Writer numbers: each PostgreSQL store leases one, and puts it in its ids' low bits.

Many processes on many hosts write into one database, and ``record`` must return
an id at once, without asking the server. So each store leases a writer number
(0-1023) in ``trace_writers`` when it opens, and issues ``ms << 21 | sequence <<
10 | writer`` (:mod:`obelisk.store.ids`): ids of two stores differ in the low bits,
and one store's ids increase and follow the clock. Why not the alternatives:

- id blocks reserved from a sequence cost a round trip whenever a block runs out,
  so ``record`` would wait on the server (or fail while it restarts), and the
  ids would not say when a trace was recorded;
- a number held only by a session advisory lock is freed the moment the store's
  connection drops (a server restart), while the store still holds ids it issued
  under it; another store could take the number and issue the same ids.

A lease outlives a dropped connection instead. It runs `LEASE_MS` past the
holder's last renewal (after a batch once the last renewal is `HEARTBEAT_S` old,
and every `HEARTBEAT_S` while the store is idle), and a number is leased again
only once it is free (closed cleanly) or its lease has run out. The holder issues
ids only up to `ISSUE_MS` after its last renewal began (by its own clock; then
``record`` raises until a renewal goes through). So a new holder, whose ids start
at its own clock and above the number's ``last_id``, issues ids above all of the
old holder's, even of rows the old one still has queued and commits later; a
holder whose number was taken claims a new one before it issues more. This needs
the hosts' clocks to agree to within ``LEASE_MS - ISSUE_MS`` (30 s; NTP does far
better). If they do not, a clash is refused by the primary key, retried and at
worst written to the fallback file: never silently lost or doubled.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass

import psycopg

from obelisk.store.errors import TraceStoreError
from obelisk.store.ids import WRITERS

__all__ = ["HEARTBEAT_S", "ISSUE_MS", "LEASE_MS", "WriterLease", "claim", "release", "renew"]

LEASE_MS = 60_000
ISSUE_MS = 30_000
HEARTBEAT_S = 5.0
CLAIM_LOCK = 0x6F62_656C_0002           # pg_advisory_xact_lock key: "obel", 2

_LEASE_END = "clock_timestamp() + %(lease_ms)s * interval '1 millisecond'"
_CLAIM_FREE_SQL = (
    f"UPDATE trace_writers SET holder = %(holder)s, lease_until = {_LEASE_END}, "
    "host = %(host)s, pid = %(pid)s, claimed_at = clock_timestamp() "
    "WHERE writer = (SELECT writer FROM trace_writers "
    "WHERE holder IS NULL OR lease_until < clock_timestamp() "
    "ORDER BY writer LIMIT 1 FOR UPDATE SKIP LOCKED) "
    "RETURNING writer, last_id")
_CLAIM_NEW_SQL = (
    "INSERT INTO trace_writers (writer, holder, lease_until, last_id, host, pid, claimed_at) "
    f"SELECT n, %(holder)s, {_LEASE_END}, 0, %(host)s, %(pid)s, clock_timestamp() "
    "FROM generate_series(0, %(writers)s - 1) AS n "
    "WHERE n NOT IN (SELECT writer FROM trace_writers) ORDER BY n LIMIT 1 "
    "RETURNING writer, last_id")
_RENEW_SQL = (f"UPDATE trace_writers SET lease_until = {_LEASE_END}, "
              "last_id = greatest(last_id, %(last_id)s) "
              "WHERE writer = %(writer)s AND holder = %(holder)s")
_RELEASE_SQL = ("UPDATE trace_writers SET holder = NULL, lease_until = clock_timestamp(), "
                "last_id = greatest(last_id, %(last_id)s) "
                "WHERE writer = %(writer)s AND holder = %(holder)s")


@dataclass(frozen=True, slots=True)
class WriterLease:
    """A leased writer number; `last_id` is the largest id its earlier holders committed
    (exact when they closed cleanly; a recent lower bound if a lease ran out)."""

    writer: int
    holder: uuid.UUID
    last_id: int

    def params(self, last_id: int = 0) -> dict[str, object]:
        return {"writer": self.writer, "holder": self.holder, "last_id": last_id,
                "lease_ms": LEASE_MS}


def claim(conn: psycopg.Connection) -> WriterLease:
    """Lease the lowest free writer number, in a transaction of its own.

    Claims are serialized (an advisory lock), so two stores never race for a new
    number; holders renewing their own leases meanwhile are skipped, not waited for.
    """
    holder = uuid.uuid4()
    params = {"holder": holder, "host": socket.gethostname(), "pid": os.getpid(),
              "lease_ms": LEASE_MS, "writers": WRITERS}
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (CLAIM_LOCK,))
        row = (conn.execute(_CLAIM_FREE_SQL, params).fetchone()
               or conn.execute(_CLAIM_NEW_SQL, params).fetchone())
    if row is None:
        raise TraceStoreError(f"all {WRITERS} writer numbers of the trace database are leased "
                              f"by open stores; close some, or wait {LEASE_MS // 1000} s for "
                              f"the leases of crashed ones to run out")
    return WriterLease(row[0], holder, row[1])


def renew(conn: psycopg.Connection, lease: WriterLease, last_id: int) -> bool:
    """Extend `lease` and record `last_id` as committed under it; False if the lease ran
    out and another store took the number."""
    return conn.execute(_RENEW_SQL, lease.params(last_id)).rowcount == 1


def release(conn: psycopg.Connection, lease: WriterLease, last_id: int) -> None:
    """Free the number at once: every id issued under it, up to `last_id`, is committed."""
    conn.execute(_RELEASE_SQL, lease.params(last_id))
