"""Envelopes (zmqex.core.envelope): what a node makes in one loop iteration travels, is signed
and is stored once, and each event in it can still be checked on its own."""

from __future__ import annotations

import hashlib

import msgpack
import pytest
from hypothesis import given, strategies as st

from zmqex import keys
from zmqex.core import envelope as envelopes
from zmqex.core import merkle, messages, wire
from zmqex.core.clock import VectorClock
from zmqex.core.envelope import (
    MAX_EVENTS, Envelope, Proof, bundle_from_wire, bundle_to_wire, decode_event, encode_event, envelope_from_wire,
    envelope_to_wire, vouched,
)
from zmqex.core.events import Cancel, Event, NewOrder, Side, Tif, encode
from zmqex.core.replica import Config
from zmqex.errors import DecodeError, Forged
from zmqex.store import SqliteStore
from tests.checked import Network

MEMBERS = ["a", "b", "c"]


def secret(name: str) -> keys.SecretKey:
    return keys.secret_from_seed(hashlib.sha256(name.encode()).digest())  # as the simulator makes them


def verify(event: Event) -> bool:
    claim = vouched(event)
    return claim is not None and keys.Verifier({m: secret(m).public for m in MEMBERS})(event.origin, *claim)


def made(n: int, origin: str = "a", first: int = 1, sign: bool = True) -> Envelope:
    """``n`` events of ``origin`` as one iteration makes them, sealed (and signed)."""
    base = VectorClock({"b": 3, origin: first})
    events = [Event(origin, first + i, base.with_entry(origin, first + i),
                    NewOrder(Side.SELL, 100 + i, 5, Tif.GTC) if i % 3 else Cancel(f"b:{i + 1}"), ts=7)
              for i in range(n)]
    return envelopes.seal(events, secret(origin).signer() if sign else None)


def gossip_of(net: Network, src: str, dst: str) -> list[Envelope]:
    return [m.envelope for data in net.links[(src, dst)] for m in [messages.decode(data)]
            if isinstance(m, messages.Gossip)]


# --- the codec ---------------------------------------------------------------------------------


def test_an_envelope_of_one_is_the_event_alone() -> None:
    one = made(1)
    event = one.events[0]
    assert envelope_to_wire(one) == wire.unpack(encode(Event(event.origin, 1, event.vc, event.body, one.sig, 7)))
    assert verify(event)


@given(st.integers(1, MAX_EVENTS), st.booleans())
def test_envelopes_round_trip_and_every_event_checks_alone(n: int, sign: bool) -> None:
    env = made(n, sign=sign)
    env._check()
    back = envelope_from_wire(wire.unpack(wire.pack(envelope_to_wire(env))))
    back._check()
    assert back == env and back.events == env.events
    for event in env.events:
        alone = decode_event(encode_event(event))
        assert alone == event
        if sign:
            assert verify(event) and verify(alone)
            assert isinstance(alone.seal, Proof if n > 1 else type(alone.seal))
        else:
            assert alone.sig == b""


def test_one_signature_vouches_for_every_event_and_for_nothing_else() -> None:
    env = made(5)
    forged = made(5, sign=False)  # the same events but one
    forged.events[2].body = NewOrder(Side.BUY, 999, 5, Tif.GTC)
    forged.sig = env.sig
    assert not verify(forged.events[0])  # the root moved: the signature covers every event
    stolen = decode_event(encode_event(env.events[3]))
    assert isinstance(stolen.seal, Proof)
    stolen.seal.index = 2  # its proof, claimed for another place
    assert not verify(stolen)
    moved = decode_event(encode_event(env.events[3]))
    moved.body = Cancel("b:9")
    assert not verify(moved)
    for edit in ({"vc": env.events[3].vc.with_entry("b", 4)}, {"ts": 8}, {"seq": 5}):
        other = decode_event(encode_event(env.events[3]))
        for field, value in edit.items():
            setattr(other, field, value)
        if "seq" in edit:
            other.vc = other.vc.with_entry("a", other.seq)
        assert not verify(other), edit  # its clock, time and place are signed too


def test_a_proof_path_must_fit_its_width() -> None:
    tree = merkle.levels([merkle.leaf(bytes([i])) for i in range(5)])
    for i in range(5):
        path = merkle.path(tree, i)
        assert merkle.root_from(merkle.leaf(bytes([i])), i, 5, path) == tree[-1][0]
        assert merkle.root_from(merkle.leaf(bytes([i])), i, 5, path + [b"x" * 32]) is None
        assert len(path) <= merkle.depth(5)


def malformed_envelopes() -> list[object]:
    good = envelope_to_wire(made(3))
    bad: list[object] = []
    for index, value in [(1, "a b"), (2, 0), (3, {"a": 2}), (3, []), (4, -1), (6, []), (6, [[]]),
                         (6, [["order"]] * 2), (6, [["nope", 1]] * 2), (7, b"short")]:
        raw = list(good)
        raw[index] = value
        bad.append(raw)
    bad.append(good[:6])
    bad.append(good + [None])
    one_body = list(good)
    one_body[6] = good[6][:1]  # an envelope of one is the event alone, never this form
    bad.append(one_body)
    many = list(good)
    many[6] = good[6][:1] * (MAX_EVENTS + 1)
    bad.append(many)
    past = list(good)
    past[2] = wire.MAX_INT
    past[3] = {"a": wire.MAX_INT, "b": 3}
    bad.append(past)
    return bad


