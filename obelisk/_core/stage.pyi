from typing import Any

STATUS_NOT_SENT: int
STATUS_UNKNOWN: int

def tally_outcomes(results: Any, events: Any, sent: Any) -> tuple[int, int, int, int]: ...
def trace_columns(
    events: Any, reasons: Any, sent: Any, unknown: Any, results: Any | None = None
) -> dict[str, Any]: ...
