"""PositionRecovery while the process stays up: vanished stops, repeated and late fills,
failing and hanging venues, unknown coins, short stops and overlapping passes.

Each test reproduces one defect that recovery once had against the honest SimVenue.
"""

import asyncio

import pytest
from test_recovery import BTC, ETH, Bot, agree, kinds, run, venue

from obelisk import FeeRates, Instrument, Portfolio
from obelisk.execution.ledger import OrderLedger
from obelisk.execution.recovery import DiscrepancyKind, PositionRecovery
from obelisk.execution.venue import OrderRequest
from obelisk.risk import RiskManager, TradingState
from obelisk.sim.venue import SimVenue

SOL = Instrument("SOL", 2, 2, 20)


def protective(v, coin="BTC"):
    return [o for o in run(v.open_orders()) if o.coin == coin and o.is_protective]


def balances_agree(bot, v):
    assert bot.portfolio.balance == pytest.approx(v.portfolio.balance, abs=1e-6)


def applied_tids(journal):
    return [p["tid"] for kind, p in journal if kind == "fill_applied"]


# ------------------------------------------------- 1. a vanished stop is placed again

def test_a_stop_the_venue_cancelled_is_placed_again():
    v = venue()
    bot = Bot(v, [])
    run(bot.send(OrderRequest("BTC", True, 1.0, 60_100, tif="Ioc")))
    recovery = bot.recovery(stop_distance=0.05)
    assert run(recovery.reconcile()).passed
    (first,) = protective(v)
    v.drop_order(first.oid)                               # cancelled by the venue
    report = run(recovery.reconcile())
    assert report.passed, report
    (second,) = protective(v)
    assert second.cloid != first.cloid and second.size == 1.0
    agree(bot, v)


def test_a_stop_that_triggered_and_filled_nothing_is_placed_again():
    v = venue()
    bot = Bot(v, [])
    run(bot.send(OrderRequest("BTC", True, 1.0, 60_100, tif="Ioc")))
    recovery = bot.recovery(stop_distance=0.05)
    assert run(recovery.reconcile()).passed
    (first,) = protective(v)
    v.clear_liquidity("BTC")
    v.set_mark("BTC", 50_000)                             # triggers into an empty book
    v.set_mark("BTC", 60_000)
    assert run(v.order_status(oid=first.oid)) == "triggered" and not protective(v)
    assert bot.portfolio.position("BTC").size == 1.0
    assert run(recovery.reconcile()).passed
    assert len(protective(v)) == 1
    agree(bot, v)


def test_after_a_restart_a_vanished_stop_is_placed_under_a_new_cloid():
    v = venue()
    journal = []
    bot = Bot(v, journal)
    run(bot.send(OrderRequest("BTC", True, 1.0, 60_100, tif="Ioc")))
    assert run(bot.recovery(stop_distance=0.05).reconcile()).passed
    (first,) = protective(v)
    v.drop_order(first.oid)
    restarted = Bot.restarted(v, journal)
    report = run(restarted.recovery(stop_distance=0.05).reconcile())
    assert report.passed
    (second,) = protective(v)                             # a real stop, not a replayed answer
    assert second.cloid != first.cloid and second.oid in restarted.ledger.orders
    agree(restarted, v)


# --------------------------------------------------- 2. no fill is applied twice

