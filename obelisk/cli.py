"""The ``obelisk`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from obelisk.perf.bench import BenchConfig, format_report, run_bench
from obelisk.perf.stress import StressConfig, format_stress, run_stress


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="obelisk", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    defaults = BenchConfig()
    bench = commands.add_parser(
        "bench", help="benchmark the compiled core against the pure-Python reference")
    bench.add_argument("--events", type=_positive, default=defaults.events,
                       help=f"events in the stream (default {defaults.events:,})")
    bench.add_argument("--seed-orders", type=_positive, default=defaults.seed_orders,
                       help=f"orders in the seeded book (default {defaults.seed_orders:,})")
    bench.add_argument("--seed", type=int, default=defaults.seed, help="workload seed")
    bench.add_argument("--chunk", type=_positive, default=defaults.chunk,
                       help=f"events per call in the chunked batch path (default {defaults.chunk})")
    bench.add_argument("--engine-batch", type=_positive, default=defaults.engine_batch,
                       help="events per MatchingEngine batch, two assets "
                            f"(default {defaults.engine_batch:,})")
    bench.add_argument("--repeat", type=_positive, default=defaults.repeat,
                       help=f"runs per path; the best is reported (default {defaults.repeat})")
    bench.add_argument("--reference-events", type=_positive, default=defaults.reference_events,
                       help="events replayed through the slow reference "
                            f"(default {defaults.reference_events:,})")
    bench.add_argument("--assets", type=_positive, default=defaults.position_assets,
                       help="positions in the margin recompute and the fill stream "
                            f"(default {defaults.position_assets:,})")
    bench.add_argument("--json", action="store_true", help="print one JSON document")
    stress_defaults = StressConfig()
    stress = commands.add_parser(
        "stress", help="the whole pipeline under a seeded order flow, judged by its success "
                       "criteria: >= 2,000 trades/s, < 10 ms average latency, >= 99.9 %% "
                       "success, < 2 GB, no crash (exit status 1 if one fails)")
    stress.add_argument("--trades", type=_positive, default=stress_defaults.trades,
                        help=f"orders to send (default {stress_defaults.trades:,})")
    stress.add_argument("--assets", type=_positive, default=stress_defaults.assets,
                        help=f"assets traded (default {stress_defaults.assets})")
    stress.add_argument("--seed", type=int, default=stress_defaults.seed, help="flow seed")
    stress.add_argument("--batch-size", type=_positive, default=stress_defaults.batch_size,
                        help=f"orders per batch (default {stress_defaults.batch_size:,})")
    stress.add_argument("--no-trace", action="store_true",
                        help="run without the trace store")
    stress.add_argument("--trace-path", help="keep the trace database at this path")
    stress.add_argument("--json", action="store_true", help="print one JSON document")
    _add_serve(commands)
    return parser


def _add_serve(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        "serve", help="a local Hyperliquid-compatible exchange on HTTP and websocket "
                      "(needs the server extra: pip install \"obelisk[server]\")")
    serve.add_argument("--host", default="127.0.0.1", help="public interface (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=3001,
                       help="public port, 0 for a free one (default 3001, the SDK's LOCAL_API_URL)")
    serve.add_argument("--admin-port", type=int, default=0,
                       help="loopback-only admin port for deposits and the simulated clock "
                            "(default 0: a free port, printed at start)")
    serve.add_argument("--coins", help="comma-separated coins to list (default: the exchange's)")
    serve.add_argument("--seed", type=int, default=0, help="seed of the oracle walk and makers")
    serve.add_argument("--makers", type=int, help="seeded market makers quoting every coin")
    serve.add_argument("--accounts", help="JSON file of address -> starting USDC")
    serve.add_argument("--clock", choices=("real", "sim"), default="real",
                       help="real: the market moves with the wall clock; sim: only when the "
                            "admin POST /advance moves it")
    serve.add_argument("--ip-weight", type=_positive, default=1200,
                       help="request weight per client IP per minute (default 1200, "
                            "as Hyperliquid)")


def _serve(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from obelisk.server.runner import ServerConfig, load_accounts, ready_line, run_until_stopped

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    coins = tuple(coin.strip() for coin in args.coins.split(",") if coin.strip()) \
        if args.coins else None
    config = ServerConfig(host=args.host, port=args.port, admin_port=args.admin_port,
                          coins=coins, seed=args.seed, makers=args.makers,
                          accounts=load_accounts(args.accounts) if args.accounts else {},
                          clock=args.clock, ip_weight_per_minute=args.ip_weight)
    asyncio.run(run_until_stopped(config, lambda url: print(ready_line(url), flush=True)))
    return 0


def _progress_bar(done: int, total: int) -> None:
    width = 40
    filled = width * done // total
    print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,}", end="",
          file=sys.stderr, flush=True)
    if done >= total:
        print(file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "bench":
        config = BenchConfig(events=args.events, seed_orders=args.seed_orders, seed=args.seed,
                             chunk=args.chunk, engine_batch=args.engine_batch,
                             repeat=args.repeat,
                             reference_events=min(args.reference_events, args.events),
                             position_fills=args.events, position_assets=args.assets,
                             reference_position_fills=min(BenchConfig.reference_position_fills,
                                                          args.events))
        progress = (lambda step: print(f"... {step}", file=sys.stderr, flush=True)) \
            if not args.json and sys.stderr.isatty() else (lambda step: None)
        report = run_bench(config, progress)
        print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
        ok = all(report.facts[name] for name in ("paths_agree", "matches_reference",
                                                 "position_paths_agree",
                                                 "positions_match_reference"))
        return 0 if ok else 1
    if args.command == "stress":
        stress_config = StressConfig(trades=args.trades, assets=args.assets, seed=args.seed,
                                     batch_size=args.batch_size, trace=not args.no_trace,
                                     trace_path=args.trace_path)
        shown = not args.json and sys.stderr.isatty()
        stress_report = run_stress(stress_config, _progress_bar if shown else None)
        print(json.dumps(stress_report.to_dict(), indent=2) if args.json
              else format_stress(stress_report))
        return 0 if stress_report.passed else 1
    if args.command == "serve":
        return _serve(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
