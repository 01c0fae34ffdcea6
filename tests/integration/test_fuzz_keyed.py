"""A keyed node under a fuzzed wire, from the inside: a member, a trader and strangers.

A keyed network of two running nodes, a and b (``--ephemeral``), with ``d`` on
every allow-list but never started (as in test_security.py).  This test process
speaks to b:

* as member ``d`` (a CURVE client with d's secret key, insisting on b's key), after a
  valid hello tagged ``d/fuzz1``: hostile peer frames from tests/hostile.py (random
  bytes, wrong shapes, broken fields, forged origins and signatures, events of
  non-members, unasked snapshot pages with huge totals, heartbeats with absurd clocks,
  takes naming invented orders, byte mutations), genuine events of a and b (caught on
  their gossip, which admits d) replayed and tampered with, multi-part frames, frames
  just over wire.MAX_FRAME (on a second connection of d's: libzmq drops it), and bad
  tags: junk, another incarnation of d, and other members' ids (``a/1``, ``b/1``),
  which b must refuse because the key is d's;
* as trader ``bob``: hostile client frames (as test_fuzz_node.py), and peer-shaped
  frames, which a trader's key may never send;
* as strangers: a fresh key (``keys.new_secret()``) and no CURVE at all, a few
  hundred frames that must get no reply whatsoever.

**What is never sent.**  d is a member: an event that d originates and sends itself
is not verified (docs/security.md: the connection's key is the signer) and is
delivered, which is a legitimate change of state, not an attack.  So no frame
carrying an event of origin ``d`` with a sequence number below GAP_FLOOR is sent
(they are screened out after generation and mutation; d-events at or above
GAP_FLOOR are sent: they are sequence gaps that can never become deliverable,
since nothing below them ever comes).  The test never signs anything with a
member's key.  Client frames that b would carry out (a place, a cancel of bob's
order) are screened out with a mirror replica, as in test_fuzz_node.py.  A valid
hello from d may "move" d's endpoint (d may say where it is): its link at b changes,
nothing else.

Between batches and at the end: b answers ``status`` promptly (on the harness's
operator key); b's ``vc`` and ``hash`` equal a's and those at the start; b's peers
are exactly {a, d}; b's VmRSS grew by less than RSS_GROWTH_BOUND; no stranger got a
byte back.  At the end: no Traceback in b's log, b's counters show the refusals,
and an order placed by alice at a still trades with an order at b.

Default: DEFAULT_FRAMES frames (< 25 s on a loaded 2-core machine).  Opt-in:
``ZMQEX_FUZZ_FRAMES=100000`` sends that many (and draws from larger pools).
"""

from __future__ import annotations

import os
import random
import time

import pytest
import zmq
from hypothesis import strategies as st

from tests import hostile
from tests.integration.raw import Sockets
from tests.integration.test_fuzz_node import Mirror, drained, generate, mutate, rss
from zmqex import keys, mesh
from zmqex.core import messages, wire
from zmqex.core.clock import VectorClock
from zmqex.core.events import Event, NewOrder, Side, Tif, to_wire
from zmqex.core.ledger import ORDER_ITEM, rebuild
from zmqex.local import LocalNetwork, wait_for

