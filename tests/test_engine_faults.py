"""TradingEngine under faults: every id it returns ends counted once and traced with an
outcome, whatever breaks (risk manager, venue, trace store); bad input is refused first."""

import logging

import numpy as np
import pytest
from test_engine import ETH, FEES, quotes

from obelisk import EventKind, Portfolio, Side, TimeInForce
from obelisk._core.book import OrderStatus
from obelisk.breaker import CircuitOpenError
from obelisk.errors import CallbackError, InvalidOrderError
from obelisk.execution.engine import STATUS_NOT_SENT, STATUS_UNKNOWN, TradingEngine
from obelisk.risk import RiskLimits, RiskManager, TradingState
from obelisk.sim.batch import SimBatchVenue

OUTCOMES = ("filled", "rested", "cancelled", "unfilled", "refused", "rejected", "failed",
            "unknown")


class ListStore:
    """A trace store in memory."""

    def __init__(self):
        self.traces = []

    def record(self, kind, payload):
        self.traces.append((kind, payload))

    def flush(self):
        pass

    def batches(self):
        return [payload for kind, payload in self.traces if kind == "batch"]

    def outcomes(self):
        """oid -> (status, error) of every order traced, in order."""
        return {oid: (status, batch["error"]) for batch in self.batches()
                for oid, status in zip(batch["oid"].tolist(), batch["status"].tolist(),
                                       strict=True)}


class BrokenStore(ListStore):
    def record(self, kind, payload):
        raise OSError("disk full")


class LosesAnswers(SimBatchVenue):
    """Executes every batch; the calls listed in `lose` then raise `error`, as a network
    venue does when the exchange executed a request and the answer never arrived."""

    def __init__(self, instruments, *, lose, error, **kw):
        super().__init__(instruments, **kw)
        self.lose, self.error, self.calls = set(lose), error, 0

    def execute(self, events):
        self.calls += 1
        report = super().execute(events)
        if self.calls in self.lose:
            raise self.error
        return report


def make(venue=None, store=None, **options):
    portfolio = Portfolio([ETH], balance=100_000, fees=FEES)
    risk = RiskManager(portfolio, RiskLimits(max_data_age_s=3_600))
    venue = venue or SimBatchVenue([ETH], fees=FEES)
    venue.provide(quotes(bids=[(299_000, 10**9)], asks=[(301_000, 10**9)]))
    risk.update_market("ETH", 30.0)
    options.setdefault("batch_size", 10)
    return TradingEngine(portfolio, venue, risk, store=store, **options), portfolio, risk


def assert_accounted(engine, ids, store=None):
    """Every order counted in exactly one outcome; every returned id traced once."""
    stats = engine.stats
    assert stats.submitted == sum(getattr(stats, name) for name in OUTCOMES)
    if store is not None:
        traced = [oid for batch in store.batches() for oid in batch["oid"].tolist()]
        assert sorted(i for i in traced if i in set(ids)) == sorted(ids)


# ------------------------------------------------------------------ the risk stage

def test_a_risk_check_that_raises_fails_its_batch_closed_and_accounts_every_order(
        monkeypatch, caplog):
    store = ListStore()
    engine, portfolio, risk = make(store=store)
    ids = [engine.submit(0, Side.BUY, 301_000, 10, tif=TimeInForce.IOC) for _ in range(3)]

    def broken(events, rows, flags):
        raise RuntimeError("risk limits table corrupt")

    monkeypatch.setattr(risk, "check_events", broken)
    with caplog.at_level(logging.ERROR, logger="obelisk.execution.engine"):
        engine.flush()                                   # accounted, not raised
    assert (engine.stats.submitted, engine.stats.failed) == (3, 3)
    assert engine.venue.executed == 0 and portfolio.position("ETH").size == 0
    assert store.outcomes() == {i: (STATUS_NOT_SENT, "RuntimeError: risk limits table corrupt")
                                for i in ids}
    assert engine.stats.errors == ["RuntimeError: risk limits table corrupt"]
    assert "risk check failed" in caplog.text
    assert_accounted(engine, ids, store)
    monkeypatch.undo()                                   # repaired: trading goes on
    ids.append(engine.submit(0, Side.BUY, 301_000, 10, tif=TimeInForce.IOC))
    engine.flush()
    assert engine.stats.filled == 1
    assert_accounted(engine, ids, store)


