"""zmqex.core.traders: who placed each own order, and open counts per trader."""

from __future__ import annotations

from zmqex.core.events import Side, Tif
from tests.checked import Network


def test_open_counts_follow_places_fills_cancels_and_restarts() -> None:
    net = Network(["a", "b"])
    first = net.place("a", Side.SELL, 5, 100, trader="alice")
    net.place("a", Side.SELL, 5, 101, trader="alice")
    net.place("a", Side.SELL, 5, 102)  # unnamed
    a = net.replica("a")
    assert (a.open_orders("alice"), a.open_orders(""), a.open_orders()) == (2, 1, 3)
    net.place("b", Side.BUY, 5, 100)  # fills alice's first order
    net.settle()
    a = net.replica("a")
    assert (a.open_orders("alice"), a.open_orders()) == (1, 2)
    a.traders._check(a.ledger, "a")
    assert a.traders.may_cancel(first, "alice") and not a.traders.may_cancel(first, "bob")
    assert a.traders.may_cancel(first, "bob", operator=True)
    net.crash("a")
    net.restart("a")
    a = net.replica("a")
    assert a.traders.of[first] == "alice" and (a.open_orders("alice"), a.open_orders()) == (1, 2)
    a.traders._check(a.ledger, "a")


def test_a_trader_whose_orders_all_closed_leaves_no_count_behind() -> None:
    net = Network(["a"])
    oid = net.place("a", Side.BUY, 1, 100, Tif.GTC, trader="conn-01")
    net.replica("a").cancel(oid, trader="conn-01")
    a = net.replica("a")
    assert a.open_orders("conn-01") == 0 and a.traders._open_of == {}
