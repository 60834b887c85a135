"""Run a function over every combination of a grid on a Dask cluster, one task per run.

dask.distributed is an optional extra (``pip install "obelisk[dask]"``), imported on
first use so that ``import obelisk`` never loads it. A worker that dies mid-sweep
loses its running and finished-but-unfetched tasks; the scheduler runs them again
elsewhere, so the sweep still returns every result (a task that kills more than
three workers, distributed's ``allowed-failures``, is given up: the sweep then fails
naming that run).
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from obelisk.errors import describe
from obelisk.sweep.grid import expand

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["DaskUnavailableError", "Point", "RunFailedError", "local_client",
           "remote_client", "require_dask", "run"]

T = TypeVar("T")
DASK_HINT = 'pip install "obelisk[dask]"'
CONNECT_TIMEOUT_S = 10.0       # how long to wait for an existing scheduler to answer


class DaskUnavailableError(ImportError):
    """dask.distributed, which only sweeps need, is not installed."""


class RunFailedError(RuntimeError):
    """One run of a sweep raised; the rest are cancelled and this names the failed run.

    The run's own exception is the ``__cause__``.
    """

    def __init__(self, index: int, total: int, params: Mapping[str, Any],
                 cause: BaseException) -> None:
        self.index, self.params = index, dict(params)
        shown = ", ".join(f"{name}={value!r}" for name, value in params.items())
        super().__init__(f"run {index + 1} of {total} ({shown}) failed: {describe(cause)}")


@dataclass(frozen=True)
class Point(Generic[T]):
    """One run of a sweep: the parameters `fn` was called with and what it returned."""

    params: dict[str, Any]
    result: T


def require_dask() -> None:
    """Fail before anything starts, with the command that fixes it, when dask is missing."""
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise DaskUnavailableError(f"sweeps need dask.distributed: {DASK_HINT}") from exc


@contextmanager
def local_client(workers: int = 2) -> Iterator[Client]:
    """A client of a new LocalCluster, closed on exit: `workers` processes of one thread
    each (one run per process at a time, so no run is timed while another holds its GIL),
    bound to 127.0.0.1, with no dashboard. The scheduler's HTTP endpoints (health,
    metrics) start even then, on 8787 unless told otherwise: they get a free loopback
    port, so two sweeps, or a sweep and someone's dashboard, never compete for one."""
    if workers < 1:
        raise ValueError(f"a local cluster needs at least 1 worker, not {workers}")
    require_dask()
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address=None,
                      scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client


@contextmanager
def remote_client(address: str) -> Iterator[Client]:
    """A client of an existing scheduler at `address` (``tcp://HOST:PORT``); closing it
    leaves the cluster running."""
    require_dask()
    from distributed import Client

    with Client(address, timeout=CONNECT_TIMEOUT_S) as client:
        yield client


def run(fn: Callable[..., T], grid: Mapping[str, Any], client: Client | None = None, *,
        workers: int = 2, progress: Callable[[int, int], None] | None = None
        ) -> list[Point[T]]:
    """Call ``fn(**params)`` for every combination of `grid` on a Dask cluster.

    Parameters
    ----------
    fn
        Any function the workers can unpickle: defined in a module they can import
        (obelisk's own, such as :func:`obelisk.sweep.simulation`), or a lambda/closure.
    grid
        Parameter name -> list of values; every combination is one run.
    client
        A ``distributed.Client``; with None a LocalCluster of `workers` processes is
        started on 127.0.0.1 and closed afterwards.
    progress
        Called as ``progress(done, total)`` at the start and after every finished run.

    Returns
    -------
    One :class:`Point` per combination, in grid order (the last name varies fastest).

    Raises
    ------
    GridError
        For a grid that cannot be expanded, before any cluster starts.
    DaskUnavailableError
        When dask.distributed is not installed.
    RunFailedError
        When a run raised; the runs still queued are cancelled.
    """
    combinations = expand(grid)
    if client is None:
        with local_client(workers) as own:
            return _gather(own, fn, combinations, progress)
    return _gather(client, fn, combinations, progress)


def _gather(client: Client, fn: Callable[..., T], combinations: list[dict[str, Any]],
            progress: Callable[[int, int], None] | None) -> list[Point[T]]:
    from distributed import as_completed

    total = len(combinations)
    token = uuid.uuid4().hex
    # partial(fn, **params), not submit(fn, **params): a parameter named like one of
    # submit's own (key, workers, retries, ...) must reach fn
    futures = [client.submit(functools.partial(fn, **params), key=f"obelisk-sweep-{token}-{i}")
               for i, params in enumerate(combinations)]
    position = {future.key: i for i, future in enumerate(futures)}
    results: dict[int, T] = {}
    if progress is not None:
        progress(0, total)
    try:
        for done, future in enumerate(as_completed(futures), start=1):
            i = position[future.key]
            try:
                results[i] = future.result()
            except Exception as exc:
                raise RunFailedError(i, total, combinations[i], exc) from exc
            if progress is not None:
                progress(done, total)
    except BaseException:
        client.cancel(futures)          # a shared cluster should not keep running them
        raise
    return [Point(params, results[i]) for i, params in enumerate(combinations)]
