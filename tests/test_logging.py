"""What obelisk tells an operator through stdlib logging: state changes at INFO, failures at
WARNING and ERROR, one DEBUG line per batch that costs nothing when DEBUG is off."""

import asyncio
import logging

import pytest

from obelisk import FeeRates, Instrument, Portfolio, Side, TimeInForce
from obelisk.breaker import BreakerConfig, CircuitBreaker
from obelisk.execution.engine import TradingEngine
from obelisk.execution.ledger import OrderLedger
from obelisk.execution.recovery import PositionRecovery
from obelisk.execution.venue import OrderRequest
from obelisk.perf.rows.logs import obelisk_logging
from obelisk.risk import AssetLimits, RiskLimits, RiskManager, TradingState
from obelisk.sim.batch import SimBatchVenue
from obelisk.sim.venue import SimVenue
from obelisk.store import TraceStore

ETH = Instrument("ETH", 0, 2, 25)
FEES = FeeRates(taker=0.00045, maker=0.00015)


def engine(**limits) -> tuple[TradingEngine, RiskManager]:
    portfolio = Portfolio([ETH], balance=100_000, fees=FEES)
    risk = RiskManager(portfolio, RiskLimits(max_data_age_s=3_600, **limits))
    risk.update_market("ETH", 30.0)
    return TradingEngine(portfolio, SimBatchVenue([ETH], fees=FEES), risk, batch_size=100), risk


def records(caplog, logger: str) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == logger]


def test_risk_state_changes_and_the_kill_switch_are_logged_once_each(caplog):
    _, risk = engine()
    with caplog.at_level(logging.INFO, logger="obelisk.risk"):
        risk.set_state(TradingState.HALTED)
        risk.set_state(TradingState.HALTED)          # no change, no line
        risk.set_state(TradingState.ACTIVE)
        risk.engage_kill_switch()
        risk.release_kill_switch()
    assert records(caplog, "obelisk.risk") == [
        (logging.INFO, "trading state ACTIVE -> HALTED"),
        (logging.INFO, "trading state HALTED -> ACTIVE"),
        (logging.WARNING, "kill switch engaged: every order is refused until it is released"),
        (logging.INFO, "kill switch released")]


def test_a_refused_batch_is_a_warning_naming_the_reasons(caplog):
    trading, risk = engine()
    risk.engage_kill_switch()
    with caplog.at_level(logging.WARNING, logger="obelisk.execution.engine"):
        for _ in range(3):
            trading.submit(0, Side.BUY, 300_000, 10, tif=TimeInForce.IOC)
        trading.flush()
    assert trading.stats.refused == 3
    assert records(caplog, "obelisk.execution.engine") == [
        (logging.WARNING, "3 of 3 orders refused by the risk checks: KILL_SWITCH 3")]


def test_orders_the_breaker_stops_are_a_warning(caplog):
    trading, _ = engine()
    trading.breaker.open_for(60)
    with caplog.at_level(logging.WARNING, logger="obelisk.execution.engine"):
        trading.submit(0, Side.BUY, 300_000, 10, tif=TimeInForce.IOC)
        trading.flush()
    assert trading.stats.failed == 1
    [(level, message)] = records(caplog, "obelisk.execution.engine")
    assert level == logging.WARNING and message.startswith("1 orders were not sent: CircuitOpen")


def test_one_debug_line_per_batch_only_when_debug_is_on(caplog):
    trading, _ = engine()
    with caplog.at_level(logging.INFO, logger="obelisk.execution.engine"):
        trading.submit(0, Side.BUY, 299_000, 10)
        trading.flush()
    assert records(caplog, "obelisk.execution.engine") == []
    with caplog.at_level(logging.DEBUG, logger="obelisk.execution.engine"):
        trading.submit(0, Side.BUY, 299_000, 10)
        trading.submit(0, Side.BUY, 298_000, 10)
        trading.flush()
    [(level, message)] = records(caplog, "obelisk.execution.engine")
    assert level == logging.DEBUG
    assert message.startswith("batch of 2 orders: 0 refused, 2 sent, 0 unknown, ")


def test_a_disabled_debug_level_never_builds_the_batch_line(monkeypatch):
    """The guard: with DEBUG off, `logger.debug` is not even called in the hot path."""
    import obelisk.execution.engine as engine_module

    calls = []
    monkeypatch.setattr(engine_module.logger, "debug", lambda *a, **k: calls.append(a))
    trading, _ = engine()
    with obelisk_logging(logging.INFO):
        trading.submit(0, Side.BUY, 299_000, 10)
        trading.flush()
    assert calls == []
    with obelisk_logging(logging.DEBUG):
        trading.submit(0, Side.BUY, 299_000, 10)
        trading.flush()
    assert len(calls) == 1


