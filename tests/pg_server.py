"""pytest fixtures over a throwaway PostgreSQL server (:mod:`obelisk.testing.pg_server`).

``postgres_server``: one real server for the session, started on first use and
stopped at the end, with one test database. ``pg_url``: that database, emptied
for each test. Without the PostgreSQL server binaries the tests that use them are
skipped, unless ``CI`` is set: CI installs the server, so there they fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from obelisk.testing.pg_server import PostgresServer, find_bindir

TEST_DATABASE = "obelisk_test"


def _unavailable(reason: str, *, module: bool = False) -> None:
    """Skip, or fail under CI, because `reason` keeps the PostgreSQL tests from running."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must provide it", pytrace=False)
    pytest.skip(reason, allow_module_level=module)


def require_psycopg(*, module: bool = True) -> None:
    """Skip the calling test module (fail it under CI) unless psycopg 3 is importable."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg 3 is not installed (pip install 'obelisk[postgres]')",
                     module=module)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server on a free 127.0.0.1 port, for the whole session."""
    require_psycopg(module=False)
    if find_bindir() is None:
        _unavailable("the PostgreSQL server binaries (initdb, pg_ctl, postgres) were not "
                     "found (apt-get install postgresql, or set OBELISK_PG_BINDIR)")
    server = PostgresServer()
    server.start()
    server.execute(f"CREATE DATABASE {TEST_DATABASE}")
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> str:
    """The URL of an empty database: the test database with its schema dropped and made anew
    (far cheaper than CREATE DATABASE, which copies a template), no other client on it."""
    import psycopg

    postgres_server.ensure_running()          # a test before may have stopped it and failed
    with psycopg.connect(postgres_server.url(TEST_DATABASE), autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return postgres_server.url(TEST_DATABASE)