NODES = ["a", "b", "d"]  # d: on every allow-list, never started; this test speaks as d
DEFAULT_FRAMES = 4000
FRAMES = int(os.environ.get("ZMQEX_FUZZ_FRAMES") or DEFAULT_FRAMES)
BATCH = 500  # frames between two checks
POOL = min(2000, max(300, FRAMES // 20))  # distinct generated frames per pool
RSS_GROWTH_BOUND = 64 * 2**20  # b's VmRSS may grow by less than 64 MiB over the run
STATUS_WITHIN = 2.0  # seconds: "promptly", for a status between two batches
DRAIN_WITHIN = 30.0  # seconds for the node to work through one batch
TIME_BOUND = 60.0 + FRAMES / 150  # seconds for the whole run
SEED = 20240614
GAP_FLOOR = 1000  # d-events below this sequence number are never sent (see the docstring)

D_TAG = b"d/fuzz1"
D_ME = mesh.Member("d", "tcp://127.0.0.1:9", "tcp://127.0.0.1:9")  # nobody listens there
D_HELLO = mesh.encode_hello(mesh.Hello(D_ME, (D_ME,)))
#: Tags d's key may not use (other members, junk) or may not use now (a second incarnation of d).
BAD_TAGS = [b"a/1", b"b/1", b"a/" + b"f" * 16, b"c/1", b"mallory/1", b"d/fuzz2", b"", b"d", b"d/", b"/fuzz1",
            b"d/" + b"x" * 33, b"d/x y", b"\xff\xfe/1", b"d/fuzz1/x", b"D/fuzz1"]
KINDS = [mesh.CORE, mesh.CORE, mesh.CORE, mesh.MEMBERS, b"x", b""]
STARTING = {"b": [("sell", "1", "50000.00"), ("buy", "1", "40000.00")],  # b:1 and b:2, placed by bob
            "a": [("sell", "1", "60000.00")]}  # a:1, placed by alice


def fuzz_socket(sockets: Sockets, kind: int, endpoint: str, **options: object) -> zmq.Socket:
    """A raw socket for fuzzing: unbounded receive queue, and a send never blocks more than 5 s."""
    return sockets.socket(kind, connect=endpoint, SNDTIMEO=5000, RCVHWM=0, **options)


@pytest.fixture(scope="module")
def net():
    with LocalNetwork(keyed=NODES, traders=["alice", "bob"], extra_args=["--ephemeral"]) as network:
        network.start_mesh(["a", "b"])
        yield network


@pytest.fixture
def sockets():
    made = Sockets()
    yield made
    made.close()


def secret(net: LocalNetwork, name: str) -> keys.SecretKey:
    return keys.load_secret(net.keys_dir / name / f"{name}.key_secret")  # type: ignore[operator]


def public(net: LocalNetwork, node: str) -> bytes:
    return keys.load_public(net.keys_dir / node / f"{node}.key").curve  # type: ignore[operator]


def gossip_endpoint(node) -> str:
    return node.log().split("gossip at ")[1].split(",")[0].split()[0]


# --- what is sent as d ------------------------------------------------------------------------


def carried_events(msg: messages.Message) -> list[Event]:
    """The events a message would offer to the replica (snapshot items are verified: not these)."""
    if isinstance(msg, messages.Gossip):
        return list(msg.envelope.events)
    if isinstance(msg, messages.SyncReply):
        return list(msg.events)
    if isinstance(msg, messages.Take):
        return [msg.taker]
    if isinstance(msg, messages.TakeReply) and msg.fill is not None:
        return [msg.fill]
    return []


def d_may_originate(kind: bytes, tag: bytes, frame: bytes) -> bool:
    """Would b deliver, as d's own, an event in this frame?  (Legitimate, so never sent.)"""
    if kind != mesh.CORE or tag != D_TAG:
        return False
    try:
        batch = messages.decode_batch(frame)
    except Exception:  # noqa: BLE001 - whatever the decoder does, b must survive it: send it
        return False
    return any(e.origin == "d" and e.seq < GAP_FLOOR for msg in batch for e in carried_events(msg))


def forged_to_b():
    lies = hostile.forged_messages(me="b", sender="d")
    return st.one_of(
        lies.map(messages.encode),
        hostile.field_mutations(lies.map(lambda m: wire.unpack(messages.encode(m)))),
        st.lists(lies, min_size=2, max_size=5).map(messages.encode_batch),  # refused and harmless, mixed
    )


def replay_frames(genuine: list[Event], start: dict) -> list[bytes]:
    """Genuine events of a and b, relayed by d as they are and tampered with; and snapshots made of them."""
    out: list[bytes] = []
    enc = messages.encode
    for e in genuine:
        flipped = e.sig[:5] + bytes([e.sig[5] ^ 1]) + e.sig[6:]
        body = e.body
        other_body = NewOrder(body.side, (body.price or 1) + 1, body.qty, body.tif) if isinstance(body, NewOrder) else body
        tampered = [
            Event(e.origin, e.seq, e.vc, e.body, flipped),  # a bad signature on a known id
            Event(e.origin, e.seq, e.vc, other_body, e.sig),  # another body under the genuine signature
            Event(e.origin, e.seq, e.vc, e.body, b""),  # unsigned
            Event(e.origin, e.seq + 1, e.vc.with_entry(e.origin, e.seq + 1), e.body, e.sig),  # the next id, reused sig
            Event(e.origin, e.seq + 10**6, e.vc.with_entry(e.origin, e.seq + 10**6), e.body, e.sig),
        ]
        out += [enc(messages.SyncReply((e,), False)), enc(messages.SyncReply((e,), True)),
                enc(messages.Gossip(e)),  # gossip of another's event: refused
                enc(messages.Take("d.1", "b:1", e, 1)), enc(messages.Take("d.2", "b:2", e, 10**8)),
                enc(messages.TakeReply("b.1", "a:1", 1, "filled", e))]
        for t in tampered:
            out += [enc(messages.SyncReply((t,), False)), enc(messages.Gossip(t)),
                    enc(messages.SyncReply((e, t), False)), enc(messages.Take("d.3", "b:1", t, 1))]
    for i, (price, maker) in enumerate([(6000000, "b:1"), (3000000, "b:2"), (6000000, "b:99"), (6000000, "a:1")]):
        # Takes in d's own name, well-formed, whose taker order is a gap in d's events (never deliverable).
        seq = GAP_FLOOR + 10 * i
        side = Side.BUY if maker != "b:2" else Side.SELL
        taker = Event("d", seq, VectorClock({**start["vc"], "d": seq}), NewOrder(side, price, 10**8, Tif.GTC))
        out += [enc(messages.Take(f"d.{seq}", maker, taker, 10**8)), enc(messages.Take(f"d.{seq}", maker, taker, 1)),
                enc(messages.Take(f"d.{seq + 1}", maker, taker, 10**9)),
                enc(messages.TakeReply(f"b.{i}", maker, 1, "filled", taker))]
    orders = [[ORDER_ITEM, to_wire(e), 0, None, e.body.qty] for e in genuine if isinstance(e.body, NewOrder)]
    for items in (orders, orders[:1], orders[1:]):
        digest = rebuild(items).state_hash()  # a snapshot that hashes right, of signed events, nobody vouches for
        for vc in (VectorClock(start["vc"]), VectorClock({**start["vc"], "a": 10**6}), VectorClock({"d": 10**6})):
            out += [enc(messages.SnapshotPage(vc, 0, 1, tuple(items), digest)),
                    enc(messages.SnapshotPage(vc, 0, 2, tuple(items), digest)),
                    enc(messages.SnapshotPage(vc, 0, 1, tuple(items), start["hash"]))]
    out += [enc(messages.Heartbeat("d", VectorClock(start["vc"]), "0" * 64)),  # our clock, another state
            enc(messages.Heartbeat("d", VectorClock({**start["vc"], "b": 10**9}), "")),  # knows more of ours
            enc(messages.Heartbeat("d", VectorClock({"d": wire.MAX_INT}), "")),
            enc(messages.Heartbeat("a", VectorClock(start["vc"]), start["hash"]))]  # in a's name
    return out


def crafted_hellos(a_router: str) -> list[bytes]:
    """Hellos from d: d moving (it may), d naming a elsewhere (only a may say so), non-members, b itself,
    too many members, a sender that is not d."""
    d_at = [mesh.Member("d", r, p) for r, p in [
        ("tcp://127.0.0.1:1", "tcp://127.0.0.1:2"), ("tcp://localhost:3", "ipc:///tmp/zmqex-fuzz-nothing"),
        ("tcp://[::1]:4", "tcp://[::1]:5"), ("tcp://node-7.example:6", "tcp://node-7.example:7"),
        (a_router, a_router), ("ipc://@zmqex-fuzz", "ipc://@zmqex-fuzz2")]]
    others = [mesh.Member("a", "tcp://127.0.0.1:8", "tcp://127.0.0.1:8"), mesh.Member("b", "tcp://127.0.0.1:9", "tcp://127.0.0.1:9"),
              mesh.Member("c", "tcp://127.0.0.1:10", "tcp://127.0.0.1:10"),
              mesh.Member("mallory", "tcp://127.0.0.1:11", "tcp://127.0.0.1:11")]
    hellos = [mesh.Hello(me, (me, *others)) for me in d_at]
    hellos += [mesh.Hello(D_ME, tuple(others)), mesh.Hello(others[0], (D_ME,)), mesh.Hello(others[2], ()),
               mesh.Hello(D_ME, (D_ME,) * mesh.MAX_MEMBERS)]
    too_many = wire.pack([wire.VERSION, ["d", D_ME.router, D_ME.pub], [["d", D_ME.router, D_ME.pub]] * (mesh.MAX_MEMBERS + 1)])
    return [mesh.encode_hello(h) for h in hellos] + [too_many]


def known_killers() -> list[tuple[str, list[bytes]]]:
    """Frames that once killed a node, as d and as bob: sent in every batch."""
    deep_hello = hostile.raw_array([wire.pack(1), hostile.deep(hostile.DEEP), wire.pack([])])
    return [
        ("bob", [hostile.raw_map([(wire.pack("v"), hostile.deep(hostile.DEEP)), (wire.pack("id"), wire.pack(1))])]),
        ("d", [mesh.MEMBERS, D_TAG, deep_hello]),
        ("d", [mesh.MEMBERS, D_TAG, wire.pack([wire.VERSION, ["d", "tcp://x", "tcp://127.0.0.1:1"], []])]),
        ("d", [mesh.CORE, D_TAG, hostile.raw_array([wire.pack(1), wire.pack("batch"), hostile.deep(hostile.DEEP)])]),
    ]


class LogTail:
    """Follows a node's log file: waits for a line that a marker message makes the node write."""

    def __init__(self, path) -> None:
        self.file = open(path, "rb")
        self.file.seek(0, os.SEEK_END)
        self.buffer = b""

    def wait(self, needle: bytes, node, deadline: float) -> None:
        def logged() -> bool:
            assert node.alive(), f"the node died:\n{node.log()[-3000:]}"
            self.buffer += self.file.read()
            if needle in self.buffer:
                self.buffer = self.buffer[self.buffer.index(needle) + len(needle):]
                return True
            self.buffer = self.buffer[-len(needle):]
            return False

        wait_for(logged, max(0.0, deadline - time.monotonic()), f"the node to log {needle!r}", interval=0.01)

    def close(self) -> None:
        self.file.close()


def test_a_member_a_trader_and_strangers_fuzzing_a_keyed_node_change_nothing(net, sockets):
    a, b = net.nodes["a"], net.nodes["b"]
    d_key, bob_key = secret(net, "d"), secret(net, "bob")
    b_key = public(net, "b")

    # Genuine signed events to replay: d (a member) may read the gossip of a and b.
    subs = [fuzz_socket(sockets, zmq.SUB, gossip_endpoint(node), own=d_key, server=public(net, node.id), SUBSCRIBE=b"")
            for node in (a, b)]
    for sub in subs:  # a heartbeat first: the subscription is up before the orders are placed
        assert sub.poll(10_000), "no gossip reached d"
    for node, who in ((b, "bob"), (a, "alice")):
        with node.client(as_=who) as client:
            for side, qty, price in STARTING[node.id]:
                client.place(side, qty, price)
    genuine: dict[tuple[str, int], Event] = {}
    deadline = time.monotonic() + 10
    while len(genuine) < 3 and time.monotonic() < deadline:
        for sub in subs:
            while sub.poll(50):
                for msg in messages.decode_batch(sub.recv()):
                    if isinstance(msg, messages.Gossip):
                        genuine.update((event.id, event) for event in msg.envelope.events)
    assert set(genuine) == {("b", 1), ("b", 2), ("a", 1)}, sorted(genuine)
    for sub in subs:
        sub.close(0)
    start = net.wait_converged()["b"]

    # d says hello, as a member does.
    d = fuzz_socket(sockets, zmq.DEALER, b.endpoint, own=d_key, server=b_key)
    d_big = fuzz_socket(sockets, zmq.DEALER, b.endpoint, own=d_key, server=b_key)  # for the oversized frames
    d.send_multipart([mesh.MEMBERS, D_TAG, D_HELLO])
    wait_for(lambda: "d" in status(b)["peers"], 10, "b to take d's hello")
    start = status(b)
    assert set(start["peers"]) == {"a", "d"}
    rss_start = rss(b.proc.pid)

    began = time.monotonic()
    client_pool = generate(hostile.client_frames, POOL)
    peer_pool = generate(st.one_of(hostile.valid_frames, forged_to_b(), forged_to_b(), hostile.hostile_frames), POOL)
    replays = replay_frames(list(genuine.values()), start)
    hellos = crafted_hellos(a.endpoint)
    generated = time.monotonic() - began

    rng = random.Random(SEED)
    mirror = Mirror(STARTING["b"], node_id="b", user="t:bob")  # b's orders are bob's: his cancel_all is harm
    bob = fuzz_socket(sockets, zmq.DEALER, b.endpoint, own=bob_key, server=b_key)
    log = LogTail(b.log_path)
    any_pool, bob_peer_pool = client_pool + peer_pool, peer_pool + replays

    sent = dict.fromkeys(["d peer", "d replay", "d hello", "d bad tag", "d multipart", "d oversized", "known",
                          "bob client", "bob multipart", "bob peer", "stranger", "stranger unsendable", "skipped d", "skipped bob"], 0)
    skipped = ("skipped d", "skipped bob", "stranger unsendable")  # not counted as frames sent
    replies = 0
    rss_max = rss_start
    deadline = time.monotonic() + TIME_BOUND
    marker = 0
    batches = 0
    while sum(sent.values()) - sum(sent[k] for k in skipped) < FRAMES:
        assert time.monotonic() < deadline, f"not done after {TIME_BOUND}s: {sent}"
        d.send_multipart([mesh.MEMBERS, D_TAG, D_HELLO])  # d speaks first: its incarnation stays the one heard
        # Two new strangers per batch (closed after it), so that every batch has fresh handshakes to refuse.
        strangers = [fuzz_socket(sockets, zmq.DEALER, b.endpoint, own=keys.new_secret(), server=b_key),
                     fuzz_socket(sockets, zmq.DEALER, b.endpoint)]
        for _ in range(BATCH):
            roll = rng.random()
            if roll < 0.45:  # a peer frame as d, under d's tag (or a junk kind)
                kind = rng.choice(KINDS)
                frame = mutate(rng, rng.choice(peer_pool))
                if d_may_originate(kind, D_TAG, frame):
                    sent["skipped d"] += 1
                    continue
                d.send_multipart([kind, D_TAG, frame])
                sent["d peer"] += 1
            elif roll < 0.52:  # genuine events, replayed or tampered with
                frame = rng.choice(replays)
                d.send_multipart([mesh.CORE, D_TAG, frame if rng.random() < 0.8 else mutate(rng, frame)])
                sent["d replay"] += 1
            elif roll < 0.53:  # hellos: d moves, or names others where they are not
                d.send_multipart([mesh.MEMBERS, D_TAG, rng.choice(hellos)])
                sent["d hello"] += 1
            elif roll < 0.61:  # d's key under a tag that is not d's (or not d's incarnation)
                frame = rng.choice(peer_pool) if rng.random() < 0.7 else rng.choice(replays)
                d.send_multipart([rng.choice(KINDS), rng.choice(BAD_TAGS), frame])
                sent["d bad tag"] += 1
            elif roll < 0.65:  # d sends 1, 2, 4 or 5 frames: no peer message (and a member's key is no client)
                n = rng.choice([1, 2, 4, 5])
                parts = [mutate(rng, rng.choice(any_pool)) for _ in range(n)]
                if n >= 2 and rng.random() < 0.5:
                    parts[:2] = [mesh.CORE, D_TAG]
                d.send_multipart(parts)
                sent["d multipart"] += 1
            elif roll < 0.88:  # a client frame as bob
                frame = mutate(rng, rng.choice(client_pool))
                if not mirror.harmless(frame):
                    sent["skipped bob"] += 1
                    continue
                bob.send(frame)
                sent["bob client"] += 1
            elif roll < 0.91:  # bob sends several frames
                bob.send_multipart([mutate(rng, rng.choice(client_pool)) for _ in range(rng.choice([2, 4, 5]))])
                sent["bob multipart"] += 1
            elif roll < 0.96:  # a trader's key speaking the peer protocol, in any member's name
                bob.send_multipart([rng.choice(KINDS), rng.choice([D_TAG, b"a/1", b"b/1", b"bob/1"]),
                                    rng.choice(bob_peer_pool)])
                sent["bob peer"] += 1
            else:  # a stranger: handshakes that fail; whatever it sends is never read
                sock = rng.choice(strangers)
                parts = ([rng.choice(client_pool)] if rng.random() < 0.5
                         else [rng.choice(KINDS), rng.choice([D_TAG, b"a/1"]), rng.choice(peer_pool)])
                try:
                    sock.send_multipart(parts, zmq.NOBLOCK)
                    sent["stranger"] += 1
                except zmq.Again:  # its handshake failed: libzmq has no pipe to queue it on
                    sent["stranger unsendable"] += 1
        for who, frames in known_killers():
            (d if who == "d" else bob).send_multipart(frames)
            sent["known"] += 1
        if batches % 3 == 0:  # just over the limit: libzmq drops d_big's connection (it reconnects)
            d_big.send_multipart([mesh.CORE, D_TAG, rng.choice(hostile.OVERSIZED)])
            sent["d oversized"] += 1
        batches += 1
        # Wait until b has read everything: bob's status marker is answered, and d's marker
        # (a message of an unknown kind, after a hello that restores d's link if a hostile
        # hello moved it) is logged as rejected.
        marker += 1
        bob.send(wire.pack({"v": 1, "id": marker, "op": "status"}))
        d.send_multipart([mesh.MEMBERS, D_TAG, D_HELLO])
        d.send_multipart([mesh.CORE, D_TAG, wire.pack([wire.VERSION, f"fuzzmark{marker}"])])
        batch_deadline = min(deadline, time.monotonic() + DRAIN_WITHIN)
        replies += drained(b, bob, marker, batch_deadline)
        log.wait(f"'fuzzmark{marker}'".encode(), b, batch_deadline)
        rss_max = max(rss_max, check(net, start, rss_start, strangers))
        for sock in strangers:
            assert not sock.poll(0 if batches > 1 else 500), "a stranger got a reply"
            sock.close(0)

    elapsed = time.monotonic() - began
    log.close()
    assert b.alive()
    rss_end = check(net, start, rss_start, [])
    text = b.log()
    assert "Traceback" not in text
    assert "refused a connection with an unknown key" in text  # the strangers' handshakes
    assert "refused a peer message claiming to be" in text  # d's key under a's tag, bob's key under any
    assert "rejected a message from d" in text
    counters = status(b)["counters"]
    for name in ("bad_signatures", "events_refused", "duplicate_ids"):
        assert counters.get(name, 0) > 0, (name, counters)
    # d's snapshots were refused as unasked, or (when d's absurd heartbeats had just made b ask
    # d for a sync) refused as bad, or dropped unvouched: which one depends on timing.
    assert sum(counters.get(name, 0) for name in (
        "snapshot_pages_unasked", "snapshot_pages_refused", "snapshots_dropped")) > 0, counters

    # The mesh still works: alice at a takes bob's order at b.
    with a.client(as_="alice") as alice:
        oid = alice.place("buy", "1", "50000.00", tif="ioc")["order_id"]
        wait_for(lambda: alice.order(oid)["status"] == "filled", 15, "alice's order to fill at b")
        assert [f["maker"] for f in alice.order(oid)["fills"]] == ["b:1"]

    total = sum(sent.values()) - sum(sent[k] for k in skipped)
    print(f"\nfuzzed keyed node b: {total} frames {sent} in {elapsed:.1f}s ({total / elapsed:.0f}/s, "
          f"{generated:.1f}s of it generating), {replies} replies to bob; VmRSS {rss_start / 2**20:.1f} MiB at start, "
          f"{rss_end / 2**20:.1f} at end, {rss_max / 2**20:.1f} at most (+{(rss_max - rss_start) / 2**20:.1f} MiB, "
          f"bound +64); counters: { {k: v for k, v in counters.items() if v} }; log lines: "
          f"{ {w: text.count(w) for w in ('refused', 'rejected', 'moved from', 'a second node claims')} }")
    assert total >= FRAMES


def status(node) -> dict:
    with node.client(timeout=STATUS_WITHIN) as client:
        return client.status()


def check(net: LocalNetwork, start: dict, rss_start: int, strangers: list[zmq.Socket]) -> int:
    """b answers promptly, holds what it held (and what a holds), knows the same members, stays small;
    and no stranger ever got a byte back."""
    b = net.nodes["b"]
    assert b.alive(), f"the node died:\n{b.log()[-3000:]}"
    asked = time.monotonic()
    now = status(b)
    took = time.monotonic() - asked
    assert took < STATUS_WITHIN, f"status took {took:.2f}s"
    at_a = status(net.nodes["a"])
    assert (now["vc"], now["hash"]) == (start["vc"], start["hash"]), "hostile frames changed b's state"
    assert (at_a["vc"], at_a["hash"]) == (start["vc"], start["hash"]), "a's state moved"
    assert set(now["peers"]) == {"a", "d"} and now["peers"]["a"]["up"] and now["ready"], now["peers"]
    for sock in strangers:
        assert not sock.poll(0), "a stranger got a reply"
    grown = rss(b.proc.pid) - rss_start
    assert grown < RSS_GROWTH_BOUND, f"VmRSS grew by {grown / 2**20:.1f} MiB"
    return rss_start + grown
