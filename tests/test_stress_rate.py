"""The stress flow at an arrival rate: orders reach the engine evenly over time, so its
max batch wait decides when batches go (what ``obelisk sweep --rate`` measures)."""

import gc
import subprocess
import sys

import pytest

from obelisk.perf.settings import StressConfig
from obelisk.perf.stress import run_stress

PACED = {"trades": 10_000, "batch_size": 5_000, "arrival_rate": 50_000.0, "trace": False}


def batches(report):
    return int(report.stages_us["batch"]["count"])


def test_a_short_wait_sends_many_small_batches_and_a_long_one_a_batch_a_round():
    short = run_stress(StressConfig(**PACED, max_batch_wait_ms=1.0))
    long = run_stress(StressConfig(**PACED, max_batch_wait_ms=10_000.0))
    assert batches(long) == 2                 # the two rounds, each sent when it ends
    assert batches(short) >= 20               # ~50 orders each at 1 ms
    for report in (short, long):
        assert report.trades == 10_000 and report.success_rate == 100.0, report.outcomes
    # orders wait for their batch: up to a round (0.1 s at this rate) with the long wait
    assert long.stages_us["end_to_end"]["avg"] > 10 * short.stages_us["end_to_end"]["avg"]


def test_at_a_low_rate_a_batch_still_goes_at_its_max_wait():
    # orders 100 ms apart, batches sent after 5 ms: no order waits for the next arrival
    report = run_stress(StressConfig(trades=20, batch_size=1_000, arrival_rate=10.0,
                                     max_batch_wait_ms=5.0, trace=False))
    assert batches(report) == 20
    assert report.stages_us["end_to_end"]["max"] < 50_000      # was ~100 ms (found in review)


def test_orders_arrive_no_faster_than_the_rate():
    report = run_stress(StressConfig(**PACED, max_batch_wait_ms=1.0))
    assert report.seconds >= 10_000 / 50_000 * 0.95
    assert report.trades_per_second <= 50_000 * 1.05


def test_orders_at_once_keep_the_counts_a_seed_decides():
    at_once = [run_stress(StressConfig(trades=6_000, batch_size=1_000, trace=False,
                                       max_batch_wait_ms=wait)) for wait in (0.1, 100.0)]
    assert [batches(r) for r in at_once] == [6, 6]
    assert at_once[0].fills == at_once[1].fills and at_once[0].outcomes == at_once[1].outcomes


@pytest.mark.parametrize(("args", "says"), [
    (["--rate", "-1"], "argument --rate: '-1' is not a rate"),
    (["--rate", "1000", "--venue", "local"], "argument --rate: paced arrival is built for "
                                             "--venue sim only"),
])
def test_a_rate_the_flow_cannot_use_is_one_line_and_exit_2(args, says):
    done = subprocess.run([sys.executable, "-m", "obelisk", "stress", "--trades", "100", *args],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1 and says in done.stderr


def test_the_run_keeps_the_heap_before_it_out_of_full_collections_and_then_lets_go():
    frozen_during = []
    run_stress(StressConfig(trades=2_000, batch_size=500, trace=False),
               progress=lambda done, total: frozen_during.append(gc.get_freeze_count()))
    assert min(frozen_during) > 10_000        # the modules and the pipeline, frozen
    assert gc.get_freeze_count() == 0         # given back when the run ends
