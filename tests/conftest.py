"""Fixtures for every test module: the throwaway PostgreSQL server of tests/pg_server.py."""

from pg_server import pg_url, postgres_server  # noqa: F401
