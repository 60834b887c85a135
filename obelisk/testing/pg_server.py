"""A throwaway PostgreSQL server for the tests and the benchmark: a real server, never a mock.

:class:`PostgresServer` runs ``initdb`` into a temporary folder and ``pg_ctl
start`` on a free 127.0.0.1 port, as the ``postgres`` user when we are root
(PostgreSQL refuses to run as root), and removes everything at :meth:`stop`.
The binaries come from ``OBELISK_PG_BINDIR``, ``pg_config --bindir``,
``/usr/lib/postgresql/<version>/bin`` or the ``PATH``, whichever has ``initdb``
and ``pg_ctl`` first; :func:`find_bindir` says which.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import weakref
from types import TracebackType

__all__ = ["PostgresNotFoundError", "PostgresServer", "find_bindir"]

NEEDED = ("initdb", "pg_ctl", "postgres")
SUPERUSER = "postgres"


class PostgresNotFoundError(RuntimeError):
    """No PostgreSQL server binaries (initdb, pg_ctl, postgres) on this machine."""


def _has_binaries(folder: str | None) -> bool:
    return bool(folder) and all(os.access(os.path.join(str(folder), name), os.X_OK)
                                for name in NEEDED)


def find_bindir() -> str | None:
    """The folder of ``initdb``, ``pg_ctl`` and ``postgres``, or None if there is none."""
    candidates: list[str | None] = [os.environ.get("OBELISK_PG_BINDIR")]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        candidates.append(subprocess.run(["pg_config", "--bindir"], capture_output=True,
                                         text=True, timeout=10).stdout.strip())

    def version(folder: str) -> tuple[int, ...]:
        name = os.path.basename(os.path.dirname(folder))
        return tuple(int(part) for part in name.split(".") if part.isdigit())

    newest_first = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    candidates.extend(newest_first)
    initdb = shutil.which("initdb")
    candidates.append(os.path.dirname(os.path.realpath(initdb)) if initdb else None)
    return next((folder for folder in candidates if folder and _has_binaries(folder)), None)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """A PostgreSQL cluster in a temporary folder, serving 127.0.0.1 on a free port.

    `durable=False` (tests) turns fsync off: a server crash may then lose commits,
    which no test provokes (they kill clients, and stop the server cleanly).
    Use as a context manager, or call :meth:`start` and :meth:`stop`.

    Raises
    ------
    PostgresNotFoundError : from :meth:`start`, when no binaries were found.
    """

    def __init__(self, bindir: str | None = None, *, durable: bool = False) -> None:
        self.bindir = bindir or find_bindir()
        self.durable = durable
        self.port = 0
        self.folder = ""
        self._as_postgres = hasattr(os, "geteuid") and os.geteuid() == 0
        self._finalizer: weakref.finalize | None = None

    @property
    def data(self) -> str:
        return os.path.join(self.folder, "data")

    @property
    def log_path(self) -> str:
        return os.path.join(self.folder, "server.log")

    def url(self, database: str = "postgres") -> str:
        """The URL of `database` on this server (trust authentication: no password)."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> str:
        """Create the cluster and start the server; returns the URL of its ``postgres`` database."""
        if not _has_binaries(self.bindir):
            raise PostgresNotFoundError(
                "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found: install "
                "the postgresql package, or set OBELISK_PG_BINDIR to their folder")
        self.folder = tempfile.mkdtemp(prefix="obelisk-pg-")
        self._finalizer = weakref.finalize(self, _remove, self.folder, self._pg_ctl_stop_args())
        if self._as_postgres:
            import pwd

            account = pwd.getpwnam(SUPERUSER)
            os.chown(self.folder, account.pw_uid, account.pw_gid)
        self._run("initdb", "--no-sync", "-A", "trust", "-U", SUPERUSER, "-E", "UTF8",
                  "--locale=C", "-D", self.data)
        for _ in range(5):                  # another process may take the free port first
            self.port = _free_port()
            try:
                self._pg_ctl_start()
                break
            except subprocess.CalledProcessError:
                if "could not bind" not in self._log_tail():
                    raise
        else:
            raise RuntimeError(f"PostgreSQL found no free port:\n{self._log_tail()}")
        return self.url()

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`mode`: "smart", "fast" or "immediate") and remove its folder."""
        if self._finalizer is not None and self._finalizer.alive:
            self.pause(mode)
            self._finalizer()

    def pause(self, mode: str = "fast") -> None:
        """Stop the server and keep its data; :meth:`resume` starts it again on the same port."""
        self._run("pg_ctl", "stop", "-w", "-m", mode, "-D", self.data, check=False)

    def resume(self) -> None:
        self._pg_ctl_start()

    @property
    def running(self) -> bool:
        return os.path.exists(os.path.join(self.data, "postmaster.pid"))

    def ensure_running(self) -> None:
        """Start the server again if a test stopped it and did not get to start it."""
        if not self.running:
            self.resume()

    def restart(self, mode: str = "fast") -> None:
        """Stop the server and start it again: every client connection drops."""
        self.pause(mode)
        self.resume()

    def execute(self, sql: str, database: str = "postgres") -> None:
        """Run `sql` as the superuser (autocommit), e.g. CREATE DATABASE."""
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _pg_ctl_start(self) -> None:
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                   f"-c max_connections=200")
        if not self.durable:
            options += " -c fsync=off -c full_page_writes=off"
        self._run("pg_ctl", "start", "-w", "-t", "60", "-D", self.data, "-l", self.log_path,
                  "-o", options)

    def _pg_ctl_stop_args(self) -> list[str]:
        return self._command("pg_ctl", "stop", "-w", "-m", "immediate", "-D", self.data)

    def _command(self, program: str, *args: str) -> list[str]:
        command = [os.path.join(str(self.bindir), program), *args]
        return ["runuser", "-u", SUPERUSER, "--", *command] if self._as_postgres else command

    def _run(self, program: str, *args: str, check: bool = True) -> None:
        done = subprocess.run(self._command(program, *args), capture_output=True, text=True,
                              timeout=120)
        if check and done.returncode:
            raise subprocess.CalledProcessError(done.returncode, done.args, done.stdout,
                                                f"{done.stderr}\n{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            with open(self.log_path) as log:
                return "".join(log.readlines()[-20:])
        except OSError:
            return ""


def _remove(folder: str, stop: list[str]) -> None:
    """Stop a server still running (at exit, or a store left behind) and delete its folder."""
    if os.path.exists(os.path.join(folder, "data", "postmaster.pid")):
        subprocess.run(stop, capture_output=True, timeout=60, check=False)
    shutil.rmtree(folder, ignore_errors=True)
