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
    assert {"sign", "exchange", "http", "ws delivery"} <= set(report["stages_us"])


def test_testnet_refuses_to_start_without_a_key():
    env = {k: v for k, v in os.environ.items() if k != "OBELISK_TESTNET_KEY"}
    run = subprocess.run([sys.executable, "-m", "obelisk", "stress", "--venue", "testnet"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.count("\n") == 1 and "OBELISK_TESTNET_KEY" in run.stderr