def test_a_risk_check_that_raises_inside_submit_batch_keeps_the_call_and_its_ids(monkeypatch):
    store = ListStore()
    engine, _, risk = make(store=store, batch_size=2)
    monkeypatch.setattr(risk, "check_events", lambda events, rows, flags: 1 / 0)
    n = 5
    ids = engine.submit_batch(np.zeros(n, np.int64), np.zeros(n, np.uint8),
                              np.full(n, 301_000), np.full(n, 10),
                              np.full(n, TimeInForce.IOC, np.uint8))
    engine.flush()
    assert ids.tolist() == [1, 2, 3, 4, 5]
    assert (engine.stats.submitted, engine.stats.failed, engine.stats.batches) == (5, 5, 3)
    assert_accounted(engine, ids.tolist(), store)


# ------------------------------------------------------------------- the trace store

def test_a_trace_store_that_raises_is_counted_and_the_pipeline_goes_on(caplog):
    seen = []
    engine, portfolio, _ = make(store=BrokenStore(), batch_size=1,
                                on_fills=lambda report: seen.append(report.fill_oids.tolist()))
    with caplog.at_level(logging.ERROR, logger="obelisk.execution.engine"):
        taker = engine.submit(0, Side.BUY, 301_000, 40, tif=TimeInForce.IOC)   # flushes
        maker = engine.submit(0, Side.SELL, 300_500, 10)                       # rests
        hit = quotes(bids=[(300_500, 10)], asks=[])
        hit["tif"] = TimeInForce.IOC
        engine.venue.provide(hit)                         # someone takes it: a later report
        engine.poll()
        engine.close()
    assert seen == [[taker], [maker]]
    assert portfolio.position("ETH").size == pytest.approx(0.3)
    assert (engine.stats.filled, engine.stats.rested, engine.stats.fills) == (1, 1, 2)
    assert (engine.stats.traces, engine.stats.trace_failures) == (0, 3)   # 2 batches, 1 fills
    assert "trace store failed" in caplog.text and "disk full" in caplog.text
    assert_accounted(engine, [taker, maker])


# ---------------------------------------------------------------------------- the venue

@pytest.mark.parametrize("error", [TimeoutError("read timed out"), ConnectionError("reset"),
                                   KeyError("nonce"),
                                   CircuitOpenError("exchange transport", 1.0)])
def test_a_venue_that_executes_then_raises_leaves_the_outcome_unknown_and_halts(error):
    store, told = ListStore(), []
    venue = LosesAnswers([ETH], fees=FEES, lose={2}, error=error)
    engine, portfolio, risk = make(venue, store, on_unknown=lambda oids: told.append(oids.tolist()))
    ids = [engine.submit(0, Side.BUY, 301_000, 40, tif=TimeInForce.IOC)]
    engine.flush()
    ids.append(engine.submit(0, Side.BUY, 301_000, 40, tif=TimeInForce.IOC))   # answer lost
    engine.flush()
    # the venue holds 0.8; the engine knows 0.4 and says so instead of counting it failed
    assert portfolio.position("ETH").size == pytest.approx(0.4) and venue.executed == 2
    stats = engine.stats
    assert (stats.filled, stats.unknown, stats.failed) == (1, 1, 0)
    assert engine.unknown_oids == {ids[1]} and told == [[ids[1]]]
    assert risk.state == TradingState.HALTED
    assert store.outcomes()[ids[1]][0] == STATUS_UNKNOWN
    assert stats.errors == [f"{type(error).__name__}: {error}"]
    assert_accounted(engine, ids, store)

    ids.append(engine.submit(0, Side.BUY, 301_000, 40, tif=TimeInForce.IOC))
    engine.flush()                                        # halted: nothing more is sent
    assert venue.executed == 2 and stats.refused == 1
    risk.set_state(TradingState.ACTIVE)                   # what a passing reconciliation does
    ids.append(engine.submit(0, Side.BUY, 301_000, 40, tif=TimeInForce.IOC))
    engine.flush()
    assert stats.filled == 2
    assert_accounted(engine, ids, store)


def test_a_breaker_that_refuses_the_call_fails_the_batch_without_halting():
    told = []
    engine, _, risk = make(on_unknown=told.append)
    engine.breaker.force_open()
    ids = [engine.submit(0, Side.BUY, 301_000, 40, tif=TimeInForce.IOC)]
    engine.flush()
    assert (engine.stats.failed, engine.stats.unknown, engine.venue.executed) == (1, 0, 0)
    assert risk.state != TradingState.HALTED and told == [] and not engine.unknown_oids
    assert_accounted(engine, ids)


