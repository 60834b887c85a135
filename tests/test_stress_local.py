"""`obelisk stress --venue local` as CI runs it: `obelisk serve` in a subprocess, the seeded
flow through HyperliquidBatchVenue over loopback HTTP and websocket, one JSON report.
No timing is asserted (CI machines vary); the outcome counts are."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("aiohttp")
pytest.importorskip("requests")


def test_local_stress_reports_every_criterion_and_completes_the_flow():
    run = subprocess.run([sys.executable, "-m", "obelisk", "stress", "--venue", "local",
                          "--trades", "2000", "--json"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode in (0, 1), run.stderr         # 1: a timing criterion missed
    report = json.loads(run.stdout)
    assert report["config"]["venue"] == "local"
    assert {c["name"] for c in report["criteria"]} == {
        "sustained trades/s", "average end-to-end latency ms", "success rate %",
        "peak memory MB", "crashes"}
    assert report["trades"] == report["outcomes"]["submitted"] == 2000
    assert report["success_rate"] >= 99.9
    assert report["fills"] > 0 and not report["errors"]
    stages = report["stages_us"]
    assert {"sign", "exchange", "ws post", "http", "ws delivery"} <= set(stages)
    # the default for a network venue: batches of 480 as six actions of 80, all on their
    # way at once as websocket posts, none over HTTP
    config = report["config"]
    assert (config["post_via"], config["inflight"], config["action_size"],
            config["batch_size"]) == ("websocket", 6, 80, 480)
    assert report["stages_us"]["batch"]["count"] == 5                  # 2,000 / 480
    assert stages["ws post"]["count"] == stages["sign"]["count"] > 0
    assert stages["http"]["count"] == 0


def test_local_stress_can_post_over_http_one_action_at_a_time():
    run = subprocess.run([sys.executable, "-m", "obelisk", "stress", "--venue", "local",
                          "--trades", "1000", "--post-via", "http", "--inflight", "1",
                          "--action-size", "100", "--json"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode in (0, 1), run.stderr
    report = json.loads(run.stdout)
    stages = report["stages_us"]
    assert report["config"]["post_via"] == "http" and report["success_rate"] >= 99.9
    assert report["config"]["action_size"] == 100
    assert stages["http"]["count"] >= stages["sign"]["count"] >= 1000 // 100
    assert stages["ws post"]["count"] == 0


def test_testnet_refuses_to_start_without_a_key():
    env = {k: v for k, v in os.environ.items() if k != "OBELISK_TESTNET_KEY"}
    run = subprocess.run([sys.executable, "-m", "obelisk", "stress", "--venue", "testnet"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.count("\n") == 1 and "OBELISK_TESTNET_KEY" in run.stderr
