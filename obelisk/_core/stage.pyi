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
def allowed_orders(reasons: Any, flags: Any, flag: int) -> tuple[Any, bool]: ...
def any_flagged(flags: Any, flag: int) -> bool: ...
def open_order_changes(results: Any, events: Any, sent: Any) -> tuple[list[int], list[int]]: ...
def trace_columns(
    events: Any, reasons: Any, sent: Any, unknown: Any, results: Any | None = None
) -> dict[str, Any]: ...
def int64_columns(
    kinds: Any, rows: Any, sides: Any, tifs: Any, qtys: Any, prices: Any, oids: Any,
    reduce_only: Any,
) -> list[Any]: ...
def first_bad_order(
    columns: list[Any], no_oids: bool, assets: int, tif_max: int
) -> tuple[int, int] | None: ...
def queue_orders(
    columns: list[Any], start: int, count: int, events: Any, rows_out: Any, flags_out: Any,
    born_out: Any, at: int, ids: Any, assets: Any, next_oid: int, owner: int, born: int,
) -> int: ...
