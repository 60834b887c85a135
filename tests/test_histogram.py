"""LatencyHistogram (obelisk/_core/histogram.pyx) against numpy on the same samples."""

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obelisk._core.histogram import (
    BUCKET_COUNT,
    HIGHEST_TRACKABLE_NS,
    RELATIVE_PRECISION,
    SUB_BUCKET_BITS,
    LatencyHistogram,
    bucket_of,
    bucket_range,
)

QUANTILES = [0.0, 1.0, 25.0, 50.0, 90.0, 99.0, 99.9, 100.0]


def histogram_of(values) -> LatencyHistogram:
    histogram = LatencyHistogram()
    histogram.record_many(np.asarray(values, dtype=np.int64))
    return histogram


def summary(histogram: LatencyHistogram) -> tuple:
    return (histogram.count, histogram.overflow, histogram.min, histogram.max, histogram.mean(),
            histogram.percentiles(QUANTILES))


# ---------------------------------------------------------------- layout

def test_buckets_tile_the_range_without_gaps():
    previous_upper = 0
    for index in range(BUCKET_COUNT):
        lower, upper = bucket_range(index)
        assert lower == previous_upper
        highest = min(upper - 1, HIGHEST_TRACKABLE_NS)    # the last bucket ends past the hour
        assert bucket_of(lower) == index and bucket_of(highest) == index
        if lower >= 2 << SUB_BUCKET_BITS:
            assert (upper - lower) * (1 << SUB_BUCKET_BITS) <= lower   # width <= lower / 128
        previous_upper = upper
    assert bucket_of(HIGHEST_TRACKABLE_NS) == BUCKET_COUNT - 1


def test_values_below_256_have_their_own_bucket():
    assert [bucket_range(bucket_of(v)) for v in (0, 1, 255)] == [(0, 1), (1, 2), (255, 256)]
    assert bucket_range(bucket_of(256)) == (256, 258)
    assert bucket_range(bucket_of(1000)) == (1000, 1004)


@pytest.mark.parametrize("bad", [-1, HIGHEST_TRACKABLE_NS + 1])
def test_bucket_of_refuses_values_out_of_range(bad):
    with pytest.raises(ValueError, match="value must be in"):
        bucket_of(bad)


@pytest.mark.parametrize("bad", [-1, BUCKET_COUNT])
def test_bucket_range_refuses_bad_indices(bad):
    with pytest.raises(ValueError, match="bucket index"):
        bucket_range(bad)


def test_relative_precision_is_half_a_bucket():
    assert RELATIVE_PRECISION == 2.0 ** -(SUB_BUCKET_BITS + 1)


# ---------------------------------------------------------------- statistics vs numpy

latencies = st.lists(st.integers(0, HIGHEST_TRACKABLE_NS), min_size=1, max_size=300)


@settings(max_examples=150, deadline=None)
@given(latencies, st.lists(st.floats(0, 100), min_size=1, max_size=6))
def test_percentiles_match_numpy_within_precision(values, qs):
    histogram = histogram_of(values)
    expected = np.percentile(np.array(values), qs, method="inverted_cdf")
    for got, want in zip(histogram.percentiles(qs), expected, strict=True):
        assert abs(got - want) <= want * RELATIVE_PRECISION
    assert histogram.percentile(qs[0]) == histogram.percentiles(qs)[0]


@settings(max_examples=100, deadline=None)
@given(latencies)
def test_count_min_max_and_mean_are_exact(values):
    histogram = histogram_of(values)
    assert histogram.count == len(values)
    assert histogram.min == min(values) and histogram.max == max(values)
    assert histogram.mean() == pytest.approx(np.mean(values), rel=1e-12)
    assert histogram.overflow == 0


def test_stddev_within_precision_of_numpy():
    values = np.random.default_rng(3).lognormal(11, 1.5, 50_000).astype(np.int64)
    histogram = histogram_of(values)
    bound = np.sqrt(np.mean(values.astype(float) ** 2)) * RELATIVE_PRECISION
    assert abs(histogram.stddev() - np.std(values)) <= bound