def test_breaker_trips_are_warnings_and_recoveries_info(caplog):
    clock = [1_000.0]
    breaker = CircuitBreaker("exchange", BreakerConfig(window_size=2, minimum_calls=2,
                                                       base_backoff=10.0, max_backoff=10.0,
                                                       jitter=0.0),
                             clock=lambda: clock[0], random=lambda: 0.0)

    def boom():
        raise ConnectionError("down")

    with caplog.at_level(logging.INFO, logger="obelisk.breaker.core"):
        for _ in range(2):
            with pytest.raises(ConnectionError):
                breaker.call(boom)
        clock[0] += 11
        breaker.call(lambda: "ok")
    transitions = records(caplog, "obelisk.breaker.core")
    assert transitions[0] == (logging.WARNING, "circuit breaker 'exchange': closed -> open")
    assert transitions[1:] == [(logging.INFO, "circuit breaker 'exchange': open -> half-open"),
                               (logging.INFO, "circuit breaker 'exchange': half-open -> closed")]


def test_the_store_logs_open_and_close(caplog, tmp_path):
    with caplog.at_level(logging.INFO, logger="obelisk.store.sqlite"):
        store = TraceStore(tmp_path / "t.db")
        store.record("note", {"x": 1})
        store.close()
    messages = [m for _, m in records(caplog, "obelisk.store.sqlite")]
    assert messages[0].startswith(f"trace store opened: {tmp_path / 't.db'}")
    assert messages[1] == f"trace store closed: {tmp_path / 't.db'}"


def test_the_store_writer_logs_each_batch_at_debug(caplog, tmp_path):
    with caplog.at_level(logging.DEBUG, logger="obelisk.store.writer"), \
            TraceStore(tmp_path / "t.db") as store:
        store.record("note", {"x": 1})
        store.flush()
    assert (logging.DEBUG, "wrote 1 traces in one transaction") in \
        records(caplog, "obelisk.store.writer")


def test_recovery_logs_its_actions_and_the_outcome(caplog):
    btc = Instrument("BTC", 0, 5, 40)
    venue = SimVenue([btc], balance=100_000, fees=FEES)
    orphan = asyncio.run(venue.place(OrderRequest("BTC", True, 0.1, 59_000)))
    portfolio = Portfolio([btc], balance=100_000, fees=FEES)
    ledger = OrderLedger(lambda kind, payload: None)
    risk = RiskManager(portfolio, RiskLimits(default=AssetLimits()))
    recovery = PositionRecovery(venue, portfolio, ledger, risk=risk, cache_ttl_ms=0)
    with caplog.at_level(logging.INFO):
        report = asyncio.run(recovery.reconcile())
    assert report.passed
    lines = records(caplog, "obelisk.execution.recovery")
    [discrepancy] = report.discrepancies
    assert not report.remaining                     # cancelled: reported, no longer a warning
    assert (logging.INFO, f"{discrepancy.kind.value} on BTC: {discrepancy.detail}") in lines
    [action] = report.executed
    assert action.key.endswith(str(orphan.oid))
    assert (logging.INFO, f"recovery action {action.key} done") in lines
    assert lines[-1][0] == logging.INFO
    assert lines[-1][1].startswith("reconciliation passed: 1 discrepancies, 1 actions, 1 done")
    assert (logging.INFO, "trading state HALTED -> ACTIVE") in records(caplog, "obelisk.risk")


def test_a_failed_recovery_action_is_an_error(caplog):
    btc = Instrument("BTC", 0, 5, 40)
    venue = SimVenue([btc], balance=100_000, fees=FEES)
    asyncio.run(venue.place(OrderRequest("BTC", True, 0.1, 59_000)))

    async def refuse(coin, oid):
        raise ConnectionError("exchange unreachable")

    venue.cancel = refuse
    recovery = PositionRecovery(venue, Portfolio([btc], balance=100_000, fees=FEES),
                                OrderLedger(lambda kind, payload: None), cache_ttl_ms=0)
    with caplog.at_level(logging.INFO, logger="obelisk.execution.recovery"):
        report = asyncio.run(recovery.reconcile())
    assert not report.passed
    errors = [m for level, m in records(caplog, "obelisk.execution.recovery")
              if level == logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith("recovery action cancel_orphan")
    assert "ConnectionError('exchange unreachable')" in errors[0]
    warnings = [m for level, m in records(caplog, "obelisk.execution.recovery")
                if level == logging.WARNING]
    assert warnings == [f"{d.kind.value} on BTC: {d.detail}" for d in report.remaining]


def test_obelisk_logging_restores_what_it_changed():
    logger = logging.getLogger("obelisk")
    before = logger.level, logger.propagate, list(logger.handlers), logging.root.manager.disable
    with obelisk_logging(None):
        assert not logger.isEnabledFor(logging.CRITICAL)
    with obelisk_logging(logging.INFO):
        assert logger.isEnabledFor(logging.INFO) and not logger.isEnabledFor(logging.DEBUG)
    assert (logger.level, logger.propagate, list(logger.handlers),
            logging.root.manager.disable) == before
