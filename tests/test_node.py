"""Tests for zmqex.node's handling of peer frames, on an in-process node (real sockets, no peers)."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterable
from typing import Any

import msgpack
import pytest
import zmq

from zmqex.core import messages
from zmqex.core.clock import VectorClock
from zmqex.core.events import Event, NewOrder, Side, Tif
from zmqex.core.messages import Heartbeat
from zmqex.core.outputs import (
    Delivered, OrderTrader, Output, PeerChanged, Persist, Publish, Record, Reply, Send, TakeSettled,
)
from zmqex.errors import BadEvent, InvariantViolation
from zmqex.node import Node
from zmqex.store import MemoryStore


@pytest.fixture
def node():
    n = Node("a", port=0, store=MemoryStore())
    yield n
    n.close()


def order(origin: str, seq: int, vc: dict[str, int]) -> Event:
    return Event(origin, seq, VectorClock(vc), NewOrder(Side.SELL, 50_000_00, 1000, Tif.GTC))


def test_a_message_the_core_refuses_does_not_stop_the_rest_of_its_frame(node, caplog):
    node.replica.receive("b", messages.Gossip(order("b", 1, {"b": 1})), 0)
    # b may not speak for c on the fast path: the core refuses that gossip (Forged) ...
    b2 = order("b", 2, {"b": 2})
    forged = order("c", 1, {"c": 1})
    b3 = order("b", 3, {"b": 3})
    frame = messages.encode_batch([messages.Gossip(b2), messages.Gossip(forged), messages.Gossip(b3)])
    node._receive("b", messages.decode_batch(frame), "gossip")
    # ... and the messages around it are delivered all the same.
    assert set(node.replica.ledger.orders) == {"b:1", "b:2", "b:3"}
    assert node.replica.clock == VectorClock({"b": 3})
    assert "rejected gossip from b" in caplog.text


def test_incarnations_remember_a_bounded_number_of_ids(monkeypatch):
    from zmqex import mesh

    monkeypatch.setattr(mesh, "MAX_NODES", 3)
    seen = mesh.Incarnations()
    assert all(seen.heard(n, "1", 0) for n in ("a", "b", "c"))
    assert not seen.heard("d", "1", 10)  # full, nobody silent long enough to forget
    assert seen.heard("a", "1", mesh.RESTART_AFTER_MS)  # a speaks on ...
    assert seen.heard("d", "1", mesh.RESTART_AFTER_MS)  # ... b and c fell silent: forgotten
    assert set(seen.accepted) == {"a", "d"}
    assert not seen.heard("a", "2", mesh.RESTART_AFTER_MS + 1)  # a second a while a is heard


# --- carrying out the core's outputs ------------------------------------------------------------


class Recorder:
    """Stands in for the store, the peers' links, the PUB socket and the client replies at once."""

    def __init__(self) -> None:
        self.steps: list[tuple[object, ...]] = []

    def commit(self, records: Iterable[Record], *, promise: bool = True, wait: bool = True) -> int:
        self.steps.append(("commit", list(records), promise))
        return 0  # durable at once (a store whose fsync runs apart: see test_gate)

    def durable(self, ticket: int) -> bool:
        return True

    def wait(self, ticket: int) -> None:
        pass

    def send(self, *args: Any) -> bool:
        if len(args) == 3:  # Peers.send(peer, kind, frame)
            self.steps.append(("peer", args[0], messages.decode_batch(args[2])))
        else:  # the PUB socket's send(frame)
            self.steps.append(("gossip", messages.decode_batch(args[0])))
        return True


class Stand:
    """The node's replica with some methods replaced: the node's attribute is swapped, never the
    replica's own (a core compiled with mypyc has classes whose methods cannot be patched)."""

    def __init__(self, replica: object, **methods: object) -> None:
        self._replica = replica
        self.__dict__.update(methods)

    def __getattr__(self, name: str) -> object:
        return getattr(self._replica, name)