def test_empty_histogram_reports_zeros():
    histogram = LatencyHistogram()
    assert summary(histogram) == (0, 0, 0, 0, 0.0, [0] * len(QUANTILES))
    assert histogram.stddev() == 0.0 and histogram.count_at_or_below(10**9) == 0


@pytest.mark.parametrize("q", [-0.1, 100.1, float("nan")])
def test_percentile_out_of_range_raises(q):
    with pytest.raises(ValueError, match="percentile must be in 0..100"):
        histogram_of([5]).percentile(q)


def test_bucket_counts_sum_to_count_without_overflow():
    histogram = histogram_of([0, 0, 300, HIGHEST_TRACKABLE_NS + 1])
    counts = histogram.bucket_counts()
    assert counts.shape == (BUCKET_COUNT,) and counts.sum() == histogram.count - 1
    assert counts[0] == 2 and counts[bucket_of(300)] == 1
    counts[0] = 99
    assert histogram.bucket_counts()[0] == 2


def test_count_at_or_below_counts_whole_buckets():
    histogram = histogram_of([10, 1000, 1003, 1004])
    assert [histogram.count_at_or_below(v) for v in (-1, 9, 10, 999, 1000, 1003, 1004)] == \
        [0, 0, 1, 1, 3, 3, 4]


# ---------------------------------------------------------------- clamping and bad input

def test_values_above_one_hour_overflow_but_keep_the_max():
    histogram = histogram_of([HIGHEST_TRACKABLE_NS, 5])
    assert histogram.overflow == 0
    histogram.record(HIGHEST_TRACKABLE_NS + 1)
    histogram.record(10**15)
    assert histogram.count == 4 and histogram.overflow == 2
    assert histogram.max == 10**15
    assert histogram.percentile(100) == HIGHEST_TRACKABLE_NS    # clamped to one hour
    assert histogram.percentile(0) == 5
    assert histogram.count_at_or_below(HIGHEST_TRACKABLE_NS) == 2
    assert histogram.count_at_or_below(10**15) == 4


def test_negative_value_raises_and_changes_nothing():
    histogram = histogram_of([7, 9])
    before = summary(histogram)
    with pytest.raises(ValueError, match="latency must be >= 0 ns, got -1"):
        histogram.record(-1)
    with pytest.raises(ValueError, match="at index 2; nothing recorded"):
        histogram.record_many(np.array([1, 2, -3, 4], dtype=np.int64))
    with pytest.raises(ValueError, match=">= 0"):
        histogram.record_corrected(-5, 10)
    assert summary(histogram) == before


@pytest.mark.parametrize("values, error, message", [
    (np.array([1.0, 2.0]), TypeError, "numpy int64 array, got float64"),
    (np.array([1, 2], dtype=np.int32), TypeError, "got int32"),
    (np.array([1, 2], dtype=">i8"), TypeError, "numpy int64 array"),
    ([1, 2], TypeError, "got list"),
    (np.zeros((2, 2), dtype=np.int64), ValueError, "1-D"),
])
def test_record_many_refuses_other_arrays(values, error, message):
    histogram = histogram_of([3])
    with pytest.raises(error, match=message):
        histogram.record_many(values)
    assert summary(histogram) == summary(histogram_of([3]))


def test_negative_expected_interval_raises():
    histogram = LatencyHistogram()
    with pytest.raises(ValueError, match="expected_interval"):
        histogram.record_corrected(100, -1)
    with pytest.raises(ValueError, match="expected_interval"):
        histogram.record_many(np.array([100], dtype=np.int64), -1)
    assert histogram.count == 0


def test_record_many_accepts_strided_views():
    values = np.arange(100, dtype=np.int64)
    assert summary(histogram_of(values[::3])) == summary(histogram_of(values[::3].copy()))


# ---------------------------------------------------------------- combining

