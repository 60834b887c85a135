from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from obelisk._core.book import BatchResult, OrderBook

def process_sharded(
    books: Sequence[OrderBook],
    events: npt.NDArray[np.void],
    selections: Sequence[Callable[[], npt.ArrayLike]],
    run_in_parallel: Callable[[list[Callable[[], Any]]], list[Any]],
    merge_parts: int = 1,
) -> BatchResult: ...
def process_in_turn(
    books: Sequence[OrderBook],
    events: npt.NDArray[np.void],
    asset_ids: npt.ArrayLike,
) -> BatchResult: ...
