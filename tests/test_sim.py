"""The simulator's own contract: each fault does exactly what it says.

zmqex.sim.Network is the ground the replica tests stand on, so its steps are
pinned here: links are FIFO queues of encoded messages; deliver / drop /
duplicate / delay act on one message; partitions cut links both ways; a
crashed node keeps only its store; drain and settle bring the network to rest.
"""

from __future__ import annotations

import pytest

from zmqex.core import messages
from zmqex.core.clock import VectorClock
from zmqex.core.events import Side
from zmqex.core.messages import Gossip, Heartbeat
from zmqex.core.outputs import EventRecord, Outcome, TakeSent
from zmqex.sim import Network

BUY, SELL = Side.BUY, Side.SELL


def on_link(net: Network, src: str, dst: str) -> list:
    return [messages.decode(data) for data in net.links[(src, dst)]]


def gossiped(net: Network, src: str, dst: str) -> list[str]:
    """Order ids of the NewOrder gossip waiting on src->dst, oldest first."""
    return [e.order_id for m in on_link(net, src, dst) if isinstance(m, Gossip) for e in m.envelope.events]


def check(net: Network) -> None:
    for replica in net.live():
        replica.ledger._check()


def test_publish_reaches_every_peer_link_in_fifo_order() -> None:
    net = Network(["a", "b", "c"])
    first, second = net.place("a", SELL, 1, 100), net.place("a", SELL, 2, 101)
    assert gossiped(net, "a", "b") == gossiped(net, "a", "c") == [first, second]
    assert net.in_flight() == 4 and net.busy_links() == [("a", "b"), ("a", "c")]
    assert net.deliver("a", "b")
    assert list(net.replica("b").ledger.orders) == [first]
    assert net.acknowledged == {first, second}
    check(net)


def test_deliver_with_index_reorders() -> None:
    net = Network(["a", "b"])
    first, second = net.place("a", SELL, 1, 100), net.place("a", SELL, 2, 101)
    assert net.deliver("a", "b", index=1)  # second before first: held by causal delivery
    assert net.replica("b").ledger.orders == {} and not net.replica("b").quiet
    assert net.deliver("a", "b")
    assert list(net.replica("b").ledger.orders) == [first, second]
    assert net.deliver("a", "b") is False  # the link is empty
    check(net)


def test_drop_removes_one_message() -> None:
    net = Network(["a", "b"])
    first, second = net.place("a", SELL, 1, 100), net.place("a", SELL, 2, 101)
    net.drop("a", "b")
    assert gossiped(net, "a", "b") == [second]
    assert net.steps == 0  # dropping is not a delivery
    net.drop("a", "b")
    net.drop("a", "b")  # on an empty link: nothing happens
    assert net.links[("a", "b")] == []
    check(net)


def test_duplicate_appends_a_copy() -> None:
    net = Network(["a", "b"])
    first, second = net.place("a", SELL, 1, 100), net.place("a", SELL, 2, 101)
    net.duplicate("a", "b", index=0)
    assert gossiped(net, "a", "b") == [first, second, first]
    assert net.links[("a", "b")][0] == net.links[("a", "b")][2]
    net.drain()
    assert list(net.replica("b").ledger.orders) == [first, second]  # the copy is a no-op there
    check(net)


def test_delay_moves_one_message_to_the_back() -> None:
    net = Network(["a", "b"])
    ids = [net.place("a", SELL, 1, 100 + i) for i in range(3)]
    net.delay("a", "b", index=0)
    assert gossiped(net, "a", "b") == [ids[1], ids[2], ids[0]]
    check(net)


def test_partition_cuts_both_ways_and_heal_restores_delivery() -> None:
    net = Network(["a", "b", "c"])
    queued = net.place("a", SELL, 1, 100)  # on the links before the cut
    net.partition(["a"])
    assert net.deliver("a", "b") is False and gossiped(net, "a", "b") == [queued]  # held, not lost
    eaten = net.place("a", SELL, 2, 101)  # sent across the cut: gone
    net.place("b", BUY, 1, 50)
    assert gossiped(net, "a", "b") == [queued] and net.links[("b", "a")] == []
    assert net.busy_links() == [("b", "c")]  # b and c still talk
    net.drain()
    assert net.links[("a", "b")] != []  # drain leaves cut links alone
    net.heal()
    assert net.deliver("a", "b")
    assert queued in net.replica("b").ledger.orders and eaten not in net.replica("b").ledger.orders
    net.settle()  # repair fetches what the cut ate
    assert eaten in net.replica("b").ledger.orders
    check(net)


def test_crash_loses_volatile_state_and_keeps_the_store() -> None:
    net = Network(["a", "b"])
    net.place("a", SELL, 5, 100)
    net.drain()
    bid = net.place("b", BUY, 2, 90)
    before = net.replica("b")
    clock, state = before.clock, before.ledger.state_hash()
    net.crash("b")
    assert not net.nodes["b"].up and [r.id for r in net.live()] == ["a"]
    with pytest.raises(LookupError):
        net.replica("b")
    assert [type(r) for r in net.nodes["b"].store] == [EventRecord, EventRecord]
    net.restart("b")
    after = net.replica("b")
    assert after is not before
    assert after.clock == clock == VectorClock({"a": 1, "b": 1})
    assert after.ledger.state_hash() == state and after.order_info(bid)["status"] == "open"
    check(net)


