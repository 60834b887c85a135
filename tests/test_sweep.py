"""obelisk.sweep on a real LocalCluster of 2 worker processes on 127.0.0.1: a sweep gives
what a serial loop gives, a SIGKILLed worker's runs are run again elsewhere, and
``obelisk sweep`` end to end in a subprocess (table, JSON, PNG, one-line errors).

No timing is asserted (2 shared cores); the counts a seed decides are. The
``obelisk sweep`` subprocess tests need the command wired into obelisk/cli.py.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("distributed")

import psutil  # noqa: E402 - a dependency of distributed

from obelisk.sweep import GridError, RunFailedError, expand, local_client, run  # noqa: E402
from obelisk.sweep.simulation import SimResult, simulate  # noqa: E402

HOLD_S = 1.5               # how long a marked run stays running, for the kill to land in


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with local_client(2) as shared:
        yield shared


def _power(base: int, exponent: int, key: str = "", workers: int = 0) -> tuple[int, str, int]:
    return base ** exponent, key, workers


def _fails_on_three(n: int) -> int:
    if n == 3:
        raise ZeroDivisionError("three is right out")
    return n


def _pid(n: int) -> int:
    return os.getpid()


def _marked(folder: str, **params: Any) -> tuple[dict[str, Any], int]:
    """A stress run that says where it started (a file named seed.pid) and stays running
    HOLD_S first, so a worker can be killed while it holds the run."""
    Path(folder, f"{params['seed']}.{os.getpid()}").touch()
    time.sleep(HOLD_S)
    return simulate(**params).counts(), os.getpid()


def _serial(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    return [simulate(**params).counts() for params in expand(grid)]


def obelisk_sweep(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "obelisk", "sweep", *args],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "100"})


# ------------------------------------------------------------------ the grid and the API

def test_a_grid_expands_in_order_with_the_last_name_fastest():
    assert expand({"a": [1, 2], "b": ("x", "y", "z")}) == [
        {"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 1, "b": "z"},
        {"a": 2, "b": "x"}, {"a": 2, "b": "y"}, {"a": 2, "b": "z"}]


@pytest.mark.parametrize(("grid", "says"), [
    ({}, "the grid is empty"),
    ({"a": []}, "parameter 'a' has no values"),
    ({"a": "100"}, "give a list of values, not str"),
    ({"a": 5}, "give a list of values, not int"),
    ({"a": {1, 2}}, "a set has no order"),
    ({"batch size": [1]}, "is not a Python identifier"),
    ([("a", [1])], "a grid is a mapping"),
])
def test_a_bad_grid_is_refused_before_any_cluster_starts(grid, says):
    before = psutil.Process().children(recursive=True)
    with pytest.raises(GridError, match=says):
        run(_pid, grid)                                  # client=None: it would start one
    assert psutil.Process().children(recursive=True) == before


def test_run_returns_every_result_in_grid_order_with_its_params(client):
    seen: list[tuple[int, int]] = []
    grid = {"base": [2, 3], "exponent": [1, 2, 3], "key": ["k"], "workers": [7]}
    points = run(_power, grid, client, progress=lambda done, total: seen.append((done, total)))
    assert [p.params for p in points] == expand(grid)
    # names that Client.submit takes for itself (key, workers) still reach the function
    assert [p.result for p in points] == [(b ** e, "k", 7) for b in (2, 3) for e in (1, 2, 3)]
    assert seen == [(done, 6) for done in range(7)]


def test_a_run_that_raises_fails_the_sweep_and_names_the_run(client):
    with pytest.raises(RunFailedError, match=r"run 3 of 5 \(n=3\) failed: ZeroDivisionError"
                       ) as failed:
        run(_fails_on_three, {"n": [1, 2, 3, 4, 5]}, client)
    assert isinstance(failed.value.__cause__, ZeroDivisionError)
    assert failed.value.params == {"n": 3}


def test_a_sweep_gives_what_a_serial_run_gives(client):
    grid = {"batch_size": [100, 700], "max_wait_ms": [50.0], "assets": [1, 3],
            "mix": ["60/30/10", "20/50/30"], "seed": [1, 2], "trades": [3_000]}
    points = run(simulate, grid, client)
    assert all(isinstance(p.result, SimResult) for p in points)
    assert [p.params for p in points] == expand(grid)
    counts = [p.result.counts() for p in points]
    assert counts == _serial(grid)
    by_params = {tuple(p.params.values()): c for p, c in zip(points, counts, strict=True)}
    # the grid reaches each run: the mix moves orders from takers to resting and cancels,
    # a batch size changes the number of batches traced, a seed the flow
    taker, rester = by_params[(100, 50.0, 1, "60/30/10", 1, 3_000)], \
        by_params[(100, 50.0, 1, "20/50/30", 1, 3_000)]
    assert taker["outcomes"]["filled"] > 2 * rester["outcomes"]["filled"]
    assert rester["outcomes"]["cancelled"] > taker["outcomes"]["cancelled"]
    assert (taker["traces"], by_params[(700, 50.0, 1, "60/30/10", 1, 3_000)]["traces"]) == (30, 5)
    assert taker != by_params[(100, 50.0, 1, "60/30/10", 2, 3_000)]
    assert all(p.result.trades == 3_000 and not p.result.crashes for p in points)


def test_without_a_client_run_starts_its_own_cluster_and_closes_it(client):
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    points = run(_pid, {"n": [1, 2, 3, 4]}, workers=2)
    pids = {p.result for p in points}
    assert pids.isdisjoint(before | {os.getpid()}) and len(points) == 4
    assert not pids & set(client.run(os.getpid).values())
    deadline = time.monotonic() + 10
    while {p.pid for p in psutil.Process().children(recursive=True)} - before:
        assert time.monotonic() < deadline, "the sweep's own workers outlived it"
        time.sleep(0.05)
    assert not any(psutil.pid_exists(pid) for pid in pids)


def test_the_cluster_listens_on_loopback_only_with_no_dashboard(client):
    info = client.scheduler_info()
    assert info["address"].startswith("tcp://127.0.0.1:")
    assert all(w.startswith("tcp://127.0.0.1:") for w in info["workers"])
    listening = [c.laddr for p in [psutil.Process(), *psutil.Process().children(recursive=True)]
                 for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    assert listening and all(address.ip == "127.0.0.1" for address in listening), listening
    # the scheduler's HTTP server (health, metrics) always starts: on a free port, not 8787,
    # and without the dashboard's pages
    http = info["services"]["dashboard"]
    assert http != 8787 and http in {address.port for address in listening}
    base = f"http://127.0.0.1:{http}"
    with urllib.request.urlopen(f"{base}/health", timeout=10) as health:
        assert health.read() == b"ok"
    with pytest.raises(urllib.error.HTTPError, match="404"):
        urllib.request.urlopen(f"{base}/status", timeout=10)


def test_a_killed_worker_has_its_runs_run_again_and_the_sweep_completes(tmp_path):
    grid = {"batch_size": [200], "assets": [2], "seed": [1, 2, 3, 4, 5, 6], "trades": [2_000]}
    with local_client(2) as own:
        workers = set(own.run(os.getpid).values())
        outcome: dict[str, Any] = {}

        def sweep() -> None:
            try:
                outcome["points"] = run(functools.partial(_marked, str(tmp_path)), grid, own)
            except BaseException as exc:  # noqa: BLE001 - handed to the test thread
                outcome["error"] = exc

        thread = threading.Thread(target=sweep)
        thread.start()
        deadline = time.monotonic() + 30
        while not (started := [m for m in tmp_path.iterdir() if int(m.suffix[1:]) in workers]):
            assert time.monotonic() < deadline, "no run started"
            time.sleep(0.01)
        held = started[0]
        victim = int(held.suffix[1:])
        os.kill(victim, signal.SIGKILL)
        killed_within = time.time() - held.stat().st_mtime
        thread.join(timeout=60)
        assert not thread.is_alive() and "error" not in outcome, outcome.get("error")
    assert killed_within < HOLD_S, "the kill came after the run it was aimed at had finished"
    points = outcome["points"]
    assert [p.params for p in points] == expand(grid)
    assert [p.result[0] for p in points] == _serial(grid)
    # the run the worker held when it died finished somewhere else
    seed = int(held.stem)
    assert points[seed - 1].result[1] != victim
    assert len(list(tmp_path.glob(f"{seed}.*"))) == 2                # it was started twice


# ------------------------------------------------------------------ obelisk sweep

def test_sweep_end_to_end_prints_json_and_draws_a_png(tmp_path):
    png = tmp_path / "sweep.png"
    done = obelisk_sweep("--batch-size", "100,700", "--rate", "0", "--assets", "1,2",
                         "--seeds", "3", "--trades", "3_000", "--workers", "2", "--json", "-",
                         "--plot", str(png))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [f"obelisk sweep: plot written to {png}"]
    document = json.loads(done.stdout)
    grid = {"batch_size": [100, 700], "max_wait_ms": [50.0], "rate": [0.0], "assets": [1, 2],
            "mix": ["60/30/10"], "seed": [3], "trades": [3_000]}
    assert document["grid"] == grid
    assert [r["params"] for r in document["runs"]] == expand(grid)
    counts = [{k: r["result"][k] for k in ("trades", "fills", "outcomes", "traces")}
              for r in document["runs"]]
    assert counts == _serial(grid)
    assert all(r["result"]["latency_us"]["p99"] > 0 for r in document["runs"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_sweep_on_an_existing_cluster_prints_the_table_and_writes_json(client, tmp_path):
    out = tmp_path / "sweep.json"
    done = obelisk_sweep("--scheduler", client.scheduler.address, "--batch-size", "100,500",
                         "--mix", "60/30/10,62.5/27.5/10", "--seeds", "1", "--trades", "2000",
                         "--json", str(out))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == (f"obelisk sweep: 4 runs of 2,000 orders each, on the cluster at "
                        f"{client.scheduler.address} (2 workers)")
    assert lines[2].split() == ["batch", "wait", "ms", "rate/s", "assets", "mix", "seed",
                                "fills", "trades/s", "avg", "ms", "p99", "ms", "max", "ms",
                                "criteria"]
    rows = [line.split() for line in lines[3:7]]
    assert [(r[0], r[2], r[4]) for r in rows] == [
        ("100", "100,000", "60/30/10"), ("100", "100,000", "62.5/27.5/10"),
        ("500", "100,000", "60/30/10"), ("500", "100,000", "62.5/27.5/10")]
    runs = json.loads(out.read_text())["runs"]
    assert [r[6] for r in rows] == [f"{r['result']['fills']:,}" for r in runs]
    assert all(len(line) < 100 for line in lines), max(lines, key=len)


def test_sweep_refuses_a_cluster_without_workers_rather_than_wait_for_one():
    from distributed import LocalCluster

    with LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address=None,
                      scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as empty:
        done = obelisk_sweep("--scheduler", empty.scheduler_address, "--trades", "100")
    assert done.returncode == 2 and done.stdout == "", done.stderr
    assert done.stderr == (f"obelisk sweep: error: argument --scheduler: the cluster at "
                           f"{empty.scheduler_address} has no workers; start some (dask "
                           "worker ADDRESS) and run again\n")


@pytest.mark.parametrize(("args", "says"), [
    (["--batch-size", "100,abc"], "argument --batch-size: 'abc' is not a whole number"),
    (["--batch-size", "100,0"], "argument --batch-size: 0 is too small"),
    (["--assets", "1,,4"], "argument --assets: '1,,4' has an empty value"),
    (["--seeds", "1,2,1"], "argument --seeds: 1 is listed twice in '1,2,1'"),
    (["--mix", "70/40/10"], "argument --mix: flow mix '70/40/10' adds up to 120 %"),
    (["--max-wait-ms", "-5"], "argument --max-wait-ms: '-5' is not a wait"),
    (["--rate", "fast"], "argument --rate: 'fast' is not a rate"),
    (["--scheduler", "localhost"], "argument --scheduler: 'localhost' is not a scheduler"),
])
def test_a_bad_grid_is_one_line_and_exit_2(args, says):
    done = obelisk_sweep(*args)
    assert done.returncode == 2 and done.stdout == "", done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and says in lines[0], done.stderr
    assert lines[0].startswith("obelisk sweep: error: ")


@pytest.mark.parametrize(("missing", "args", "says"), [
    ("distributed", [], 'obelisk sweep: error: sweeps need dask.distributed: '
                        'pip install "obelisk[dask]"'),
    ("matplotlib", ["--plot", "x.png"], 'obelisk sweep: error: argument --plot: plots need '
                                        'matplotlib: pip install "obelisk[plot]"'),
])
def test_a_missing_extra_is_named_before_anything_runs(tmp_path, missing, args, says):
    args = [str(tmp_path / arg) if arg.endswith(".png") else arg for arg in args]
    code = (f"import sys; sys.modules[{missing!r}] = None\n"    # as if not installed
            "from obelisk.cli import main\n"
            f"sys.exit(main(['sweep', '--trades', '100', *{args!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", says + "\n")
    assert not list(tmp_path.iterdir())


def test_importing_obelisk_and_its_sweep_loads_neither_dask_nor_matplotlib():
    code = ("import sys, obelisk, obelisk.sweep, obelisk.sweep.cli\n"
            "from obelisk.cli import build_parser\n"
            "build_parser()\n"
            "extras = ('dask', 'distributed', 'matplotlib')\n"
            "print(sorted(m for m in extras if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert (done.returncode, done.stdout) == (0, "[]\n"), done.stderr


def test_sweep_help_names_every_flag_and_default():
    done = obelisk_sweep("--help")
    assert done.returncode == 0 and done.stderr == ""
    flat = " ".join(done.stdout.split())
    for flag, default in [("--batch-size", "100,500,1000,5000"), ("--max-wait-ms", "50"),
                          ("--rate", "100_000"),
                          ("--assets", "4"), ("--mix", "60/30/10"), ("--seeds", "42"),
                          ("--trades", "50,000"), ("--workers", "2"),
                          ("--log-level", "warning")]:
        assert flag in flat and f"(default: {default})" in flat, flag
    assert "--scheduler" in flat and "--json" in flat and "--plot" in flat
    assert "docs/sweep.md" in flat
