"""benchmarks/publish.sh end to end, and its dashboard in a real browser.

A two-commit history (HEAD~1 and HEAD, both measured on the installed obelisk with
``--existing``) of two quick benchmarks is published into a temporary folder; HEAD gets
one benchmark first and the other on a second call, which must run only the missing
one. Headless Chromium then loads the dashboard from a 127.0.0.1 server and must draw
the graphs of exactly the benchmarks that have results, asking for nothing that is not
on 127.0.0.1 (its net log is the evidence). A toy suite shows that ``--fast`` results
are never reported as regressions and that failures are kept until ``--retry-failed``.

Needs asv (the ``bench`` extra) and /usr/bin/chromium: skipped without them, failed
without them when ``CI`` is set.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from functools import partial
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
PUBLISH = ROOT / "benchmarks" / "publish.sh"
CHROMIUM = Path("/usr/bin/chromium")
POOL = "bench_book.PoolSuite.time_acquire_release"
RISK = "bench_book.RiskSuite.time_check_batch"
QUICK = ["-a", "repeat=3", "-a", "rounds=1", "-a", "warmup_time=0"]   # asv run options

if not PUBLISH.is_file():          # an sdist: benchmarks/ ships only with the repository
    pytest.skip("benchmarks/publish.sh is not here (not a checkout of the repository)",
                allow_module_level=True)


def _require(present: bool, what: str) -> None:
    if not present:
        if os.environ.get("CI"):
            pytest.fail(f"{what} is missing and CI is set")
        pytest.skip(f"{what} is missing")


def _asv() -> str:
    """The asv command of this interpreter's environment."""
    beside = Path(sys.executable).parent / "asv"
    found = str(beside) if beside.is_file() else shutil.which("asv")
    try:
        import asv  # noqa: F401
    except ImportError:
        found = None
    _require(found is not None, "asv (pip install -e '.[bench]')")
    return found


def _commit(rev: str) -> str:
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet",
                           f"{rev}^{{commit}}"], capture_output=True, text=True)
    _require(done.returncode == 0, f"commit {rev} in the checkout (a full clone)")
    return done.stdout.strip()


def _config(tmp: Path, benchmark_dir: Path) -> Path:
    """A config like the repo's, with everything asv writes under `tmp`."""
    from asv.util import load_json

    conf = load_json(str(ROOT / "asv.conf.json"), js_comments=True)
    conf.update(repo=str(ROOT), branches=["HEAD"], benchmark_dir=str(benchmark_dir),
                env_dir="env", results_dir="results", html_dir="html")   # relative to tmp
    path = tmp / "asv.conf.json"
    path.write_text(json.dumps(conf, indent=1))
    return path


class Publisher:
    """Runs benchmarks/publish.sh on a temporary config, machine and HOME."""

    def __init__(self, tmp: Path, benchmark_dir: Path):
        self.tmp = tmp
        self.config = _config(tmp, benchmark_dir)
        (tmp / "home").mkdir()
        self.env = dict(os.environ, HOME=str(tmp / "home"), ASV=_asv(),
                        ASV_CONFIG=str(self.config), ASV_MACHINE="dashboard-test",
                        PYTHON_FOR_TOOLS=sys.executable)

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(["bash", str(PUBLISH), *args], cwd=self.tmp, env=self.env,
                              capture_output=True, text=True, timeout=300)
        if check:
            assert done.returncode == 0, f"publish.sh {args} failed:\n{done.stdout}\n{done.stderr}"
        return done

    def results(self, commit: str, folder: str = "results") -> dict[str, dict]:
        """benchmark -> {asv's column name: value} saved for `commit` (empty when none)."""
        rows: dict[str, dict] = {}
        for path in (self.tmp / folder / "dashboard-test").glob(f"{commit[:8]}-*.json"):
            saved = json.loads(path.read_text())
            for name, row in saved["results"].items():
                rows[name] = dict(zip(saved["result_columns"], row, strict=False))
        return rows


# --- the two-commit history of real benchmarks -------------------------------------


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    publish = Publisher(tmp_path_factory.mktemp("dashboard"), ROOT / "benchmarks")
    head, previous = _commit("HEAD"), _commit("HEAD~1")
    both = ["-b", POOL, "-b", RISK, *QUICK]
    publish("--existing", sys.executable, previous, "--", *both)
    publish("--existing", sys.executable, head, "--", "-b", POOL, *QUICK)
    partial_head = publish.results(head)
    finish = publish("--existing", sys.executable, head, "--", *both)
    return publish, head, previous, partial_head, finish


def test_asv_options_after_the_double_dash_reach_asv_run(history):
    publish, head, previous, partial_head, _ = history
    assert set(partial_head) == {POOL}                  # -b POOL: nothing else ran
    assert set(publish.results(previous)) == {POOL, RISK}
    assert partial_head[POOL]["stats_repeat"] == [3]    # -a repeat=3


