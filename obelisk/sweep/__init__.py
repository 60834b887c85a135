"""Sweeps: a function run over every combination of a grid of parameters on a Dask cluster.

``run(fn, grid, client=None)`` is the API, for any function; ``simulate`` is the
``obelisk stress`` flow as such a function, and ``obelisk sweep`` runs it over
batch sizes, max waits, assets, flow mixes and seeds. Importing this package loads
neither dask nor matplotlib, nor (until ``simulate`` is used) the engine; each is
imported when first needed (``pip install "obelisk[dask]"``, ``"obelisk[plot]"``).
See docs/sweep.md for how workers get obelisk.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from obelisk.sweep.grid import GridError, expand
from obelisk.sweep.runner import (
    DaskUnavailableError,
    Point,
    RunFailedError,
    local_client,
    remote_client,
    run,
)

if TYPE_CHECKING:
    from obelisk.sweep.simulation import SimResult, simulate

# The stress flow needs the compiled core and the engine: loaded on first use (PEP 562).
_MODULE_OF = {"SimResult": "obelisk.sweep.simulation", "simulate": "obelisk.sweep.simulation"}


def __getattr__(name: str) -> object:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'obelisk.sweep' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = ["DaskUnavailableError", "GridError", "Point", "RunFailedError", "SimResult",
           "expand", "local_client", "remote_client", "run", "simulate"]