def carry_out(node: Node, monkeypatch: pytest.MonkeyPatch, outputs: list[Output]) -> list[tuple[object, ...]]:
    rec = Recorder()
    monkeypatch.setattr(node, "store", rec)
    monkeypatch.setattr(node.peers, "send", rec.send)
    monkeypatch.setattr(node, "pub", rec)
    monkeypatch.setattr(node.api, "finish", lambda token, result: (token, result["order_id"].encode()))
    monkeypatch.setattr(node, "_to_client", lambda identity, frame: rec.steps.append(("reply", frame)))
    monkeypatch.setattr(node, "_on_delivered", lambda event: rec.steps.append(("delivered", event.order_id)))
    monkeypatch.setattr(node, "replica", Stand(node.replica, take_outputs=lambda: outputs))
    node._carry_out()
    return rec.steps


def hb(n: int) -> Heartbeat:
    return Heartbeat("a", VectorClock({"a": n}), "")


def test_carry_out_commits_a_promise_before_anything_leaves_then_follows_the_schedule(node, monkeypatch):
    settled, own = TakeSettled("a.1", 5), OrderTrader("a:1", "alice")
    event = order("a", 1, {"a": 1})
    steps = carry_out(node, monkeypatch, [
        Publish(hb(1)), Persist(settled, promise=False), Send("c", hb(2)), Delivered(event), Send("b", hb(3)),
        Reply(b"client", {"order_id": "a:1"}), Persist(own), Send("c", hb(4)), PeerChanged("b", True),
    ])
    assert steps == [
        ("commit", [settled, own], True),  # the whole drain, before anything leaves
        ("peer", "c", [hb(2), hb(4)]),  # one frame per peer, peers in the order first addressed
        ("peer", "b", [hb(3)]),
        ("reply", b"a:1"),
        ("gossip", [hb(1)]),
        ("delivered", "a:1"),
    ]


def test_carry_out_commits_records_that_back_no_promise_last(node, monkeypatch):
    settled = TakeSettled("a.1", 5)
    steps = carry_out(node, monkeypatch, [Persist(settled, promise=False), Send("b", hb(1)), Publish(hb(2))])
    assert steps == [("peer", "b", [hb(1)]), ("gossip", [hb(2)]), ("commit", [settled], False)]


# --- errors: hostile input is dropped, a bug is not ------------------------------------------------


def test_hostile_input_is_dropped_and_the_rest_of_its_frame_read(node, monkeypatch, caplog):
    seen: list[object] = []

    def receive(sender: str, msg: object, now: int) -> None:
        seen.append(msg)
        if len(seen) == 1:
            raise BadEvent("an over-fill")

    monkeypatch.setattr(node, "replica", Stand(node.replica, receive=receive))
    node._receive("b", [hb(1), hb(2)], "message")
    assert seen == [hb(1), hb(2)] and "rejected message from b: an over-fill" in caplog.text


def test_a_bug_in_the_core_is_not_taken_for_hostile_input(node, monkeypatch):
    def receive(sender: str, msg: object, now: int) -> None:
        raise InvariantViolation("the book and the orders disagree")

    monkeypatch.setattr(node, "replica", Stand(node.replica, receive=receive))
    with pytest.raises(InvariantViolation):
        node._receive("b", [hb(1)], "message")


def test_a_bug_answering_a_client_is_not_turned_into_an_error_reply(node, monkeypatch):
    def handle(*args: object, **kwargs: object) -> bytes:
        raise KeyError("a bug")

    monkeypatch.setattr(node.api, "handle", handle)
    with pytest.raises(KeyError):
        node._client_request(b"client", b"frame")


def test_the_node_stops_on_a_bug_and_logs_it_with_its_traceback(monkeypatch, caplog):
    n = Node("a", port=0, store=MemoryStore())

    def tick(now: int) -> None:
        raise InvariantViolation("the clock went backwards")

    monkeypatch.setattr(n, "replica", Stand(n.replica, tick=tick))
    try:
        with caplog.at_level(logging.INFO, logger="zmqex.node"), pytest.raises(InvariantViolation):
            n.run()  # the first iteration ticks
    finally:
        gc.unfreeze()  # run() froze the test process's objects
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "node a stops" in error.getMessage() and error.exc_info is not None
    assert error.exc_info[0] is InvariantViolation
    assert "node a stopped" in caplog.text and n.router.closed  # closed on the way out


# --- clients: every request answered, after the commit; slow readers told ----------------------


