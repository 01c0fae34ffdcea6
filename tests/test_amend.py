"""Replica.amend: a lower quantity keeps the order and its place; a new price or more takes a new place."""

from __future__ import annotations

import pytest

from zmqex.core.events import Reduce, Side, Tif
from zmqex.core.ledger import export, rebuild
from zmqex.errors import Busy, InvalidAmount, InvalidRequest, NotOwner, OrderClosed, Rejected
from tests.checked import Network

BUY, SELL = Side.BUY, Side.SELL


def test_a_lower_quantity_keeps_the_order_and_its_place_in_the_queue() -> None:
    net = Network(["a", "b"])
    first = net.place("a", SELL, 10, 100, trader="alice")
    second = net.place("a", SELL, 10, 100, trader="bob")
    net.settle()
    assert net.amend("a", first, qty=4, trader="alice") == first
    net.settle()
    for replica in net.live():
        info = replica.order_info(first)
        assert (info["qty"], info["open"], info["status"]) == (4, 4, "open")
    buy = net.place("b", BUY, 6, 100)
    net.settle()
    for replica in net.live():  # first is still first: it fills before second
        assert replica.order_info(first)["status"] == "filled" and replica.order_info(second)["filled"] == 2
        assert replica.order_info(buy)["status"] == "filled"


def test_a_new_price_replaces_the_order_under_the_same_client_order_id() -> None:
    net = Network(["a", "b"])
    old = net.place("a", SELL, 10, 105, trader="alice", client_order_id="s1")
    net.place("b", BUY, 3, 100)
    net.settle()
    new = net.amend("a", old, price=100, trader="alice")
    assert new != old
    net.settle()
    a = net.replica("a")
    assert a.client_order("alice", "s1") == new and a.order_info(new)["client_order_id"] == "s1"
    assert a.order_info(old)["client_order_id"] == "s1", "the replaced order still shows it: its cancel is traceable"
    for replica in net.live():
        assert replica.order_info(old)["reason"] == "amended"
        assert (replica.order_info(new)["filled"], replica.order_info(new)["open"]) == (3, 7)
    net.crash("a")
    net.restart("a")
    assert net.replica("a").client_order("alice", "s1") == new
    assert net.replica("a").order_info(old)["client_order_id"] == "s1"


def test_more_quantity_takes_a_new_place_for_what_is_left() -> None:
    net = Network(["a", "b"])
    old = net.place("a", SELL, 10, 100)
    net.place("b", BUY, 4, 100)
    net.settle()
    new = net.amend("a", old, qty=20)
    net.settle()
    info = net.replica("b").order_info(new)
    assert (info["qty"], info["open"]) == (16, 16)  # 20 in all, 4 of them filled as the old order


def test_amends_that_cannot_be_done_change_nothing() -> None:
    net = Network(["a", "b"])
    sell = net.place("a", SELL, 10, 100, trader="alice")
    net.place("b", BUY, 4, 100)
    net.settle()
    ioc = net.place("a", BUY, 1, 1, Tif.IOC)  # expired at once
    before = net.replica("a").ledger.state_hash()
    with pytest.raises(InvalidRequest, match="filled"):
        net.amend("a", sell, qty=4, trader="alice")  # nothing would be left open: cancel it instead
    with pytest.raises(NotOwner):
        net.amend("a", sell, qty=5, trader="bob")
    with pytest.raises(NotOwner):
        net.amend("b", sell, qty=5)
    with pytest.raises(InvalidAmount):
        net.amend("a", sell, qty=0, trader="alice")
    with pytest.raises(OrderClosed):
        net.amend("a", ioc, qty=1)
    assert net.replica("a").order_info(sell)["open"] == 6
    assert net.replica("a").ledger.orders[sell].qty == 10
    assert net.replica("a").ledger.state_hash() == before


def test_a_new_price_waits_while_the_order_is_taking() -> None:
    net = Network(["a", "b"])
    net.place("a", SELL, 5, 100)
    net.drain()
    buy = net.place("b", BUY, 5, 99)
    net.settle()
    taking = net.amend("b", buy, price=100)  # crosses now: it asks a for a fill
    with pytest.raises(Busy):
        net.amend("b", taking, price=101)
    net.settle()
    assert net.replica("b").order_info(taking)["status"] == "filled"


def test_a_post_only_amended_across_the_book_is_refused() -> None:
    net = Network(["a"])
    net.place("a", SELL, 5, 100)
    bid = net.place("a", BUY, 5, 90, Tif.POST_ONLY)
    with pytest.raises(Rejected, match="would cross"):
        net.amend("a", bid, price=100)
    assert net.replica("a").order_info(bid)["status"] == "open"


def test_a_snapshot_carries_a_lowered_quantity() -> None:
    net = Network(["a"])
    oid = net.place("a", SELL, 10, 100)
    net.amend("a", oid, qty=3)
    ledger = net.replica("a").ledger
    assert rebuild(export(ledger)).state_hash() == ledger.state_hash()
    assert rebuild(export(ledger)).orders[oid].qty == 3
    assert any(isinstance(e.body, Reduce) for e in net.replica("a").replication.log)
