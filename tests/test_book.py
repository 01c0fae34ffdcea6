"""Tests for zmqex.core.book: price levels, priority, depth, crossing, compaction."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from zmqex.core import book as book_module
from zmqex.core.book import Book
from zmqex.core.events import Side

BUY, SELL = Side.BUY, Side.SELL


def ids(orders) -> list[str]:
    return [o.order_id for o in orders]


def make(*orders: tuple[str, Side, int, tuple, int]) -> Book:
    b = Book()
    for order in orders:
        b.add(*order)
    b._check()
    return b


# --- add / remove / reduce ----------------------------------------------------


def test_empty_book():
    b = Book()
    assert len(b) == 0
    assert b.best_bid() is None and b.best_ask() is None
    assert not b.crossed()
    assert b.depth(BUY, 5) == [] and b.depth(SELL, 5) == []
    assert list(b.crossing(BUY, None)) == []
    assert list(b.crossed_orders()) == []


def test_add_then_get():
    b = make(("a:1", BUY, 100, (1, "a", 1), 5))
    assert len(b) == 1 and "a:1" in b
    r = b.get("a:1")
    assert (r.order_id, r.side, r.price, r.key, r.qty) == ("a:1", BUY, 100, (1, "a", 1), 5)
    assert b.get("a:2") is None and "a:2" not in b


def test_remove_returns_whether_it_rested():
    b = make(("a:1", BUY, 100, (1, "a", 1), 5))
    assert b.remove("a:1") is True
    assert b.remove("a:1") is False
    assert b.remove("never") is False
    assert len(b) == 0 and b.bids == {}  # the emptied level is gone
    b._check()


def test_reduce_partially_then_to_zero():
    b = make(("a:1", SELL, 100, (1, "a", 1), 5), ("a:2", SELL, 100, (2, "a", 2), 1))
    b.reduce("a:1", 2)
    assert b.get("a:1").qty == 3
    assert b.depth(SELL, 1) == [(100, 4, 2)]
    b.reduce("a:1", 3)
    assert "a:1" not in b
    assert b.depth(SELL, 1) == [(100, 1, 1)]
    b._check()


@pytest.mark.parametrize("qty", [0, -1])
def test_add_rejects_non_positive_quantity(qty):
    b = Book()
    with pytest.raises(ValueError):
        b.add("a:1", BUY, 100, (1, "a", 1), qty)
    assert len(b) == 0 and b.bids == {}


def test_add_rejects_duplicate_order_id():
    b = make(("a:1", BUY, 100, (1, "a", 1), 5))
    with pytest.raises(ValueError):
        b.add("a:1", SELL, 200, (2, "a", 1), 1)
    assert b.depth(BUY, 5) == [(100, 5, 1)] and b.asks == {}
    b._check()


@pytest.mark.parametrize("qty", [0, -1, 6])
def test_reduce_rejects_zero_negative_or_more_than_open(qty):
    b = make(("a:1", BUY, 100, (1, "a", 1), 5))
    with pytest.raises(ValueError):
        b.reduce("a:1", qty)
    assert b.get("a:1").qty == 5 and b.depth(BUY, 1) == [(100, 5, 1)]


def test_reduce_unknown_order_raises_key_error():
    with pytest.raises(KeyError):
        Book().reduce("a:1", 1)


def test_add_rejects_a_key_already_resting_at_the_level():
    b = make(("a:1", BUY, 100, (1, "a", 1), 3))
    with pytest.raises(ValueError):
        b.add("b:1", BUY, 100, (1, "a", 1), 4)


def test_readd_after_remove_yields_order_once():
    b = make(("a:1", BUY, 100, (1, "a", 1), 1), ("a:2", BUY, 100, (2, "a", 2), 3))
    b.remove("a:2")
    b.add("a:2", BUY, 100, (2, "a", 2), 3)
    assert ids(b.orders(BUY)) == ["a:1", "a:2"]


# --- best, crossed, depth -----------------------------------------------------


def test_best_prices_and_crossed():
    b = make(("b1", BUY, 99, (1, "a", 1), 1), ("b2", BUY, 101, (1, "a", 2), 1),
             ("s1", SELL, 105, (1, "a", 3), 1), ("s2", SELL, 103, (1, "a", 4), 1))
    assert (b.best_bid(), b.best_ask()) == (101, 103)
    assert not b.crossed()
    b.add("b3", BUY, 103, (1, "a", 5), 1)  # touching counts as crossed
    assert b.crossed()
    b.remove("b3")
    assert not b.crossed()


def test_depth_aggregates_levels_best_first():
    b = make(("b1", BUY, 99, (1, "a", 1), 2), ("b2", BUY, 101, (1, "a", 2), 3), ("b3", BUY, 99, (1, "a", 3), 4),
             ("s1", SELL, 105, (1, "a", 4), 1), ("s2", SELL, 103, (1, "a", 5), 6), ("s3", SELL, 105, (1, "a", 6), 7))
    assert b.depth(BUY, 10) == [(101, 3, 1), (99, 6, 2)]
    assert b.depth(SELL, 10) == [(103, 6, 1), (105, 8, 2)]
    assert b.depth(BUY, 1) == [(101, 3, 1)]
    assert b.depth(SELL, 0) == []


# --- priority and crossing ----------------------------------------------------


def test_priority_is_by_key_not_insertion_order():
    b = make(("late", BUY, 100, (9, "a", 5), 1), ("c", BUY, 100, (3, "c", 1), 1),
             ("b2", BUY, 100, (3, "b", 2), 1), ("b1", BUY, 100, (3, "b", 1), 1))
    assert ids(b.orders(BUY)) == ["b1", "b2", "c", "late"]


def test_crossing_best_price_then_priority_and_stops_at_limit():
    b = make(("s3", SELL, 103, (1, "a", 1), 1), ("s1b", SELL, 101, (5, "a", 2), 1),
             ("s1a", SELL, 101, (2, "b", 1), 1), ("s2", SELL, 102, (1, "c", 1), 1))
    assert ids(b.crossing(BUY, None)) == ["s1a", "s1b", "s2", "s3"]  # market: everything
    assert ids(b.crossing(BUY, 102)) == ["s1a", "s1b", "s2"]  # limit is inclusive
    assert ids(b.crossing(BUY, 100)) == []
    assert ids(b.crossing(SELL, None)) == []  # no bids


def test_crossing_for_a_seller_walks_bids_down():
    b = make(("b1", BUY, 99, (1, "a", 1), 1), ("b2", BUY, 101, (1, "a", 2), 1), ("b3", BUY, 100, (1, "a", 3), 1))
    assert ids(b.crossing(SELL, None)) == ["b2", "b3", "b1"]
    assert ids(b.crossing(SELL, 100)) == ["b2", "b3"]
    assert ids(b.crossing(SELL, 102)) == []


def test_crossed_orders_lists_the_overlap_only():
    b = make(("b1", BUY, 104, (1, "a", 1), 1), ("b2", BUY, 102, (1, "a", 2), 1), ("b3", BUY, 99, (1, "a", 3), 1),
             ("s1", SELL, 101, (1, "a", 4), 1), ("s2", SELL, 104, (1, "a", 5), 1), ("s3", SELL, 106, (1, "a", 6), 1))
    assert ids(b.crossed_orders()) == ["b1", "b2", "s1", "s2"]
    b.remove("b1")
    b.remove("b2")
    assert list(b.crossed_orders()) == []


# --- lazy deletion ------------------------------------------------------------


def test_compaction_shrinks_keys_and_keeps_order():
    n = 100
    b = make(*[(f"o{i}", BUY, 100, (n - i, "a", i), 1) for i in range(n)])  # keys reverse insertion
    level = b.bids[100]
    assert len(level.keys) == n
    for i in range(0, 80):
        b.remove(f"o{i}")
        b._check()
    assert len(level.keys) < n  # a rebuild dropped dead keys
    assert len(level.keys) == len(level.live) + level.dead
    assert level.dead <= book_module._COMPACT_MIN
    assert ids(b.orders(BUY)) == [f"o{i}" for i in range(n - 1, 79, -1)]
    assert b.depth(BUY, 1) == [(100, 20, 20)]


def test_head_skips_dead_keys_in_front_and_moves_back_for_an_earlier_key():
    b = make(*[(f"o{i}", BUY, 100, (10 + i, "a", i), 1) for i in range(6)])
    level = b.bids[100]
    b.remove("o0")
    b.remove("o2")
    assert level.head == 1  # o0 dead in front; o2 dead behind o1
    b.remove("o1")
    assert level.head == 3 and level.keys[level.head] == (13, "a", 3)  # past o1 and o2 at once
    b._check()
    b.add("o1", BUY, 100, (11, "a", 1), 5)  # back, its dead key still there: the head moves back to it
    assert level.head == 1
    b.add("x", BUY, 100, (1, "b", 0), 1)  # a peer's earlier key: first in line
    assert level.head == 0
    b._check()
    assert ids(b.orders(BUY)) == ["x", "o1", "o3", "o4", "o5"]
    assert ids(b.crossing(SELL, 100)) == ["x", "o1", "o3", "o4", "o5"]


def test_best_prices_are_kept_through_adds_and_removes():
    b = make(("b1", BUY, 100, (1, "a", 1), 1), ("b2", BUY, 101, (1, "a", 2), 1), ("s1", SELL, 105, (1, "a", 3), 1))
    assert (b.best_bid(), b.best_ask()) == (101, 105)
    b.remove("b2")
    assert b.best_bid() == 100
    b.reduce("b1", 1)
    assert b.best_bid() is None and b.best(BUY) is None
    assert b.crossing(SELL, None) == ()  # nothing to meet: no walk at all
    b.add("s2", SELL, 104, (2, "a", 4), 1)
    assert b.best_ask() == 104
    b._check()


# --- model-based --------------------------------------------------------------


class BookMachine(RuleBasedStateMachine):
    """Book against a dict of orders; compared on every observable after each step."""

    def __init__(self) -> None:
        super().__init__()
        self.book = Book()
        self.model: dict[str, tuple[Side, int, tuple, int]] = {}
        self.gone: dict[str, tuple[Side, int, tuple, int]] = {}  # removed whole, may come back
        self.n = 0

    def _new(self, side, price, total, origin, qty) -> None:
        self.n += 1
        oid, key = f"o{self.n}", (total, origin, self.n)
        self.book.add(oid, side, price, key, qty)
        self.model[oid] = (side, price, key, qty)

    @rule(side=st.sampled_from(Side), price=st.integers(1, 5), total=st.integers(0, 20),
          origin=st.sampled_from("abc"), qty=st.integers(1, 10))
    def add(self, side, price, total, origin, qty):
        self._new(side, price, total, origin, qty)

    @rule(side=st.sampled_from(Side), price=st.integers(1, 5), n=st.integers(0, 45), data=st.data())
    def add_many(self, side, price, n, data):
        for total in data.draw(st.lists(st.integers(0, 20), min_size=n, max_size=n)):
            self._new(side, price, total, "a", 1)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def remove(self, data):
        oid = data.draw(st.sampled_from(sorted(self.model)))
        assert self.book.remove(oid) is True
        self.gone[oid] = self.model.pop(oid)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def remove_most_of_a_level(self, data):
        side, price, _, _ = self.model[data.draw(st.sampled_from(sorted(self.model)))]
        at_level = sorted(o for o, (s, p, _, _) in self.model.items() if (s, p) == (side, price))
        keep = data.draw(st.integers(0, 3))
        for oid in data.draw(st.permutations(at_level))[keep:]:
            assert self.book.remove(oid) is True
            del self.model[oid]

    @precondition(lambda self: self.gone)
    @rule(data=st.data())
    def add_back(self, data):
        """A removed order comes back with its key (its dead key may still be in the level)."""
        oid = data.draw(st.sampled_from(sorted(self.gone)))
        side, price, key, qty = self.gone.pop(oid)
        self.book.add(oid, side, price, key, qty)
        self.model[oid] = (side, price, key, qty)

    @rule(oid=st.sampled_from(["nope", "o0"]))
    def remove_unknown(self, oid):
        assert self.book.remove(oid) is False

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def reduce(self, data):
        oid = data.draw(st.sampled_from(sorted(self.model)))
        side, price, key, qty = self.model[oid]
        by = data.draw(st.integers(1, qty))
        self.book.reduce(oid, by)
        if by == qty:
            del self.model[oid]
        else:
            self.model[oid] = (side, price, key, qty - by)

    # the model's view

    def expected(self, side, limit=None, taker=None):
        rows = [(oid, p, k, q) for oid, (s, p, k, q) in self.model.items() if s is side]
        if limit is not None:
            rows = [r for r in rows if (r[1] <= limit if taker is BUY else r[1] >= limit)]
        rows.sort(key=lambda r: (-r[1] if side is BUY else r[1], r[2]))
        return [(oid, q) for oid, _, _, q in rows]

    def expected_depth(self, side):
        out: dict[int, list[int]] = {}
        for oid, qty in self.expected(side):
            row = out.setdefault(self.model[oid][1], [0, 0])
            row[0] += qty
            row[1] += 1
        return [(p, t, c) for p, (t, c) in out.items()]

    @invariant()
    def internal_invariants_hold(self):
        self.book._check()
        for levels in (self.book.bids, self.book.asks):
            for level in levels.values():
                assert len(level.keys) == len(level.live) + level.dead

    @invariant()
    def agrees_with_model(self):
        b = self.book
        assert len(b) == len(self.model)
        for side in Side:
            assert [(r.order_id, r.qty) for r in b.orders(side)] == self.expected(side)
            assert b.depth(side, 99) == self.expected_depth(side)
            assert b.depth(side, 2) == self.expected_depth(side)[:2]
            depth = self.expected_depth(side)
            assert b.best(side) == (depth[0][0] if depth else None)
            for limit in (None, 0, 2, 3, 4, 6):
                got = [(r.order_id, r.qty) for r in b.crossing(side, limit)]
                assert got == self.expected(side.opposite, limit, side)
                if limit is not None:
                    for after in ((5, "b", 0), (0, "a", 0), (30, "a", 0)):
                        later = [(r.order_id, r.qty) for r in b.crossing_after(side, limit, after)]
                        assert later == [(o, q) for o, q in got if self.model[o][2] > after]
        bid, ask = b.best_bid(), b.best_ask()
        crossed = bid is not None and ask is not None and bid >= ask
        assert b.crossed() == crossed
        want = (self.expected(BUY, ask, SELL) + self.expected(SELL, bid, BUY)) if crossed else []
        assert [(r.order_id, r.qty) for r in b.crossed_orders()] == want


TestBookMachine = BookMachine.TestCase
