"""A keyed mesh against outsiders, a rogue member and a careless operator, on real processes.

Each test is one finding of the security review, shown fixed: the stranger
cannot join, read or submit; a second process with a member's id is refused
and logged while the mesh keeps trading; forged, replayed and equivocating
events, forged takes and unasked snapshots change nothing anywhere; a trader
cannot cancel another's order; a removed member is gone and compaction resumes.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import msgpack
import pytest
import zmq

from tests.integration.raw import Sockets
from zmqex import keys, mesh
from zmqex.cli import EX_DUPLICATE
from zmqex.core import messages
from zmqex.core.clock import VectorClock
from zmqex.core.events import Cancel, Event, Fill, NewOrder, Side, Tif, signed_bytes
from zmqex.errors import NotOwner
from zmqex.local import LocalNetwork, NodeProcess, wait_for

NODES = ["a", "b", "c", "d"]  # d is on every allow-list but never started: the tests' rogue member


@pytest.fixture
def keyed(tmp_path):
    network = LocalNetwork(tmp_path, keyed=NODES, traders=["alice", "bob"])
    try:
        network.start_mesh(["a", "b", "c"])
        yield network
    finally:
        network.stop()


@pytest.fixture
def sockets():
    s = Sockets()
    yield s
    s.close()


def public(net: LocalNetwork, node: str) -> bytes:
    return keys.load_public(net.keys_dir / node / f"{node}.key").curve  # type: ignore[operator]


def states(net: LocalNetwork) -> dict[str, tuple[str, dict]]:
    out = {}
    for node in net.nodes.values():
        with node.client() as c:
            s = c.status()
        out[node.id] = (s["hash"], s["vc"])
    return out


def status(net: LocalNetwork, node: str) -> dict:
    with net.nodes[node].client() as c:
        return c.status()


def no_reply(sock: zmq.Socket, frame: bytes, wait_ms: int = 1500) -> bool:
    sock.send(frame, zmq.NOBLOCK) if sock.getsockopt(zmq.TYPE) == zmq.DEALER else None
    return not sock.poll(wait_ms)


STATUS = msgpack.packb({"v": 1, "id": 1, "op": "status"})


def test_a_stranger_cannot_join_read_or_submit(keyed, sockets):
    net = keyed
    a = net.nodes["a"]
    with a.client(as_="alice") as alice:
        alice.place("sell", "1", "50000")
    before = net.wait_converged()
    stranger = keys.new_secret()
    # Without CURVE, or with a key nobody listed, the handshake fails: no reply, no book.
    plain = sockets.socket(zmq.DEALER, IMMEDIATE=0)
    plain.connect(a.endpoint)
    assert no_reply(plain, STATUS)
    curve = sockets.socket(zmq.DEALER, own=stranger, server=public(net, "a"), IMMEDIATE=0)
    curve.connect(a.endpoint)
    assert no_reply(curve, STATUS)
    # The old link takeover: a connection claiming a's routing id and tag at b gets nowhere.
    takeover = sockets.socket(zmq.DEALER, own=stranger, server=public(net, "b"), ROUTING_ID=b"N:a", IMMEDIATE=0)
    takeover.connect(net.nodes["b"].endpoint)
    takeover.send_multipart([mesh.MEMBERS, b"a/0123", b"hello?"])
    # The gossip socket admits members only: a subscriber with a stranger's key reads nothing.
    pub = status(net, "a")  # (the gossip endpoint is in the node's log line)
    gossip_at = a.log().split("gossip at ")[1].split(",")[0].split()[0]
    sub = sockets.socket(zmq.SUB, own=stranger, server=public(net, "a"), SUBSCRIBE=b"")
    sub.connect(gossip_at)
    with a.client(as_="alice") as alice:
        alice.place("sell", "1", "50001")
    assert not sub.poll(1500)
    wait_for(lambda: "refused a connection with an unknown key" in a.log(), 10, "a to log the stranger")
    after = net.wait_converged()
    assert set(pub["peers"]) == {"b", "c"} and set(after["a"]["peers"]) == {"b", "c"}
    assert after["a"]["vc"]["a"] == before["a"]["vc"]["a"] + 1  # alice's second order, nothing else


def test_a_second_node_with_a_members_id_is_refused_and_the_mesh_keeps_trading(keyed, tmp_path):
    net = keyed
    argv = ["--id", "a", "--port", "0", "--ephemeral", "--keys", str(net.keys_dir / "a"),  # type: ignore[operator]
            "--join", net.nodes["b"].join_address, "--join", net.nodes["c"].join_address]
    dup = NodeProcess("a", tmp_path / "a-dup.log", argv, net.keys_dir)  # a's id and a's own key
    net.nodes["a-dup"] = dup  # stopped with the network, whatever happens
    dup.wait_ready()
    b = net.nodes["b"]
    wait_for(lambda: "a second node claims to be a" in b.log(), 15, "b to refuse the second a")
    # The real a still trades with b and c.
    with net.nodes["a"].client(as_="alice") as alice, b.client(as_="bob") as bob:
        ask = alice.place("sell", "1", "50000")["order_id"]
        bid = bob.place("buy", "1", "50000")["order_id"]
        wait_for(lambda: bob.order(bid)["status"] == "filled", 15, "the orders to trade")
        assert [f["maker"] for f in bob.order(bid)["fills"]] == [ask]
    assert status(net, "b")["counters"].get("duplicate_ids", 0) > 0
    assert dup.proc.wait(30) == EX_DUPLICATE  # told by b, it stopped: it never took an order
    assert "another process is running as a" in dup.log()
    del net.nodes["a-dup"]
    net.wait_converged()


class Rogue:
    """Member d, on every allow-list and never started, speaking to node b by hand."""

    def __init__(self, net: LocalNetwork, sockets: Sockets, to: str = "b") -> None:
        self.secret = keys.load_secret(net.keys_dir / "d" / "d.key_secret")  # type: ignore[operator]
        self.sign = self.secret.signer()
        self.to = net.nodes[to]
        self.sock = sockets.socket(zmq.DEALER, own=self.secret, server=public(net, to), IMMEDIATE=0)
        self.sock.connect(self.to.endpoint)
        self.tag = b"d/rogue1"
        me = mesh.Member("d", "tcp://127.0.0.1:9", "tcp://127.0.0.1:9")
        self.send_raw(mesh.MEMBERS, mesh.encode_hello(mesh.Hello(me, (me,))))

    def send_raw(self, kind: bytes, data: bytes) -> None:
        self.sock.send_multipart([kind, self.tag, data])

    def send(self, *msgs: messages.Message) -> None:
        for msg in msgs:
            self.send_raw(mesh.CORE, messages.encode(msg))

    def event(self, origin: str, seq: int, vc: dict[str, int], body, signer=None) -> Event:
        event = Event(origin, seq, VectorClock(vc), body)
        return Event(origin, seq, event.vc, body, (signer or self.sign)(signed_bytes(event)))


def test_forged_and_replayed_events_forged_takes_and_unasked_snapshots_change_nothing(keyed, sockets):
    net = keyed
    with net.nodes["a"].client(as_="alice") as alice:
        ask = alice.place("sell", "1", "50000")["order_id"]
    before = net.wait_converged()
    rogue = Rogue(net, sockets)
    wait_for(lambda: "d" in status(net, "b")["peers"], 10, "b to take d's hello")
    vc_a = before["b"]["vc"]
    # An order in a's name, signed by d: gossip of another's event, and a relayed one with a bad signature.
    fake_order = rogue.event("a", vc_a["a"] + 1, {**vc_a, "a": vc_a["a"] + 1}, NewOrder(Side.BUY, 60000_00, 10**8, Tif.GTC))
    rogue.send(messages.Gossip(fake_order), messages.SyncReply((fake_order,), False))
    # A cancel and a fill of a's order, in d's own name (d does not own a:1).
    rogue.send(messages.Gossip(rogue.event("d", 1, {**vc_a, "d": 1}, Cancel(ask))))
    rogue.send(messages.Gossip(rogue.event("d", 1, {**vc_a, "d": 1}, Fill(ask, "d:9", 50000_00, 10**8, "d.1"))))
    # A take naming a taker order of somebody who is no member.
    mallory = keys.new_secret().signer()
    invented = rogue.event("mallory", 1, {"mallory": 1}, NewOrder(Side.BUY, 60000_00, 10**8, Tif.IOC), mallory)
    rogue.send(messages.Take("mallory.1", ask, invented, 10**8))
    # An unasked snapshot that would cancel a:1, and a heartbeat claiming b's clock is far ahead.
    rogue.send(messages.SnapshotPage(VectorClock({"a": 10**6}), 0, 1, (), "0" * 32))
    rogue.send(messages.Heartbeat("d", VectorClock({"b": 10**9}), ""))
    # A hello in a's name, pointing b at d's endpoints (it used to make b "move" a).
    me = mesh.Member("a", "tcp://127.0.0.1:9", "tcp://127.0.0.1:9")
    rogue.sock.send_multipart([mesh.MEMBERS, b"a/rogue2", mesh.encode_hello(mesh.Hello(me, (me,)))])
    # A replay of a's own order event, byte for byte (Ed25519 is deterministic, and the test holds
    # every key), relayed by d: b has it already, so it changes nothing.
    a_signs = keys.load_secret(net.keys_dir / "a" / "a.key_secret").signer()  # type: ignore[operator]
    replay = rogue.event("a", 1, {"a": 1}, NewOrder(Side.SELL, 50000_00, 10**8, Tif.GTC), a_signs)
    rogue.send(messages.SyncReply((replay,), False), messages.Gossip(replay))
    wait_for(lambda: status(net, "b")["counters"].get("bad_signatures", 0) >= 1, 10, "b to refuse the forgeries")
    after = states(net)
    assert after == {n: (before[n]["hash"], before[n]["vc"]) for n in after}
    with net.nodes["b"].client(as_="bob") as bob:
        assert bob.order(ask)["filled"] == "0.00000000" and bob.order(ask)["status"] == "open"
        assert bob.place("buy", "0.1", "40000")["status"] == "open"  # b still creates events
    counters = status(net, "b")["counters"]
    assert counters.get("events_refused", 0) >= 1 and counters.get("snapshot_pages_unasked", 0) == 1
    assert "rejected message from d" in net.nodes["b"].log()
    assert "claiming to be a" in net.nodes["b"].log()
    assert status(net, "b")["peers"]["a"]["endpoint"] == net.nodes["a"].endpoint  # a did not "move"


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_a_members_requests_for_work_and_memory_stay_bounded(keyed, sockets):
    net = keyed
    b = net.nodes["b"]
    before = net.wait_converged()
    rogue = Rogue(net, sockets)  # its hello names endpoints where nothing listens
    wait_for(lambda: "d" in status(net, "b")["peers"], 10, "b to take d's hello")
    start = rss(b.proc.pid)
    # 400 tiny sync requests, each asking for everything: b's answers could only queue for d.
    rogue.send(*[messages.SyncRequest(VectorClock(), 500) for _ in range(400)])
    # 300 pages of 200 kB each, of a snapshot of a million pages that nobody asked for.
    junk = tuple([[0, "x" * 1000]] * 200)
    for index in range(300):
        rogue.send(messages.SnapshotPage(VectorClock({"d": 10**6}), index, 10**6, junk, "0" * 32))
    # Events with a sequence gap, from origins nobody admitted.
    for origin in range(50):
        gap = [Event(f"new{origin}", seq, VectorClock({f"new{origin}": seq}), NewOrder(Side.BUY, 1, 1, Tif.GTC))
               for seq in range(2, 402)]
        rogue.send(messages.SyncReply(tuple(gap), False))
    wait_for(lambda: status(net, "b")["counters"].get("snapshot_pages_unasked", 0) == 300, 30,
             "b to work through the flood")
    counters = status(net, "b")["counters"]
    assert counters["sync_requests_refused"] > 300  # served at a bounded rate
    grew = rss(b.proc.pid) - start
    assert grew < 64 * 2**20, f"b grew by {grew / 2**20:.0f} MiB"
    after = status(net, "b")
    assert (after["hash"], after["vc"]) == (before["b"]["hash"], before["b"]["vc"])
    assert after["in_flight"] == 0  # nothing of it is held


def test_an_equivocating_member_is_caught_and_its_orders_are_untradeable(keyed, sockets):
    net = keyed
    before = net.wait_converged()
    rogue = Rogue(net, sockets)
    wait_for(lambda: "d" in status(net, "b")["peers"], 10, "b to take d's hello")
    vc = {**before["b"]["vc"], "d": 1}
    one = rogue.event("d", 1, vc, NewOrder(Side.SELL, 50000_00, 10**8, Tif.GTC))
    two = rogue.event("d", 1, vc, NewOrder(Side.SELL, 40000_00, 10**8, Tif.GTC))
    rogue.send(messages.Gossip(one))
    wait_for(lambda: status(net, "b")["vc"].get("d") == 1, 10, "b to take d:1")
    rogue.send(messages.Gossip(two))
    wait_for(lambda: status(net, "b")["counters"].get("equivocations", 0) == 1, 10, "b to catch d")
    with net.nodes["b"].client(as_="bob") as bob:
        book = bob.book()
        assert book["asks"] == [] and book["unavailable"]["asks"][0][0] == "50000.00"
        assert bob.place("buy", "1", "50000", tif="ioc")["status"] == "expired"  # nothing to take


def test_a_trader_cannot_cancel_another_traders_order(keyed):
    a = keyed.nodes["a"]
    with a.client(as_="alice") as alice, a.client(as_="bob") as bob:
        order = alice.place("sell", "1", "50000")["order_id"]
        with pytest.raises(NotOwner):
            bob.cancel(order)
        assert bob.order(order)["mine"] is False and alice.order(order)["mine"] is True
        assert alice.cancel(order)["status"] == "cancelled"


def test_one_traders_flood_leaves_the_others_served(keyed, sockets):
    a = keyed.nodes["a"]
    secret = keys.load_secret(keyed.keys_dir / "alice" / "alice.key_secret")  # type: ignore[operator]
    flood = sockets.socket(zmq.DEALER, own=secret, server=public(keyed, "a"), IMMEDIATE=0)
    flood.connect(a.endpoint)
    for i in range(10_000):  # one-satoshi orders, as fast as the socket takes them
        flood.send(msgpack.packb({"v": 1, "id": i, "op": "place", "side": "buy", "qty": "0.00000001",
                                  "price": "1.00"}))
    with a.client(as_="bob", timeout=10.0) as bob:
        for _ in range(5):
            assert bob.place("sell", "0.1", "90000")["status"] == "open"  # never busy, never rate-limited
    codes: dict[str, int] = {}
    for _ in range(10_000):  # every place is answered, or counted in a notice of dropped replies
        if sum(codes.values()) == 10_000:
            break
        assert flood.poll(10_000), f"alice's replies stopped: {codes}"
        reply = msgpack.unpackb(flood.recv())
        code = "ok" if reply["ok"] else reply["error"]["code"]
        codes[code] = codes.get(code, 0) + (reply["error"]["count"] if code == "dropped" else 1)
    assert codes.get("rate_limited", 0) > 0 and set(codes) <= {"ok", "rate_limited", "busy", "dropped"}, codes
    assert sum(codes.values()) == 10_000, codes


def test_a_removed_member_is_gone_and_compaction_resumes(tmp_path):
    net = LocalNetwork(tmp_path, keyed=["a", "b", "c"], traders=["alice"],
                       extra_args=["--compact-after", "20"])
    try:
        net.start_mesh(["a", "b", "c"])
        with net.nodes["c"].client(as_="alice") as on_c:
            c_order = on_c.place("sell", "1", "60000")["order_id"]
        net.wait_converged()
        net.nodes["c"].kill()
        with net.nodes["a"].client(as_="alice") as alice:
            for i in range(40):
                alice.place("buy", "0.001", str(1000 + i))
        wait_for(lambda: status(net, "a")["vc"] == status(net, "b")["vc"], 20, "a and b to agree")
        assert status(net, "a")["compacted"] == 0  # c, down, has not delivered them: nobody may forget
        for node in ("a", "b"):
            (net.keys_dir / node / "members" / "c.key").unlink()  # type: ignore[operator]
            os.kill(net.nodes[node].proc.pid, signal.SIGHUP)
        for node in ("a", "b"):
            wait_for(lambda: "member c removed" in net.nodes[node].log(), 10, f"{node} to remove c")
            wait_for(lambda: status(net, node)["compacted"] > 0, 30, f"{node} to compact without c")
            s = status(net, node)
            assert "c" not in s["peers"]
            with net.nodes[node].client(as_="alice") as alice:
                assert alice.order(c_order)["available"] is False
                assert alice.book()["unavailable"]["asks"][0][0] == "60000.00"
    finally:
        net.stop()


def test_a_slow_reader_is_bounded_and_told(keyed, sockets):
    net = keyed
    a = net.nodes["a"]
    with a.client(as_="alice") as alice:
        for i in range(300):  # a book reply is then ~12 kB
            alice.place("sell", "0.001", str(50000 + i))

    start = rss(a.proc.pid)
    secret = keys.load_secret(net.keys_dir / "bob" / "bob.key_secret")  # type: ignore[operator]
    lazy = sockets.socket(zmq.DEALER, own=secret, server=public(net, "a"), RCVHWM=1, IMMEDIATE=0, RCVBUF=4096)
    lazy.connect(a.endpoint)
    for i in range(10_000):  # the client reads none of the replies (120 MB if they were all kept)
        lazy.send(msgpack.packb({"v": 1, "id": i, "op": "book", "depth": 1000}))
    with a.client(as_="alice") as alice:  # the node keeps serving others meanwhile
        for _ in range(20):
            assert alice.status()["node"] == "a"
    grew = rss(a.proc.pid) - start
    assert grew < 64 * 2**20, f"a slow reader grew the node by {grew / 2**20:.0f} MiB"
    # When it reads again, every request it sent has its reply, or is counted in a notice of
    # dropped replies that comes before whatever it gets next.
    answered, dropped = 0, 0
    lazy.send(msgpack.packb({"v": 1, "id": "again", "op": "status"}))
    for _ in range(30_000):
        assert lazy.poll(10_000), f"no reply: {answered} answered, {dropped} dropped"
        reply = msgpack.unpackb(lazy.recv())
        if reply.get("id") is None:
            assert reply["error"]["code"] == "dropped"
            dropped += reply["error"]["count"]
        elif reply["id"] == "again":
            break
        else:
            answered += 1
    assert answered + dropped == 10_000, (answered, dropped)
