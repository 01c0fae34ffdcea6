"""The replica's rules, one deterministic scenario each.

tests/test_convergence.py throws random faults at many replicas; these tests
pin each rule of the README's "The rules" by name, with concrete ids, quantities,
statuses and reasons.  Scenarios that need more than one node run through
zmqex.sim.Network, which lets a test deliver, drop, duplicate or inject one
message at a time.

Conventions: prices are cents, quantities satoshis; order ids are "node:seq",
take request ids "node.n".
"""

from __future__ import annotations

import pytest

from zmqex.core import messages
from zmqex.core.clock import VectorClock
from zmqex.core.events import Cancel, CancelReason, Event, NewOrder, Side, Tif
from zmqex.core.messages import Gossip, SyncReply, SyncRequest, Take, TakeReply
from zmqex.core.ledger import export, rebuild
from zmqex.core.outputs import OrderTrader, Outcome, PeerChanged, Persist, Reply, Send, TakeSent, TakeSettled
from zmqex.core.replica import Config, Replica
from zmqex.errors import Busy, Forged, InvalidAmount, InvalidRequest, NotOwner, OrderClosed, Rejected, UnknownOrder
from tests.checked import Network
from zmqex import sim

BUY, SELL = Side.BUY, Side.SELL
GTC, IOC, POST = Tif.GTC, Tif.IOC, Tif.POST_ONLY
CFG = Config()

# --- helpers ---------------------------------------------------------------------------


def on_link(net: Network, src: str, dst: str) -> list:
    """The messages waiting on link src->dst, decoded, oldest first."""
    return [messages.decode(data) for data in net.links[(src, dst)]]


def takes_on(net: Network, src: str, dst: str) -> list[Take]:
    return [m for m in on_link(net, src, dst) if isinstance(m, Take)]


def replies_on(net: Network, src: str, dst: str) -> list[TakeReply]:
    return [m for m in on_link(net, src, dst) if isinstance(m, TakeReply)]


def deliver_all(net: Network, src: str, dst: str) -> None:
    """Deliver everything waiting on src->dst, and nothing else."""
    while net.deliver(src, dst):
        pass


def inject(net: Network, src: str, dst: str, msg: messages.Message) -> None:
    """Deliver ``msg`` to ``dst`` as if ``src`` had sent it (through the codec)."""
    net.links[(src, dst)].insert(0, messages.encode(msg))
    assert net.deliver(src, dst)


def record(net: Network) -> list[tuple[str, object]]:
    """From now on, every output any replica hands the simulator, as (node, output)."""
    log: list[tuple[str, object]] = []
    carry = net._carry_out

    def carry_and_log(node, outputs):
        log.extend((node, out) for out in outputs)
        carry(node, outputs)

    net._carry_out = carry_and_log  # type: ignore[method-assign]
    return log


def fills(replica: Replica) -> list[tuple[str, str, int, int, str]]:
    """(maker, taker, price, qty, request) of every fill, in the order this replica applied them."""
    return [(f.body.maker, f.body.taker, f.body.price, f.body.qty, f.body.request)
            for f in replica.ledger.fills.values()]


def status(net: Network, oid: str, node: str | None = None) -> tuple[str, int, int]:
    """(status, filled, open) of ``oid`` as ``node`` (default: its owner) sees it."""
    info = net.replica(node or oid.split(":")[0]).order_info(oid)
    return info["status"], info["filled"], info["open"]


def check(net: Network) -> None:
    for replica in net.live():
        replica.ledger._check()


def converged(net: Network) -> None:
    """Settle, then every replica is sound, identical and uncrossed."""
    net.settle()
    check(net)
    replicas = net.live()
    assert len({r.ledger.state_hash() for r in replicas}) == 1
    assert len({r.clock for r in replicas}) == 1
    assert not any(r.ledger.book.crossed() for r in replicas)


def resting_sell(ids=("a", "b"), qty=5, price=100, **kw) -> tuple[Network, str]:
    """A network where a's sell of ``qty`` at ``price`` has reached every node."""
    net = Network(ids, **kw)
    oid = net.place("a", SELL, qty, price)
    net.drain()
    return net, oid


# --- matching ----------------------------------------------------------------------------


def test_taker_fill_at_makers_price() -> None:
    net, ask = resting_sell(price=100)
    bid = net.place("b", BUY, 5, 101, token="t1")
    assert [t.maker for t in takes_on(net, "b", "a")] == [ask]
    net.drain()
    for node in "ab":
        assert fills(net.replica(node)) == [(ask, bid, 100, 5, "b.1")]
        assert status(net, ask, node) == ("filled", 5, 0)
        assert status(net, bid, node) == ("filled", 5, 0)
    assert net.replies["t1"]["status"] == "filled"
    assert net.replies["t1"]["fills"][0]["price"] == 100
    converged(net)


