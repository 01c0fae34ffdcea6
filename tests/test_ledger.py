"""Tests for zmqex.core.ledger: the replicated orders, fills and book."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zmqex.core.clock import VectorClock
from zmqex.core.events import Cancel, CancelReason, Event, Fill, NewOrder, Side, Tif
from zmqex.core.ledger import Ledger
from zmqex.errors import BadEvent

BUY, SELL = Side.BUY, Side.SELL
_fresh = itertools.count(1000)  # seqs of cancels and fills: distinct, and apart from the orders'


def _event(origin: str, body, seq: int | None = None) -> Event:
    seq = next(_fresh) if seq is None else seq
    return Event(origin, seq, VectorClock({origin: seq}), body)


def order(origin, seq, side, price, qty, tif=Tif.GTC) -> Event:
    return _event(origin, NewOrder(side, price, qty, tif, 1 if tif is Tif.GTD else None), seq)


def cancel(origin, oid, reason=CancelReason.USER) -> Event:
    return _event(origin, Cancel(oid, reason))


def fill(origin, maker, taker, price, qty, request, seq=None) -> Event:
    return _event(origin, Fill(maker, taker, price, qty, request), seq)


def ledger(*events: Event) -> Ledger:
    led = Ledger()
    for e in events:
        led.apply(e)
        led._check()
    return led


def snapshot(led: Ledger):
    return (
        led.state_hash(),
        [(r.order_id, r.qty) for side in Side for r in led.book.orders(side)],
        {oid: (s.filled, s.cancelled, s.status) for oid, s in led.orders.items()},
        sorted(led.fills),
        sorted(led.fill_by_request),
        {oid: len(fills) for oid, fills in led.fills_of.items()},
    )


def book_rows(led: Ledger):
    return [(r.order_id, r.qty) for side in Side for r in led.book.orders(side)]


# --- applying -----------------------------------------------------------------


def test_order_rests_with_status_open():
    led = ledger(order("a", 1, SELL, 5000, 100))
    state = led.orders["a:1"]
    assert (state.owner, state.open, state.filled, state.status) == ("a", 100, 0, "open")
    assert book_rows(led) == [("a:1", 100)]
    assert led.book.best_ask() == 5000


@pytest.mark.parametrize("price", [5000, None])
def test_ioc_orders_never_enter_the_book(price):
    led = ledger(order("a", 1, BUY, price, 10, Tif.IOC))
    assert "a:1" in led.orders and led.orders["a:1"].open == 10
    assert len(led.book) == 0


def test_post_only_rests():
    assert book_rows(ledger(order("a", 1, BUY, 5000, 10, Tif.POST_ONLY))) == [("a:1", 10)]


def test_fills_reduce_both_orders_then_close_them():
    led = ledger(order("a", 1, SELL, 5000, 100), order("b", 1, BUY, 5100, 30))
    led.apply(fill("a", "a:1", "b:1", 5000, 10, "r1"))
    led._check()
    assert (led.orders["a:1"].filled, led.orders["a:1"].status) == (10, "partial")
    assert book_rows(led) == [("b:1", 20), ("a:1", 90)]
    led.apply(fill("a", "a:1", "b:1", 5000, 20, "r2"))
    led._check()
    assert led.orders["b:1"].status == "filled" and led.orders["b:1"].open == 0
    assert book_rows(led) == [("a:1", 70)]
    assert [e.body.request for e in led.fills_of["a:1"]] == ["r1", "r2"]
    assert set(led.fill_by_request) == {"r1", "r2"}


def test_fill_against_ioc_taker():
    led = ledger(order("a", 1, SELL, 5000, 100), order("b", 1, BUY, None, 30, Tif.IOC),
                 fill("a", "a:1", "b:1", 5000, 30, "r1"))
    assert led.orders["b:1"].status == "filled"
    assert book_rows(led) == [("a:1", 70)]


@pytest.mark.parametrize("reason, status", [(CancelReason.USER, "cancelled"), (CancelReason.EXPIRED, "expired"),
                                            (CancelReason.WOULD_CROSS, "cancelled")])
def test_cancel_closes_the_order(reason, status):
    led = ledger(order("a", 1, SELL, 5000, 100), cancel("a", "a:1", reason))
    assert (led.orders["a:1"].open, led.orders["a:1"].status) == (0, status)
    assert len(led.book) == 0


def test_cancel_twice_is_a_noop():
    led = ledger(order("a", 1, SELL, 5000, 100), cancel("a", "a:1"))
    before = snapshot(led)
    led.apply(cancel("a", "a:1", CancelReason.EXPIRED))
    led._check()
    assert snapshot(led) == before


def test_cancel_of_a_filled_order_keeps_it_filled():
    led = ledger(order("a", 1, SELL, 5000, 10), order("b", 1, BUY, 5000, 10),
                 fill("a", "a:1", "b:1", 5000, 10, "r"), cancel("a", "a:1"))
    assert led.orders["a:1"].status == "filled"


# --- rejected events change nothing --------------------------------------------


def base() -> Ledger:
    return ledger(
        order("a", 1, SELL, 5000, 100),
        order("b", 1, BUY, 5100, 60),
        order("b", 2, SELL, 5000, 10),
        order("b", 3, BUY, 6000, 500),
        order("b", 4, BUY, 4000, 10),
        order("a", 2, BUY, None, 10, Tif.IOC),
        fill("a", "a:1", "b:1", 5000, 10, "r0"),
    )


BAD = {
    "maker-over-fill": fill("a", "a:1", "b:3", 5000, 91, "r1"),
    "taker-over-fill": fill("a", "a:1", "b:1", 5000, 51, "r1"),
    "fill-from-non-owner": fill("b", "a:1", "b:1", 5000, 5, "r1"),
    "fill-at-other-price": fill("a", "a:1", "b:1", 5050, 5, "r1"),
    "fill-at-taker-price": fill("a", "a:1", "b:1", 5100, 5, "r1"),
    "fill-same-side": fill("b", "b:2", "a:1", 5000, 5, "r1"),
    "fill-not-crossing": fill("a", "a:1", "b:4", 5000, 5, "r1"),
    "fill-market-maker": fill("a", "a:2", "b:2", 5000, 5, "r1"),
    "fill-self": fill("a", "a:1", "a:1", 5000, 5, "r1"),
    "fill-unknown-maker": fill("a", "a:99", "b:1", 5000, 5, "r1"),
    "fill-unknown-taker": fill("a", "a:1", "b:99", 5000, 5, "r1"),
    "duplicate-request": fill("a", "a:1", "b:3", 5000, 5, "r0"),
    "cancel-from-non-owner": cancel("b", "a:1"),
    "cancel-unknown": cancel("a", "a:99"),
    "order-twice": order("a", 1, SELL, 5000, 100),
}


@pytest.mark.parametrize("event", BAD.values(), ids=BAD.keys())
def test_bad_event_raises_and_changes_nothing(event):
    led = base()
    before = snapshot(led)
    with pytest.raises(BadEvent):
        led.apply(event)
    assert snapshot(led) == before
    led._check()


# --- state hash ---------------------------------------------------------------


def test_empty_ledger_hash():
    assert Ledger().state_hash() == "0" * 32


def test_equal_histories_hash_equal():
    history = [order("a", 1, SELL, 5000, 100), order("b", 1, BUY, 5100, 60), fill("a", "a:1", "b:1", 5000, 7, "r")]
    assert ledger(*history).state_hash() == ledger(*history).state_hash()


@pytest.mark.parametrize("other", [
    fill("a", "a:1", "b:1", 5000, 8, "r", seq=9),
    fill("a", "a:1", "b:1", 5000, 7, "r'", seq=9),
    fill("a", "a:1", "b:2", 5000, 7, "r", seq=9),
    fill("a", "a:1", "b:1", 5000, 7, "r", seq=10),
], ids=["qty", "request", "taker", "event-id"])
def test_hash_differs_when_a_fill_differs(other):
    orders = [order("a", 1, SELL, 5000, 100), order("b", 1, BUY, 5100, 60), order("b", 2, BUY, 5100, 60)]
    same = fill("a", "a:1", "b:1", 5000, 7, "r", seq=9)
    assert ledger(*orders, same).state_hash() != ledger(*orders, other).state_hash()


def test_hash_differs_when_cancelled():
    placed = order("a", 1, SELL, 5000, 100)
    assert ledger(placed).state_hash() != ledger(placed, cancel("a", "a:1")).state_hash()


# --- commutativity ------------------------------------------------------------


@given(st.data())
def test_fills_and_cancel_of_one_order_commute(data):
    qty = data.draw(st.integers(1, 50))
    parts = data.draw(st.lists(st.integers(1, 10), min_size=1, max_size=4).filter(lambda p: sum(p) <= qty))
    maker = order("m", 1, SELL, 5000, qty)
    takers = [order("t", i + 1, BUY, 5000 + i, part + data.draw(st.integers(0, 3))) for i, part in enumerate(parts)]
    closes = [fill("m", "m:1", f"t:{i + 1}", 5000, part, f"t.{i}") for i, part in enumerate(parts)]
    closes.append(cancel("m", "m:1"))
    reference = snapshot(ledger(maker, *takers, *closes))
    shuffled = data.draw(st.permutations(closes))
    led = ledger(maker, *takers, *shuffled)  # _check() after each step
    assert snapshot(led) == reference
    assert led.orders["m:1"].filled == sum(parts) and led.orders["m:1"].open == 0


@given(st.data())
def test_random_valid_histories_keep_invariants(data):
    led = Ledger()
    counter = {"a": 0, "b": 0}
    for _ in range(data.draw(st.integers(1, 30))):
        live = [s for s in led.orders.values() if s.open > 0]
        makers = [s for s in live if s.rests]
        pick = data.draw(st.sampled_from(["order", "cancel", "fill"] if makers else ["order"]))
        if pick == "order":
            origin = data.draw(st.sampled_from("ab"))
            counter[origin] += 1
            tif = data.draw(st.sampled_from(Tif))
            price = None if tif is Tif.IOC and data.draw(st.booleans()) else data.draw(st.integers(1, 5))
            event = order(origin, counter[origin], data.draw(st.sampled_from(Side)), price, data.draw(st.integers(1, 9)), tif)
        elif pick == "cancel":
            target = data.draw(st.sampled_from(sorted(s.id for s in live)))
            event = cancel(led.orders[target].owner, target)
        else:
            maker = data.draw(st.sampled_from(sorted(makers, key=lambda s: s.id)))
            takers = [s for s in live if s.side is not maker.side and
                      (s.price is None or (s.price >= maker.price if s.side is BUY else s.price <= maker.price))]
            if not takers:
                continue
            taker = data.draw(st.sampled_from(sorted(takers, key=lambda s: s.id)))
            qty = data.draw(st.integers(1, min(maker.open, taker.open)))
            event = fill(maker.owner, maker.id, taker.id, maker.price, qty, f"req{len(led.fills)}")
        led.apply(event)
        led._check()
