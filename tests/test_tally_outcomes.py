"""tally_outcomes: the engine's count of how sent orders ended, against numpy's."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obelisk import EVENT_DTYPE, RESULT_DTYPE, EventKind, OrderStatus
from obelisk._core.book import tally_outcomes


def numpy_tally(results, events, sent):
    status, filled = results["status"], results["filled_qty"] > 0
    cancels = events["kind"][sent] == EventKind.CANCEL
    return (int(np.count_nonzero(filled)),
            int(np.count_nonzero((status == OrderStatus.RESTED) & ~filled)),
            int(np.count_nonzero(cancels & (status == OrderStatus.CANCELLED) & ~filled)),
            int(np.count_nonzero((status == OrderStatus.REJECTED) & ~filled)))


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from(list(EventKind)), st.sampled_from(list(OrderStatus)),
                               st.sampled_from([0, 0, 3])), max_size=40),
       data=st.data())
def test_tally_matches_numpy(rows, data):
    events = np.zeros(len(rows) + 3, dtype=EVENT_DTYPE)
    sent = np.array(sorted(data.draw(st.sets(st.integers(0, len(events) - 1),
                                             max_size=len(rows)))), dtype=np.int64)
    results = np.zeros(len(sent), dtype=RESULT_DTYPE)
    for k, row in enumerate(sent):
        kind, status, filled = rows[k % len(rows)] if rows else (EventKind.LIMIT, 1, 0)
        events["kind"][row] = kind
        results[k]["status"], results[k]["filled_qty"] = status, filled
    assert tally_outcomes(results, events, sent) == numpy_tally(results, events, sent)


def test_tally_refuses_mismatched_or_outside_rows():
    events = np.zeros(2, dtype=EVENT_DTYPE)
    with pytest.raises(ValueError, match="1 results for 2 sent events"):
        tally_outcomes(np.zeros(1, dtype=RESULT_DTYPE), events, np.array([0, 1]))
    with pytest.raises(IndexError, match="sent event 2 is outside the batch of 2"):
        tally_outcomes(np.zeros(1, dtype=RESULT_DTYPE), events, np.array([2]))
