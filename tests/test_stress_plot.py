"""`obelisk stress --plot`: the latency curves behind it, the PNG a user gets, and the
errors when it cannot be drawn (a bad path, matplotlib missing)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obelisk._core.histogram import LatencyHistogram
from obelisk.perf.stress import latency_curve

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SMALL_STRESS = ["stress", "--trades", "3000", "--batch-size", "500"]


def obelisk_cli(*args: str, prelude: str = "") -> subprocess.CompletedProcess:
    code = f"{prelude}\nimport sys\nfrom obelisk.cli import main\nsys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "100"})


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 10**9), min_size=1, max_size=3000))
def test_latency_curve_is_the_histograms_percentiles_up_to_the_maximum(samples):
    histogram = LatencyHistogram()
    for value in samples:
        histogram.record(value)
    curve = latency_curve(histogram)
    percentiles = [p for p, _ in curve]
    assert percentiles[0] == 0.0 and curve[-1] == [100.0, max(samples) / 1000]
    assert percentiles == sorted(percentiles)
    # only percentiles the samples can resolve: 1 / (1 - p) at most the count
    assert all(1 / (1 - p / 100) <= len(samples) * (1 + 1e-9) for p in percentiles[:-1])
    latencies = [us for _, us in curve]
    assert latencies == sorted(latencies)
    for p, us in curve[:-1]:
        assert us == histogram.percentile(p) / 1000
        # the histogram's value lies within its bucket precision of the exact one
        exact = np.percentile(samples, p, method="inverted_cdf") / 1000
        assert abs(us - exact) <= 0.01 * exact + 0.002


def test_latency_curve_of_nothing_is_empty():
    assert latency_curve(LatencyHistogram()) == []


def test_stress_plot_draws_a_png_and_the_json_carries_its_data(tmp_path):
    target = tmp_path / "run.png"
    done = obelisk_cli(*SMALL_STRESS, "--json", "--plot", str(target))
    assert done.returncode == 0, done.stderr
    assert f"plot written to {target}" in done.stderr
    report = json.loads(done.stdout)           # the plot notice stays off stdout
    rounds = report["timeline"]
    assert [n for _, n in rounds] == sorted(n for _, n in rounds) and rounds[-1][1] == 3000
    curves = report["latency_curves_us"]
    assert set(curves) == set(report["stages_us"])
    assert curves["end_to_end"][-1][1] == pytest.approx(report["stages_us"]["end_to_end"]["max"])

    data = target.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 20_000
    import matplotlib.image

    pixels = matplotlib.image.imread(str(target))
    height, width = pixels.shape[:2]
    assert (width, height) == (1300, 500)
    colours = np.unique(pixels.reshape(-1, pixels.shape[2]), axis=0)
    assert len(colours) > 50                   # lines, labels and legends, not a blank canvas


def test_stress_plot_into_a_missing_folder_is_a_usage_error(tmp_path):
    done = obelisk_cli(*SMALL_STRESS, "--plot", str(tmp_path / "nowhere" / "run.png"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "argument --plot: the folder" in done.stderr and "does not exist" in done.stderr


def test_stress_plot_without_matplotlib_refuses_before_running(tmp_path):
    target = tmp_path / "run.png"
    done = obelisk_cli(*SMALL_STRESS, "--plot", str(target),
                       prelude="import sys; sys.modules['matplotlib'] = None")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert 'pip install "obelisk[plot]"' in done.stderr
    assert done.stdout == "" and not target.exists()
