"""A LiveLoop process for tests/test_live_restart.py: it trades until it is killed.

Usage: ``python tests/live_child.py BASE_URL PRIVATE_KEY SESSION``. It prints ``started`` once
its first reconciliation passed, then trades BTC on every book update: an IOC that
crosses the spread (sides alternate, so the position stays small) and a GTC bid resting
well below the mid, keeping at most a few of those open by cancelling the oldest.
"""

from __future__ import annotations

import asyncio
import sys

from obelisk import Side, TimeInForce
from obelisk.hyperliquid import TransportConfig, Wallet
from obelisk.hyperliquid.live import LiveConfig, LiveLoop
from obelisk.instruments import Rounding
from obelisk.risk import RiskLimits

ROOMY = 1_000_000
MAX_RESTING = 4


class Churn:
    """Crossing and resting orders on every BTC book update."""

    def __init__(self) -> None:
        self.resting: list[int] = []
        self.buy = True

    def on_book(self, coin, book, loop) -> None:
        if coin != "BTC":
            return
        row = loop.instruments.index(coin)
        instrument = loop.instruments[row]
        bid, ask = book.best_bid(), book.best_ask()
        if bid is None or ask is None:
            return
        price = float(instrument.ticks_to_price(ask))
        lots = max(1, round(50 / price * 10 ** instrument.sz_decimals))       # about $50
        side, cross = (Side.BUY, ask) if self.buy else (Side.SELL, bid)
        self.buy = not self.buy
        loop.engine.submit(row, side, cross, lots, tif=TimeInForce.IOC)
        low = instrument.round_price_to_ticks(price * 0.95, Rounding.DOWN)
        self.resting.append(loop.engine.submit(row, Side.BUY, low, lots, tif=TimeInForce.GTC))
        while len(self.resting) > MAX_RESTING:
            loop.engine.cancel(row, self.resting.pop(0))

    def on_fills(self, report, loop) -> None:
        pass


async def main(url: str, key: str, session: int) -> None:
    loop = await LiveLoop.connect(Churn(), Wallet(key), url, ("BTC", "ETH"),
                                  transport_config=TransportConfig(rate_limit=ROOMY),
                                  limits=RiskLimits(max_data_age_s=3_600), session=session,
                                  config=LiveConfig(dead_man_s=30, renew_s=10))
    task = asyncio.create_task(loop.run())
    while not loop.trading and not task.done():
        await asyncio.sleep(0.02)
    print("started", flush=True)
    await task


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
