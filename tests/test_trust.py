"""What a keyed replica believes, and what it refuses: signatures, members, equivocation,
clock claims, snapshots and the cost of repair (zmqex.core.replica and zmqex.core.repair).

The network is the simulator with keys (every replica signs its events with a key made
from its name); the rogue is a member whose key the test holds, speaking through the codec.
"""

from __future__ import annotations

import hashlib

import pytest

from zmqex import keys
from zmqex.core import messages
from zmqex.core.clock import VectorClock
from zmqex.core.events import Cancel, Event, Fill, NewOrder, Side, Tif, signed_bytes
from zmqex.core.ledger import export
from zmqex.core.outputs import Evidence
from zmqex.core.replica import Config
from zmqex.errors import DecodeError, Forged, BadEvent
from tests.checked import Network
from zmqex.store import SqliteStore

MEMBERS = ["a", "b", "c", "d"]
SELL, BUY, GTC = Side.SELL, Side.BUY, Tif.GTC


def keyed(ids=("a", "b"), **config) -> Network:
    return Network(list(ids), Config(**config), keyed=MEMBERS)


def secret(name: str) -> keys.SecretKey:
    return keys.secret_from_seed(hashlib.sha256(name.encode()).digest())  # as the simulator makes them


def signed(origin: str, seq: int, vc: dict[str, int], body, by: str | None = None) -> Event:
    event = Event(origin, seq, VectorClock(vc), body)
    return Event(origin, seq, event.vc, body, secret(by or origin).signer()(signed_bytes(event)))


def deliver(net: Network, src: str, dst: str, msg: messages.Message) -> None:
    net.links[(src, dst)].insert(0, messages.encode(msg))
    net.deliver(src, dst)


def state(net: Network, node: str) -> tuple[str, VectorClock]:
    replica = net.replica(node)
    return replica.ledger.state_hash(), replica.clock


# --- events: who made them ---------------------------------------------------------------------


def test_events_carry_their_origins_signature_and_replicas_converge() -> None:
    net = keyed(("a", "b", "c"))
    ask = net.place("a", SELL, 5, 100)
    net.place("b", BUY, 3, 100)
    net.settle()
    for replica in net.live():
        assert replica.ledger.orders[ask].filled == 3
        event = replica.ledger.orders[ask].event
        assert keys.Keyring.verify(_ring(), event.origin, signed_bytes(event), event.sig)
    assert len({r.ledger.state_hash() for r in net.live()}) == 1


def _ring() -> keys.Keyring:
    return keys.Keyring("x", secret("x"), {m: secret(m).public for m in MEMBERS})


def test_a_relayed_event_without_its_origins_signature_is_refused() -> None:
    net = keyed()
    before = state(net, "b")
    forged = signed("c", 1, {"c": 1}, NewOrder(SELL, 100, 7, GTC), by="a")  # a signs in c's name
    with pytest.raises(Forged, match="signature"):
        deliver(net, "a", "b", messages.SyncReply((forged,), False))
    assert state(net, "b") == before and net.replica("b").counters["bad_signatures"] == 1
    genuine = signed("c", 1, {"c": 1}, NewOrder(SELL, 100, 7, GTC))
    deliver(net, "a", "b", messages.SyncReply((genuine,), False))  # relayed, but c's own: fine
    assert "c:1" in net.replica("b").ledger.orders


def test_events_of_non_members_and_gossip_in_anothers_name_are_refused() -> None:
    net = keyed()
    stranger = Event("mallory", 1, VectorClock({"mallory": 1}), NewOrder(SELL, 100, 7, GTC))
    with pytest.raises(Forged, match="not a member"):
        deliver(net, "a", "b", messages.SyncReply((stranger,), False))
    with pytest.raises(Forged, match="carries events of c"):
        deliver(net, "a", "b", messages.Gossip(signed("c", 1, {"c": 1}, NewOrder(SELL, 100, 7, GTC))))
    assert net.replica("b").clock == VectorClock()


def test_a_member_cannot_cancel_or_fill_anothers_order() -> None:
    net = keyed()
    ask = net.place("a", SELL, 5, 100)
    net.drain()
    before = state(net, "b")
    vc = dict(net.replica("b").clock.items())
    with pytest.raises(BadEvent):
        deliver(net, "a", "b", messages.SyncReply((signed("c", 1, {**vc, "c": 1}, Cancel(ask)),), False))
    with pytest.raises(BadEvent):
        fill = Fill(ask, ask, 100, 5, "c.1")
        deliver(net, "a", "b", messages.SyncReply((signed("c", 1, {**vc, "c": 1}, fill),), False))
    assert state(net, "b") == before


