"""The obelisk command line: bench, stress and serve."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import sqlite3
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from obelisk import __version__

if TYPE_CHECKING:
    from obelisk.perf.settings import BenchConfig

DESCRIPTION = ("obelisk: trade Hyperliquid perpetual futures from Python, on a compiled "
               "order-book core. These commands measure it and serve a local exchange.")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical", "off")
EXIT_USAGE = 2            # argparse's status for a bad command line
EXIT_BROKEN_PIPE = 141    # 128 + SIGPIPE, as a shell reports a reader that went away


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: what is wrong and what is allowed."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _whole(text: str, at_least: int | None = None) -> int:
    allowed = "a whole number" if at_least is None else f"a whole number >= {at_least:,}"
    grouped = re.fullmatch(r"-?\d{1,3}(,\d{3})+", text.strip())    # 50,000 as --help shows it
    try:
        value = int(text.replace(",", "") if grouped else text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number; give {allowed} "
            "(e.g. 50000, 50_000 or 50,000)") from None
    if at_least is not None and value < at_least:
        raise argparse.ArgumentTypeError(f"{value:,} is too small; give {allowed}")
    return value


def _count(text: str) -> int:
    """A count of things: a whole number, at least 1."""
    return _whole(text, at_least=1)


def _integer(text: str) -> int:
    return _whole(text)


def _port(text: str) -> int:
    value = _whole(text, at_least=0)
    if value > 65_535:
        raise argparse.ArgumentTypeError(f"{value:,} is not a port; give 0 to 65535")
    return value


def _log_level(text: str) -> str:
    level = text.strip().lower()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a log level; give one of "
                                         f"{', '.join(LOG_LEVELS)}")
    return level


def _non_negative(what: str, allowed: str) -> Callable[[str], float]:
    """A checker for a finite number >= 0; its error says it is not `what`, then `allowed`."""
    def check(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value >= 0):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}; {allowed}")
        return value
    return check


_rate = _non_negative("a rate", "give orders per second >= 0, e.g. 50_000 (0: each round at "
                                "once)")
_milliseconds = _non_negative("a wait", "give milliseconds >= 0, e.g. 0.5 or 50")


def _writable_file(example: str) -> Callable[[str], str]:
    """A checker for an output file: not a folder, in a folder that exists and is writable."""
    def check(text: str) -> str:
        path = Path(text).expanduser()
        if path.is_dir():
            raise argparse.ArgumentTypeError(f"{text} is a folder; give a file path such as "
                                             f"{path / example}")
        folder = path.parent
        if not folder.is_dir():
            raise argparse.ArgumentTypeError(f"the folder {folder} does not exist; give a file "
                                             "in an existing folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise argparse.ArgumentTypeError(f"the folder {folder} is not writable; give a "
                                             "file in a folder you can write to")
        return str(path)
    return check


def _wrapped(text: str) -> str:
    return textwrap.fill(text, width=78, break_on_hyphens=False)


def _defaulted(text: str, default: object) -> str:
    shown = f"{default:,}" if isinstance(default, int) and not isinstance(default, bool) \
        else default
    return f"{text} (default: {shown})"


def _common(default_level: str) -> argparse.ArgumentParser:
    """Options every command takes."""
    common = _Parser(add_help=False)
    common.add_argument("--log-level", type=_log_level, default=default_level,
                        metavar="LEVEL",
                        help=_defaulted(f"log to stderr at this level: {', '.join(LOG_LEVELS)}",
                                        default_level))
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="obelisk", description=_wrapped(DESCRIPTION),
                     formatter_class=argparse.RawDescriptionHelpFormatter,
                     epilog="Run obelisk COMMAND --help for a command's options.")
    parser.add_argument("--version", action="version", version=f"obelisk {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=_Parser)
    _add_bench(commands)
    _add_stress(commands)
    _add_serve(commands)
    from obelisk.sweep.cli import add_parser as add_sweep  # it imports this module

    add_sweep(commands)
    return parser


def _add_bench(commands: argparse._SubParsersAction) -> None:
    from obelisk.perf.settings import BenchConfig, StressConfig

    defaults = BenchConfig()
    bench = commands.add_parser(
        "bench", parents=[_common("warning")],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="benchmark the compiled core against the pure-Python reference",
        description=_wrapped("Benchmark every path of the compiled core against the "
                             "pure-Python reference, and the components around it."),
        epilog="Sections and the flags that size them:\n"
               "  L3 book, matching engine    --events, --seed-orders, --chunk, "
               "--engine-batch,\n"
               "                              --reference-events\n"
               "  deep book vs the limit      --events (from an empty book)\n"
               "  L2 book                     --events (deltas), --reference-events\n"
               "  positions and margin        --events (fills), --assets, --reference-events\n"
               "  pre-trade risk checks       --events (orders)\n"
               "  trading engine              fixed: 2,000 batches of 1 and of 100 orders\n"
               "  breaker, latency monitor,   fixed sizes (200,000 calls, 2,000 signatures,\n"
               "  signing, transport, store   20,000 requests, 50,000 traces)\n"
               f"  stress, logging INFO / off  fixed: {StressConfig().trades:,} orders, at least "
               "5 runs each\n"
               "--repeat and --seed apply to every section.\n"
               "Exit status: 0, or 1 when the paths disagree with each other or the reference.")
    bench.add_argument("--events", type=_count, default=defaults.events, metavar="N",
                       help=_defaulted("events per section: L3 and deep-book events, L2 deltas, "
                                       "position fills and risk-checked orders", defaults.events))
    bench.add_argument("--seed-orders", type=_count, default=defaults.seed_orders, metavar="N",
                       help=_defaulted("orders in the seeded L3 book", defaults.seed_orders))
    bench.add_argument("--seed", type=_integer, default=defaults.seed,
                       help=_defaulted("workload seed", defaults.seed))
    bench.add_argument("--chunk", type=_count, default=defaults.chunk, metavar="N",
                       help=_defaulted("events per call in the chunked L3 batch path",
                                       defaults.chunk))
    bench.add_argument("--engine-batch", type=_count, default=defaults.engine_batch, metavar="N",
                       help=_defaulted("events per MatchingEngine batch, two assets",
                                       defaults.engine_batch))
    bench.add_argument("--repeat", type=_count, default=defaults.repeat, metavar="N",
                       help=_defaulted("runs per path, the best is reported; the pure-Python "
                                       "references run at most 3 times", defaults.repeat))
    bench.add_argument("--reference-events", type=_count, default=defaults.reference_events,
                       metavar="N",
                       help=_defaulted("events replayed through the slow pure-Python L3 "
                                       "reference; the L2 and position references take at "
                                       f"most {defaults.reference_l2_deltas:,}, and none "
                                       "more than --events", defaults.reference_events))
    bench.add_argument("--assets", type=_count, default=defaults.position_assets, metavar="N",
                       help=_defaulted("positions in the margin recompute and the fill stream",
                                       defaults.position_assets))
    bench.add_argument("--json", action="store_true",
                       help="print one JSON document instead of the table")


def _add_stress(commands: argparse._SubParsersAction) -> None:
    from obelisk.perf.settings import NETWORK_BATCH_SIZE, StressConfig, criteria_text

    defaults = StressConfig()
    stress = commands.add_parser(
        "stress", parents=[_common("warning")],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="the whole trading pipeline under a seeded order flow, judged by success criteria",
        description=_wrapped("Send a seeded order flow through the whole pipeline (risk "
                             "checks, batch executor, simulated exchange, portfolio, trace "
                             "store) and judge it by its success criteria."),
        epilog="Success criteria (all must hold):\n" + criteria_text("  ") + "\n"
               "Exit status: 0 when every criterion holds, 1 when one fails,\n"
               "2 for a bad command line.")
    stress.add_argument("--trades", type=_count, default=defaults.trades, metavar="N",
                        help=_defaulted("orders to send", defaults.trades))
    stress.add_argument("--assets", type=_count, default=defaults.assets, metavar="N",
                        help=_defaulted("assets traded", defaults.assets))
    stress.add_argument("--seed", type=_integer, default=defaults.seed,
                        help=_defaulted("order-flow seed", defaults.seed))
    stress.add_argument("--batch-size", type=_count, metavar="N",
                        help=f"orders per batch (default: {defaults.batch_size:,}; "
                             f"{NETWORK_BATCH_SIZE} for network venues)")
    stress.add_argument("--max-wait-ms", type=_milliseconds, default=defaults.max_batch_wait_ms,
                        metavar="MS", help=_defaulted("the engine's max batch wait: a batch "
                                                      "goes when full or when its oldest order "
                                                      "has waited this long",
                                                      f"{defaults.max_batch_wait_ms:g}"))
    stress.add_argument("--rate", type=_rate, default=defaults.arrival_rate, metavar="N",
                        help="orders arriving per second, evenly, so that --max-wait-ms "
                             "matters; what is queued when the round's book moves is sent "
                             "then (default: 0, each round's orders at once and sent at "
                             "once; the simulated venue only)")
    stress.add_argument("--no-trace", action="store_true",
                        help="run without the trace store (default: the trace store is on)")
    stress.add_argument("--trace-path", type=_writable_file("stress.db"), metavar="FILE",
                        help="keep the trace database in FILE, a new file or an earlier trace "
                             "database (default: a temporary file, deleted after the run)")
    stress.add_argument("--json", action="store_true",
                        help="print one JSON document instead of the report")
    stress.add_argument("--plot", type=_writable_file("stress.png"), metavar="FILE.png",
                        help="also draw each stage's latency by percentile and the throughput "
                             'over the run into a PNG (needs: pip install "obelisk[plot]")')
    stress.add_argument("--venue", choices=("sim", "local", "testnet"), default="sim",
                        help="sim: the in-process simulated exchange (default); local: start "
                             "`obelisk serve` on a free loopback port and trade it through "
                             "HyperliquidBatchVenue over HTTP and the websocket; testnet: "
                             "Hyperliquid testnet, with the private key read from the "
                             "OBELISK_TESTNET_KEY environment variable (refuses to start "
                             "without it; never run in CI)")
    stress.add_argument("--post-via", choices=("websocket", "http"), default=defaults.post_via,
                        help="network venues: send the signed actions as websocket post "
                             "requests, which arrive in order however many are on their way "
                             "(default), or as HTTP requests")
    stress.add_argument("--inflight", type=_count, default=defaults.inflight, metavar="N",
                        help=_defaulted("network venues: actions on their way at once "
                                        "(over HTTP more than one lets the exchange run a "
                                        "batch's actions out of order)", defaults.inflight))
    stress.add_argument("--action-size", type=_count, default=defaults.action_size,
                        metavar="N",
                        help=_defaulted("network venues: orders per signed action (smaller "
                                        "actions of one batch overlap on their way)",
                                        defaults.action_size))


def _add_serve(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        "serve", parents=[_common("info")],
        help="a local Hyperliquid-compatible exchange on HTTP and websocket "
             "(needs the server extra: pip install \"obelisk[server]\")",
        description="A local Hyperliquid-compatible exchange on HTTP and websocket "
                    "(needs the server extra: pip install \"obelisk[server]\").")
    serve.add_argument("--host", default="127.0.0.1",
                       help=_defaulted("public interface", "127.0.0.1"))
    serve.add_argument("--port", type=_port, default=3001,
                       help="public port, 0 for a free one (default: 3001, the SDK's "
                            "LOCAL_API_URL)")
    serve.add_argument("--admin-port", type=_port, default=0,
                       help="loopback-only admin port for deposits and the simulated clock "
                            "(default: 0, a free port, printed at start)")
    serve.add_argument("--coins", help="comma-separated coins to list (default: the exchange's)")
    serve.add_argument("--seed", type=_integer, default=0,
                       help=_defaulted("seed of the oracle walk and makers", 0))
    serve.add_argument("--makers", type=_whole,
                       help="seeded market makers quoting every coin (default: the exchange's)")
    serve.add_argument("--accounts", metavar="FILE",
                       help="JSON file of address -> starting USDC (default: none)")
    serve.add_argument("--state", type=_writable_file("exchange.state"), metavar="FILE",
                       help="keep the exchange in FILE: loaded at start when it exists (the "
                            "market options then do not apply), written when the server "
                            "stops (SIGINT, SIGTERM), so a restarted server is the same "
                            "exchange (default: in memory only)")
    serve.add_argument("--clock", choices=("real", "sim"), default="real",
                       help="real: the market moves with the wall clock; sim: only when the "
                            "admin POST /advance moves it (default: real)")
    serve.add_argument("--ip-weight", type=_count, default=1200, metavar="N",
                       help=_defaulted("request weight per client IP per minute, as "
                                       "Hyperliquid", 1200))


def configure_logging(level: str) -> None:
    """Log records at `level` and above to stderr; "off" turns logging off entirely."""
    if level == "off":
        logging.disable(logging.CRITICAL)
        return
    logging.basicConfig(level=getattr(logging, level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _serve(args: argparse.Namespace) -> int:
    from obelisk.server.runner import ServerConfig, load_accounts, ready_line, run_process

    coins = tuple(coin.strip() for coin in args.coins.split(",") if coin.strip()) \
        if args.coins else None
    config = ServerConfig(host=args.host, port=args.port, admin_port=args.admin_port,
                          coins=coins, seed=args.seed, makers=args.makers,
                          accounts=load_accounts(args.accounts) if args.accounts else {},
                          clock=args.clock, ip_weight_per_minute=args.ip_weight,
                          state=args.state)
    from obelisk.server.state import ServerStateError

    try:
        run_process(config, lambda url: print(ready_line(url), flush=True))
    except ServerStateError as exc:
        print(f"obelisk serve: error: argument --state: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0


def _progress_bar(done: int, total: int) -> None:
    width = 40
    filled = width * done // total
    print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,}", end="",
          file=sys.stderr, flush=True)
    if done >= total:
        print(file=sys.stderr)


def bench_config(args: argparse.Namespace) -> BenchConfig:
    """The sizes of every bench section from the command line (see ``bench --help``)."""
    from obelisk.perf.settings import BenchConfig

    return BenchConfig(events=args.events, seed_orders=args.seed_orders, seed=args.seed,
                         chunk=args.chunk, engine_batch=args.engine_batch,
                         repeat=args.repeat,
                         reference_events=min(args.reference_events, args.events),
                         l2_deltas=args.events,
                         reference_l2_deltas=min(BenchConfig.reference_l2_deltas,
                                                 args.reference_events, args.events),
                         position_fills=args.events, position_assets=args.assets,
                         reference_position_fills=min(BenchConfig.reference_position_fills,
                                                      args.reference_events, args.events))


def _bench(args: argparse.Namespace) -> int:
    from obelisk.perf.bench import format_report, run_bench

    config = bench_config(args)
    progress: Callable[[str], None] = \
        (lambda step: print(f"... {step}", file=sys.stderr, flush=True)) \
        if not args.json and sys.stderr.isatty() else (lambda step: None)
    report = run_bench(config, progress)
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    ok = all(report.facts[name] for name in ("paths_agree", "matches_reference",
                                             "position_paths_agree",
                                             "positions_match_reference",
                                             "deep_book_limit_agrees"))
    return 0 if ok else 1


def _stress(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from obelisk.perf.settings import NETWORK_BATCH_SIZE, StressConfig
    from obelisk.perf.stress import format_stress, run_stress

    batch_size = args.batch_size
    if batch_size is None:
        batch_size = StressConfig.batch_size if args.venue == "sim" else NETWORK_BATCH_SIZE
    config = StressConfig(trades=args.trades, assets=args.assets, seed=args.seed,
                          batch_size=batch_size, max_batch_wait_ms=args.max_wait_ms,
                          arrival_rate=args.rate,
                          trace=not args.no_trace,
                          trace_path=args.trace_path, venue=args.venue,
                          post_via=args.post_via, inflight=args.inflight,
                          action_size=args.action_size)
    shown = not args.json and sys.stderr.isatty()
    run = run_stress
    if args.rate and args.venue != "sim":
        parser.exit(EXIT_USAGE, "obelisk stress: error: argument --rate: paced arrival is "
                                "built for --venue sim only; leave --rate out with --venue "
                                f"{args.venue}\n")
    if args.venue == "local":
        from obelisk.perf.stress import run_local_stress as run
    elif args.venue == "testnet":
        from obelisk.perf.stress import TESTNET_KEY_VARIABLE
        from obelisk.perf.stress import run_testnet_stress as run

        if not os.environ.get(TESTNET_KEY_VARIABLE):
            parser.exit(EXIT_USAGE, f"obelisk stress: error: --venue testnet needs a private "
                                    f"key in the environment variable {TESTNET_KEY_VARIABLE}\n")
    if args.plot is not None:
        from obelisk.perf.plot import PlotUnavailableError, require_matplotlib

        try:
            require_matplotlib()
        except PlotUnavailableError as exc:
            parser.exit(EXIT_USAGE, f"obelisk stress: error: argument --plot: {exc}\n")
    try:
        report = run(config, _progress_bar if shown else None)
    except (sqlite3.Error, OSError) as exc:
        if args.trace_path is None or args.no_trace:
            raise
        # the store is opened before the flow starts: this is the path, not the pipeline
        parser.exit(EXIT_USAGE, f"obelisk stress: error: argument --trace-path: "
                                f"{args.trace_path} cannot hold a trace database ({exc}); "
                                "give a new file or an earlier obelisk trace database\n")
    if args.plot is not None:
        from obelisk.perf.plot import plot_stress

        plot_stress(report, args.plot)
        print(f"obelisk stress: plot written to {args.plot}", file=sys.stderr)
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_stress(report))
    return 0 if report.passed else 1


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    if args.command == "bench":
        return _bench(args)
    if args.command == "stress":
        return _stress(args, parser)
    if args.command == "sweep":
        from obelisk.sweep.cli import run_cli

        return run_cli(args)
    return _serve(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit status. A closed stdout (``| head``) ends it quietly."""
    disabled = logging.root.manager.disable       # "--log-level off" is undone on return
    try:
        code = _run(argv)
        sys.stdout.flush()          # a reader that went away shows up here, not at exit
    except BrokenPipeError:
        # Python flushes stdout again at exit: point it at /dev/null so that flush is quiet
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return 130                  # 128 + SIGINT, with no traceback
    finally:
        logging.disable(disabled)
    return code


if __name__ == "__main__":
    sys.exit(main())