def test_a_report_that_does_not_answer_every_order_is_an_unknown_outcome():
    class Short(SimBatchVenue):
        def execute(self, events):
            report = super().execute(events)
            return type(report)(report.results[:-1], *(getattr(report, f) for f in (
                "fills", "fees", "fill_oids", "removed_oids", "done_oids")))

    store = ListStore()
    engine, _, risk = make(Short([ETH], fees=FEES), store)
    ids = [engine.submit(0, Side.BUY, 301_000, 10, tif=TimeInForce.IOC) for _ in range(2)]
    engine.flush()
    assert (engine.stats.unknown, risk.state) == (2, TradingState.HALTED)
    assert_accounted(engine, ids, store)


def test_reduce_only_runs_follow_the_same_rules_when_the_answer_is_lost():
    store, told = ListStore(), []
    venue = LosesAnswers([ETH], fees=FEES, lose={2}, error=ConnectionError("reset by peer"))
    engine, portfolio, risk = make(venue, store, on_unknown=lambda oids: told.append(oids.tolist()))
    ids = [engine.submit(0, Side.BUY, 301_000, 100, tif=TimeInForce.IOC),
           engine.submit(0, Side.SELL, 299_000, 50, tif=TimeInForce.IOC, reduce_only=True),
           engine.submit(0, Side.BUY, 301_000, 10, tif=TimeInForce.IOC)]
    engine.flush()
    stats = engine.stats
    assert (stats.filled, stats.unknown, stats.failed) == (1, 1, 1)   # the third never sent
    assert venue.calls == 2 and portfolio.position("ETH").size == pytest.approx(1.0)
    assert told == [[ids[1]]] and risk.state == TradingState.HALTED
    outcomes = store.outcomes()
    assert [outcomes[i][0] for i in ids] == [OrderStatus.FILLED, STATUS_UNKNOWN,
                                             STATUS_NOT_SENT]
    assert_accounted(engine, ids, store)


def test_reduce_only_runs_fail_unsent_orders_when_the_breaker_refuses():
    engine, _, risk = make()
    first = engine.submit(0, Side.BUY, 301_000, 100, tif=TimeInForce.IOC)
    engine.flush()
    engine.breaker.force_open()
    second = engine.submit(0, Side.SELL, 299_000, 50, tif=TimeInForce.IOC, reduce_only=True)
    engine.flush()
    assert (engine.stats.failed, engine.stats.unknown) == (1, 0)
    assert risk.state != TradingState.HALTED
    assert_accounted(engine, [first, second])


# ------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("args, kwargs, named", [
    ((-1, Side.BUY, 301_000, 10), {}, "row -1"),         # would trade the last asset
    ((1, Side.BUY, 301_000, 10), {}, "row 1"),
    ((0, 2, 301_000, 10), {}, "side 2"),
    ((0, Side.BUY, -301_000, 10), {}, "price -301000"),
    ((0, Side.BUY, 0, 10), {}, "price 0"),               # a limit needs a price
    ((0, Side.BUY, -1, 10), {"market": True}, "price -1"),
    ((0, Side.BUY, 301_000, 0), {}, "size 0"),
    ((0, Side.SELL, 301_000, -10), {}, "size -10"),
    ((0, Side.BUY, 301_000, 10), {"tif": 9}, "time in force 9"),
    ((0, Side.BUY, 301_000, 2**63), {}, "size 9223372036854775808"),
])
def test_submit_refuses_bad_input_before_an_id_is_used(args, kwargs, named):
    engine, _, _ = make()
    with pytest.raises(InvalidOrderError, match=named) as raised:
        engine.submit(*args, **kwargs)
    assert isinstance(raised.value, ValueError)
    engine.flush()
    assert engine.stats.submitted == 0 and engine.venue.executed == 0
    assert engine.submit(0, Side.BUY, 301_000, 10, tif=TimeInForce.IOC) == 1


def test_cancel_refuses_a_row_outside_the_table_or_an_impossible_id():
    engine, _, _ = make()
    with pytest.raises(InvalidOrderError, match="row -1"):
        engine.cancel(-1, 5)
    with pytest.raises(InvalidOrderError, match="order id 0"):
        engine.cancel(0, 0)
    engine.flush()
    assert engine.stats.submitted == 0


def test_a_market_order_may_go_without_a_protection_price():
    engine, portfolio, _ = make()
    engine.submit(0, Side.BUY, 0, 10, market=True)
    engine.flush()
    assert portfolio.position("ETH").size == pytest.approx(0.1)


def batch_columns(n=5):
    return {"rows": np.zeros(n, np.int64), "sides": np.zeros(n, np.uint8),
            "prices": np.full(n, 301_000), "qtys": np.full(n, 10),
            "tifs": np.full(n, TimeInForce.IOC, np.uint8),
            "kinds": np.full(n, EventKind.LIMIT, np.uint8), "oids": np.zeros(n, np.int64)}