def test_a_take_naming_a_taker_order_of_a_non_member_is_refused() -> None:
    net = keyed()
    ask = net.place("a", SELL, 5, 100)
    net.drain()
    invented = Event("mallory", 1, VectorClock({"mallory": 1}), NewOrder(BUY, 100, 5, Tif.IOC))
    deliver(net, "b", "a", messages.Take("b.1", ask, invented, 5))
    reply = messages.decode(net.links[("a", "b")][-1])
    assert isinstance(reply, messages.TakeReply) and (reply.granted, reply.reason) == (0, "invalid")
    assert net.replica("a").ledger.orders[ask].filled == 0 and "mallory:1" not in net.replica("a").ledger.orders


def test_evidence_round_trips_through_the_store(tmp_path) -> None:
    one = signed("c", 1, {"c": 1}, NewOrder(SELL, 100, 7, GTC))
    two = signed("c", 1, {"c": 1}, NewOrder(SELL, 90, 7, GTC))
    store = SqliteStore(tmp_path, "a")
    store.commit([Evidence(one, two)], promise=False)
    store.close()
    store = SqliteStore(tmp_path, "a")
    assert [r for r in store.records() if isinstance(r, Evidence)] == [Evidence(one, two)]
    store.close()


def test_an_equivocating_member_is_caught_and_its_orders_are_untradeable() -> None:
    net = keyed(("a", "b"))
    one = signed("c", 1, {"c": 1}, NewOrder(SELL, 100, 7, GTC))  # c signs two events with one id:
    two = signed("c", 1, {"c": 1}, NewOrder(SELL, 90, 7, GTC))  # a relays both (it may not know)
    deliver(net, "a", "b", messages.SyncReply((one,), False))
    deliver(net, "a", "b", messages.SyncReply((two,), False))
    b = net.replica("b")
    assert b.counters["equivocations"] == 1 and b.equivocators["c"] == (one, two)
    assert not b.is_up("c") and b.order_info("c:1")["available"] is False
    assert [r for r in net.nodes["b"].store if isinstance(r, Evidence)] == [Evidence(one, two)]
    net.crash("b")
    net.restart("b")  # the evidence outlives a restart
    assert net.replica("b").equivocators["c"] == (one, two) and not net.replica("b").is_up("c")
    # A buy at b that crosses c's order does not take from it.
    oid = net.place("b", BUY, 7, 100, Tif.IOC)
    assert not [m for m in net.links[("b", "a")] if isinstance(messages.decode(m), messages.Take)]
    assert net.replica("b").order_info(oid)["status"] == "expired"


# --- our own history: claims versus proof ------------------------------------------------------


def test_a_claim_about_our_clock_changes_nothing_and_a_forged_own_event_is_refused() -> None:
    net = keyed(repair_after_ms=0)
    b = net.replica("b")
    deliver(net, "a", "b", messages.Heartbeat("a", VectorClock({"b": 10**9}), ""))
    forged = signed("b", 1, {"b": 1}, NewOrder(SELL, 100, 7, GTC), by="a")
    with pytest.raises(Forged):
        deliver(net, "a", "b", messages.SyncReply((forged,), False))
    assert b.amnesia is None and net.place("b", SELL, 1, 100) == "b:1"


def test_our_own_signed_event_from_a_peer_proves_we_lost_our_history() -> None:
    net = keyed()
    b = net.replica("b")
    own = signed("b", 1, {"b": 1}, NewOrder(SELL, 100, 7, GTC))
    deliver(net, "a", "b", messages.SyncReply((own,), False))
    assert b.recovery is not None and b.amnesia and "own history back" in b.amnesia
    assert "b:1" in b.ledger.orders  # signed by b: delivered, and b waits to hear from its peers


# --- snapshots: asked for, checked as they come, vouched for ------------------------------------


def compacted_mesh() -> Network:
    """a and b have compacted their history; c, new, must be sent a snapshot."""
    net = keyed(("a", "b"), compact_after=1, compact_every_ms=0)
    net.place("a", SELL, 5, 100)
    net.place("b", BUY, 2, 100)
    net.settle()
    for _ in range(3):
        net.tick(500)
        net.drain()
    assert net.replica("a").compacted > 0
    return net


