"""Tests for zmqex.core.clock: the vector-clock laws stated in the module docstring."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zmqex.core.clock import EMPTY, Order, VectorClock

NODES = st.sampled_from("abcde")
COUNTS = st.dictionaries(NODES, st.integers(0, 5))
clocks = COUNTS.map(VectorClock)

MIRROR = {
    Order.BEFORE: Order.AFTER,
    Order.AFTER: Order.BEFORE,
    Order.EQUAL: Order.EQUAL,
    Order.CONCURRENT: Order.CONCURRENT,
}


# --- merge -------------------------------------------------------------------


@given(clocks, clocks)
def test_merge_is_commutative(a, b):
    assert a.merge(b) == b.merge(a)


@given(clocks, clocks, clocks)
def test_merge_is_associative(a, b, c):
    assert a.merge(b).merge(c) == a.merge(b.merge(c))


@given(clocks)
def test_merge_is_idempotent(a):
    assert a.merge(a) == a


@given(clocks)
def test_merge_with_empty_is_identity(a):
    assert a.merge(EMPTY) == a
    assert EMPTY.merge(a) == a


@given(clocks, clocks)
def test_merge_dominates_both(a, b):
    m = a.merge(b)
    assert m.dominates(a)
    assert m.dominates(b)


@given(clocks, clocks, clocks)
def test_merge_is_least_upper_bound(a, b, c):
    if c.dominates(a) and c.dominates(b):
        assert c.dominates(a.merge(b))


@given(clocks, clocks)
def test_merge_is_entrywise_max(a, b):
    m = a.merge(b)
    for node in "abcde":
        assert m.get(node) == max(a.get(node), b.get(node))


def test_merge_accepts_plain_mapping():
    assert VectorClock({"a": 1}).merge({"a": 3, "b": 2}) == VectorClock({"a": 3, "b": 2})


# --- compare and dominates ---------------------------------------------------


@given(clocks, clocks)
def test_compare_is_antisymmetric(a, b):
    assert b.compare(a) == MIRROR[a.compare(b)]


@given(clocks)
def test_compare_with_self_is_equal(a):
    assert a.compare(a) == Order.EQUAL


@given(clocks, clocks)
def test_compare_equal_iff_clocks_equal(a, b):
    assert (a.compare(b) == Order.EQUAL) == (a == b)


@given(clocks, clocks)
def test_dominates_iff_after_or_equal(a, b):
    assert a.dominates(b) == (a.compare(b) in (Order.AFTER, Order.EQUAL))


@pytest.mark.parametrize(
    "a, b, order",
    [
        ({}, {}, Order.EQUAL),
        ({"a": 1}, {"a": 1}, Order.EQUAL),
        ({"a": 1}, {"a": 2}, Order.BEFORE),
        ({"a": 2, "b": 1}, {"a": 1}, Order.AFTER),
        ({"a": 1}, {"b": 1}, Order.CONCURRENT),
        ({"a": 2, "b": 1}, {"a": 1, "b": 2}, Order.CONCURRENT),
        ({}, {"c": 1}, Order.BEFORE),
    ],
)
def test_compare_examples(a, b, order):
    assert VectorClock(a).compare(VectorClock(b)) == order


# --- increment ---------------------------------------------------------------


@given(clocks, NODES)
def test_increment_is_strictly_after(a, node):
    b = a.increment(node)
    assert b.compare(a) == Order.AFTER
    assert a.compare(b) == Order.BEFORE


@given(clocks, NODES)
def test_increment_adds_one_to_total_and_entry(a, node):
    b = a.increment(node)
    assert b.total == a.total + 1
    assert b[node] == a.get(node) + 1
    assert {k: v for k, v in b.items() if k != node} == {k: v for k, v in a.items() if k != node}


@given(clocks, NODES)
def test_increment_equals_freshly_built_clock(a, node):
    b = a.increment(node)
    fresh = VectorClock(dict(b))
    assert b == fresh
    assert hash(b) == hash(fresh)
    assert b.total == fresh.total


def test_increment_leaves_original_unchanged():
    a = VectorClock({"a": 1})
    a.increment("a")
    a.increment("b")
    assert a == VectorClock({"a": 1})


# --- zero elision, mapping, hashing, total -----------------------------------


def test_zero_entry_is_elided():
    assert VectorClock({"a": 0}) == VectorClock()
    assert VectorClock({"a": 0}) == EMPTY
    assert len(VectorClock({"a": 0, "b": 1})) == 1
    assert "a" not in VectorClock({"a": 0})


@given(COUNTS)
def test_zero_entries_never_stored(counts):
    clock = VectorClock(counts)
    assert clock == VectorClock({k: v for k, v in counts.items() if v})
    assert 0 not in clock.values()


def test_with_entry_zero_removes_node():
    assert VectorClock({"a": 2}).with_entry("a", 0) == EMPTY


def test_missing_node_reads_as_zero_via_get():
    clock = VectorClock({"a": 1})
    assert clock.get("z") == 0
    assert "z" not in clock
    with pytest.raises(KeyError):
        clock["z"]


@given(COUNTS)
def test_equal_clocks_hash_equal(counts):
    forward = VectorClock(counts)
    backward = VectorClock(dict(reversed(list(counts.items()))))
    padded = VectorClock({**counts, **{n: 0 for n in "abcde" if n not in counts}})
    assert forward == backward == padded
    assert hash(forward) == hash(backward) == hash(padded)


@given(clocks, clocks)
def test_equal_implies_same_hash(a, b):
    if a == b:
        assert hash(a) == hash(b)


@given(clocks, clocks)
def test_clocks_work_as_set_members(a, b):
    assert len({a, b, a.merge(EMPTY)}) == (1 if a == b else 2)


@given(COUNTS)
def test_total_is_sum(counts):
    assert VectorClock(counts).total == sum(counts.values())


@given(clocks, clocks, NODES, st.integers(0, 5))
def test_total_is_sum_after_operations(a, b, node, n):
    for clock in (a.merge(b), a.increment(node), a.with_entry(node, n)):
        assert clock.total == sum(clock.values())


@given(clocks)
def test_items_sorted_is_sorted_by_node(a):
    items = a.items_sorted()
    assert items == sorted(a.items())
    assert [k for k, _ in items] == sorted(a)


def test_clock_is_immutable():
    clock = VectorClock({"a": 1})
    with pytest.raises((AttributeError, TypeError)):
        clock["a"] = 2  # type: ignore[index]
    with pytest.raises(AttributeError):
        clock.extra = 1  # type: ignore[attr-defined]


def test_constructor_copies_input():
    counts = {"a": 1}
    clock = VectorClock(counts)
    counts["a"] = 5
    assert clock["a"] == 1


# --- invalid entries ---------------------------------------------------------


@pytest.mark.parametrize("value", [-1, -5, 1.0, 1.5, "1", True, [1]])
def test_invalid_entry_raises_value_error(value):
    with pytest.raises(ValueError, match="'a'"):
        VectorClock({"a": value})


@pytest.mark.parametrize("value", [-1, 2.0, True])
def test_with_entry_validates(value):
    with pytest.raises(ValueError):
        VectorClock({"a": 1}).with_entry("b", value)


@pytest.mark.parametrize("value", [False, 0.0, None, ""])
def test_falsy_non_int_entry_raises_value_error(value):
    with pytest.raises(ValueError):
        VectorClock({"a": value})