def test_once_a_request_changed_the_replica_replies_wait_for_the_commit(node, monkeypatch):
    sent: list[bytes] = []
    monkeypatch.setattr(node, "_to_client", lambda identity, frame: sent.append(frame))
    node._client_request(b"client", msgpack.packb({"v": 1, "id": 4, "op": "heartbeat"}))
    assert [msgpack.unpackb(f)["id"] for f in sent] == [4]  # nothing changed yet: answered at once
    node._client_request(b"client", msgpack.packb({"v": 1, "id": 5, "op": "place", "side": "sell", "qty": "1",
                                                   "price": "1", "ack": "accepted"}))
    node._client_request(b"client", msgpack.packb({"v": 1, "id": 6, "op": "order", "order_id": "a:1"}))
    assert len(sent) == 1 and node.api.changed  # the order could tell of the place: both wait
    own = OrderTrader("a:1", "alice")
    steps = carry_out(node, monkeypatch, [Persist(own)])
    assert [step[0] for step in steps] == ["commit", "reply", "reply"]
    assert [msgpack.unpackb(step[1])["id"] for step in steps[1:]] == [5, 6] and not node.api.changed


def test_a_request_in_several_frames_is_answered_malformed_under_its_id(node):
    context = zmq.Context()
    dealer = context.socket(zmq.DEALER)
    try:
        dealer.connect(node.endpoint)
        dealer.send_multipart([msgpack.packb({"v": 1, "id": 3, "op": "status"}), b"more"])
        dealer.send_multipart([b"a", b"b", b"c"])  # three frames: not a peer message either
        deadline = time.monotonic() + 5
        replies = []
        while len(replies) < 2 and time.monotonic() < deadline:
            node._read_router()
            node._carry_out()
            if dealer.poll(10):
                replies.append(msgpack.unpackb(dealer.recv()))
        assert [(r["id"], r["error"]["code"]) for r in replies] == [(3, "malformed"), (None, "malformed")]
        assert "one frame, not 2" in replies[0]["error"]["message"]
    finally:
        dealer.close(0)
        context.term()


class FullQueue:
    """Stands in for the ROUTER: a client's queue is full until ``room`` is set."""

    def __init__(self) -> None:
        self.room = False
        self.sent: list[dict[str, Any]] = []

    def send_multipart(self, frames: list[bytes], flags: int = 0) -> None:
        if not self.room:
            raise zmq.Again()
        self.sent.append(msgpack.unpackb(frames[1]))


def test_a_slow_reader_loses_its_subscriptions_and_is_told_once_it_reads(node, monkeypatch):
    for sub in (1, 2):
        node.api.handle(b"slow", msgpack.packb({"v": 1, "id": sub, "op": "subscribe", "stream": "trades"}))
    router = FullQueue()
    monkeypatch.setattr(node, "router", router)
    node._to_client(b"slow", msgpack.packb({"v": 1, "id": 9, "ok": True, "result": {}}))
    node._to_client(b"slow", msgpack.packb({"v": 1, "id": 10, "ok": True, "result": {}}))
    assert len(node.api.streams) == 0 and node._owed[b"slow"][0] == 2
    assert not node._pay(b"slow")  # still no room: owed stays
    router.room = True
    node._to_client(b"slow", msgpack.packb({"v": 1, "id": 11, "ok": True, "result": {}}))
    dropped, *ends, reply = router.sent
    assert (dropped["error"]["code"], dropped["error"]["count"]) == ("dropped", 2)
    assert sorted((e["id"], e["end"]["code"]) for e in ends) == [(1, "slow_reader"), (2, "slow_reader")]
    assert reply["id"] == 11 and not node._owed


def test_a_stopping_node_ends_its_subscriptions(monkeypatch):
    n = Node("a", port=0, store=MemoryStore())
    n.api.handle(b"c", msgpack.packb({"v": 1, "id": 1, "op": "subscribe", "stream": "book"}))
    sent: list[tuple[bytes, dict[str, Any]]] = []
    monkeypatch.setattr(n.router, "send_multipart",
                        lambda frames, flags=0: sent.append((frames[0], msgpack.unpackb(frames[1]))))
    n.close()
    assert sent == [(b"c", {"v": 1, "id": 1, "stream": "book", "seq": 0,
                            "end": {"code": "stopping", "message": "the node is stopping"}})]
