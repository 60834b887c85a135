"""The obelisk command line as a user meets it, run as a subprocess: version, help texts,
one-line usage errors (exit 2), a closed pipe, the stress report and --log-level."""

import json
import os
import subprocess
import sys

import pytest

import obelisk
from obelisk.cli import EXIT_BROKEN_PIPE, bench_config, build_parser
from obelisk.perf.bench import BenchReport, format_report, speed_ratio
from obelisk.perf.settings import CRITERIA, BenchConfig, criteria_text
from obelisk.perf.timing import BenchRow

SMALL_STRESS = ["stress", "--trades", "2000", "--batch-size", "500"]


def obelisk_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "100"}
    return subprocess.run([sys.executable, "-m", "obelisk", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_version():
    done = obelisk_cli("--version")
    assert (done.returncode, done.stdout.strip()) == (0, f"obelisk {obelisk.__version__}")


@pytest.mark.parametrize("command", [[], ["bench"], ["stress"], ["serve"]])
def test_help_is_plain_text(command):
    done = obelisk_cli(*command, "--help")
    assert done.returncode == 0 and done.stderr == ""
    assert "``" not in done.stdout
    if command:
        assert "--log-level" in done.stdout


def test_stress_help_lists_the_criteria_and_every_default():
    text = obelisk_cli("stress", "--help").stdout
    for line in criteria_text().splitlines():
        assert line in text
    assert len(criteria_text().splitlines()) == len(CRITERIA)
    flat = " ".join(text.split())              # argparse wraps help lines anywhere
    for flag, default in [("--trades", "50,000"), ("--assets", "4"), ("--seed", "42"),
                          ("--batch-size", "5,000; 480 for network venues"),
                          ("--log-level", "warning")]:
        assert flag in flat and f"(default: {default})" in flat
    assert "(default: a temporary file, deleted after the run)" in flat
    assert "(default: the trace store is on)" in flat


def test_bench_help_says_which_sections_each_flag_sizes():
    flat = " ".join(obelisk_cli("bench", "--help").stdout.split())
    assert "Sections and the flags that size them" in flat
    assert "L2 book --events (deltas)" in flat and "pre-trade risk checks --events (orders)" in flat
    assert "fixed sizes" in flat and "--repeat and --seed apply to every section" in flat


@pytest.mark.parametrize(("args", "says"), [
    (["stress", "--trades", "1k"], "argument --trades: '1k' is not a whole number"),
    (["stress", "--trades", "0"], "argument --trades: 0 is too small; give a whole number >= 1"),
    (["stress", "--seed", "x"], "argument --seed: 'x' is not a whole number"),
    (["bench", "--events", "2.5"], "argument --events: '2.5' is not a whole number"),
    (["stress", "--log-level", "loud"], "'loud' is not a log level; give one of debug, info"),
    (["serve", "--port", "70000"], "70,000 is not a port; give 0 to 65535"),
    (["stress", "--bogus"], "unrecognized arguments: --bogus"),
    ([], "the following arguments are required: COMMAND"),
])
def test_a_usage_error_is_one_line_and_exit_2(args, says):
    done = obelisk_cli(*args)
    assert done.returncode == 2 and done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and says in lines[0], done.stderr
    assert lines[0].startswith("obelisk")


@pytest.mark.parametrize("where", ["folder", "missing folder", "not a database"])
def test_a_bad_trace_path_is_one_line_and_exit_2(tmp_path, where):
    path = {"folder": tmp_path, "missing folder": tmp_path / "nowhere" / "t.db",
            "not a database": tmp_path / "notes.txt"}[where]
    if where == "not a database":
        path.write_text("not sqlite\n" * 100)
    done = obelisk_cli(*SMALL_STRESS, "--trace-path", str(path))
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("obelisk stress: error: argument --trace-path: ")
    assert "give " in lines[0]                  # what is allowed instead


@pytest.mark.parametrize(("text", "value"), [("50000", 50_000), ("50_000", 50_000),
                                             ("50,000", 50_000), ("1,234,567", 1_234_567)])
def test_counts_are_read_as_help_prints_them(text, value):
    assert build_parser().parse_args(["stress", "--trades", text]).trades == value


@pytest.mark.parametrize("text", ["1k", "5,0", "1,2345", "2.5", ""])
def test_counts_that_are_not_whole_numbers_are_refused(text, capsys):
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["stress", "--trades", text])
    assert stopped.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert f"argument --trades: {text!r} is not a whole number" in line


def test_a_good_trace_path_keeps_the_database(tmp_path):
    path = tmp_path / "kept.db"
    done = obelisk_cli(*SMALL_STRESS, "--trace-path", str(path), "--json")
    assert done.returncode in (0, 1) and path.stat().st_size > 0
    assert json.loads(done.stdout)["traces"] == 4


def test_a_reader_that_goes_away_ends_it_quietly():
    child = subprocess.Popen([sys.executable, "-m", "obelisk", *SMALL_STRESS, "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdout.close()                        # as `| head` does once it has its lines
    stderr = child.stderr.read().decode()
    child.stderr.close()
    assert child.wait(timeout=120) == EXIT_BROKEN_PIPE
    assert stderr == ""


def test_the_stress_report_labels_its_units_and_fits_in_100_columns():
    done = obelisk_cli(*SMALL_STRESS)
    assert done.returncode in (0, 1) and "Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    assert all(len(line) < 100 for line in lines), max(lines, key=len)
    text = done.stdout
    assert "trades/s" in text and " MB " in text and "latency in microseconds" in text
    assert "(one per batch of orders; 0 failed)" in text     # not "traces 4"
    stages = {line.split()[0]: line.split() for line in lines
              if line.split() and line.split()[0] in
              ("risk", "venue", "portfolio", "trace", "batch", "end_to_end")}
    assert stages["risk"][1:3] == ["batch", "4"]             # what the row counts
    assert stages["end_to_end"][1:3] == ["order", "2,000"]
    crashes = next(line for line in lines if "crashes ==" in line)
    assert crashes.split()[-1] == "0"                      # a count, not "0.000"
    assert "outcomes (orders):" in text and "sent to venue 2,000" in text


@pytest.mark.parametrize(("level", "shows", "hides"), [
    ("info", "INFO obelisk.store.sqlite: trace store opened", "DEBUG"),
    ("debug", "DEBUG obelisk.execution.engine: batch of 500 orders", None),
    ("warning", None, "INFO"),
    ("off", None, "obelisk"),
])
def test_log_level(level, shows, hides):
    done = obelisk_cli(*SMALL_STRESS, "--json", "--log-level", level)
    assert done.returncode in (0, 1)
    json.loads(done.stdout)                     # the logs go to stderr, never into the JSON
    if shows:
        assert shows in done.stderr
    if hides:
        assert hides not in done.stderr


def test_bench_sizes_every_section_it_says_it_does():
    args = build_parser().parse_args(["bench", "--events", "3000", "--reference-events", "500",
                                      "--assets", "100"])
    config = bench_config(args)
    assert (config.events, config.l2_deltas, config.position_fills) == (3000, 3000, 3000)
    assert config.reference_events == config.reference_l2_deltas == 500
    assert config.reference_position_fills == 500 and config.position_assets == 100
    defaults = bench_config(build_parser().parse_args(["bench"]))
    assert defaults == BenchConfig()


def test_ratios_say_faster_or_slower_and_line_up():
    rows = [BenchRow("a path", 10, 1.0, 1.0), BenchRow("another path", 10, 2.0, 2.0)]
    report = BenchReport(BenchConfig(), rows, {"2 threads vs 1 thread": 0.5,
                                               "batch vs reference": 123.4,
                                               "logging at INFO vs off": 0.99},
                         {"paths_agree": True}, {"python": "3"})
    text = format_report(report)
    ratio_lines = [line for line in text.splitlines() if line.endswith(("faster", "slower"))]
    assert [line.split("  ")[0] for line in ratio_lines] == [
        "2 threads vs 1 thread", "batch vs reference", "logging at INFO vs off"]
    assert ratio_lines[0].endswith("2.0x slower") and ratio_lines[1].endswith("123.4x faster")
    assert ratio_lines[2].endswith("1.01x slower")
    assert len({line.index("x ") for line in ratio_lines}) == 1
    assert speed_ratio(1.0).strip() == "1.00x faster"


def test_the_parser_and_its_help_import_no_pipeline_and_no_numpy():
    # `obelisk --help` and a mistyped command line answer at once: the parser takes its
    # defaults and criteria from obelisk.perf.settings, not from the jobs behind them
    code = ("import sys; from obelisk import cli; cli.build_parser().format_help(); "
            "heavy = sorted(m for m in sys.modules if m == 'numpy' or m.startswith("
            "('obelisk.perf.bench', 'obelisk.perf.stress', 'obelisk.execution', "
            "'obelisk.hyperliquid'))); print(heavy)")
    shown = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                           text=True).stdout.strip()
    assert shown == "[]"
