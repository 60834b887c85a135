from typing import final

import numpy as np
import numpy.typing as npt

from obelisk._core.position import PositionBook

LIMIT_RESULT_DTYPE: np.dtype[np.void]
LIMIT_FILL_DTYPE: np.dtype[np.void]

_Records = npt.NDArray[np.void]

@final
class LimitLoop:
    def __init__(self, events: _Records) -> None: ...
    def run(self) -> tuple[int, int]: ...
    @property
    def results(self) -> _Records: ...
    @property
    def fills(self) -> _Records: ...
    @property
    def resting(self) -> int: ...

@final
class L2LimitLoop:
    def __init__(self, bid_prices: npt.ArrayLike, bid_sizes: npt.ArrayLike,
                 ask_prices: npt.ArrayLike, ask_sizes: npt.ArrayLike,
                 deltas: _Records) -> None: ...
    def run(self) -> int: ...
    @property
    def tops(self) -> _Records: ...

@final
class RecomputeLimitLoop:
    count: int
    padded: int
    balance: float
    cross_unrealized_pnl: float
    cross_maintenance_margin: float
    def __init__(self, book: PositionBook) -> None: ...
    def padded_marks(self, marks: npt.ArrayLike) -> npt.NDArray[np.float64]: ...
    def run(self, marks: npt.NDArray[np.float64]) -> None: ...
    @property
    def derived(self) -> dict[str, npt.NDArray[np.float64]]: ...
