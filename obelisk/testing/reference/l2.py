"""Pure-Python twin of :class:`obelisk.L2Book`, written to be obviously right.

A dict of price -> size per side; the best is found with max/min. Same rules
as the compiled book for stale updates, sequence gaps and crossed books.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from obelisk._core.l2 import CrossedPolicy

BUY, SELL = 0, 1


@dataclass
class ReferenceL2Book:
    crossed_policy: int = CrossedPolicy.RAISE
    levels: dict[int, dict[int, int]] = field(default_factory=lambda: {BUY: {}, SELL: {}})
    valid: bool = False
    last_seq: int = 0
    last_time: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)
    max_levels: int = 100_000

    def best_bid(self) -> int | None:
        return max(self.levels[BUY]) if self.levels[BUY] else None

    def best_ask(self) -> int | None:
        return min(self.levels[SELL]) if self.levels[SELL] else None

    def bbo(self) -> tuple[int | None, int, int | None, int]:
        bid, ask = self.best_bid(), self.best_ask()
        return (bid, self.levels[BUY].get(bid, 0) if bid else 0,
                ask, self.levels[SELL].get(ask, 0) if ask else 0)

    def depth(self, side: int) -> list[tuple[int, int]]:
        """Every level of a side, best first."""
        return sorted(self.levels[side].items(), reverse=(side == BUY))

    def crossed(self) -> bool:
        bid, ask = self.best_bid(), self.best_ask()
        return bid is not None and ask is not None and bid >= ask

    def apply(self, side: int, price: int, size: int, seq: int = 0, time: int = 0) -> str:
        """One delta; returns "applied", "stale", "gap", or "crossed" or "too deep" (both
        refused, nothing changed)."""
        if time and time < self.last_time:
            return "stale"
        book = self.levels[side]
        if size and price not in book and len(book) == self.max_levels:
            return "too deep"
        before = dict(book)
        if size:
            book[price] = size
        else:
            book.pop(price, None)
        if self.crossed():
            if self.crossed_policy == CrossedPolicy.RAISE:
                self.levels[side] = before
                return "crossed"
            if self.crossed_policy == CrossedPolicy.DROP_STALE:
                other = self.levels[1 - side]
                best = max(book) if side == BUY else min(book)
                for level in [p for p in other if (p <= best if side == BUY else p >= best)]:
                    del other[level]
            else:
                self.valid = False
        status = "applied"
        if seq:
            if self.last_seq and seq != self.last_seq + 1:
                status = "gap"
                self.valid = False
                self.gaps.append((self.last_seq + 1, seq))
            self.last_seq = seq
        if time:
            self.last_time = time
        return status

    def snapshot(self, bids: dict[int, int], asks: dict[int, int], time: int = 0) -> str:
        """Replace both sides; "stale", "crossed" (refused under RAISE), "too deep"
        (refused) or "applied"."""
        if max(len(bids), len(asks)) > self.max_levels:
            return "too deep"
        if time and time < self.last_time:
            return "stale"
        crossed = bool(bids) and bool(asks) and max(bids) >= min(asks)
        if crossed and self.crossed_policy == CrossedPolicy.RAISE:
            return "crossed"
        self.levels = {BUY: dict(bids), SELL: dict(asks)}
        self.valid = not crossed
        if time:
            self.last_time = time
        return "applied"
