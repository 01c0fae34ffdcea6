"""zmqex.core.recovery: when a node that lost its history may create events again."""

from __future__ import annotations

from zmqex.core.clock import VectorClock
from zmqex.core.events import Side
from zmqex.core.recovery import Recovery
from tests.checked import Network


def test_done_only_when_every_member_heard_from_and_all_our_events_held() -> None:
    rec = Recovery("b", "it starts with an empty store")
    assert not rec.done(0, ["a", "c"], set())  # heard from nobody
    rec.heard("a", VectorClock({"a": 4, "b": 3, "d": 1}))
    assert rec.wanted == 3 and rec.waiting_for(["a", "c"], set()) == ["c", "d"]  # d: a holds its events
    rec.heard("c", VectorClock({"b": 5}))
    assert rec.waiting_for(["a", "c"], {"d"}) == []  # d was removed: never waited for
    assert not rec.done(4, ["a", "c"], {"d"}) and rec.done(5, ["a", "c"], {"d"})


def test_a_wiped_node_gets_its_orders_back_and_never_reuses_an_id_while_the_others_trade() -> None:
    net = Network(["a", "b", "c"])
    old = [net.place("a", Side.SELL, 5, 100 + i) for i in range(3)]
    net.settle()
    net.wipe("a")
    net.restart("a")
    a = net.replica("a")
    assert a.recovering and a.recovering_from == ["b", "c"]
    net.place("b", Side.BUY, 2, 101)  # b takes from a's order while a is getting its history back
    for _ in range(10):
        net.tick(500)
        net.drain()
    assert not a.recovering and a.counters["recoveries"] == 1
    assert a.clock.get("a") == 4  # its three orders, and its grant of b's take (answered once recovered)
    assert net.place("a", Side.SELL, 1, 200) == "a:5"
    net.settle()
    assert {r.ledger.state_hash() for r in net.live()} == {a.ledger.state_hash()}
    assert [a.order_info(o)["filled"] for o in old] == [2, 0, 0]
    assert all(r.counters["reused_event_ids"] == 0 for r in net.live())


def test_a_down_member_keeps_a_recovering_node_waiting() -> None:
    net = Network(["a", "b", "c"])
    net.place("a", Side.SELL, 5, 100)
    net.settle()
    net.crash("c")
    net.wipe("a")
    net.restart("a")
    for _ in range(10):
        net.tick(500)
        net.drain()
    assert net.replica("a").recovering_from == ["c"]  # c may hold events of a's that b lacks
    net.restart("c")
    net.settle()
    assert not net.replica("a").recovering


def test_an_order_with_an_expiry_that_comes_back_while_recovering_expires_once_the_node_has_it_all() -> None:
    net = Network(["a", "b", "c"])
    gtd = net.place("a", Side.SELL, 5, 100, "gtd", expire_at=net.now + 60_000)
    net.settle()
    net.crash("c")  # a cannot finish recovering while c may hold events of its
    net.wipe("a")
    net.restart("a")
    for _ in range(10):  # b gives a its order back (every step checked: a does not schedule it yet)
        net.tick(500)
        net.drain()
    assert net.replica("a").recovering and gtd in net.replica("a").ledger.orders
    net.restart("c")
    net.settle()
    net.tick(60_000)
    net.settle()
    assert {r.ledger.orders[gtd].status for r in net.live()} == {"expired"}