def test_price_priority_then_priority_key() -> None:
    net = Network(["a", "b", "c"])
    first_101 = net.place("a", SELL, 5, 101)
    net.drain()
    second_101 = net.place("b", SELL, 5, 101)  # same price, later key
    net.drain()
    best_100 = net.place("a", SELL, 5, 100)  # latest of all, but the best price
    net.drain()
    bid = net.place("c", BUY, 12, 101, token="t")
    net.drain()
    assert fills(net.replica("c")) == [
        (best_100, bid, 100, 5, "c.1"), (first_101, bid, 101, 5, "c.2"), (second_101, bid, 101, 2, "c.3"),
    ]
    assert net.replies["t"]["status"] == "filled"
    assert status(net, second_101) == ("partial", 2, 3)
    converged(net)


@pytest.mark.parametrize("tif, loser_status", [(GTC, "open"), (IOC, "expired")])
def test_racing_takers_one_maker_owner_serializes(tif: Tif, loser_status: str) -> None:
    net, ask = resting_sell(["a", "b", "c"], qty=10)
    winner = net.place("b", BUY, 10, 100, tif, token="b")
    loser = net.place("c", BUY, 10, 100, tif, token="c")
    for src in "bc":  # the maker's owner hears b's order and take first, then c's
        net.deliver(src, "a")
        net.deliver(src, "a")
    assert [(r.request, r.granted, r.reason) for r in replies_on(net, "a", "b")] == [("b.1", 10, "filled")]
    assert [(r.request, r.granted, r.reason) for r in replies_on(net, "a", "c")] == [("c.1", 0, "closed")]
    net.drain()
    assert sum(f[3] for f in fills(net.replica("a"))) == 10
    assert status(net, winner) == ("filled", 10, 0)
    assert status(net, loser) == (loser_status, 0, 10 if tif is GTC else 0)
    assert net.replies["c"]["status"] == loser_status
    assert (loser in net.replica("a").ledger.book) == (tif is GTC)
    converged(net)


def test_racing_takers_split_what_is_open() -> None:
    net, ask = resting_sell(["a", "b", "c"], qty=10)
    first = net.place("b", BUY, 6, 100)
    second = net.place("c", BUY, 6, 100)
    for src in "bc":
        net.deliver(src, "a")
        net.deliver(src, "a")
    assert [(r.granted, r.reason) for r in replies_on(net, "a", "c")] == [(4, "filled")]
    net.drain()
    assert status(net, first) == ("filled", 6, 0)
    assert status(net, second) == ("partial", 4, 2)
    assert status(net, ask) == ("filled", 10, 0)
    converged(net)


def test_one_node_s_concurrent_takers_ask_a_maker_for_no_more_than_it_has() -> None:
    net, ask = resting_sell(qty=8)
    first = net.place("b", BUY, 5, 100)
    second = net.place("b", BUY, 5, 100)
    third = net.place("b", BUY, 5, 100)
    # Asking for all of it three times over would only get three answers of which two
    # say "closed": b asks once for 5 and once for the 3 that are left.
    assert [(t.taker.order_id, t.qty) for t in takes_on(net, "b", "a")] == [(first, 5), (second, 3)]
    net.drain()
    assert [status(net, oid) for oid in (first, second, third)] == [
        ("filled", 5, 0), ("partial", 3, 2), ("open", 0, 5)]
    assert status(net, ask) == ("filled", 8, 0)
    assert net.replica("b").counters["takes_answered_closed"] == 0
    converged(net)


def test_a_maker_answered_closed_is_asked_by_none_of_our_orders() -> None:
    net, ask = resting_sell(["a", "b", "c"], qty=5)
    net.place("c", BUY, 5, 100)
    net.deliver("c", "a")
    net.deliver("c", "a")  # a grants all of it to c
    assert [type(m) for m in on_link(net, "a", "b")] == [Gossip]
    net.drop("a", "b")  # b does not hear of that fill for now
    first = net.place("b", BUY, 5, 100)
    deliver_all(net, "b", "a")
    deliver_all(net, "a", "b")  # "closed"
    assert net.replica("b").order_info(ask)["open"] == 5  # as far as b's ledger knows
    second = net.place("b", BUY, 5, 100)
    assert takes_on(net, "b", "a") == []  # its owner said it is closed: nobody here asks again
    net.settle()  # repair brings the fill
    assert status(net, first)[0] == status(net, second)[0] == "open"
    converged(net)


def maker_taking_itself():
    """x at a is all reserved (a is asking c for z) when b's take on x arrives."""
    net = Network(["a", "b", "c"])
    z = net.place("c", SELL, 5, 100)
    net.drain()
    x = net.place("a", BUY, 5, 100)  # takes z: all of x is reserved while that is in flight
    net.cancel("c", z)  # ... and that take will come back closed
    net.deliver("a", "b")
    y = net.place("b", SELL, 5, 100, token="y")  # later than x: b asks a for x
    net.deliver("b", "a")
    net.deliver("b", "a")
    return net, x, y


def test_a_take_on_a_reserved_maker_waits_for_the_reservation_to_settle() -> None:
    net, x, y = maker_taking_itself()
    assert replies_on(net, "a", "b") == []  # held, not refused
    net.drain()  # a's take on z comes back closed, so x is free again: b's take is granted
    assert fills(net.replica("b")) == [(x, y, 100, 5, "b.1")]
    assert net.replies["y"]["status"] == "filled"
    converged(net)