def test_restart_of_a_live_node_does_nothing() -> None:
    net = Network(["a", "b"])
    replica = net.replica("a")
    net.restart("a")
    assert net.replica("a") is replica
    check(net)


def test_store_records_take_before_the_take_leaves() -> None:
    net = Network(["a", "b"])
    ask = net.place("a", SELL, 5, 100)
    net.drain()
    bid = net.place("b", BUY, 5, 100)
    assert TakeSent("b.1", bid, ask, 5) in net.nodes["b"].store
    # As a node sends them: what a peer waits on (the take) before the gossip (zmqex.core.schedule).
    assert [type(m).__name__ for m in on_link(net, "b", "a")] == ["Take", "Gossip"]
    check(net)


def test_crash_before_send_keeps_a_promise_and_what_it_depends_on() -> None:
    net = Network(["a", "b"])
    ask = net.place("a", SELL, 5, 100)
    net.drain()
    bid = net.place("b", BUY, 5, 100)
    before = len(net.nodes["a"].store)
    assert net.deliver("b", "a", crash_before_send=True)  # the take: a grants, commits, dies
    kept = net.nodes["a"].store[before:]
    # b's order (not a promise by itself) is committed with the fill and the answer that need it.
    assert [type(r) for r in kept] == [EventRecord, EventRecord, Outcome]
    assert [r.event.order_id for r in kept if isinstance(r, EventRecord)][0] == bid
    assert not net.nodes["a"].up and net.links[("a", "b")] == []  # nothing left a
    net.settle()  # b retries; a answers from its outcome
    assert net.replica("b").order_info(bid)["status"] == "filled"
    assert net.replica("a").order_info(ask)["status"] == "filled"
    check(net)


def test_crash_before_send_loses_records_that_back_no_promise() -> None:
    net = Network(["a", "b"])
    oid = net.place("a", SELL, 1, 100)
    assert net.deliver("a", "b", crash_before_send=True)  # a's event at b: committed after sending
    assert net.nodes["b"].store == [] and not net.nodes["b"].up
    net.restart("b")
    assert oid not in net.replica("b").ledger.orders
    net.settle()  # repair fetches it again
    assert oid in net.replica("b").ledger.orders
    check(net)


def test_message_to_a_crashed_node_is_lost() -> None:
    net = Network(["a", "b"])
    lost = net.place("a", SELL, 1, 100)
    net.crash("b")
    assert net.deliver("a", "b") is True  # taken off the link ...
    assert net.links[("a", "b")] == [] and net.steps == 1
    net.restart("b")
    assert lost not in net.replica("b").ledger.orders  # ... and never seen
    net.settle()
    assert lost in net.replica("b").ledger.orders  # until repair fetches it
    check(net)


def test_tick_advances_time_and_publishes_heartbeats() -> None:
    net = Network(["a", "b"])
    net.tick(250)
    assert net.now == 250 and net.replica("a").now == 250
    [hb] = on_link(net, "a", "b")
    assert isinstance(hb, Heartbeat) and hb.origin == "a" and hb.vc == VectorClock()
    net.tick(100)  # before the next heartbeat is due: nothing new
    assert len(net.links[("a", "b")]) == 1
    check(net)


def test_drain_empties_every_link() -> None:
    net = Network(["a", "b", "c"])
    for node, price in zip("abc", (100, 101, 102)):
        net.place(node, SELL, 1, price)
    net.tick(0)
    assert net.in_flight() == 12  # 3 orders and 3 heartbeats, each to 2 peers
    assert net.drain() >= 12
    assert net.in_flight() == 0 and net.busy_links() == []
    assert len({r.clock for r in net.live()}) == 1
    check(net)


def test_settle_heals_restarts_and_equalizes() -> None:
    net = Network(["a", "b", "c"])
    ask = net.place("a", SELL, 5, 100)
    net.partition(["c"])
    net.crash("b")
    bid = net.place("c", BUY, 5, 100)
    net.settle()
    assert net.cut == set() and all(n.up for n in net.nodes.values())
    replicas = net.live()
    assert len(replicas) == 3 and all(r.quiet for r in replicas)
    assert len({r.clock for r in replicas}) == 1
    assert len({r.ledger.state_hash() for r in replicas}) == 1
    assert net.replica("b").order_info(bid)["fills"][0]["maker"] == ask
    check(net)


def test_replies_are_collected_by_token() -> None:
    net = Network(["a", "b"])
    oid = net.place("a", SELL, 5, 100, token=("client", 7))
    assert net.replies[("client", 7)]["order_id"] == oid
    assert net.replies[("client", 7)]["status"] == "open"
    check(net)