def test_unknown_options_are_refused_before_anything_runs(history):
    publish = history[0]
    done = publish("--existing", sys.executable, "-b", POOL, check=False)
    assert done.returncode == 2
    assert "asv run options go after --" in done.stderr
    assert "===" not in done.stdout


def test_a_commit_with_partial_results_gets_the_rest(history):
    publish, head, _, partial_head, finish = history
    rows = publish.results(head)
    assert set(rows) == {POOL, RISK}
    assert rows[POOL] == partial_head[POOL]             # kept, not run again
    assert rows[RISK]["result"][0] > 0
    assert RISK in finish.stdout and POOL not in finish.stdout


# --- the dashboard in headless Chromium ----------------------------------------------


class _Server:
    """The published folder over HTTP on 127.0.0.1; logs every request it gets."""

    def __init__(self, folder: Path):
        self.log: list[dict] = []
        outer = self

        class Handler(SimpleHTTPRequestHandler):
            def log_request(self, code="-", size="-"):
                outer.log.append({"line": self.requestline, "path": self.path,
                                  "host": self.headers.get("Host"), "code": int(code)})

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=folder))
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _chromium(url: str, tmp: Path, window: str = "1280,900") -> tuple[str, list[dict]]:
    """(the DOM after the page's scripts ran, every URL request in Chromium's net log)."""
    _require(CHROMIUM.exists(), str(CHROMIUM))
    profile, netlog = tmp / "profile", tmp / "netlog.json"
    profile.mkdir()
    done = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-features=AutofillServerCommunication",
         f"--user-data-dir={profile}", f"--window-size={window}",
         "--virtual-time-budget=10000",
         # Nothing resolves but 127.0.0.1, and anything else goes to a proxy on a dead port.
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
         "--proxy-server=http://127.0.0.1:9", f"--log-net-log={netlog}", "--dump-dom", url],
        capture_output=True, text=True, timeout=120, env=dict(os.environ, HOME=str(tmp)))
    assert done.returncode == 0 and "<html" in done.stdout, done.stderr[-3000:]
    return done.stdout, _requests(json.loads(netlog.read_text()))


def _requests(netlog: dict) -> list[dict]:
    """URL requests and TCP/UDP connects in a net log, with who asked for them."""
    names = {number: name for name, number in netlog["constants"]["logEventTypes"].items()}
    found = []
    for event in netlog["events"]:
        name, params = names.get(event["type"]), event.get("params") or {}
        if name == "URL_REQUEST_START_JOB" and "url" in params:       # the begin event
            found.append({"kind": "url", "url": params["url"],
                          "initiator": params.get("initiator", ""),
                          "isolation": params.get("network_isolation_key", "")})
        elif name in ("TCP_CONNECT_ATTEMPT", "UDP_CONNECT") and "address" in params:
            found.append({"kind": name, "address": params["address"],
                          "source": event["source"]["id"]})
        elif name in ("UDP_BYTES_SENT", "SOCKET_BYTES_SENT"):
            found.append({"kind": name, "source": event["source"]["id"]})
    return found


def _offline_problems(requests: list[dict], port: int) -> list[str]:
    """What in a net log went, or asked to go, anywhere but 127.0.0.1.

    The page's own requests (initiated by, or isolated under, the 127.0.0.1 page) must
    all be for the test server. Chromium's own background requests (update checks,
    account lookups: initiator "not an origin", isolation key "null") are not the
    page's; they and everything else are held by the socket check: no TCP connection
    was attempted to any address but 127.0.0.1, and no UDP datagram was sent to one
    (a UDP connect alone sends nothing: Chromium's IPv6 reachability probe).
    """
    problems = []
    for request in requests:
        if request["kind"] == "url":
            page = ("127.0.0.1" in request["initiator"] or "127.0.0.1" in request["isolation"])
            parts = urlsplit(request["url"])
            if page and (parts.hostname != "127.0.0.1" or parts.port != port):
                problems.append(f"the page asked for {request['url']}")
        elif request["kind"] == "TCP_CONNECT_ATTEMPT" \
                and not request["address"].startswith("127.0.0.1:"):
            problems.append(f"TCP connection to {request['address']}")
    remote_udp = {r["source"]: r["address"] for r in requests
                  if r["kind"] == "UDP_CONNECT" and not r["address"].startswith("127.0.0.1:")}
    for request in requests:
        if request["kind"] in ("UDP_BYTES_SENT", "SOCKET_BYTES_SENT") \
                and request["source"] in remote_udp:
            problems.append(f"UDP datagram to {remote_udp[request['source']]}")
    return problems