def test_a_held_take_is_answered_busy_after_retry_ms() -> None:
    net, x, y = maker_taking_itself()
    net.links[("a", "c")].clear()  # a's take on z is lost: x stays reserved
    net.tick(CFG.retry_ms)
    assert replies_on(net, "a", "b") == [TakeReply("b.1", x, 0, "busy", None)]
    converged(net)  # a retries its take on z, the crossing pair trades in the end
    assert [f[:4] for f in fills(net.replica("b"))] == [(x, y, 100, 5)]


def test_a_take_answered_busy_is_answered_busy_again_even_when_the_maker_has_room() -> None:
    net, x, y = maker_taking_itself()
    net.links[("a", "c")].clear()  # a's take on z is lost: x stays reserved
    net.tick(CFG.retry_ms)  # b's take is answered busy; a asks c for z again
    deliver_all(net, "a", "c")
    deliver_all(net, "c", "a")  # z is closed: x is free now
    a = net.replica("a")
    assert a.order_info(x)["open"] == 5 and a.order_info(x)["pending"] == 0
    again = Take("b.1", x, net.replica("b").ledger.orders[y].event, 5)
    inject(net, "b", "a", again)  # the same request again: the same answer, not a second judgement
    assert replies_on(net, "a", "b") == [TakeReply("b.1", x, 0, "busy", None)] * 2
    converged(net)


# --- idempotency ----------------------------------------------------------------------------


def test_duplicated_take_fills_once() -> None:
    net, ask = resting_sell()
    bid = net.place("b", BUY, 5, 100)
    net.duplicate("b", "a", index=0)  # the link holds: take, gossip(order), take
    assert [t.request for t in takes_on(net, "b", "a")] == ["b.1", "b.1"]
    net.drain()
    assert fills(net.replica("a")) == fills(net.replica("b")) == [(ask, bid, 100, 5, "b.1")]
    assert status(net, bid) == ("filled", 5, 0)
    converged(net)


def test_retried_take_after_lost_reply_gets_stored_outcome() -> None:
    net, ask = resting_sell()
    bid = net.place("b", BUY, 5, 100, token="t")
    net.deliver("b", "a")  # the order
    net.deliver("b", "a")  # the take: a grants
    first = replies_on(net, "a", "b")
    net.links[("a", "b")].clear()  # the fill's gossip and the reply are lost
    assert status(net, bid) == ("open", 0, 5) and net.replica("b").order_info(bid)["pending"] == 5
    net.tick(CFG.retry_ms)
    assert [t.request for t in takes_on(net, "b", "a")] == ["b.1"]  # same request id
    net.drain()
    assert replies_on(net, "a", "b") == []
    assert fills(net.replica("a")) == fills(net.replica("b")) == [(ask, bid, 100, 5, "b.1")]
    assert net.replies["t"]["status"] == "filled" and first[0].granted == 5
    converged(net)


# --- bad input from peers ---------------------------------------------------------------------


def test_forged_take_origin_differs_from_sender_is_invalid() -> None:
    net = Network(["a", "b", "c"])
    ask = net.place("a", SELL, 5, 100)
    cbid = net.place("c", BUY, 5, 101)
    c_event = net.replica("c").ledger.orders[cbid].event
    a = net.replica("a")
    before = (a.ledger.state_hash(), a.clock)
    inject(net, "b", "a", Take("b.1", ask, c_event, 5))  # b speaks for c's order
    assert replies_on(net, "a", "b") == [TakeReply("b.1", ask, 0, "invalid", None)]
    assert (a.ledger.state_hash(), a.clock) == before
    assert cbid not in a.ledger.orders
    check(net)


def test_forged_take_for_maker_not_owned_by_receiver_is_invalid() -> None:
    net = Network(["a", "b", "c"])
    net.place("a", SELL, 5, 100)
    cask = net.place("c", SELL, 5, 100)
    bid = net.place("b", BUY, 5, 101)
    b_event = net.replica("b").ledger.orders[bid].event
    a = net.replica("a")
    before = (a.ledger.state_hash(), a.clock)
    inject(net, "b", "a", Take("b.1", cask, b_event, 5))  # c's order, asked of a
    assert replies_on(net, "a", "b") == [TakeReply("b.1", cask, 0, "invalid", None)]
    assert (a.ledger.state_hash(), a.clock) == before
    check(net)


def test_forged_take_with_another_nodes_request_id_is_invalid() -> None:
    net, ask = resting_sell(["a", "b", "c"], qty=10)
    bid = net.place("b", BUY, 5, 100)
    net.deliver("b", "a", index=1)  # the gossip behind the take: a knows b's order
    a = net.replica("a")
    before = (a.ledger.state_hash(), a.clock)
    taker = net.replica("b").ledger.orders[bid].event
    inject(net, "b", "a", Take("c.1", ask, taker, 5))  # b uses a request id of c's
    assert replies_on(net, "a", "b") == [TakeReply("c.1", ask, 0, "invalid", None)]
    assert (a.ledger.state_hash(), a.clock) == before
    cbid = net.place("c", BUY, 5, 100)  # c's first take is c.1
    net.drain()
    assert status(net, cbid) == ("filled", 5, 0)
    converged(net)


