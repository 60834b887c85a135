"""A quoting market maker with inventory skew, on the live loop.

Against `obelisk serve` (see the README):

    obelisk serve --coins BTC,ETH --makers 2 --admin-port 3002              # terminal 1
    python examples/market_maker.py --admin-url http://127.0.0.1:3002 --seconds 30

It quotes one bid and one ask around each coin's mid, `--spread` apart, and leans
both quotes away from its inventory (long: lower, to sell more; short: higher),
requoting when the mid moves a tick or a fill lands. It runs `--seconds`, stops
cleanly (its resting orders are cancelled) and prints fills, positions and PnL.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets

import requests

from obelisk import Side, TimeInForce
from obelisk.hyperliquid import TransportConfig, Wallet
from obelisk.hyperliquid.live import LiveLoop
from obelisk.instruments import Rounding
from obelisk.risk import RiskLimits


class SkewedQuoter:
    """One bid and one ask per coin, skewed by inventory; cancel and replace on a new mid."""

    def __init__(self, spread: float, quote_usdc: float, max_usdc: float) -> None:
        self.spread, self.quote_usdc, self.max_usdc = spread, quote_usdc, max_usdc
        self.quoted: dict[str, float] = {}          # coin -> the mid its quotes were made at
        self.resting: dict[str, list[int]] = {}     # coin -> engine oids of its quotes
        self.fills = 0
        self.start_equity: float | None = None

    @staticmethod
    def equity(loop) -> float:
        portfolio = loop.portfolio
        return portfolio.balance + sum(p.unrealized_pnl for p in portfolio.open_positions())

    def on_book(self, coin, book, loop) -> None:
        if self.start_equity is None:
            self.start_equity = self.equity(loop)      # after the first reconciliation
        mid_ticks = book.mid()
        if mid_ticks is None or self.quoted.get(coin) == mid_ticks:
            return
        self.quoted[coin] = mid_ticks
        row = loop.instruments.index(coin)
        instrument = loop.instruments[row]
        for oid in self.resting.pop(coin, []):
            loop.engine.cancel(row, oid)
        mid = mid_ticks * float(instrument.tick_size)
        inventory = loop.portfolio.position(coin).size * mid / self.max_usdc   # -1 .. 1
        center = mid * (1 - inventory * self.spread)                          # lean away
        lots = max(1, round(self.quote_usdc / mid * 10 ** instrument.sz_decimals))
        quotes = []
        if inventory < 1:
            quotes.append((Side.BUY, center * (1 - self.spread / 2), Rounding.DOWN))
        if inventory > -1:
            quotes.append((Side.SELL, center * (1 + self.spread / 2), Rounding.UP))
        self.resting[coin] = [
            loop.engine.submit(row, side, instrument.round_price_to_ticks(px, rounding), lots,
                               tif=TimeInForce.ALO)
            for side, px, rounding in quotes]

    def on_fills(self, report, loop) -> None:
        self.fills += len(report.fills)
        for row in set(report.fills["asset"].tolist()):
            self.quoted.pop(loop.instruments.coins[row], None)   # requote on the next book


async def main(args: argparse.Namespace) -> None:
    wallet = Wallet(args.key or "0x" + secrets.token_hex(32))
    if args.admin_url:
        requests.post(args.admin_url.rstrip("/") + "/deposit",
                      json={"user": wallet.address, "usdc": args.usdc},
                      timeout=10).raise_for_status()
    strategy = SkewedQuoter(args.spread, args.quote_usdc, args.max_usdc)
    loop = await LiveLoop.connect(strategy, wallet, args.url, args.coins.split(","),
                                  transport_config=TransportConfig(rate_limit=100_000),
                                  limits=RiskLimits(max_data_age_s=60))
    await loop.run(args.seconds)
    equity = strategy.equity(loop)
    start = strategy.start_equity if strategy.start_equity is not None else equity
    print(f"fills {strategy.fills}, orders {loop.engine.stats.submitted} "
          f"(rested {loop.engine.stats.rested}, refused {loop.engine.stats.refused})")
    for coin in loop.instruments.coins:
        position = loop.portfolio.position(coin)
        print(f"{coin:>6} position {position.size:+.5f} entry {position.entry_px:.2f}")
    print(f"PnL {equity - start:+.4f} USDC (fees included, marked at the last mid)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:3001")
    parser.add_argument("--admin-url", help="obelisk serve's admin URL: fund a new account")
    parser.add_argument("--key", help="private key (default: a new one, funded by --admin-url)")
    parser.add_argument("--coins", default="BTC,ETH")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--usdc", type=float, default=10_000.0)
    parser.add_argument("--spread", type=float, default=0.0005, help="quote spread, fraction")
    parser.add_argument("--quote-usdc", type=float, default=50.0)
    parser.add_argument("--max-usdc", type=float, default=1_000.0, help="inventory limit")
    asyncio.run(main(parser.parse_args()))