@settings(max_examples=50, deadline=None)
@given(latencies, latencies)
def test_merge_equals_recording_everything_in_one(left, right):
    merged = histogram_of(left)
    merged.merge(histogram_of(right))
    together = histogram_of(left + right)
    assert summary(merged) == summary(together)
    assert merged.stddev() == pytest.approx(together.stddev(), rel=1e-9, abs=1e-9)


def test_merge_keeps_overflow_and_refuses_none():
    big = histogram_of([HIGHEST_TRACKABLE_NS + 10])
    small = histogram_of([1])
    small.merge(big)
    assert (small.count, small.overflow, small.min, small.max) == \
        (2, 1, 1, HIGHEST_TRACKABLE_NS + 10)
    with pytest.raises(TypeError):
        small.merge(None)


def test_copy_is_independent_and_drain_resets():
    histogram = histogram_of([1, 2, 3])
    twin = histogram.copy()
    histogram.record(1000)
    assert twin.count == 3 and histogram.count == 4
    drained = histogram.drain()
    assert summary(drained) == summary(histogram_of([1, 2, 3, 1000]))
    assert summary(histogram) == summary(LatencyHistogram())
    twin.reset()
    assert summary(twin) == summary(LatencyHistogram())


def test_threads_sharing_a_histogram_lose_no_sample():
    histogram = LatencyHistogram()

    def work():
        for value in range(5_000):
            histogram.record(value)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert histogram.count == 20_000 and histogram.max == 4_999


# ---------------------------------------------------------------- coordinated omission

def test_correction_back_fills_the_samples_a_stall_hid():
    # A 1000 ns stall in a loop that samples every 100 ns hid the calls that
    # would have waited 900, 800, ..., 100 ns (HdrHistogram: while >= interval).
    corrected = LatencyHistogram()
    corrected.record_corrected(1000, 100)
    hidden_and_seen = histogram_of(range(100, 1001, 100))
    assert np.array_equal(corrected.bucket_counts(), hidden_and_seen.bucket_counts())
    assert corrected.count == 10 and corrected.mean() == 550.0
    assert (corrected.min, corrected.max) == (100, 1000)


@pytest.mark.parametrize("value, interval, expected", [
    (250, 100, [250, 150]),
    (199, 100, [199]),
    (200, 100, [200, 100]),
    (50, 100, [50]),
    (500, 0, [500]),
])
def test_correction_by_hand(value, interval, expected):
    corrected = LatencyHistogram()
    corrected.record_corrected(value, interval)
    assert summary(corrected) == summary(histogram_of(expected))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 2_000_000), min_size=1, max_size=5), st.integers(400, 50_000))
def test_correction_matches_recording_each_missing_sample(values, interval):
    expected = [v - k * interval for v in values for k in range(v // interval + 1)
                if k == 0 or v - k * interval >= interval]
    batch = LatencyHistogram()
    batch.record_many(np.array(values, dtype=np.int64), interval)
    one_by_one = LatencyHistogram()
    for value in values:
        one_by_one.record_corrected(value, interval)
    reference = histogram_of(expected)
    assert np.array_equal(batch.bucket_counts(), reference.bucket_counts())
    assert np.array_equal(one_by_one.bucket_counts(), reference.bucket_counts())
    for histogram in (batch, one_by_one):
        assert (histogram.count, histogram.min, histogram.max) == \
            (reference.count, reference.min, reference.max)
        assert histogram.mean() == pytest.approx(reference.mean(), rel=1e-12)


def test_correction_of_a_long_stall_is_counted_in_bulk():
    # One hour and 3 us at a 1 us interval: 3.6 billion hidden samples, three above the hour.
    stall = HIGHEST_TRACKABLE_NS + 3_000
    corrected = LatencyHistogram()
    corrected.record_corrected(stall, 1_000)
    hidden = stall // 1_000 - 1
    assert corrected.count == 1 + hidden
    assert corrected.overflow == 3
    assert (corrected.min, corrected.max) == (1_000, stall)
    assert corrected.mean() == pytest.approx((stall + 1_000) / 2, rel=1e-12)
    assert corrected.percentile(50) == pytest.approx(stall / 2, rel=RELATIVE_PRECISION)