def test_a_snapshot_nobody_asked_for_is_not_kept() -> None:
    net = compacted_mesh()
    a = net.replica("a")
    before = state(net, "b")
    page = messages.SnapshotPage(a.clock, 0, 1_000_000, tuple(export(a.ledger)), a.ledger.state_hash())
    deliver(net, "a", "b", page)
    assert state(net, "b") == before and net.replica("b").counters["snapshot_pages_unasked"] == 1
    assert net.replica("b").replication.partial_snapshots == {}


def test_a_new_member_installs_a_snapshot_another_member_vouches_for() -> None:
    net = compacted_mesh()
    net.add_node("c")
    for _ in range(10):
        net.tick(500)
        net.drain()
    c = net.replica("c")
    assert c.counters["snapshots_vouched"] == 1 and state(net, "c") == state(net, "a")


def test_a_snapshot_that_does_not_hash_to_what_it_claims_is_refused() -> None:
    net = compacted_mesh()
    net.add_node("c")
    c = net.replica("c")
    c.replication._request_sync("a")  # c asked a
    a = net.replica("a")
    items = export(a.ledger)
    items[0][3] = "user"  # a:1 shown cancelled: consistent in itself, but not the state a announced
    with pytest.raises(Forged, match="does not hash"):
        deliver(net, "a", "c", messages.SnapshotPage(a.clock, 0, 1, tuple(items), a.ledger.state_hash()))
    assert c.clock == VectorClock() and c.replication.pending_snapshot is None


def test_a_garbage_page_drops_the_whole_snapshot_at_once() -> None:
    net = compacted_mesh()
    net.add_node("c")
    c = net.replica("c")
    c.replication._request_sync("a")
    a = net.replica("a")
    items = export(a.ledger)
    deliver(net, "a", "c", messages.SnapshotPage(a.clock, 0, 3, tuple(items[:1]), a.ledger.state_hash()))
    assert "a" in c.replication.partial_snapshots
    with pytest.raises(DecodeError):
        deliver(net, "a", "c", messages.SnapshotPage(a.clock, 1, 3, ([7, "junk"],), a.ledger.state_hash()))
    assert c.replication.partial_snapshots == {} and c.counters["snapshot_pages_refused"] == 1
    with pytest.raises(DecodeError, match="over"):
        deliver(net, "a", "c", messages.SnapshotPage(a.clock, 0, 10**6, (), a.ledger.state_hash()))


def test_an_unvouched_snapshot_waits_and_is_dropped_and_one_from_the_only_other_member_is_taken() -> None:
    net = compacted_mesh()
    net.add_node("c")
    c = net.replica("c")
    a = net.replica("a")
    b_said = net.replica("b").clock  # b announces nothing at the snapshot's clock ...
    c.replication.peers["b"].announced = (b_said, "0" * 32)  # ... or a different state
    c.replication._request_sync("a")
    deliver(net, "a", "c", messages.SnapshotPage(a.clock, 0, 1, tuple(export(a.ledger)), a.ledger.state_hash()))
    assert c.replication.pending_snapshot is not None and c.clock == VectorClock()
    net.now += c.config.snapshot_wait_ms
    c.peers["b"].last_seen = net.now  # b is up all along (a member down could not vouch, nor is asked to)
    c.tick(net.now)
    assert c.replication.pending_snapshot is None and c.counters["snapshots_dropped"] == 1 and c.clock == VectorClock()
    # Alone with a (no other member to ask), c takes what a sends, and counts it.
    del c.peers["b"]; c.replication.drop_peer("b")
    c.replication._request_sync("a")
    deliver(net, "a", "c", messages.SnapshotPage(a.clock, 0, 1, tuple(export(a.ledger)), a.ledger.state_hash()))
    assert c.counters["snapshots_unvouched"] == 1 and c.ledger.state_hash() == a.ledger.state_hash()


# --- repair costs are bounded ---------------------------------------------------------------------


def test_sync_requests_are_served_at_a_bounded_rate() -> None:
    net = keyed(sync_serve_ms=20, sync_burst=5)
    a = net.replica("a")
    for _ in range(20):
        deliver(net, "b", "a", messages.SyncRequest(VectorClock(), 10))
    assert len(net.links[("a", "b")]) == 5 and a.counters["sync_requests_refused"] == 15
    net.now += 100  # five more pages' worth
    a.tick(net.now)
    for _ in range(20):
        deliver(net, "b", "a", messages.SyncRequest(VectorClock(), 10))
    assert a.counters["sync_requests_refused"] == 30