class _Dom(HTMLParser):
    """For each element with an id: its descendants' (tag, class) and text pieces."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
            "source", "track", "wbr"}

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.open: list[tuple[str, str | None]] = []
        self.tags: dict[str, list[tuple[str, str]]] = {}
        self.text: dict[str, list[str]] = {}
        self.feed(html)

    def _inside(self) -> list[str]:
        return [element_id for _, element_id in self.open if element_id]

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        for element_id in self._inside():
            self.tags[element_id].append((tag, values.get("class") or ""))
        if tag in self.VOID:
            return
        element_id = values.get("id")
        if element_id:
            self.tags.setdefault(element_id, [])
            self.text.setdefault(element_id, [])
        self.open.append((tag, element_id))

    def handle_endtag(self, tag):
        for depth in range(len(self.open) - 1, -1, -1):
            if self.open[depth][0] == tag:
                del self.open[depth:]
                return

    def handle_data(self, data):
        if data.strip():
            for element_id in self._inside():
                self.text[element_id].append(data.strip())

    def has_plot(self, element_id: str) -> bool:
        """flot drew a plot into the element (it adds its canvas only then)."""
        return ("canvas", "flot-base") in self.tags.get(element_id, [])


def _graph_points(html_dir: Path, benchmark: str) -> list[list[float]]:
    """The [revision, value] points of the benchmark's (one) graph file."""
    files = [p for p in (html_dir / "graphs").rglob(f"{benchmark}.json")
             if "summary" not in p.parts]
    assert len(files) == 1, files
    return json.loads(files[0].read_text())


def _check_served(server: _Server, requests: list[dict], without_results: set[str]) -> None:
    """The server saw only 127.0.0.1 requests, served them all, and saw every page URL."""
    assert server.log, "Chromium asked the server for nothing"
    for entry in server.log:
        assert entry["host"] == f"127.0.0.1:{server.port}", entry
        assert entry["path"].startswith("/"), entry          # not a proxy's absolute URL
        if entry["code"] != 200:                              # asv asks for every mini plot
            name = re.fullmatch(r"/graphs/summary/([^?/]+)\.json(\?.*)?", entry["path"])
            assert entry["code"] == 404 and name and name.group(1) in without_results, entry
    page_urls = {r["url"] for r in requests if r["kind"] == "url"
                 and urlsplit(r["url"]).hostname == "127.0.0.1"}
    assert {urlsplit(u)._replace(scheme="", netloc="", fragment="").geturl() for u in page_urls} \
        == {entry["path"] for entry in server.log}


@pytest.fixture(scope="module")
def dashboard(history):
    publish = history[0]
    html_dir = publish.tmp / "html"
    index = json.loads((html_dir / "index.json").read_text())
    with_results = {POOL, RISK}
    without = set(index["benchmarks"]) - with_results
    assert without, "the suite has more benchmarks than the two measured"
    return html_dir, with_results, without


def test_summary_grid_draws_a_plot_for_each_benchmark_with_results(dashboard, tmp_path):
    html_dir, with_results, without = dashboard
    for name in with_results:
        assert len(_graph_points(html_dir, name)) == 2     # HEAD~1 and HEAD
    with _Server(html_dir) as server:
        # Tall window: the grid draws a mini plot only once it scrolls into view.
        dom, requests = _chromium(f"http://127.0.0.1:{server.port}/index.html", tmp_path,
                                  window="1280,4000")
    page = _Dom(dom)
    plotted = {name for name in with_results | without if page.has_plot(f"summarygrid-{name}")}
    assert {f"summarygrid-{name}" for name in without} <= set(page.tags)   # listed, no data
    assert plotted == with_results
    assert "vendor/jquery-3.3.1/jquery.min.js" in " ".join(e["path"] for e in server.log)
    assert _offline_problems(requests, server.port) == []
    _check_served(server, requests, without)


def test_graph_page_plots_the_benchmark_to_scale(dashboard, tmp_path):
    html_dir, _, without = dashboard
    points = _graph_points(html_dir, RISK)
    values = [value for _, value in points]
    with _Server(html_dir) as server:
        dom, requests = _chromium(f"http://127.0.0.1:{server.port}/index.html#{RISK}", tmp_path)
    page = _Dom(dom)
    assert page.text["title"] == [RISK]
    assert page.has_plot("main-graph") and page.has_plot("overview")
    # y axis: asv picks the time unit from the smallest value, flot scales to 1.3 x max.
    units = [1e-12, 1e-9, 1e-6, 1e-3, 1.0, 60.0]
    unit = next(u for u, bigger in zip(units, units[1:], strict=False) if min(values) < bigger)
    ticks = [float(text) for text in page.text["main-graph"]]
    top = max(values) / unit
    assert len(ticks) >= 3 and min(ticks) == 0
    assert 0.5 * top <= max(ticks) <= 1.3 * top, (ticks, values)
    assert _offline_problems(requests, server.port) == []
    _check_served(server, requests, without)


