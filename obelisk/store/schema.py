"""The trace tables of a SQLite file, created and upgraded by numbered migrations.

``MIGRATIONS[v]`` turns a version ``v - 1`` database into version ``v``; an empty
file is version 0, so a new database runs every step and an old one the missing
ones. Each applied step is a row of ``schema_version``. PostgreSQL's steps
(:mod:`obelisk.store.pg_schema`) have the same numbers and make the same tables.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from obelisk.store.errors import TraceSchemaError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate", "missing_versions", "schema_version"]


def _create_v1(conn: sqlite3.Connection) -> None:
    """v1: raw JSON payloads, looked up by kind and time."""
    conn.execute("CREATE TABLE traces (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, "
                 "kind TEXT NOT NULL, asset TEXT, order_id INTEGER, cloid TEXT, "
                 "payload BLOB NOT NULL)")
    conn.execute("CREATE INDEX traces_kind_ts ON traces (kind, ts)")


def _codec_and_lookups_v2(conn: sqlite3.Connection) -> None:
    """v2: a codec byte per row (0 = raw, so v1 rows stay readable) and the lookup indices.

    The asset, order and cloid indices are partial: traces without that field cost
    no index write, and an equality on the column implies the index's condition.
    """
    conn.execute("ALTER TABLE traces ADD COLUMN codec INTEGER NOT NULL DEFAULT 0")
    conn.execute("CREATE INDEX traces_ts ON traces (ts)")
    conn.execute("CREATE INDEX traces_asset_ts ON traces (asset, ts) WHERE asset IS NOT NULL")
    conn.execute("CREATE INDEX traces_order_ts ON traces (order_id, ts) "
                 "WHERE order_id IS NOT NULL")
    conn.execute("CREATE INDEX traces_cloid_ts ON traces (cloid, ts) WHERE cloid IS NOT NULL")


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _create_v1,
    2: _codec_and_lookups_v2,
}
SCHEMA_VERSION = max(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    """The version of the database behind `conn` (0 if it has no trace tables yet)."""
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "schema_version" not in tables:
        if "traces" in tables:
            raise TraceSchemaError("the database has a traces table but no schema_version table")
        return 0
    (version,) = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(version)


def missing_versions(current: int, target: int) -> range:
    """The steps from version `current` to `target`; TraceSchemaError if `current` is newer."""
    if current > target:
        raise TraceSchemaError(f"the database is at schema version {current}, newer than "
                               f"{target}, the newest this obelisk knows")
    return range(current + 1, target + 1)


def migrate(conn: sqlite3.Connection,
            migrations: dict[int, Callable[[sqlite3.Connection], None]] = MIGRATIONS) -> int:
    """Bring the database to the newest version in one transaction; returns that version.

    `conn` must be in autocommit mode (``isolation_level=None``).
    """
    target = max(migrations)
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = schema_version(conn)
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version "
                     "(version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)")
        for version in missing_versions(current, target):
            migrations[version](conn)
            conn.execute("INSERT INTO schema_version VALUES (?, ?)",
                         (version, time.time_ns() // 1_000_000))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return target
