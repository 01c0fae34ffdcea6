"""Tests for zmqex.core.takes: the taker's reservations while a take is settled."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zmqex.core.takes import Reservation, Reservations


def take(request="a.1", order="a:1", maker="b:1", qty=10) -> Reservation:
    return Reservation(request, order, maker, qty, sent_at=0)


def opened(*takes: Reservation) -> Reservations:
    res = Reservations()
    for t in takes:
        res.open(t)
    return res


def settled(res: Reservations, order: str = "a:1") -> None:
    assert res.reserved(order) == 0
    assert res.in_flight(order) is None
    assert res._asked == {}
    assert len(res) == 0 and list(res) == []


# --- one take ------------------------------------------------------------------


def test_open_reserves_the_asked_quantity():
    t = take(qty=10)
    res = opened(t)
    assert res.reserved("a:1") == 10
    assert res.in_flight("a:1") is t
    assert res.get("a.1") is t and len(res) == 1 and list(res) == [t]
    assert res.reserved("a:2") == 0 and res.in_flight("a:2") is None


def test_zero_grant_releases_everything():
    t = take(qty=10)
    res = opened(t)
    res.answer(t, 0)
    settled(res)
    assert res.get("a.1") is None


def test_full_grant_answer_then_fill():
    t = take(qty=10)
    res = opened(t)
    res.answer(t, 10)
    assert res.reserved("a:1") == 10  # held until the fill is in the ledger
    assert res.in_flight("a:1") is None  # but no longer waiting for an answer
    assert res.get("a.1") is t
    res.fill_applied(t, 10)
    settled(res)


def test_partial_grant_answer_then_fill():
    t = take(qty=10)
    res = opened(t)
    res.answer(t, 4)
    assert res.reserved("a:1") == 4
    res.fill_applied(t, 4)
    settled(res)


def test_partial_grant_fill_then_answer():
    t = take(qty=10)
    res = opened(t)
    res.fill_applied(t, 4)
    assert res.reserved("a:1") == 6  # the fill counts as filled; the rest still waits
    assert res.in_flight("a:1") is t
    res.answer(t, 4)
    settled(res)


def test_full_grant_fill_then_answer():
    t = take(qty=10)
    res = opened(t)
    res.fill_applied(t, 10)
    assert res.reserved("a:1") == 0
    assert res.in_flight("a:1") is t and len(res) == 1  # not settled until answered
    res.answer(t, 10)
    settled(res)


def test_second_answer_is_ignored():
    t = take(qty=10)
    res = opened(t)
    res.answer(t, 3)
    res.answer(t, 10)
    assert t.granted == 3 and res.reserved("a:1") == 3
    res.fill_applied(t, 3)
    settled(res)


def test_second_open_for_the_same_order_raises():
    t = take()
    res = opened(t)
    with pytest.raises(ValueError):
        res.open(take(request="a.2", maker="c:1", qty=5))
    assert res.reserved("a:1") == 10 and res.in_flight("a:1") is t and len(res) == 1


def test_next_take_may_open_once_the_first_is_answered():
    first, second = take("a.1", qty=10), take("a.2", maker="c:1", qty=5)
    res = opened(first)
    res.answer(first, 7)
    res.open(second)
    assert res.reserved("a:1") == 12
    assert res.in_flight("a:1") is second
    res.fill_applied(second, 5)
    res.fill_applied(first, 7)
    assert res.reserved("a:1") == 0 and res.in_flight("a:1") is second
    res.answer(second, 5)
    settled(res)


def test_orders_are_accounted_separately():
    mine, other = take("a.1", "a:1", qty=10), take("a.2", "a:2", qty=3)
    res = opened(mine, other)
    res.answer(mine, 0)
    assert res.reserved("a:1") == 0 and res.reserved("a:2") == 3
    assert res.in_flight("a:2") is other


def test_asked_sums_every_order_s_takes_on_one_maker():
    first, second = take("a.1", "a:1", maker="b:1", qty=10), take("a.2", "a:2", maker="b:1", qty=3)
    res = opened(first, second, take("a.3", "a:3", maker="b:2", qty=1))
    assert res.asked("b:1") == 13 and res.asked("b:2") == 1 and res.asked("b:3") == 0
    res.answer(first, 4)  # the refused 6 is released at once; the granted 4 until its fill is here
    assert res.asked("b:1") == 7
    res.fill_applied(first, 4)
    assert res.asked("b:1") == 3
    res.answer(second, 0)
    assert res.asked("b:1") == 0


# --- property ------------------------------------------------------------------


@given(st.data())
def test_reservations_settle_to_zero_in_any_interleaving(data):
    """Takes of one order, one in flight at a time, answers and fills interleaved in any order.

    Throughout, filled + reserved equals what was asked less what was refused,
    so the order can never be over-promised; at the end nothing is reserved.
    """
    grants = data.draw(st.lists(st.tuples(st.integers(1, 20), st.integers(0, 20)), min_size=1, max_size=4))
    takes = [take(f"a.{i}", maker=f"m:{i}", qty=qty) for i, (qty, _) in enumerate(grants)]
    granted = {t.request: min(g, t.qty) for t, (_, g) in zip(takes, grants)}
    res, filled, promised = Reservations(), 0, 0
    todo = list(takes)
    unanswered: list[Reservation] = []
    unfilled = [t for t in takes if granted[t.request]]  # a grant's fill may land before its answer
    started = set()
    while todo or unanswered or unfilled:
        steps = [("answer", t) for t in unanswered] + [("fill", t) for t in unfilled if t.request in started]
        if todo and not unanswered:
            steps.append(("open", todo[0]))
        step, t = data.draw(st.sampled_from(steps))
        if step == "open":
            assert res.in_flight("a:1") is None
            res.open(todo.pop(0))
            started.add(t.request)
            unanswered.append(t)
            promised += t.qty
        elif step == "answer":
            res.answer(t, granted[t.request])
            unanswered.remove(t)
            promised -= t.qty - granted[t.request]  # the refused rest is released at once
        else:
            res.fill_applied(t, granted[t.request])
            unfilled.remove(t)
            filled += granted[t.request]
        assert filled + res.reserved("a:1") == promised
        assert res.in_flight("a:1") is (unanswered[0] if unanswered else None)
        assert len(res) == len({u.request for u in unanswered + unfilled if u.request in started})
    settled(res)
    assert filled == promised == sum(granted.values())