class Repeating:
    """A SimVenue whose fill answers list every fill twice, newest first."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def fills_since(self, time_ms):
        fills = await self.inner.fills_since(time_ms)
        return list(reversed(fills + fills))


def test_a_fill_listed_twice_is_applied_once():
    v = venue()
    journal = []
    bot = Bot(v, journal)
    run(bot.send(OrderRequest("ETH", True, 10, 2_995)))
    v.external_fill("ETH", False, 10, 2_995)
    bot.venue = Repeating(v)
    assert run(bot.recovery().reconcile()).passed
    assert len(applied_tids(journal)) == len(set(applied_tids(journal))) == 1
    balances_agree(bot, v)
    agree(bot, v)


def test_a_fill_the_bot_applies_during_a_pass_is_not_applied_again():
    v = venue()
    journal = []
    bot = Bot(v, journal)
    run(bot.send(OrderRequest("ETH", True, 10, 2_995)))
    v.external_fill("ETH", False, 10, 2_995)

    class SyncingMidPass(Repeating):
        async def order_status(self, **query):            # the bot's own sync runs meanwhile
            await bot.sync_fills()
            return await self.inner.order_status(**query)

    bot.venue = SyncingMidPass(v)
    recovery = PositionRecovery(bot.venue, bot.portfolio, bot.ledger, cache_ttl_ms=0)
    bot.venue = v
    report = run(recovery.reconcile())
    assert applied_tids(journal) == [1]
    assert bot.portfolio.position("ETH").size == 10
    balances_agree(bot, v)
    assert report.passed
    agree(bot, v)


def test_two_recoveries_at_once_apply_each_fill_once():
    v = venue()
    journal = []
    bot = Bot(v, journal)
    run(bot.send(OrderRequest("ETH", True, 10, 2_995)))
    v.external_fill("ETH", False, 10, 2_995)
    a, b = bot.recovery(), bot.recovery()

    async def both():
        return await asyncio.gather(a.reconcile(), b.reconcile())

    run(both())
    assert applied_tids(journal) == [1]
    balances_agree(bot, v)
    assert run(a.reconcile()).passed
    agree(bot, v)


def test_the_ledger_refuses_a_tid_it_knows():
    journal = []
    ledger = OrderLedger(lambda kind, payload: journal.append(kind))
    v = venue()
    bot = Bot(v, [])
    run(bot.send(OrderRequest("BTC", True, 0.5, 60_100, tif="Ioc")))
    (fill,) = run(v.fills_since(0))
    assert ledger.fill_applied(fill) is True
    assert ledger.fill_applied(fill) is False and journal == ["fill_applied"]


def test_a_balance_that_differs_is_found_and_resynced():
    v = venue()
    bot = Bot(v, [])
    run(bot.send(OrderRequest("BTC", True, 0.5, 60_100, tif="Ioc")))
    bot.portfolio.deposit(12.5)                            # e.g. fees charged twice, undone
    report = run(bot.recovery().reconcile())
    assert "balance_mismatch" in kinds(report) and report.passed
    balances_agree(bot, v)


# ------------------------------------- 3. a failed or hung pass halts trading

@pytest.mark.parametrize("call", ["positions", "open_orders", "fills_since", "balance",
                                  "order_status"])
def test_a_failing_venue_call_fails_the_pass_and_halts_trading(call):
    v = venue()
    bot = Bot(v, [])
    order = run(bot.send(OrderRequest("BTC", True, 0.1, 59_000)))
    risk = RiskManager(bot.portfolio)
    recovery = bot.recovery(risk=risk)
    assert run(recovery.reconcile()).passed and risk.state == TradingState.ACTIVE
    v.external_fill("BTC", False, 0.1, 59_000)           # the venue moves behind the bot
    v.drop_order(order.oid) if call == "order_status" else None
    v.fail_next(call, ConnectionError("reset by peer"))
    report = run(recovery.reconcile())
    assert not report.passed and "ConnectionError" in report.error
    assert risk.state == TradingState.HALTED
    assert run(recovery.reconcile()).passed and risk.state == TradingState.ACTIVE


class Hanging:
    """A SimVenue whose chosen call never returns."""

    def __init__(self, inner, call):
        self.inner, self.call = inner, call

    def __getattr__(self, name):
        if name == self.call:
            async def forever(*args, **kwargs):
                await asyncio.Event().wait()
            return forever
        return getattr(self.inner, name)


def test_a_hung_venue_call_fails_the_pass_at_its_deadline():
    v = venue()
    bot = Bot(v, [])
    risk = RiskManager(bot.portfolio)
    recovery = PositionRecovery(Hanging(v, "positions"), bot.portfolio, bot.ledger, risk=risk,
                                cache_ttl_ms=0, call_timeout=0.05)
    report = run(recovery.reconcile())
    assert not report.passed and "TimeoutError" in report.error
    assert risk.state == TradingState.HALTED


def test_a_pass_longer_than_its_deadline_fails():
    v = venue()
    bot = Bot(v, [])

    class Slow(Hanging):
        def __getattr__(self, name):
            call = getattr(self.inner, name)
            if name in ("positions", "open_orders", "fills_since", "balance"):
                async def slow(*args, **kwargs):
                    await asyncio.sleep(0.03)
                    return await call(*args, **kwargs)
                return slow
            return call

    recovery = PositionRecovery(Slow(v, None), bot.portfolio, bot.ledger, cache_ttl_ms=0,
                                pass_timeout=0.01)
    report = run(recovery.reconcile())
    assert not report.passed and "TimeoutError" in report.error


def test_stop_ends_run_periodically_during_a_hung_pass():
    v = venue()
    bot = Bot(v, [])
    risk = RiskManager(bot.portfolio)
    recovery = PositionRecovery(Hanging(v, "positions"), bot.portfolio, bot.ledger, risk=risk,
                                cache_ttl_ms=0, call_timeout=3600, pass_timeout=3600)

    async def scenario():
        stop = asyncio.Event()
        loop = asyncio.ensure_future(recovery.run_periodically(0.01, stop))
        await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(loop, 2.0)                 # a bound on correctness, not speed

    run(scenario())
    assert recovery.history[-1].error == "the pass was cancelled"
    assert risk.state == TradingState.HALTED


# ------------------------------------------- 4. an unknown coin stops nothing else

def test_a_position_in_an_unknown_coin_does_not_stop_protection_of_the_others():
    v = SimVenue([BTC, ETH, SOL], balance=100_000, fees=FeeRates(0.00045, 0.00015))
    v.add_liquidity("BTC", False, 60_100, 2.0)
    v.add_liquidity("SOL", False, 150, 100.0)
    bot = Bot(v, [])
    run(bot.send(OrderRequest("BTC", True, 1.0, 60_100, tif="Ioc")))
    run(v.place(OrderRequest("SOL", True, 10, 150, tif="Ioc")))   # traded by someone else
    report = run(bot.recovery(stop_distance=0.05).reconcile())
    assert "unknown_coin" in kinds(report) and not report.passed   # not reconcilable here
    assert len(protective(v)) == 1                        # yet BTC is protected
    assert any(a.kind == "place_stop" for a in report.executed)


# ------------------------------------------------ 5. a short stop is topped up

def test_a_stop_smaller_than_the_position_is_topped_up():
    v = venue()
    bot = Bot(v, [])
    v.add_liquidity("BTC", False, 60_150, 2.0)
    run(bot.send(OrderRequest("BTC", True, 3.0, 60_150, tif="Ioc")))
    run(bot.send(OrderRequest("BTC", False, 1.0, 50_000, reduce_only=True, trigger_px=52_000)))
    report = run(bot.recovery(stop_distance=0.05).reconcile())
    assert DiscrepancyKind.MISSING_STOP in {d.kind for d in report.discrepancies}
    assert report.passed
    assert sorted(o.size for o in protective(v)) == [1.0, 2.0]
    assert not run(bot.recovery(stop_distance=0.05).reconcile()).discrepancies


# ------------------------------------- 6. a late fill with an older time is applied

def test_a_fill_reported_late_with_an_older_time_is_applied():
    now = [1_000_000]
    v = SimVenue([BTC, ETH], balance=100_000, fees=FeeRates(0.00045, 0.00015),
                 clock_ms=lambda: now[0])
    v.add_liquidity("ETH", False, 3_010, 50.0)
    bot = Bot(v, [])
    run(bot.send(OrderRequest("ETH", True, 5, 2_996)))
    run(bot.send(OrderRequest("ETH", True, 5, 2_995)))
    v.external_fill("ETH", False, 5, 2_996)                # at t = 1,000,000
    run(bot.sync_fills())
    assert bot.ledger.checkpoint_ms == 1_000_000
    now[0] = 990_000                                       # stamped earlier, seen later
    v.external_fill("ETH", False, 5, 2_995)
    report = run(bot.recovery().reconcile())
    assert "missed_fill" in kinds(report) and report.passed
    assert bot.portfolio.position("ETH").fees == pytest.approx((5 * 2_996 + 5 * 2_995) * 0.00015)
    balances_agree(bot, v)
    agree(bot, v)


# ---------------------------------------------- 7. overlapping passes act once

def test_overlapping_passes_place_one_stop_and_share_one_report():
    v = venue()
    bot = Bot(v, [])
    run(bot.send(OrderRequest("BTC", True, 1.0, 60_100, tif="Ioc")))
    recovery = bot.recovery(stop_distance=0.05)

    async def three():
        return await asyncio.gather(*(recovery.reconcile() for _ in range(3)))

    reports = run(three())
    assert reports[0] is reports[1] is reports[2] and reports[0].passed
    assert v.calls["place"] == 2                          # the bot's order and one stop
    assert len(protective(v)) == 1


def test_a_dry_run_recovery_leaves_trading_as_it_was():
    bot = Bot(venue(), [])
    risk = RiskManager(bot.portfolio)
    PositionRecovery(bot.venue, bot.portfolio, bot.ledger, risk=risk, dry_run=True)
    assert risk.state == TradingState.ACTIVE


# ------------------------------------------------------------ randomized faults

class Faulty:
    """A SimVenue behind random faults: calls that fail before acting, act and lose their
    answer, or hang past the deadline; fill answers repeated and shuffled."""

    CALLS = ("positions", "balance", "open_orders", "fills_since", "order_status", "place",
             "cancel")

    def __init__(self, inner, rng):
        self.inner, self.rng, self.rate = inner, rng, 0.0

    def __getattr__(self, name):
        call = getattr(self.inner, name)
        if name not in self.CALLS:
            return call

        async def faulty(*args, **kwargs):
            draw = self.rng.random() / max(self.rate, 1e-12)
            if draw < 0.3:
                raise ConnectionError(f"{name}: connection reset")
            if draw < 0.5:
                await asyncio.sleep(60)                   # past the call deadline
            result = await call(*args, **kwargs)
            if draw < 0.7:
                raise ConnectionError(f"{name}: answer lost")
            if name == "fills_since":
                result = result + self.rng.sample(result, len(result) // 2)
                self.rng.shuffle(result)
            return result

        return faulty


def uncovered_lots(v):
    """Per coin, the lots of the position that no protective stop covers."""
    out = {}
    positions = {p.coin: p for p in run(v.positions())}
    for instrument in (BTC, ETH):
        p = positions.get(instrument.name)
        need = instrument.round_size_to_lots(abs(p.size), "nearest") if p else 0
        covered = sum(instrument.round_size_to_lots(o.size, "nearest")
                      for o in protective(v, instrument.name) if p and o.is_buy == (p.size < 0))
        out[instrument.name] = max(0, need - covered)
    return out


@pytest.mark.parametrize("seed", range(5))
def test_randomized_faults_never_place_or_apply_twice(seed):
    import random

    rng = random.Random(seed)
    now, latest = [10_000_000], [10_000_000]
    v = SimVenue([BTC, ETH], balance=1_000_000, fees=FeeRates(0.00045, 0.00015),
                 clock_ms=lambda: now[0])
    journal = []
    bot = Bot(v, journal)
    bot.portfolio.deposit(900_000)
    faulty = Faulty(v, rng)
    risk = RiskManager(bot.portfolio)
    options = dict(risk=risk, stop_distance=0.05, cache_ttl_ms=0, call_timeout=0.01,
                   pass_timeout=5.0)
    recovery = PositionRecovery(faulty, bot.portfolio, bot.ledger, **options)
    twin = PositionRecovery(faulty, bot.portfolio, bot.ledger, **options)
    concluded = []
    for instance in (recovery, twin):
        conclude = instance._conclude
        instance._conclude = lambda report, conclude=conclude: (concluded.append(report),
                                                                conclude(report))

    for _ in range(40):
        v.clear_liquidity("BTC")
        v.clear_liquidity("ETH")
        for coin, mid, size in (("BTC", 60_000, 5.0), ("ETH", 3_000, 100.0)):
            v.add_liquidity(coin, True, mid - 100, size)
            v.add_liquidity(coin, False, mid + 100, size)
        for _ in range(rng.randint(1, 4)):
            latest[0] += 1_000                                # some fills stamped in the past,
            now[0] = latest[0] - rng.choice((0, 0, 30_000))   # within the fill look-back
            coin, mid, lot = rng.choice((("BTC", 60_000, 0.1), ("ETH", 3_000, 1.0)))
            is_buy, size = rng.random() < 0.5, round(lot * rng.randint(1, 5), 1)
            action = rng.random()
            if action < 0.3:                                  # the bot trades and syncs
                run(bot.send(OrderRequest(coin, is_buy, size, mid + (150 if is_buy else -150),
                                          tif="Ioc")))
            elif action < 0.5:                                # the bot rests an order
                run(bot.send(OrderRequest(coin, is_buy, size, mid + (-50 if is_buy else 50))))
            elif action < 0.7:                                # its resting orders fill unseen
                v.external_fill(coin, rng.random() < 0.5, size, mid + rng.choice((-50, 50)))
            elif action < 0.85:                               # the venue drops an order
                open_orders = run(v.open_orders())
                if open_orders:
                    v.drop_order(rng.choice(open_orders).oid)
            else:                                             # an order the bot never hears of
                run(v.place(OrderRequest(coin, is_buy, size, mid + (-80 if is_buy else 80))))
        before = {o.oid for c in ("BTC", "ETH") for o in protective(v, c)}
        uncovered = uncovered_lots(v)

        faulty.rate = rng.choice((0.0, 0.1, 0.3))

        async def overlapping():
            passes = [recovery.reconcile() for _ in range(rng.randint(1, 3))]
            if rng.random() < 0.3:
                passes.append(twin.reconcile())
            return await asyncio.gather(*passes)

        concluded.clear()
        run(overlapping())
        assert (risk.state == TradingState.ACTIVE) == concluded[-1].passed  # failed: halted
        faulty.rate = 0.0
        for _ in range(3):
            if run(recovery.reconcile()).passed:
                break
        assert recovery.passed and risk.state == TradingState.ACTIVE, recovery.history[-1]

        agree(bot, v)
        balances_agree(bot, v)
        tids = applied_tids(journal)
        assert len(tids) == len(set(tids))                    # no fill applied twice
        assert set(tids) == {f.tid for f in run(v.fills_since(0))}
        assert uncovered_lots(v) == {"BTC": 0, "ETH": 0}      # every position protected
        for instrument in (BTC, ETH):                         # ... and by one new stop at most
            new = [o for o in protective(v, instrument.name) if o.oid not in before]
            assert sum(instrument.round_size_to_lots(o.size, "nearest") for o in new) \
                == uncovered[instrument.name]


def test_a_balance_below_what_could_be_withdrawn_is_still_resynced():
    v = venue()
    bot = Bot(v, [])
    run(bot.send(OrderRequest("BTC", True, 1.5, 60_100, tif="Ioc")))   # ~4,500 of margin
    v.portfolio.set_balance(3_000)           # losses the bot never saw (funding, say)
    missing = bot.portfolio.balance - v.portfolio.balance
    assert missing > bot.portfolio.withdrawable  # more than a withdrawal could take
    report = run(bot.recovery().reconcile())
    assert report.passed and "balance_mismatch" in kinds(report)
    balances_agree(bot, v)


def test_a_fresh_call_during_a_pass_gets_a_pass_that_reads_the_venue_after_it():
    # reconcile(fresh=True) joined the pass under way, whose venue read came before the
    # fault it was called for: it answered "passed", lifted the halt, and the fill made in
    # between never reached the portfolio.
    class SlowPositions(SimVenue):
        """positions() read at once, answered once `gate` opens."""

        async def positions(self):
            snapshot = await super().positions()
            await self.gate.wait()
            return snapshot

    eth = Instrument("ETH", 1, 4, 25)
    fees = FeeRates(0.00045, 0.00015)

    async def scenario():
        v = SlowPositions([eth], balance=100_000, fees=fees)
        v.gate = asyncio.Event()
        v.add_liquidity("ETH", True, 2_990, 50.0)
        portfolio = Portfolio([eth], balance=100_000, fees=fees)
        risk = RiskManager(portfolio)
        recovery = PositionRecovery(v, portfolio, OrderLedger(), risk=risk, cache_ttl_ms=0)
        periodic = asyncio.ensure_future(recovery.reconcile())
        after_stale = []
        periodic.add_done_callback(lambda _: after_stale.append(risk.state))
        await asyncio.sleep(0.01)                       # its venue read is done
        await v.place(OrderRequest("ETH", False, 1.0, 2_990, tif="Ioc"))     # the fault
        risk.set_state(TradingState.HALTED)
        after_fault = asyncio.ensure_future(recovery.reconcile(fresh=True))
        await asyncio.sleep(0.01)
        v.gate.set()
        report = await after_fault
        await periodic
        return report, portfolio.position("ETH").size, after_stale

    report, size, after_stale = run(scenario())
    assert after_stale == [TradingState.HALTED]     # the stale pass did not lift the halt
    assert "missed_fill" in kinds(report) and report.passed and size == -1.0