# --- removal ---------------------------------------------------------------------------------------


def test_a_removed_member_is_untradeable_and_not_waited_for() -> None:
    net = keyed(("a", "b", "c"))
    ask = net.place("c", SELL, 5, 100)
    net.settle()
    net.crash("c")
    net.place("a", BUY, 1, 50)
    for _ in range(2):
        net.tick(500)
        net.drain()
    a = net.replica("a")
    assert a.stable_clock() != a.clock  # c has not delivered a's new order: nobody may forget it
    a.set_keys(net.verifier, ["a", "b"])
    assert "c" not in a.peers and a.removed == {"c"}
    assert a.order_info(ask)["available"] is False
    assert a.stable_clock() == a.clock  # c is no longer waited for
    oid = net.place("a", BUY, 5, 100, Tif.IOC)
    net.settle()
    assert net.replica("a").ledger.orders[oid].filled == 0


def test_a_node_that_lost_its_store_gets_it_back_from_a_snapshot_of_its_own_signed_events() -> None:
    net = compacted_mesh()
    before = net.replica("b").clock.get("a")
    net.crash("a")
    net.nodes["a"].store.clear()  # its disk is gone; its peers compacted its events away
    net.restart("a")
    for _ in range(6):
        net.tick(500)
        net.drain()
    a = net.replica("a")
    assert a.counters["snapshots_unvouched"] == 1  # b, its only other member, sent its state
    assert a.counters["recoveries"] == 1 and a.amnesia is None  # then told it how much of a's it holds
    assert a.clock.get("a") == before and net.place("a", SELL, 1, 100) == f"a:{before + 1}"
    net.settle()
    assert a.ledger.state_hash() == net.replica("b").ledger.state_hash()


# --- what a member's takes may cost ---------------------------------------------------------------


def test_takes_no_honest_taker_sends_are_answered_but_not_kept() -> None:
    net = keyed()
    ask = net.place("a", SELL, 5, 100)
    net.drain()
    a = net.replica("a")
    kept, stored = len(a.maker.answers), len(net.nodes["a"].store)
    anothers = signed("c", 1, {"c": 1}, NewOrder(BUY, 100, 5, Tif.IOC))  # b asks with c's order
    for i in range(200):
        deliver(net, "b", "a", messages.Take(f"b.{i}", ask, anothers, 1))
    assert len(a.maker.answers) == kept and len(net.nodes["a"].store) == stored
    replies = [messages.decode(m) for m in net.links[("a", "b")]]
    assert len(replies) == 200 and {(r.granted, r.reason) for r in replies} == {(0, "invalid")}


def test_parked_takes_are_bounded_per_peer_and_expire() -> None:
    from zmqex.core.maker import MAX_PARKED

    net = keyed(park_ms=1_000)
    ask = net.place("a", SELL, 5, 100)
    net.drain()
    a = net.replica("a")
    for i in range(MAX_PARKED + 50):  # takes for b's orders a has never seen: they wait for them
        gap = signed("b", 10**6 + i, {"b": 10**6 + i}, NewOrder(BUY, 100, 5, Tif.IOC))
        deliver(net, "b", "a", messages.Take(f"b.{i}", ask, gap, 1))
    assert a.maker.parked() == MAX_PARKED and a.counters["takes_unparked"] == 50
    net.now += 1_000
    a.tick(net.now)
    assert a.maker.parked() == 0 and a.maker.parked("b") == 0 and a.counters["takes_unparked"] == MAX_PARKED + 50


def test_a_copy_its_origin_sent_unsigned_is_no_proof_against_it() -> None:
    net = keyed(("a", "b", "c"))
    badly = signed("a", 1, {"a": 1}, NewOrder(SELL, 100, 7, GTC), by="c")  # straight from a: not verified
    deliver(net, "a", "b", messages.Gossip(badly))
    genuine = signed("a", 1, {"a": 1}, NewOrder(SELL, 100, 7, GTC))  # same content, a's own signature
    deliver(net, "c", "b", messages.SyncReply((genuine,), False))
    b = net.replica("b")
    # The same content is the same event, whatever vouched for it: nothing to prove, nothing to check.
    assert b.counters["equivocations"] == 0 and "a" not in b.equivocators and b.counters["bad_signatures"] == 0
