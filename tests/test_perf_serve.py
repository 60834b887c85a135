"""`python -m obelisk.perf.serve --quick --json`: every row is there with positive numbers.

A smoke run of the benchmark script, with the server in a real subprocess; it checks
the report's shape, never a timing.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("aiohttp")

THROUGHPUT_ROWS = {("single-order actions", 1), ("single-order actions", 8),
                   ("bulk actions of 100", 1), ("bulk actions of 100", 8)}


@pytest.fixture(scope="module")
def report() -> dict:
    done = subprocess.run([sys.executable, "-m", "obelisk.perf.serve", "--quick", "--json"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_throughput_rows_accept_orders(report):
    rows = {(row["name"], row["clients"]): row for row in report["throughput"]}
    assert set(rows) == THROUGHPUT_ROWS
    for row in rows.values():
        assert row["accepted"] > 0
        assert row["seconds"] > 0 and row["actions_per_second"] > 0
        assert row["orders_per_second"] > 0
        assert row["refused"] == 0, row["refusals"]


def test_time_split_has_every_phase(report):
    assert [row["name"] for row in report["split"]] == ["single-order action",
                                                        "bulk action of 100"]
    for row in report["split"]:
        for phase in ("parse_us", "recover_us", "exchange_us", "answer_us", "book_us"):
            assert row[phase] > 0, phase
        assert sum(row["shares"].values()) == pytest.approx(1.0)


def test_fill_frame_latency_rows(report):
    names = [row["name"] for row in report["latency"]]
    assert names == ["request sent -> fill frame", "HTTP answer -> fill frame",
                     "request sent -> HTTP answer"]
    for row in report["latency"]:
        assert row["samples"] > 0
        assert row["p50_ms"] <= row["p99_ms"] <= row["max_ms"]
    sent_to_frame = report["latency"][0]
    assert sent_to_frame["p50_ms"] > 0


def test_goals_are_judged_and_budget_raised(report):
    assert len(report["goals"]) == len(THROUGHPUT_ROWS) + 1 + 2
    assert all(isinstance(goal["met"], bool) for goal in report["goals"])
    assert report["machine"]["ip_weight_per_minute"] > 1200


def test_text_table_lists_every_row_and_goal():
    from obelisk.perf.serve import (
        QUICK,
        LatencyRow,
        ServeBenchReport,
        SplitRow,
        ThroughputRow,
        _goals,
        format_serve_bench,
    )

    throughput = [ThroughputRow(name, clients, 10, 10 * size, 10 * size, 0, 0.5, 20.0,
                                20.0 * size, 0.9, 0.3)
                  for name, size in (("single-order actions", 1), ("bulk actions of 100", 100))
                  for clients in (1, 8)]
    split = [SplitRow("single-order action", 10, 1, 5.0, 100.0, 150.0, 2.0, 10.0)]
    latency = [LatencyRow("request sent -> fill frame", 300, 0.8, 1.5, 3.0)]
    report = ServeBenchReport(QUICK, {"python": "3", "platform": "x", "cpus": 2,
                                      "ip_weight_per_minute": 10**9}, throughput, split, latency)
    report.goals = _goals(report)
    text = format_serve_bench(report)
    assert text.count("single-order actions ") == 2 and text.count("bulk actions of 100 ") == 2
    assert "1,000,000,000/min" in text
    assert "fill frame p99" in text and "NOT MET" in text and " met" in text