@pytest.mark.parametrize("raw", malformed_envelopes())
def test_malformed_envelopes_are_refused(raw: object) -> None:
    with pytest.raises(DecodeError):
        envelope_from_wire(msgpack.unpackb(msgpack.packb(raw)))


@pytest.mark.parametrize("edit", [(2, 1), (2, MAX_EVENTS + 1), (3, 5), (3, -1), (4, [b"x" * 31]), (4, [b"x" * 32] * 7), (1, b"s")])
def test_malformed_proofs_are_refused(edit: tuple[int, object]) -> None:
    raw = envelopes.event_to_wire(made(5).events[1])
    raw[edit[0]] = edit[1]
    with pytest.raises(DecodeError):
        envelopes.event_from_wire(msgpack.unpackb(msgpack.packb(raw)))


def test_a_bundle_sends_each_envelope_once_in_order() -> None:
    one, two = made(4), made(3, first=5)
    loose = decode_event(encode_event(made(3, origin="c").events[1]))  # held with its proof only
    events = [*one.events[1:], loose, *two.events]
    raw = bundle_to_wire(events)
    assert len(raw) == 3
    back = list(bundle_from_wire(msgpack.unpackb(msgpack.packb(raw))))
    assert back == [*one.events, loose, *two.events]  # whole envelopes: the receiver drops what it has


# --- replicas -----------------------------------------------------------------------------------


@pytest.mark.parametrize("keyed", [False, True])
def test_one_iteration_makes_one_envelope_that_every_replica_applies(keyed: bool) -> None:
    net = Network(["a", "b", "c"], keyed=MEMBERS if keyed else None)
    with net.iteration("a"):
        for i in range(4):
            net.place("a", Side.SELL, 5, 100 + i)
        net.place("a", Side.BUY, 3, 101)  # meets a's own asks: what that makes joins the same envelope
    sent = gossip_of(net, "a", "b")
    assert [len(env) for env in sent] == [len(net.replica("a").replication.log)] and len(sent[0]) >= 5
    assert net.replica("a").counters["envelopes_sealed"] == 1
    net.drain()
    assert len({net.replica(n).ledger.state_hash() for n in "abc"}) == 1
    assert all(net.replica(n).clock == net.replica("a").clock for n in "bc")


def test_a_full_envelope_is_sealed_and_the_next_one_opens() -> None:
    net = Network(["a", "b"])
    with net.iteration("a"):
        for i in range(MAX_EVENTS + 3):
            net.place("a", Side.SELL, 5, 100 + i)
    assert [len(env) for env in gossip_of(net, "a", "b")] == [MAX_EVENTS, 3]


def test_a_peers_event_delivered_mid_iteration_closes_the_envelope() -> None:
    net = Network(["a", "b"])
    net.place("b", Side.SELL, 5, 200)
    with net.iteration("a"):
        net.place("a", Side.SELL, 5, 100)
        net.deliver("b", "a")  # b's order: our next events depend on it, the first did not
        net.place("a", Side.SELL, 5, 101)
    first, second = gossip_of(net, "a", "b")
    assert first.events[0].vc == VectorClock({"a": 1}) and second.events[0].vc == VectorClock({"a": 2, "b": 1})
    net.drain()
    assert net.replica("a").ledger.state_hash() == net.replica("b").ledger.state_hash()


def test_a_relayed_envelope_is_checked_once_and_a_forged_one_refused() -> None:
    net = Network(["a", "b", "c"], keyed=MEMBERS)
    with net.iteration("a"):
        for i in range(3):
            net.place("a", Side.SELL, 5, 100 + i)
    genuine = gossip_of(net, "a", "b")[0]
    net.links[("a", "b")].clear()
    net.links[("a", "c")].clear()
    forged = made(3, sign=False)
    forged.sig = genuine.sig  # a's signature, other events
    net.links[("c", "b")].insert(0, messages.encode(messages.SyncReply(forged.events, False)))
    with pytest.raises(Forged, match="signature"):
        net.deliver("c", "b")
    assert net.replica("b").clock == VectorClock()
    net.links[("c", "b")].insert(0, messages.encode(messages.SyncReply(genuine.events, False)))
    net.deliver("c", "b")
    b = net.replica("b")
    assert b.clock == VectorClock({"a": 3}) and b.counters["bad_signatures"] == 1


def test_a_store_holds_one_row_per_envelope_and_restores_each_event(tmp_path) -> None:
    net = Network(["a", "b"], keyed=MEMBERS)
    with net.iteration("a"):
        for i in range(5):
            net.place("a", Side.SELL, 5, 100 + i)
    net.drain()
    for node in ("a", "b"):
        store = SqliteStore(tmp_path / node, node)
        store.commit(net.nodes[node].store)
        rows = store.db.execute("SELECT origin, seq, last FROM events").fetchall()
        assert rows == [("a", 1, 5)]
        restored = type(net.replica(node)).restore(node, store.records(), peers=["a", "b"], config=Config())
        store.close()
        assert restored.ledger.state_hash() == net.replica(node).ledger.state_hash()
        assert restored.clock == VectorClock({"a": 5})
        assert all(verify(e) for e in restored.replication.log)
