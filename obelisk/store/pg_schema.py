"""The trace tables of a PostgreSQL database, created and upgraded by numbered migrations.

The steps have the numbers and make the tables of SQLite's
(:mod:`obelisk.store.schema`), in PostgreSQL's types, plus the writer-number
leases (``trace_writers``) that stores sharing one database need. Stores of many
processes may open a database at once: a transaction-scoped advisory lock lets
one of them migrate while the others wait, then find it done.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg

from obelisk.store.errors import TraceSchemaError
from obelisk.store.schema import SCHEMA_VERSION as SQLITE_SCHEMA_VERSION
from obelisk.store.schema import missing_versions

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate", "schema_version"]

MIGRATION_LOCK = 0x6F62_656C_0001       # pg_advisory_xact_lock key: "obel", 1

Migration = Callable[[psycopg.Connection], None]


def _create_v1(conn: psycopg.Connection) -> None:
    """v1: raw JSON payloads, looked up by kind and time."""
    conn.execute("CREATE TABLE traces (id bigint PRIMARY KEY, ts bigint NOT NULL, "
                 "kind text NOT NULL, asset text, order_id bigint, cloid text, "
                 "payload bytea NOT NULL)")
    conn.execute("CREATE INDEX traces_kind_ts ON traces (kind, ts)")


def _codec_lookups_and_writers_v2(conn: psycopg.Connection) -> None:
    """v2: a codec per row (0 = raw, so v1 rows stay readable), the lookup indices (partial,
    as on SQLite), and the writer-number leases of :mod:`obelisk.store.pg_writers`."""
    conn.execute("ALTER TABLE traces ADD COLUMN codec smallint NOT NULL DEFAULT 0")
    conn.execute("CREATE INDEX traces_ts ON traces (ts)")
    conn.execute("CREATE INDEX traces_asset_ts ON traces (asset, ts) WHERE asset IS NOT NULL")
    conn.execute("CREATE INDEX traces_order_ts ON traces (order_id, ts) "
                 "WHERE order_id IS NOT NULL")
    conn.execute("CREATE INDEX traces_cloid_ts ON traces (cloid, ts) WHERE cloid IS NOT NULL")
    conn.execute("CREATE TABLE trace_writers (writer smallint PRIMARY KEY, holder uuid, "
                 "lease_until timestamptz NOT NULL, last_id bigint NOT NULL DEFAULT 0, "
                 "host text, pid integer, claimed_at timestamptz)")


MIGRATIONS: dict[int, Migration] = {
    1: _create_v1,
    2: _codec_lookups_and_writers_v2,
}
SCHEMA_VERSION = max(MIGRATIONS)
assert SCHEMA_VERSION == SQLITE_SCHEMA_VERSION, "a version means the same tables on both"


def schema_version(conn: psycopg.Connection) -> int:
    """The version of the database behind `conn` (0 if it has no trace tables yet)."""
    row = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL, "
                       "to_regclass('traces') IS NOT NULL").fetchone()
    assert row is not None
    has_versions, has_traces = row
    if not has_versions:
        if has_traces:
            raise TraceSchemaError("the database has a traces table but no schema_version table")
        return 0
    version = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    assert version is not None
    return int(version[0])


def migrate(conn: psycopg.Connection, migrations: dict[int, Migration] = MIGRATIONS) -> int:
    """Bring the database to the newest version in one transaction; returns that version.

    `conn` is in autocommit mode with no transaction open.
    """
    target = max(migrations)
    with conn.transaction():
        conn.execute("SET LOCAL lock_timeout = 0")     # a migration elsewhere: wait for it
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        current = schema_version(conn)
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version "
                     "(version integer PRIMARY KEY, applied_ms bigint NOT NULL)")
        for version in missing_versions(current, target):
            migrations[version](conn)
            conn.execute("INSERT INTO schema_version VALUES (%s, %s)",
                         (version, time.time_ns() // 1_000_000))
    return target