def test_the_offline_check_catches_a_page_that_loads_from_a_cdn(dashboard, tmp_path):
    """Control: asv's own index.html, before publish.sh vendors it, is caught."""
    import asv

    html_dir = tmp_path / "html"
    shutil.copytree(dashboard[0], html_dir)
    shutil.copy(Path(asv.__file__).parent / "www" / "index.html", html_dir / "index.html")
    (tmp_path / "run").mkdir()
    with _Server(html_dir) as server:
        _, requests = _chromium(f"http://127.0.0.1:{server.port}/index.html", tmp_path / "run")
    problems = _offline_problems(requests, server.port)
    assert any("https://code.jquery.com/jquery-3.3.1.min.js" in p for p in problems), problems


def test_offline_problems_flags_remote_sockets():
    requests = [{"kind": "TCP_CONNECT_ATTEMPT", "address": "127.0.0.1:9", "source": 1},
                {"kind": "TCP_CONNECT_ATTEMPT", "address": "93.184.216.34:443", "source": 2},
                {"kind": "UDP_CONNECT", "address": "[2001:4860:4860::8888]:443", "source": 3},
                {"kind": "UDP_CONNECT", "address": "8.8.8.8:53", "source": 4},
                {"kind": "UDP_BYTES_SENT", "source": 4},
                {"kind": "url", "url": "https://update.googleapis.com/x",
                 "initiator": "not an origin", "isolation": "null null"}]
    assert _offline_problems(requests, 8000) == ["TCP connection to 93.184.216.34:443",
                                                 "UDP datagram to 8.8.8.8:53"]


# --- --fast and failures, on a toy suite ----------------------------------------------

TOY = '''\
"""Benchmarks the test steers through files beside this one."""

import pathlib
import time

HERE = pathlib.Path(__file__).parent


class Toy:
    def time_sleep(self):
        time.sleep(float((HERE / "delay.txt").read_text()))

    def time_flaky(self):
        if (HERE / "fail").exists():
            raise RuntimeError("told to fail")
'''


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    bench = tmp_path_factory.mktemp("toy_bench")
    (bench / "__init__.py").write_text("")
    (bench / "bench_toy.py").write_text(TOY)
    publish = Publisher(tmp_path_factory.mktemp("toy"), bench)
    head, previous = _commit("HEAD"), _commit("HEAD~1")
    runs = {}
    (bench / "fail").write_text("")
    (bench / "delay.txt").write_text("0.004")                  # HEAD twice as slow as HEAD~1
    publish("--fast", "--existing", sys.executable)
    runs["failed"] = publish.results(head, "results-fast")
    # HEAD~1 after HEAD: its run must look for HEAD~1's results, not the branch head's.
    (bench / "delay.txt").write_text("0.002")
    publish("--fast", "--existing", sys.executable, previous)
    (bench / "fail").unlink()
    publish("--fast", "--existing", sys.executable)
    runs["skipped"] = publish.results(head, "results-fast")
    publish("--fast", "--retry-failed", "--existing", sys.executable)
    runs["retried"] = publish.results(head, "results-fast")
    return publish, previous, head, runs


def test_fast_history_reports_no_regressions(toy):
    publish, previous, head, _ = toy
    before = publish.results(previous, "results-fast")["bench_toy.Toy.time_sleep"]["result"][0]
    after = publish.results(head, "results-fast")["bench_toy.Toy.time_sleep"]["result"][0]
    assert after > 1.5 * before                                 # the step is there
    assert publish.results(head) == {}                          # nothing in the full results
    assert not (publish.tmp / "html").exists()
    regressions = json.loads((publish.tmp / "html-fast" / "regressions.json").read_text())
    assert regressions == {"regressions": []}
    # Control: the same results under the plain config do report the step.
    conf = json.loads(publish.config.read_text())
    conf.update(results_dir="results-fast", html_dir="html-control")
    control = publish.tmp / "control.json"
    control.write_text(json.dumps(conf))
    subprocess.run([publish.env["ASV"], "--config", str(control), "publish"], check=True,
                   capture_output=True, env=publish.env, timeout=120)
    flagged = json.loads((publish.tmp / "html-control" / "regressions.json").read_text())
    assert [entry[0] for entry in flagged["regressions"]] == ["bench_toy.Toy.time_sleep"]


def test_failures_are_kept_until_retry_failed(toy):
    runs = toy[3]
    flaky, sleep = "bench_toy.Toy.time_flaky", "bench_toy.Toy.time_sleep"
    assert runs["failed"][flaky]["result"] is None              # asv saves a failure as null
    assert runs["skipped"] == runs["failed"]                    # nothing ran again
    assert runs["retried"][flaky]["result"][0] > 0              # the failure ran again
    assert runs["retried"][sleep] == runs["failed"][sleep]      # the timing did not
