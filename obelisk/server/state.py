"""`obelisk serve --state FILE`: the whole exchange kept across restarts.

A restarted exchange that forgot its accounts, orders, fills and nonces would not
be the same exchange, and a bot could not be tested through a restart of it. The
state is the pickled :class:`~obelisk.server.exchange.LocalExchange` (its compiled
books pickle as snapshots) behind a header naming the format, written to a
temporary file and renamed, so a crash while saving leaves the previous state.
Load only state files this server wrote: unpickling runs code the file names.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path

from obelisk.errors import ObeliskError, describe
from obelisk.server.exchange import LocalExchange

__all__ = ["ServerStateError", "load_state", "save_state"]

FORMAT = 5                    # 2: candle volumes in lots; 3: status changes are tuples;
#                               4: fill price and size caches, instruments by asset and coin,
#                                  finished orders forgotten, fills kept in a bounded deque;
#                               5: resting reduce-only orders indexed per coin, position
#                                  books keep their lot sizes
HEADER = f"obelisk-serve-state {FORMAT}\n".encode()


class ServerStateError(ObeliskError):
    """A state file that is not one `obelisk serve` wrote, or of another format version."""


def save_state(exchange: LocalExchange, path: str | os.PathLike[str]) -> None:
    """Write `exchange` to `path` atomically (temporary file, fsync, rename, fsync of the
    folder)."""
    target = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(HEADER)
            pickle.dump(exchange, out, protocol=pickle.HIGHEST_PROTOCOL)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    folder = os.open(target.parent, os.O_RDONLY)      # the rename itself survives power loss
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def load_state(path: str | os.PathLike[str]) -> LocalExchange:
    """The exchange saved at `path`; ServerStateError when the file is not such a state."""
    with open(path, "rb") as state:
        head = state.read(len(HEADER))
        if head != HEADER:
            first = (head + state.read(40)).split(b"\n", 1)[0][:40]
            raise ServerStateError(f"{path} is not an obelisk serve state file of format {FORMAT} "
                                   f"(it starts {first!r}); give a file --state wrote, or a "
                                   "new path")
        try:
            exchange = pickle.load(state)
        except Exception as exc:
            raise ServerStateError(f"{path} holds a damaged state ({describe(exc)})") from None
    if not isinstance(exchange, LocalExchange):
        raise ServerStateError(f"{path} holds a {type(exchange).__name__}, not an exchange")
    return exchange
