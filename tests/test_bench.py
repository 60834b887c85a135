"""obelisk bench: the command runs end to end and its cross-checks hold."""

import json

import pytest

from obelisk.cli import main
from obelisk.perf.rows.engine import BATCHES, prepare_batches, run_batches
from obelisk.perf.rows.l2 import _peers
from obelisk.testing.workload import SYNTHETIC_GRID, l2_stream


def test_bench_json_report(capsys):
    code = main(["bench", "--events", "3000", "--seed-orders", "300", "--repeat", "1",
                 "--reference-events", "500", "--engine-batch", "1024", "--assets", "500",
                 "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["facts"]["paths_agree"] and report["facts"]["matches_reference"]
    assert report["facts"]["position_paths_agree"]
    assert report["facts"]["positions_match_reference"]
    assert isinstance(report["facts"]["allocations_in_second_half"], bool)
    names = [row["name"] for row in report["rows"]]
    assert "L2Book.apply_batch, top after each delta" in names
    assert "mark + full recompute, 500 positions (positions/s)" in names
    assert "recompute limit loop (minimal C, columns), 500 positions" in names
    assert report["facts"]["recompute_limit_agrees"]
    assert 0 < report["ratios"]["mark + full recompute vs the limit"] < 2
    assert "RiskManager.check_batch, every limit on" in names
    assert "deep book: limit loop (minimal C, all preallocated)" in names
    assert report["facts"]["deep_book_limit_agrees"]
    assert 0 < report["ratios"]["deep book, fresh OrderBook vs the limit"] < 2
    assert "L2 limit loop (minimal C, a size per tick), top after each delta" in names
    assert report["facts"]["l2_limit_agrees"]
    assert 0 < report["ratios"]["L2 batch vs the limit"] < 2
    assert "TradingEngine, batches of 1 (submit_batch + flush; batches/s)" in names
    assert report["facts"]["engine_batch_fixed_cost_microseconds"] > 0
    assert all(row["events_per_second"] > 0 for row in report["rows"])


def test_engine_rows_trade_every_order():
    for size in (1, 100):
        engine, batches = prepare_batches(size)
        run_batches((engine, batches))
        assert engine.stats.filled == engine.stats.submitted == BATCHES * size


def test_bench_rejects_bad_arguments():
    with pytest.raises(SystemExit):
        main(["bench", "--events", "0"])


@pytest.mark.parametrize("peer", ["order-book", "nautilus_trader"])
def test_peer_adapters_end_in_the_same_book(peer):
    pytest.importorskip(peer.replace("-", "_"))
    from obelisk import L2Book

    workload = l2_stream(2_000, levels=40, seed=3)
    fresh, replay = _peers(workload)[peer]
    book = fresh()
    replay(book)
    ours = L2Book(SYNTHETIC_GRID)
    workload.load(ours)
    for side, price, size in workload.deltas[["side", "price", "size"]].tolist():
        ours.apply(side, price, size)
    if peer == "order-book":
        assert book.bids.index(0) == (ours.best_bid(), ours.best_bid_size())
        assert book.asks.index(0) == (ours.best_ask(), ours.best_ask_size())
        assert len(book.bids) == ours.bid_levels and len(book.asks) == ours.ask_levels
    else:
        assert round(book.best_bid_price().as_double() * 100) == ours.best_bid()
        assert round(book.best_ask_price().as_double() * 100) == ours.best_ask()
