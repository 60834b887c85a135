from typing import Any

STATUS_NOT_SENT: int
CANCEL_WITHOUT_ID: int
BAD_KIND: int
BAD_ROW: int
BAD_SIDE: int
BAD_TIF: int
BAD_QTY: int
BAD_PRICE: int
BAD_OID: int
STATUS_UNKNOWN: int

def tally_outcomes(results: Any, events: Any, sent: Any) -> tuple[int, int, int, int]: ...
def trace_columns(
    events: Any, reasons: Any, sent: Any, unknown: Any, results: Any | None = None
) -> dict[str, Any]: ...
def first_bad_order(
    kinds: Any, rows: Any, sides: Any, tifs: Any, qtys: Any, prices: Any, oids: Any,
    assets: int, tif_max: int,
) -> tuple[int, int] | None: ...
