"""Tests of obelisk._core.pool: the arena contract, checked against a set-based model."""

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from obelisk._core.pool import OrderPool
from obelisk.errors import PoolExhaustedError, StaleHandleError


def test_acquire_release_and_stats():
    pool = OrderPool(4, growable=False)
    handles = [pool.acquire() for _ in range(4)]
    assert len({OrderPool.slot_of(h) for h in handles}) == 4
    assert pool.stats() == {"capacity": 4, "in_use": 4, "free": 0, "high_water": 4,
                            "grow_count": 0, "growable": False, "slot_bytes": 40}
    with pytest.raises(PoolExhaustedError, match="full"):
        pool.acquire()
    pool.release(handles[1])
    assert pool.in_use == 3 and pool.high_water == 4


def test_stale_handle_is_detected_even_after_slot_reuse():
    pool = OrderPool(1, growable=False)
    first = pool.acquire()
    pool.release(first)
    second = pool.acquire()
    assert OrderPool.slot_of(first) == OrderPool.slot_of(second)
    assert not pool.is_live(first) and pool.is_live(second)
    with pytest.raises(StaleHandleError):
        pool.release(first)
    assert pool.in_use == 1  # the failed release changed nothing


@pytest.mark.parametrize("handle", [-1, 99, (7 << 32) | 0])
def test_foreign_handles_are_refused(handle):
    pool = OrderPool(2)
    pool.acquire()
    with pytest.raises(StaleHandleError):
        pool.release(handle)
    assert pool.in_use == 1


def test_growth_is_amortised():
    pool = OrderPool(1)
    for _ in range(1000):
        pool.acquire()
    assert pool.capacity >= 1000 and pool.grow_count == 10


def test_bad_capacity():
    with pytest.raises(ValueError, match="at least 1"):
        OrderPool(0)


class PoolModel(RuleBasedStateMachine):
    """The pool never hands out a live slot twice and always detects released handles."""

    def __init__(self):
        super().__init__()
        self.pool = OrderPool(2, growable=True)
        self.live = set()
        self.released = set()

    @rule()
    def acquire(self):
        handle = self.pool.acquire()
        assert OrderPool.slot_of(handle) not in {OrderPool.slot_of(h) for h in self.live}
        self.live.add(handle)

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def release(self, data):
        handle = data.draw(st.sampled_from(sorted(self.live)))
        self.pool.release(handle)
        self.live.remove(handle)
        self.released.add(handle)

    @precondition(lambda self: self.released)
    @rule(data=st.data())
    def release_stale(self, data):
        handle = data.draw(st.sampled_from(sorted(self.released)))
        with pytest.raises(StaleHandleError):
            self.pool.release(handle)

    @invariant()
    def counts_agree(self):
        assert self.pool.in_use == len(self.live)
        assert all(self.pool.is_live(h) for h in self.live)
        assert not any(self.pool.is_live(h) for h in self.released)


TestPoolModel = PoolModel.TestCase
TestPoolModel.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
