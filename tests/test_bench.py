"""The benchmark's cheap in-process parts, with tiny sizes (the mesh is not run here)."""

from __future__ import annotations

import pytest

from tests.reference import NaiveMatcher
from zmqex import bench
from zmqex.core.events import Side, Tif


def test_core_vs_plain_figures() -> None:
    r = bench.bench_core(600, seed=5)
    for key in ("core_orders_per_s", "plain_book_orders_per_s", "core_vs_plain"):
        assert r[key] > 0, key
    assert r["core_stream"]["complete"] and r["core_stream"]["fills"] > 0
    assert r["core_plain_fills_match"] is True


def test_stream_mix() -> None:
    ops = bench.make_stream(4000, seed=6)
    stats = bench.stream_stats(ops)
    assert stats["ops"] == 4000
    assert 0.07 < stats["cancels"] / 4000 < 0.13
    assert 0.10 < stats["ioc"] / 4000 < 0.20  # half of the ~30% crossing orders
    for op in ops:
        if op[0] == bench.PLACE:
            _, side, qty, price, tif = op
            assert type(qty) is int and 1 <= qty <= bench.MAX_LOT
            assert type(price) is int and abs(price - bench.MID) <= bench.SPREAD + 1
            assert isinstance(side, Side) and isinstance(tif, Tif)
        else:
            assert ops[op[1]][0] == bench.PLACE and ops[op[1]][4] is Tif.GTC  # cancels hit resting orders


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_plain_book_and_core_fill_alike_without_cancels(seed: int) -> None:
    ops = bench.make_stream(400, seed=seed, cancel_frac=0.0)
    _, done, core_fills = bench.run_core(ops)
    _, _, plain_fills = bench.run_plain(ops)
    assert done == len(ops)
    assert len(core_fills) > 20
    assert core_fills == plain_fills  # same makers, takers, prices, quantities, in the same order


@pytest.mark.parametrize("seed", [4, 5])
def test_plain_book_matches_the_reference_matcher(seed: int) -> None:
    ops = bench.make_stream(300, seed=seed)  # with cancels
    ref = NaiveMatcher()
    for i, op in enumerate(ops):
        if op[0] == bench.CANCEL:
            ref.cancel(op[1])
        else:
            ref.place(i, op[1], op[2], op[3], op[4])
    _, _, plain_fills = bench.run_plain(ops)
    assert plain_fills == ref.fills


def test_plain_book_cancel_and_levels() -> None:
    book = bench.PlainBook()
    book.place(1, Side.SELL, 10, 101, Tif.GTC)
    book.place(2, Side.SELL, 5, 101, Tif.GTC)
    book.place(3, Side.SELL, 7, 102, Tif.GTC)
    assert book.cancel(1) and not book.cancel(1)
    book.place(4, Side.BUY, 8, 102, Tif.IOC)
    assert book.fills == [(2, 4, 101, 5), (3, 4, 102, 3)]
    assert book.best(Side.SELL) == 102 and book.best(Side.BUY) is None and len(book) == 1


def test_depth_figures() -> None:
    r = bench.bench_depth([50, 200], 60)
    assert set(r["core_us_per_op_by_depth"]) == {"50", "200"}
    assert all(v > 0 for v in r["core_us_per_op_by_depth"].values())
    assert all(v > 0 for v in r["plain_us_per_op_by_depth"].values())
    assert r["core_depth_spread"] >= 1


def test_wire_figures() -> None:
    r = bench.bench_wire(300)
    for key in ("wire_events_per_s", "plain_msgpack_per_s", "wire_vs_plain", "wire_event_bytes"):
        assert r[key] > 0, key


def test_table_and_targets_render() -> None:
    r = {**bench.bench_core(200), **bench.bench_wire(100), "machine": bench.machine()}
    r["targets"] = bench._targets(r)
    text = bench.table(r)
    assert "core replica" in text and "wire encode+decode" in text and "not measured" in text
    assert bench.percentile([3.0, 1.0, 2.0], 50) == 2.0 and bench.percentile([1.0] * 100 + [9.0], 99) == 1.0


def test_raw_commit_figures() -> None:
    r = bench.bench_raw_commit(20)
    assert r["raw_commit_samples"] == 20
    assert 0 < r["raw_commit_p50_ms"] <= r["raw_commit_p99_ms"]


def test_sign_figures() -> None:
    r = bench.bench_sign(50, 200, rounds=1)
    for key in ("sign_us", "verify_us", "signed_bytes_us", "sign_codec_us", "sign_vs_codec", "verify_vs_codec",
                "core_unsigned_us_per_order", "core_signed_us_per_order", "core_signed_vs_unsigned"):
        assert r[key] > 0, key
    assert r["signed_event_bytes"] > 64  # the signature travels with the event
    r["targets"] = bench._targets(r)
    text = bench.table(r)
    assert "Ed25519 sign" in text and "Ed25519 verify" in text and "core own passive order, signed" in text
    assert "keyed mesh >= 0.5x unkeyed" in text  # a target, not measured here


def test_order_kinds_are_measured_beside_a_plain_limit_order():
    from zmqex.bench.kinds import bench_kinds

    r = bench_kinds(3, makers=2)
    assert r["kinds_rounds"] == 3 and r["kinds_makers"] == 2
    for key in ("fok_vs_limit", "amend_lower_vs_limit", "amend_price_vs_limit"):
        assert r[key] > 0
    with pytest.raises(ValueError):
        bench_kinds(1, makers=4)