def test_take_asking_more_than_the_taker_order_is_answered() -> None:
    net, ask = resting_sell(qty=10)
    bid = net.place("b", BUY, 5, 100)
    net.deliver("b", "a", index=1)  # the order's gossip, behind the take
    net.links[("b", "a")].clear()  # b's honest take, replaced by an oversized one
    taker = net.replica("b").ledger.orders[bid].event
    inject(net, "b", "a", Take("b.1", ask, taker, 8))
    assert replies_on(net, "a", "b") == [TakeReply("b.1", ask, 0, "invalid", None)]
    check(net)


def test_take_reply_from_wrong_sender_or_unknown_request_is_ignored() -> None:
    net, ask = resting_sell(["a", "b", "c"])
    bid = net.place("b", BUY, 5, 100)
    b = net.replica("b")
    log = record(net)
    inject(net, "c", "b", TakeReply("b.1", ask, 0, "closed", None))  # c does not own a:1
    inject(net, "a", "b", TakeReply("b.99", ask, 0, "closed", None))  # no such request
    assert b.order_info(bid)["pending"] == 5
    assert not any(isinstance(out, Persist) and isinstance(out.record, TakeSettled) for _, out in log)
    net.drain()
    assert fills(b) == [(ask, bid, 100, 5, "b.1")]
    converged(net)


def test_gossip_claiming_to_be_from_the_receiver_is_refused() -> None:
    net = Network(["a", "b"])
    b = net.replica("b")
    forged = Event("b", 1, VectorClock({"b": 1}), NewOrder(SELL, 100, 7, GTC))
    with pytest.raises(Forged):  # a node publishes only its own events
        inject(net, "a", "b", Gossip(forged))
    assert b.clock == VectorClock() and b.ledger.orders == {}
    own = net.place("b", SELL, 3, 200)
    assert own == "b:1" and b.ledger.orders["b:1"].qty == 3
    converged(net)
    assert net.replica("a").ledger.orders["b:1"].price == 200


# --- market, IOC, post-only ---------------------------------------------------------------------


def test_market_order_takes_what_crosses_and_expires_the_rest() -> None:
    net, ask = resting_sell(qty=5, price=100)
    mkt = net.place("b", BUY, 8, None, token="m")
    net.drain()
    assert fills(net.replica("b")) == [(ask, mkt, 100, 5, "b.1")]
    assert status(net, mkt) == ("expired", 5, 0)
    assert net.replies["m"]["status"] == "expired" and net.replies["m"]["tif"] == "ioc"
    assert mkt not in net.replica("b").ledger.book
    converged(net)


def test_market_order_on_empty_book_is_refused() -> None:
    net = Network(["a", "b"])
    with pytest.raises(Rejected, match="no bids"):  # nothing to protect its price against (test_tif.py)
        net.place("a", SELL, 8, None, token="m")
    assert net.replica("a").ledger.orders == {} and "m" not in net.replies
    converged(net)


def test_ioc_on_empty_book_expires_at_once() -> None:
    net = Network(["a", "b"])
    ioc = net.place("a", SELL, 8, 100, IOC, token="m")
    assert net.replies["m"]["status"] == "expired"  # before any delivery
    assert status(net, ioc) == ("expired", 0, 0)
    assert len(net.replica("a").ledger.book) == 0
    converged(net)


def test_ioc_never_rests() -> None:
    net, ask = resting_sell(qty=4, price=100)
    ioc = net.place("b", BUY, 10, 100, IOC, token="i")
    net.drain()
    assert status(net, ioc) == ("expired", 4, 0)
    lonely = net.place("b", BUY, 10, 99, IOC)  # nothing crosses 99
    assert status(net, lonely) == ("expired", 0, 0)
    assert len(net.replica("b").ledger.book) == 0
    converged(net)


def test_post_only_that_would_cross_is_rejected_and_emits_nothing() -> None:
    net, ask = resting_sell(price=100)
    b = net.replica("b")
    before = (b.clock, b.ledger.state_hash())
    with pytest.raises(Rejected):
        b.place(BUY, 5, 100, POST)
    assert b.take_outputs() == [] and (b.clock, b.ledger.state_hash()) == before
    ok = net.place("b", BUY, 5, 99, POST)  # below the ask: rests
    assert status(net, ok) == ("open", 0, 5)
    converged(net)


def test_post_only_needs_a_price() -> None:
    r = Replica("a")
    with pytest.raises(InvalidRequest):
        r.place(BUY, 5, None, POST)
    assert r.take_outputs() == [] and r.clock == VectorClock()
    r.ledger._check()


def test_post_only_crossed_later_by_concurrent_order_is_cancelled_would_cross() -> None:
    net = Network(["a", "b"])
    ask = net.place("a", SELL, 5, 100)  # key (1, "a", 1)
    post = net.place("b", BUY, 5, 101, POST)  # key (1, "b", 1): the later one
    converged(net)
    for r in net.live():
        assert r.ledger.orders[post].cancelled is CancelReason.WOULD_CROSS
        assert r.order_info(post)["status"] == "cancelled"
        assert r.order_info(ask)["status"] == "open"
        assert r.ledger.fills == {}


# --- cancel ----------------------------------------------------------------------------------------


