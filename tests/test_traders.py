"""zmqex.core.traders: who placed each own order, and open counts per trader."""

from __future__ import annotations

import pytest

from zmqex.core.events import Side, Tif
from zmqex.core.traders import Stp
from zmqex.errors import InvalidRequest
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


# --- client order ids ---------------------------------------------------------------------


def test_a_client_order_id_names_one_order_of_its_trader_across_restarts() -> None:
    net = Network(["a", "b"])
    oid = net.place("a", Side.SELL, 5, 100, trader="alice", client_order_id="sell-1")
    a = net.replica("a")
    assert a.client_order("alice", "sell-1") == oid and a.order_info(oid)["client_order_id"] == "sell-1"
    assert a.client_order("bob", "sell-1") is None  # ids are per trader
    with pytest.raises(InvalidRequest, match="taken"):
        net.place("a", Side.SELL, 5, 100, trader="alice", client_order_id="sell-1")
    other = net.place("a", Side.SELL, 5, 100, trader="bob", client_order_id="sell-1")
    assert other != oid
    net.crash("a")
    net.restart("a")
    a = net.replica("a")
    assert a.client_order("alice", "sell-1") == oid and a.client_order("bob", "sell-1") == other
    net.settle()
    assert net.replica("b").order_info(oid)["client_order_id"] == ""  # node-local: never in an event


# --- cancel all -----------------------------------------------------------------------------


def test_cancel_all_cancels_only_the_traders_orders_of_the_side_asked() -> None:
    net = Network(["a", "b"])
    s1 = net.place("a", Side.SELL, 5, 200, trader="alice")
    b1 = net.place("a", Side.BUY, 5, 100, trader="alice")
    s2 = net.place("a", Side.SELL, 5, 201, trader="alice")
    bob = net.place("a", Side.SELL, 5, 202, trader="bob")
    assert net.cancel_all("a", "alice", side=Side.SELL) == [s1, s2]
    assert net.replica("a").own_open_orders("alice") == [b1]
    assert net.cancel_all("a", "alice") == [b1] and net.cancel_all("a", "alice") == []
    assert net.replica("a").own_open_orders() == [bob]
    assert net.cancel_all("a", "ops", operator=True) == [bob]
    net.settle()
    for replica in net.live():
        assert all(replica.order_info(o)["reason"] == "user" for o in (s1, b1, s2, bob))


# --- self-trade prevention ------------------------------------------------------------------


@pytest.mark.parametrize("stp, newest, oldest", [
    (Stp.CANCEL_NEWEST, "cancelled", "open"),
    (Stp.CANCEL_OLDEST, "open", "cancelled"),
    (Stp.CANCEL_BOTH, "cancelled", "cancelled"),
])
def test_an_order_meeting_its_own_traders_order_does_not_trade(stp: Stp, newest: str, oldest: str) -> None:
    net = Network(["a", "b"])
    resting = net.place("a", Side.SELL, 5, 100, trader="alice")
    incoming = net.place("a", Side.BUY, 5, 100, trader="alice", stp=stp)
    net.settle()
    for replica in net.live():
        assert replica.ledger.fills == {}
        assert (replica.order_info(incoming)["status"], replica.order_info(resting)["status"]) == (newest, oldest)
        for oid in (incoming, resting):
            info = replica.order_info(oid)
            assert info["reason"] in (None, "self_trade")


def test_self_trade_prevention_lets_the_next_order_trade() -> None:
    net = Network(["a", "b"])
    own = net.place("a", Side.SELL, 5, 100, trader="alice")
    other = net.place("a", Side.SELL, 5, 101, trader="bob")
    buy = net.place("a", Side.BUY, 5, 101, trader="alice", stp=Stp.CANCEL_OLDEST)
    net.settle()
    a = net.replica("a")
    assert a.order_info(own)["reason"] == "self_trade"
    assert a.order_info(buy)["status"] == "filled" and a.order_info(other)["status"] == "filled"


def test_orders_of_different_or_unnamed_traders_trade_as_before() -> None:
    net = Network(["a"])
    sell = net.place("a", Side.SELL, 5, 100)
    net.place("a", Side.BUY, 5, 100)  # no trader named: no self-trade prevention
    assert net.replica("a").order_info(sell)["status"] == "filled"