@pytest.mark.parametrize("column, value, named", [
    ("rows", -1, r"rows\[3\] = -1"), ("rows", 1, r"rows\[3\] = 1"),
    ("sides", 7, r"sides\[3\] = 7"), ("prices", -5, r"prices\[3\] = -5"),
    ("prices", 0, r"prices\[3\] = 0"), ("qtys", 0, r"qtys\[3\] = 0"),
    ("tifs", 9, r"tifs\[3\] = 9"), ("kinds", EventKind.MODIFY, r"kinds\[3\] = 4"),
])
def test_submit_batch_is_all_or_nothing(column, value, named):
    store = ListStore()
    engine, portfolio, _ = make(store=store, batch_size=2)     # rows 0-1 would flush first
    columns = batch_columns()
    columns[column][3] = value
    with pytest.raises(InvalidOrderError, match=named):
        engine.submit_batch(**columns)
    engine.flush()
    assert engine.stats.submitted == 0 and engine.venue.executed == 0 and store.traces == []
    assert portfolio.position("ETH").size == 0
    assert engine.submit(0, Side.BUY, 301_000, 10, tif=TimeInForce.IOC) == 1


def test_submit_batch_refuses_cancels_without_ids_and_columns_that_do_not_fit():
    engine, _, _ = make()
    columns = batch_columns()
    columns["kinds"][2], columns["oids"][2] = EventKind.CANCEL, 0
    with pytest.raises(InvalidOrderError, match=r"oids\[2\] = 0"):
        engine.submit_batch(**columns)
    columns = batch_columns()
    columns["prices"] = columns["prices"].astype(float) + 0.5
    with pytest.raises(InvalidOrderError, match="prices must hold integers"):
        engine.submit_batch(**columns)
    columns = batch_columns()
    columns["qtys"] = columns["qtys"][:4]
    with pytest.raises(InvalidOrderError, match="qtys must be an array of 5"):
        engine.submit_batch(**columns)
    engine.flush()
    assert engine.stats.submitted == 0


def test_submit_batch_still_takes_cancels_with_any_price_and_markets_at_zero():
    engine, _, _ = make()
    resting = engine.submit(0, Side.BUY, 290_000, 10)
    columns = batch_columns(3)
    columns["kinds"][0], columns["oids"][0], columns["prices"][0] = EventKind.CANCEL, resting, -7
    columns["qtys"][0] = 0
    columns["kinds"][1], columns["prices"][1] = EventKind.MARKET, 0
    ids = engine.submit_batch(**columns)
    engine.flush()
    assert ids.tolist() == [resting, 2, 3]
    assert (engine.stats.cancelled, engine.stats.filled) == (1, 2)


# ------------------------------------------------------------------ callbacks and flags

def test_orders_queued_by_a_callback_during_a_batch_cannot_unclip_its_reduce_only_orders():
    # flush read the batch's flags through a view of the queue: a breaker listener that
    # submitted during the venue call overwrote them, and a reduce-only sell of 3.00 went
    # out as a plain one, turning a long of 1.00 into a short of 2.00.
    engine, portfolio, _ = make()
    engine.submit(0, Side.BUY, 301_000, 100, tif=TimeInForce.IOC)
    engine.flush()
    fired = []

    def requote(breaker, duration):
        if not fired:
            fired.append(True)
            for _ in range(3):
                engine.submit(0, Side.BUY, 280_000, 1)

    engine.breaker.on_success(requote)
    engine.submit(0, Side.BUY, 301_000, 1, tif=TimeInForce.IOC)
    engine.submit(0, Side.SELL, 299_000, 1, tif=TimeInForce.IOC, reduce_only=True)
    engine.submit(0, Side.SELL, 299_000, 300, tif=TimeInForce.IOC, reduce_only=True)
    engine.flush()
    assert fired and portfolio.position("ETH").size == 0.0


def test_a_cancel_marked_reduce_only_in_a_batch_is_still_a_cancel():
    # It was judged as a reduce-only order (a buy of 0 lots) and refused, and the order
    # it named stayed on the venue.
    engine, _, _ = make()
    resting = engine.submit(0, Side.BUY, 290_000, 10)
    engine.flush()
    engine.submit_batch(np.array([0]), np.array([0], np.uint8), np.array([0]), np.array([0]),
                        np.array([0], np.uint8), kinds=np.array([EventKind.CANCEL], np.uint8),
                        oids=np.array([resting]), reduce_only=np.array([True]))
    engine.flush()
    assert (engine.stats.cancelled, engine.stats.refused) == (1, 0)