def test_cancel_errors() -> None:
    net, ask = resting_sell()
    with pytest.raises(UnknownOrder):
        net.cancel("a", "a:99")
    with pytest.raises(NotOwner):
        net.cancel("b", ask)
    info = net.cancel("a", ask)
    assert info["status"] == "cancelled" and info["open"] == 0
    with pytest.raises(OrderClosed):
        net.cancel("a", ask)
    converged(net)
    assert net.replica("b").ledger.orders[ask].cancelled is CancelReason.USER


def test_cancel_while_take_in_flight_settles_the_grant() -> None:
    net, ask = resting_sell(qty=5)
    bid = net.place("b", BUY, 10, 100, token="t")
    info = net.cancel("b", bid)  # the take for 5 is still on the link
    assert (info["status"], info["open"], info["pending"], info["filled"]) == ("cancelled", 0, 5, 0)
    net.delay("b", "a", index=0)  # a hears the cancel before the take
    assert [type(m) for m in on_link(net, "b", "a")] == [Gossip, Gossip, Take]
    net.drain()
    assert fills(net.replica("b")) == [(ask, bid, 100, 5, "b.1")]
    assert status(net, bid) == ("cancelled", 5, 0)
    assert net.replica("b").order_info(bid)["pending"] == 0
    assert net.replies["t"]["filled"] == 5
    assert status(net, ask) == ("filled", 5, 0)
    converged(net)


# --- crossing rule --------------------------------------------------------------------------------


def test_concurrent_crossing_orders_later_key_takes() -> None:
    net = Network(["a", "b", "c"])
    ask = net.place("a", SELL, 5, 100)  # key (1, "a", 1)
    bid = net.place("b", BUY, 7, 101)  # key (1, "b", 1): b is the taker
    assert takes_on(net, "b", "a") == [] and takes_on(net, "a", "b") == []
    converged(net)
    for r in net.live():
        assert fills(r) == [(ask, bid, 100, 5, "b.1")]
        assert r.order_info(bid)["status"] == "partial" and r.order_info(ask)["status"] == "filled"
    assert net.replica("a").taker.requests == 0  # the earlier order's owner never asked


# --- liveness ---------------------------------------------------------------------------------------


