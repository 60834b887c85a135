from typing import final

import numpy as np
import numpy.typing as npt

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