def test_a_callback_that_raises_does_not_keep_the_unknown_orders_from_on_unknown():
    # on_fills raised and on_unknown, the hook that schedules a reconciliation, never ran.
    told = []

    def on_fills(report):
        raise RuntimeError("a bug in the strategy's on_fills")

    engine, _, risk = make(LosesAnswers([ETH], lose={2}, error=ConnectionError("reset"),
                                        fees=FEES),
                           on_fills=on_fills, on_unknown=lambda oids: told.append(oids.tolist()))
    engine.submit(0, Side.BUY, 301_000, 100, tif=TimeInForce.IOC)
    reduce_only = engine.submit(0, Side.SELL, 299_000, 50, tif=TimeInForce.IOC,
                                reduce_only=True)
    with pytest.raises(RuntimeError, match="on_fills"):
        engine.flush()
    assert told == [[reduce_only]] and risk.state == TradingState.HALTED


def _raising_on_fills(report):
    raise RuntimeError("a bug in the strategy's on_fills")


def test_a_submit_whose_batch_callback_raises_still_gives_its_order_id():
    # submit filled the batch, the flush ran on_fills, which raised: the order was sent
    # and traded, but its id never reached the caller, who could not track or cancel it.
    store = ListStore()
    engine, portfolio, _ = make(store=store, batch_size=2, on_fills=_raising_on_fills)
    first = engine.submit(0, Side.BUY, 301_000, 10, tif=TimeInForce.IOC)
    with pytest.raises(CallbackError, match="on_fills") as raised:
        engine.submit(0, Side.BUY, 301_000, 10, tif=TimeInForce.IOC)
    (second,) = raised.value.oids.tolist()
    assert second == first + 1 and isinstance(raised.value.__cause__, RuntimeError)
    assert portfolio.position("ETH").size == pytest.approx(0.2)
    assert_accounted(engine, [first, second], store)


def test_a_submit_batch_whose_callback_raises_queues_the_whole_call_and_gives_its_ids():
    # The first full batch's on_fills raised out of submit_batch: the rest of the call was
    # never queued, and the ids of the orders it had sent were lost with the call.
    store = ListStore()
    engine, portfolio, _ = make(store=store, batch_size=4, on_fills=_raising_on_fills)
    n = 10
    with pytest.raises(CallbackError) as raised:
        engine.submit_batch(np.zeros(n, np.int64), np.full(n, Side.BUY, np.uint8),
                            np.full(n, 301_000), np.full(n, 10),
                            np.full(n, TimeInForce.IOC, np.uint8))
    ids = raised.value.oids.tolist()
    assert ids == list(range(1, n + 1))
    with pytest.raises(RuntimeError, match="on_fills"):
        engine.flush()                                   # the last 2 were queued, not sent
    assert portfolio.position("ETH").size == pytest.approx(1.0)
    assert engine.stats.submitted == engine.stats.filled == n
    assert_accounted(engine, ids, store)


def test_an_order_that_may_rest_with_its_answer_lost_counts_as_open_until_settled():
    # It never counted: with max_open_orders=1, a second order was let through while the
    # first rested at the venue, and the owner could not tell the engine what reconciling
    # had found.
    portfolio = Portfolio([ETH], balance=100_000, fees=FEES)
    risk = RiskManager(portfolio, RiskLimits(max_data_age_s=3_600, max_open_orders=1))
    venue = LosesAnswers([ETH], lose={1}, error=TimeoutError("read timed out"), fees=FEES)
    venue.provide(quotes(bids=[(299_000, 10**9)], asks=[(301_000, 10**9)]))
    risk.update_market("ETH", 30.0)
    engine = TradingEngine(portfolio, venue, risk, batch_size=10)
    first = engine.submit(0, Side.BUY, 290_000, 10)
    engine.flush()
    assert engine.unknown_oids == {first} and risk.open_orders == 1
    risk.set_state(TradingState.ACTIVE)             # as a passing reconciliation would
    second = engine.submit(0, Side.BUY, 289_000, 10)
    engine.flush()
    assert engine.stats.refused == 1                # OPEN_ORDERS: the first may rest
    engine.settle_unknown([first], still_open=[first])
    assert engine.unknown_oids == set() and risk.open_orders == 1
    engine.settle_unknown([second])                 # not unknown: nothing changes
    assert risk.open_orders == 1
    engine.cancel(0, first)
    engine.flush()
    assert risk.open_orders == 0