def test_down_owner_orders_are_skipped_then_trade_after_restart() -> None:
    net, ask = resting_sell(qty=5)
    net.crash("a")
    log = record(net)
    for _ in range(CFG.peer_timeout_ms // CFG.heartbeat_ms):
        net.tick(CFG.heartbeat_ms)
    assert net.replica("b").is_up("a")  # exactly peer_timeout_ms: not yet
    net.tick(CFG.heartbeat_ms)
    assert ("b", PeerChanged("a", False)) in log and not net.replica("b").is_up("a")
    bid = net.place("b", BUY, 5, 100, token="t")
    assert net.replies["t"]["status"] == "open"  # rests instead of waiting
    assert takes_on(net, "b", "a") == []
    assert net.replica("b").order_info(ask)["available"] is False
    net.restart("a")
    converged(net)
    assert ("b", PeerChanged("a", True)) in log
    for r in net.live():
        assert fills(r) == [(ask, bid, 100, 5, "b.1")]


# --- repair -------------------------------------------------------------------------------------------


def test_heartbeat_repairs_lost_gossip() -> None:
    net = Network(["a", "b"])
    ids = [net.place("a", SELL, 1 + i, 100 + i) for i in range(3)]
    net.links[("a", "b")].clear()  # every gossip to b is lost
    assert net.replica("b").ledger.orders == {}
    net.tick(0)  # heartbeats
    net.deliver("a", "b")  # a's heartbeat: b sees a ahead
    assert SyncRequest not in [type(m) for m in on_link(net, "b", "a")]  # it may still come by gossip
    net.tick(CFG.repair_after_ms - 1)
    assert SyncRequest not in [type(m) for m in on_link(net, "b", "a")]
    net.tick(1)  # the gap outlived its grace period: ask
    assert [type(m) for m in on_link(net, "b", "a")][-1] is SyncRequest
    net.drain()
    b = net.replica("b")
    assert sorted(b.ledger.orders) == ids and b.clock == net.replica("a").clock
    converged(net)


def test_repair_pages_through_sync_page() -> None:
    net = Network(["a", "b"], config=Config(sync_page=2, repair_after_ms=0))
    ids = [net.place("a", SELL, 1, 100 + i) for i in range(2)]
    net.links[("a", "b")].clear()
    net.tick(0)
    net.deliver("a", "b")  # the heartbeat says a:2; b asks for a page of 2
    ids += [net.place("a", SELL, 1, 200 + i) for i in range(3)]
    net.links[("a", "b")].clear()  # b only hears of these by paging on
    pages = []
    while net.busy_links():  # no more heartbeats from here on
        for src, dst in net.busy_links():
            msg = on_link(net, src, dst)[0]
            if isinstance(msg, SyncReply):
                pages.append((len(msg.events), msg.more))
            net.deliver(src, dst)
    assert pages == [(2, True), (2, True), (1, False)]
    assert sorted(net.replica("b").ledger.orders) == ids
    converged(net)


def test_take_with_unseen_dependencies_is_parked_until_repaired() -> None:
    net, ask = resting_sell(["a", "b", "c"])
    other = net.place("c", SELL, 7, 200)
    net.drop("c", "a")  # a never hears of c:1 on the fast path
    net.deliver("c", "b")
    bid = net.place("b", BUY, 5, 100)  # its clock names c:1
    assert net.replica("b").ledger.orders[bid].event.vc == VectorClock({"a": 1, "b": 1, "c": 1})
    net.deliver("b", "a")  # the take: parked; c:1 may still come by gossip
    net.deliver("b", "a")  # the order's gossip: held in the causal buffer
    assert on_link(net, "a", "b") == []
    assert bid not in net.replica("a").ledger.orders and not net.replica("a").quiet
    net.tick(CFG.repair_after_ms)  # it did not: a asks b for what it lacks
    assert SyncRequest in [type(m) for m in on_link(net, "a", "b")]
    net.drain()
    assert fills(net.replica("a")) == [(ask, bid, 100, 5, "b.1")]
    assert other in net.replica("a").ledger.orders
    converged(net)


# --- restart ------------------------------------------------------------------------------------------


def test_taker_restart_with_take_on_the_link_retries_same_request() -> None:
    net, ask = resting_sell()
    bid = net.place("b", BUY, 5, 100)
    net.crash("b")
    net.restart("b")
    assert net.replica("b").order_info(bid)["pending"] == 5  # the reservation survived
    net.tick(0)  # restored takes are retried at once
    assert [t.request for t in takes_on(net, "b", "a")] == ["b.1", "b.1"]
    net.drain()
    assert fills(net.replica("a")) == fills(net.replica("b")) == [(ask, bid, 100, 5, "b.1")]
    assert net.place("b", BUY, 1, 90) == "b:2"  # own seq continues
    converged(net)


def test_taker_restart_after_lost_reply_gets_stored_outcome() -> None:
    net, ask = resting_sell()
    bid = net.place("b", BUY, 5, 100)
    net.deliver("b", "a")
    net.deliver("b", "a")  # a grants
    net.links[("a", "b")].clear()  # ... and b never hears
    net.crash("b")
    net.restart("b")
    net.tick(0)
    assert [t.request for t in takes_on(net, "b", "a")] == ["b.1"]
    net.drain()
    assert fills(net.replica("b")) == [(ask, bid, 100, 5, "b.1")]
    assert status(net, bid) == ("filled", 5, 0)
    assert TakeSent("b.1", bid, ask, 5) in net.nodes["b"].store
    assert TakeSettled("b.1", 5) in net.nodes["b"].store
    converged(net)


def test_maker_restart_keeps_grants_and_outcomes() -> None:
    net, ask = resting_sell()
    bid = net.place("b", BUY, 5, 100)
    net.deliver("b", "a")
    net.deliver("b", "a")  # a grants b.1 ...
    granted = replies_on(net, "a", "b")
    net.links[("a", "b")].clear()  # ... the answer is lost
    net.crash("a")
    net.restart("a")
    a = net.replica("a")
    assert fills(a) == [(ask, bid, 100, 5, "b.1")] and status(net, ask) == ("filled", 5, 0)
    assert any(isinstance(r, Outcome) and r.reply == granted[0] for r in net.nodes["a"].store)
    net.tick(CFG.retry_ms)  # b retries b.1
    assert [t.request for t in takes_on(net, "b", "a")] == ["b.1"]
    deliver_all(net, "b", "a")
    assert replies_on(net, "a", "b") == granted  # the stored answer, same fill event
    net.drain()
    assert fills(net.replica("b")) == [(ask, bid, 100, 5, "b.1")]
    assert net.place("a", SELL, 1, 300) == "a:3"  # a:1 order, a:2 fill, then a:3
    converged(net)


# --- bad local input -----------------------------------------------------------------------------------


def test_bad_node_id_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        Replica("bad id!")


@pytest.mark.parametrize("qty", [1.0, True, 0, -5, "5"])
def test_bad_quantity_is_refused_and_changes_nothing(qty: object) -> None:
    r = Replica("a")
    with pytest.raises(InvalidAmount):
        r.place(BUY, qty, 100)  # type: ignore[arg-type]
    assert r.take_outputs() == [] and r.clock == VectorClock()
    r.ledger._check()


# --- a node that lost its store -----------------------------------------------------------------


def test_a_node_with_an_empty_store_waits_for_its_peers_before_creating_events() -> None:
    b = Replica("b", peers=["a", "c"])
    b.recover("it starts with an empty store")  # what the node does when it starts empty with peers to ask
    with pytest.raises(Busy, match="getting its own history back"):
        b.place(BUY, 5, 100)
    b.receive("a", messages.Heartbeat("a", VectorClock({"a": 3}), "0" * 32), 0)
    assert b.recovering_from == ["c"]  # c too may hold events of b's past
    with pytest.raises(Busy):
        b.place(BUY, 5, 100)
    b.receive("c", messages.Heartbeat("c", VectorClock({"c": 1}), "0" * 32), 0)
    assert b.recovery is None and b.place(BUY, 5, 100) == "b:1"
    b._check()


def test_a_node_whose_history_peers_know_better_gets_it_back_before_creating_events() -> None:
    b = Replica("b", peers=["a"], config=Config(repair_after_ms=0))
    b.recover("it starts with an empty store")
    b.receive("a", messages.Heartbeat("a", VectorClock({"a": 3, "b": 2}), "0" * 32), 0)
    # A claim is not proof: b keeps waiting (busy) and asks a for the events it claims ...
    with pytest.raises(Busy):
        b.place(BUY, 5, 100)
    assert any(isinstance(o, Send) and isinstance(o.message, SyncRequest) for o in b.take_outputs())
    # ... and its own events, when they come, are delivered like a peer's, until it has them all.
    first = Event("b", 1, VectorClock({"b": 1}), NewOrder(SELL, 100, 7, GTC))
    b.receive("a", messages.SyncReply((first,), False), 1)
    assert b.clock.get("b") == 1 and "b:1" in b.ledger.orders
    with pytest.raises(Busy):
        b.place(BUY, 5, 100)
    second = Event("b", 2, VectorClock({"b": 2}), Cancel("b:1"))
    b.receive("a", messages.SyncReply((second,), False), 2)
    assert b.recovery is None and b.amnesia is None
    assert b.place(BUY, 5, 100) == "b:3", "its next id is past every one a peer holds"
    b._check()


def test_a_node_that_created_events_since_it_started_cannot_recover() -> None:
    b = Replica("b", peers=["a"])
    assert b.place(BUY, 5, 90) == "b:1"
    own = Event("b", 2, VectorClock({"b": 2}), NewOrder(SELL, 100, 7, GTC))
    b.receive("a", messages.SyncReply((own,), False), 1)  # it had a past, and b:1 may clash with it
    assert b.recovery is None and "b:2" not in b.ledger.orders
    with pytest.raises(Rejected, match="lost its own history"):
        b.place(BUY, 5, 100)


def test_a_heartbeat_claiming_our_clock_is_ahead_changes_nothing() -> None:
    b = Replica("b", peers=["a"], config=Config(repair_after_ms=0))
    b.receive("a", messages.Heartbeat("a", VectorClock({"b": 10**9}), ""), 0)
    b.receive("a", messages.SyncReply((), False), 1)  # a has nothing to back its claim
    assert b.place(BUY, 5, 100) == "b:1" and b.amnesia is None


def test_a_peer_that_sees_a_reused_event_id_tells_the_origin() -> None:
    net = Network(["a", "b"])
    net.place("a", SELL, 5, 100)
    net.drain()
    net.wipe("a")  # its disk is gone, and it is started as a founder, with nobody to ask first
    net.nodes["a"].replica = Replica("a", peers=["b"], now=net.now)
    net.place("a", BUY, 1, 90)  # a:1 again, but another order
    net.drain()  # b sees a different a:1 and sends its own copy back
    assert net.replica("b").counters["reused_event_ids"] == 1
    with pytest.raises(Rejected, match="lost its own history"):
        net.place("a", BUY, 1, 90)


# --- replicas check each other ------------------------------------------------------------------


def heartbeats(net: Network, src: str, dst: str) -> list[messages.Heartbeat]:
    return [m for m in on_link(net, src, dst) if isinstance(m, messages.Heartbeat)]


def test_a_busy_node_sends_no_state_hash_and_a_quiet_one_does() -> None:
    net, _ = resting_sell()
    net.tick(CFG.heartbeat_ms)  # a delivered an event since its last heartbeat: busy
    assert [h.state_hash for h in heartbeats(net, "a", "b")] == [""]
    net.drain()
    net.tick(CFG.heartbeat_ms)  # nothing since: quiet
    assert [h.state_hash for h in heartbeats(net, "a", "b")] == [net.replica("a").ledger.state_hash()]
    net.drain()
    assert net.replica("b").counters["state_mismatches"] == 0


def test_replicas_at_the_same_clock_with_different_states_are_counted() -> None:
    net = sim.Network(["a", "b"])  # unchecked: this test breaks a replica on purpose
    ask = net.place("a", SELL, 5, 100)
    net.settle()
    b = net.replica("b")
    b.ledger.orders[ask].filled += 1  # what a bug (or a reused event id) would leave behind
    b.ledger._stale.add(ask)
    for _ in range(2):
        net.tick(CFG.heartbeat_ms)
        net.drain()
    assert b.counters["state_mismatches"] >= 1 and net.replica("a").counters["state_mismatches"] >= 1


def test_an_order_that_passed_a_maker_our_asks_covered_asks_when_they_get_less() -> None:
    net, x, _ = maker_taking_itself()  # b's y (sell 5) asks a for all of x: held there
    z = net.place("b", SELL, 5, 100)  # x is all asked for by y: z does not ask, it rests
    assert status(net, z)[0] == "open" and [t.taker.order_id for t in takes_on(net, "b", "a")] == []
    net.links[("a", "c")].clear()  # a's take on z is lost: x stays reserved
    net.tick(CFG.retry_ms)  # y's take is answered busy (and b resends it, unanswered so long)
    y = net.replica("b").taker.reservations.get("b.1").order
    assert [t.taker.order_id for t in takes_on(net, "b", "a")] == [y]
    deliver_all(net, "a", "b")  # the busy answer: x is asked for by nobody now
    assert [t.taker.order_id for t in takes_on(net, "b", "a")] == [y, z]  # z asks at once, not at a sweep
    converged(net)


# --- traders: who placed an own order (node-local) ------------------------------------------------


def test_only_the_trader_who_placed_an_order_or_an_operator_may_cancel_it() -> None:
    net = Network(["a", "b"])
    mine = net.place("a", SELL, 5, 100, trader="alice")
    theirs = net.place("a", SELL, 5, 101, trader="alice")
    anyones = net.place("a", SELL, 5, 102)  # placed without a trader's name (the core alone, an old store)
    with pytest.raises(NotOwner, match="another trader") as refused:
        net.cancel("a", mine, trader="bob")
    assert "alice" not in str(refused.value)  # names stay private
    with pytest.raises(NotOwner):
        net.cancel("a", mine)  # "" is a name like any other
    assert net.cancel("a", mine, trader="alice")["status"] == "cancelled"
    assert net.cancel("a", theirs, trader="ops", operator=True)["status"] == "cancelled"
    assert net.cancel("a", anyones, trader="bob")["status"] == "cancelled"
    a = net.replica("a")
    assert a.is_mine(mine, "alice") and not a.is_mine(mine, "bob") and a.is_mine(mine, "x", operator=True)
    net.drain()
    assert not net.replica("b").is_mine(mine, "alice")  # not an own order there: b knows no traders
    converged(net)


def test_the_trader_is_persisted_with_the_order_and_never_replicated() -> None:
    net = Network(["a", "b"])
    log = record(net)
    oid = net.place("a", SELL, 5, 100, trader="alice")
    persisted = [out.record for node, out in log if isinstance(out, Persist) and out.promise]
    assert OrderTrader(oid, "alice") in persisted  # committed with the order, before its gossip leaves
    net.drain()
    assert not any(b"alice" in data for queue in net.links.values() for data in queue)
    assert net.replica("b").traders.of == {}
    net.cancel("a", oid, trader="alice")
    net.drain()
    assert not any(isinstance(out, Persist) and isinstance(out.record, OrderTrader) and node != "a"
                   for node, out in log)


def test_open_orders_are_counted_per_trader_and_per_node() -> None:
    net = Network(["a", "b"])
    asks = [net.place("a", SELL, 5, 100 + i, trader="alice") for i in range(3)]
    net.place("a", SELL, 5, 200, trader="bob")
    net.place("a", SELL, 5, 300)
    a = net.replica("a")
    assert (a.open_orders("alice"), a.open_orders("bob"), a.open_orders("carol"), a.open_orders()) == (3, 1, 0, 5)
    net.cancel("a", asks[0], trader="alice")
    net.place("a", BUY, 5, 101, trader="bob")  # fills asks[1] at once (own orders trade without a request)
    assert status(net, asks[1])[0] == "filled"
    assert (a.open_orders("alice"), a.open_orders("bob"), a.open_orders()) == (1, 1, 3)
    net.drain()
    net.place("b", BUY, 5, 102)  # b takes the last of alice's: the fill is granted by a
    net.drain()
    assert (a.open_orders("alice"), a.open_orders()) == (0, 2)
    assert "alice" not in a.traders._open_of  # a trader with nothing open costs nothing
    items = export(a.ledger)  # a snapshot that closed bob's ask without an event here
    items[3][3] = CancelReason.USER.value
    a.ledger = rebuild(items)
    assert (a.open_orders("bob"), a.open_orders()) == (0, 1)


def test_traders_and_open_counts_survive_a_restart() -> None:
    net = Network(["a", "b"])
    kept = net.place("a", SELL, 5, 100, trader="alice")
    gone = net.place("a", SELL, 5, 101, trader="alice")
    net.cancel("a", gone, trader="alice")
    net.place("a", SELL, 5, 102)
    net.drain()
    net.crash("a")
    net.restart("a")
    a = net.replica("a")
    assert a.traders.of == {kept: "alice", gone: "alice"}
    assert (a.open_orders("alice"), a.open_orders()) == (1, 2)
    with pytest.raises(NotOwner):
        net.cancel("a", kept, trader="bob")
    assert net.cancel("a", kept, trader="alice")["status"] == "cancelled"
    assert a.open_orders("alice") == 0
    converged(net)


def test_an_order_that_crosses_nothing_ends_its_first_pass_as_it_is_placed() -> None:
    """The taker desk's short cut: no record, nothing on its work list, the reply among the place's outputs."""
    r = Replica("a")
    oid = r.place(SELL, 5, 100, token="t1")
    replies = [o for o in r.take_outputs() if isinstance(o, Reply)]
    assert [(o.token, o.result["order_id"], o.result["status"]) for o in replies] == [("t1", oid, "open")]
    assert r.taker.unfinished == 0 and not r.taker._working and not r.taker._todo
    r._check()
    # One that crosses goes through the desk as before: it fills, then its client hears.
    bid = r.place(BUY, 3, 101, Tif.IOC, token="t2")
    replies = [o for o in r.take_outputs() if isinstance(o, Reply)]
    assert [(o.token, o.result["order_id"], o.result["status"]) for o in replies] == [("t2", bid, "filled")]
    assert r.ledger.orders[oid].open == 2 and r.ledger.book.best_ask() == 100
    r._check()
